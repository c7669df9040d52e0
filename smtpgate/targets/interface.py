"""What every target gives the gate: start/stop, snapshots, a way to dial in."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from smtpgate.collect.observe import Snapshot
from smtpgate.collect.parked import ThreadWait
from smtpgate.collect.smtp import Dialler
from smtpgate.model import Listener, SmtpProbe, TargetInfo

if TYPE_CHECKING:
    from smtpgate.static.facts import StaticFacts


@dataclass(frozen=True)
class RunState:
    """Is the target still up, and what does its health check say."""

    running: bool
    exit_code: int | None = None
    health: str | None = None  # starting, healthy, unhealthy, or None without a HEALTHCHECK
    detail: str = ""  # e.g. the tail of the logs of a container that exited


class Target(abc.ABC):
    """A running thing to inspect. Use as a context manager: __exit__ always
    releases everything that start() created, on every path."""

    info: TargetInfo
    method: str = ""  # how observations are collected, for the report
    notes: list[str]
    exposed_tcp_ports: tuple[int, ...] = ()  # ports the image declares (EXPOSE): settling waits for one of them

    @classmethod
    def from_ref(cls, ref: str, options: Any) -> Target:
        """The target a reference names, with the command line's target options
        (smtpgate.targets.TargetOptions); the registry (smtpgate.targets.TARGETS) calls it."""
        raise NotImplementedError(f"{cls.__name__} cannot be made from a reference")

    @abc.abstractmethod
    def start(self) -> None: ...

    @abc.abstractmethod
    def stop(self) -> None: ...

    @abc.abstractmethod
    def state(self) -> RunState: ...

    @abc.abstractmethod
    def snapshot(self) -> Snapshot: ...

    @abc.abstractmethod
    def dialler(self) -> Dialler | None:
        """A dialler that reaches every listener (loopback included), or None."""

    def probe(self, listeners: tuple[Listener, ...], patience: float,
              deadline: float | None = None) -> list[SmtpProbe] | None:
        """Probe every listener from inside the target (an agent there), or None:
        then the gate probes through dialler(). Ports not probed by ``deadline``
        (time.monotonic()) are NOT_PROBED with smtp.NOT_PROBED_IN_TIME."""
        return None

    def threads(self, snap: Snapshot) -> tuple[ThreadWait, ...] | None:
        """What each thread of the snapshot's processes waits for
        (smtpgate.collect.parked), or None when this target cannot tell;
        settling then relies on its plain window."""
        return None

    def timerfds(self, snap: Snapshot, horizon: float) -> dict[tuple[int, int], int] | None:
        """Timerfds of the snapshot's processes that fire within ``horizon``
        seconds, with their expirations so far (smtpgate.collect.parked); None
        when this target cannot tell."""
        return None

    def system_facts(self) -> StaticFacts | None:
        """What a live system tells of itself beyond its sockets, as static facts
        (a booted VM's or host's unit states and MTA packages, smtpgate.static.live);
        None where the filesystem is read instead (image_engine) or nothing is known.
        The gate merges them into the findings like any static facts."""
        return None

    def image_engine(self) -> Any | None:
        """The engine client holding this target's image, when its filesystem can
        be read beside the run (smtpgate.staticgate.StaticEvidence); else None."""
        return None

    def __enter__(self) -> Target:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
