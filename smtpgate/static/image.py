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
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from smtpgate.engines import ContainerSpec, as_engine
from smtpgate.errors import TargetError
from smtpgate.labels import owner_labels
from smtpgate.static.fs import FsLimits, RootFS, StaticError
from smtpgate.static.overlay import OverlayFS
from smtpgate.static.tarfs import TarFS

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
def image_filesystem(engine: Any, image_id: str, limits: FsLimits | None = None,
                     config: ImageConfig | None = None, method: str = "auto",
                     layers: list[str] | None = None) -> Iterator[RootFS]:
    """The merged root filesystem of an image, never run.

    ``engine``: a smtpgate.engines.Engine (or a docker SDK client). method "auto":
    the image's layer directories in place when the engine is local and names them
    (Docker's overlay2, Podman's overlay) and they are readable (root), else
    ``layers`` (a running container's, read from its mount table: the containerd
    image store names none), else "export": a container is created (never started,
    no network, labelled smtpgate), its filesystem streamed into a TarFS, and the
    container removed on every path. The filesystem's ``name`` says which.
    """
    eng = as_engine(engine)
    if method == "auto":
        found = _local_layers(eng, image_id)
        how = f"{found[1]} layers" if found else "the running container's layers"
        chosen = found[0] if found else layers
        if chosen:
            fs = OverlayFS(chosen, limits, name=f"image {image_id[:19]} ({how}, read in place)")
            try:
                yield fs
            finally:
                fs.close()
            return
    with _exported(eng, image_id, limits, config) as tfs:
        yield tfs


def _local_layers(engine: Any, image_id: str) -> tuple[list[str], str] | None:
    try:
        image = engine.image(image_id)
    except TargetError:  # the export path reports engine errors
        return None
    layers = engine.image_layers(image)
    return (layers, str((image.attrs.get("GraphDriver") or {}).get("Name"))) if layers else None


@contextlib.contextmanager
def _exported(engine: Any, image_id: str, limits: FsLimits | None, config: ImageConfig | None) -> Iterator[TarFS]:
    extra = _command_paths(config) if config is not None else ()
    name = f"smtpgate-static-{secrets.token_hex(6)}"
    labels = {LABEL: name, f"{LABEL}.purpose": "static-export", **owner_labels()}
    cid = None
    fs: TarFS | None = None
    try:
        try:
            cid = engine.create(ContainerSpec(image=image_id, name=name, labels=labels, entrypoint=(NEVER_RUN,),
                                              command=(), network_disabled=True))
            fs = TarFS.from_stream(engine.export(cid), limits, name=f"image {image_id[:19]} (exported)", extra=extra)
        except TargetError as exc:
            raise StaticError(f"could not read the filesystem of image {image_id[:19]}: {exc}") from exc
        yield fs
    finally:
        if fs is not None:
            fs.close()
        if cid is not None:
            _remove(engine, cid, name)


def _remove(engine: Any, cid: str, name: str) -> None:
    """Never started: nothing to kill first."""
    for _ in range(3):
        try:
            engine.remove(cid, kill=False)
            return
        except TargetError:
            continue
    raise StaticError(f"could not remove container {name} (run `smtpgate cleanup`)")


def _command_paths(config: ImageConfig) -> tuple[str, ...]:
    """Absolute paths named by the image command: keep them whatever they are."""
    return tuple(arg for arg in config.argv if arg.startswith("/") and len(arg) < 4096)
