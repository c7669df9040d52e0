"""What smtpgate asks of a container engine, independent of its SDK.

Every engine call of smtpgate goes through an `Engine`; nothing outside
``smtpgate.engines`` imports an engine SDK. Errors are `smtpgate.errors`
types chosen by the engine's status code, never by its message text:
`ObjectNotFound` (404), `Conflict` (409), `EngineGone` (no answer at all: the
socket vanished, the daemon stopped, the connection broke), `EngineError`
(anything else the engine refused).
"""

from __future__ import annotations

import abc
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from smtpgate.errors import ObjectNotFound, TargetError


@dataclass(frozen=True)
class Image:
    """An image as the engine describes it (``attrs``: `docker image inspect`)."""

    id: str
    attrs: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def digests(self) -> tuple[str, ...]:
        return tuple(self.attrs.get("RepoDigests") or ())


@dataclass(frozen=True)
class ContainerSpec:
    """A container to create. ``storage_size`` (bytes) bounds the writable layer
    where the engine's storage supports it; ``tmpfs`` maps a path to mount options."""

    image: str
    name: str
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    entrypoint: tuple[str, ...] | None = None
    command: tuple[str, ...] | None = None
    user: str | None = None
    network_mode: str | None = None  # "none", "container:<id>", or None with ``network``
    network: str | None = None
    network_disabled: bool = False
    pid_mode: str | None = None
    memory: str | int | None = None  # bytes, or docker's "1g"
    pids: int | None = None
    cpus: float | None = None
    cap_add: tuple[str, ...] = ()
    sysctls: dict[str, str] = field(default_factory=dict, hash=False)
    read_only: bool = False
    tmpfs: dict[str, str] = field(default_factory=dict, hash=False)
    storage_size: int | None = None
    # further create options in the Docker API's names, as smtpgate.workload.RunSpec.create_kwargs
    # writes them (entrypoint, command, environment, user, working_dir, volumes, healthcheck); they win
    sdk_options: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Listed:
    """A container or network from a list call (no inspect per object)."""

    id: str
    name: str
    labels: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    created: str | int | float = ""
    running: bool = False


class Engine(abc.ABC):
    """One engine connection. ``flavor`` is "docker" or "podman" (Podman answers
    the Docker API, with differences the implementation absorbs)."""

    flavor: str = "docker"
    version: str = ""

    # -- images ------------------------------------------------------------------
    @abc.abstractmethod
    def image(self, ref: str) -> Image:
        """The image; ObjectNotFound when the engine does not have it."""

    @abc.abstractmethod
    def pull(self, ref: str) -> Image: ...

    def get_or_pull(self, ref: str, pull: str = "missing", what: str = "image") -> Image:
        """The image by the --pull rule: missing (pull when absent), never, always."""
        try:
            image = self.image(ref)
        except ObjectNotFound:
            if pull == "never":
                raise TargetError(f"{what} {ref!r} not found on the engine (and --pull never)") from None
        except TargetError as exc:
            raise TargetError(f"could not look up {what} {ref!r}: {exc}") from exc
        else:
            if pull != "always":
                return image
        try:
            return self.pull(ref)
        except TargetError as exc:
            raise type(exc)(f"{what} {ref!r} is not on the engine and could not be pulled: {exc}") from exc

    def image_layers(self, image: Image) -> list[str] | None:
        """The image's layer directories, top first, when the engine is on this
        machine and uses overlayfs directories this process can read (Docker's
        ``overlay2``, Podman's ``overlay``); None otherwise (the containerd image
        store reports ``{"Name": "overlayfs", "Data": null}``)."""
        if not self.local:
            return None
        return overlay_dirs(image.attrs.get("GraphDriver") or {})

    # -- containers ----------------------------------------------------------------
    @property
    @abc.abstractmethod
    def local(self) -> bool:
        """Does the engine run on this machine (a unix socket), so its paths mean something here?"""

    @abc.abstractmethod
    def create(self, spec: ContainerSpec) -> str:
        """Create (never start) a container; its id."""

    @abc.abstractmethod
    def build(self, context: str, tag: str, *, dockerfile: str | None = None, target: str | None = None,
              buildargs: dict[str, str] | None = None, labels: dict[str, str] | None = None) -> str:
        """Build an image from a directory (a Compose service's ``build:``); its id."""

    @abc.abstractmethod
    def start(self, cid: str) -> None: ...

    @abc.abstractmethod
    def inspect(self, cid: str, size: bool = False) -> dict[str, Any]:
        """`docker inspect`; with ``size`` the engine also measures the writable layer (SizeRw)."""

    @abc.abstractmethod
    def kill(self, cid: str) -> None:
        """SIGKILL the container; one that is gone or not running is fine."""

    @abc.abstractmethod
    def remove(self, cid: str, *, kill: bool = True) -> None:
        """Force-remove the container, killed first (Podman's force-remove sends
        SIGTERM and waits 10 s for a PID 1 that ignores it; Docker's kills at
        once), with the anonymous volumes its image's VOLUME lines made. One
        that is already gone is fine."""

    @abc.abstractmethod
    def logs(self, cid: str, tail: int) -> bytes: ...

    @abc.abstractmethod
    def export(self, cid: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The container's merged filesystem as a tar stream."""

    @abc.abstractmethod
    def exec(self, cid: str, argv: list[str], user: str = "0", timeout: float = 120.0) -> tuple[int, bytes, bytes]:
        """Run argv in the container: (exit code, stdout, stderr); an ObjectNotFound
        when the container stops meanwhile, an EngineError after ``timeout``."""

    @abc.abstractmethod
    def containers(self, label: str, name: str | None = None) -> list[Listed]:
        """Containers (running or not) carrying ``label`` (KEY or KEY=VALUE), or named ``name``."""

    def storage_quota(self) -> bool:
        """Can the writable layer be size-limited (ContainerSpec.storage_size)?"""
        return False

    # -- networks ------------------------------------------------------------------
    @abc.abstractmethod
    def create_network(self, name: str, labels: dict[str, str]) -> str:
        """An internal bridge network; its id."""

    @abc.abstractmethod
    def remove_network(self, nid: str) -> None: ...

    @abc.abstractmethod
    def networks(self, label: str, name: str | None = None) -> list[Listed]: ...


def overlay_dirs(driver: dict[str, Any]) -> list[str] | None:
    """UpperDir then LowerDir's entries of an overlay GraphDriver, when every one
    is a directory this process can read; None otherwise."""
    if driver.get("Name") not in ("overlay2", "overlay"):
        return None
    data = driver.get("Data") or {}
    layers = [data["UpperDir"]] if data.get("UpperDir") else []
    layers += [p for p in str(data.get("LowerDir") or "").split(":") if p]
    return layers if readable_dirs(layers) else None


def readable_dirs(paths: list[str]) -> bool:
    return bool(paths) and all(os.path.isabs(p) and os.path.isdir(p) and os.access(p, os.R_OK | os.X_OK)
                               for p in paths)
