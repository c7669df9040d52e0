"""An engine image's merged filesystem and metadata, read without running it.

The image is `create`d as a container that is never started (no network,
labelled `smtpgate` like every object smtpgate makes), its merged filesystem is
read from the engine's `export` stream straight into a `TarFS` (nothing is
written to disk; contents bounded by `FsLimits`), and the container is removed
on every path. `export` beats `save` here: one pass over the merged tree, no
layer bookkeeping, no need to buffer layers until the manifest arrives.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from smtpgate.labels import owner_labels
from smtpgate.static.fs import FsLimits, RootFS, StaticError
from smtpgate.static.overlay import OverlayFS, overlay_layers
from smtpgate.static.tarfs import TarFS
from smtpgate.targets.sdk import engine_errors

LABEL = "smtpgate"
NEVER_RUN = "/smtpgate-static-never-started"


@dataclass(frozen=True)
class ImageConfig:
    """The parts of an image's config that decide what starts."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    user: str = ""
    workdir: str = ""
    exposed_tcp: tuple[int, ...] = ()
    healthcheck: tuple[str, ...] = ()

    @property
    def argv(self) -> tuple[str, ...]:
        """What PID 1 runs: Entrypoint + Cmd (Cmd alone without an entrypoint)."""
        return self.entrypoint + self.cmd


def image_config(attrs: dict[str, Any]) -> ImageConfig:
    """From `docker image inspect` data (the `attrs` of an SDK image)."""
    config = attrs.get("Config") or {}
    env = {}
    for item in config.get("Env") or ():
        key, _, value = str(item).partition("=")
        env[key] = value
    ports = sorted(int(k.split("/")[0]) for k in (config.get("ExposedPorts") or {}) if str(k).endswith("/tcp"))
    return ImageConfig(
        entrypoint=tuple(config.get("Entrypoint") or ()),
        cmd=tuple(config.get("Cmd") or ()),
        env=env,
        user=config.get("User") or "",
        workdir=config.get("WorkingDir") or "",
        exposed_tcp=tuple(ports),
        healthcheck=tuple((config.get("Healthcheck") or {}).get("Test") or ()),
    )


@contextlib.contextmanager
def image_filesystem(client: Any, image_id: str, limits: FsLimits | None = None,
                     config: ImageConfig | None = None, method: str = "auto") -> Iterator[RootFS]:
    """The merged root filesystem of an image, never run.

    method "auto": the image's overlay2 layer directories in place when the engine is
    local and they are readable (root), else "export": a container is created (never
    started, no network, labelled smtpgate), its filesystem streamed into a TarFS, and
    the container removed on every path.
    """
    if method == "auto":
        layers = _local_layers(client, image_id)
        if layers is not None:
            fs = OverlayFS(layers, limits, name=f"image {image_id[:19]} (overlay2 layers)")
            try:
                yield fs
            finally:
                fs.close()
            return
    with _exported(client, image_id, limits, config) as tfs:
        yield tfs


def _local_layers(client: Any, image_id: str) -> list[str] | None:
    if os.environ.get("DOCKER_HOST", "unix://").split("://", 1)[0] not in ("unix", ""):
        return None
    try:
        attrs = client.images.get(image_id).attrs
    except engine_errors():  # the export path reports engine errors
        return None
    return overlay_layers(attrs)


@contextlib.contextmanager
def _exported(client: Any, image_id: str, limits: FsLimits | None, config: ImageConfig | None) -> Iterator[TarFS]:
    from docker.errors import DockerException

    extra = _command_paths(config) if config is not None else ()
    name = f"smtpgate-static-{secrets.token_hex(6)}"
    labels = {LABEL: name, f"{LABEL}.purpose": "static-export", **owner_labels()}
    container = None
    fs: TarFS | None = None
    try:
        try:
            container = client.containers.create(
                image_id, name=name, labels=labels, entrypoint=[NEVER_RUN], command=[],
                network_disabled=True, detach=True,
            )
            fs = TarFS.from_stream(container.export(chunk_size=1 << 20), limits,
                                   name=f"image {image_id[:19]}", extra=extra)
        except DockerException as exc:
            raise StaticError(f"could not read the filesystem of image {image_id[:19]}: "
                              f"{getattr(exc, 'explanation', None) or exc}") from exc
        yield fs
    finally:
        if fs is not None:
            fs.close()
        if container is not None:
            _remove(container)


def _remove(container: Any) -> None:
    for _ in range(3):
        try:
            container.remove(force=True)
            return
        except engine_errors() as exc:
            if "No such" in str(exc) or "404" in str(exc):
                return
    raise StaticError(f"could not remove container {container.name} (run `smtpgate cleanup`)")


def _command_paths(config: ImageConfig) -> tuple[str, ...]:
    """Absolute paths named by the image command: keep them whatever they are."""
    return tuple(arg for arg in config.argv if arg.startswith("/") and len(arg) < 4096)
