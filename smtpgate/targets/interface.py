"""What every target gives the gate: start/stop, snapshots, a way to dial in."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

from smtpgate.collect.observe import Snapshot
from smtpgate.collect.parked import ThreadWait
from smtpgate.collect.smtp import Dialler
from smtpgate.model import Finding, Listener, SmtpProbe, TargetInfo


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

    def probe(self, listeners: tuple[Listener, ...], patience: float) -> list[SmtpProbe] | None:
        """Probe every listener from inside the target (an agent there), or None:
        then the gate probes through dialler()."""
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

    def complete_findings(self, findings: list[Finding]) -> list[Finding]:
        """The runtime findings plus what only this target can tell beyond its
        listeners (a VM's or host's enabled units and installed packages)."""
        return findings

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
