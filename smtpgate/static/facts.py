"""What static analysis found: frozen facts, each with the file and line it came from."""

from __future__ import annotations

from dataclasses import dataclass

from smtpgate.model import BindScope, Evidence
from smtpgate.software.listen import ConfiguredListen  # defined beside the readers that make it

__all__ = ["Binary", "ConfiguredListen", "Enablement", "Package", "ServiceState", "SoftwareFacts", "StaticFacts"]


@dataclass(frozen=True)
class Package:
    """An installed package that belongs to an MTA."""

    software: str  # registry id
    name: str
    version: str
    db: str  # dpkg, apk, rpm
    path: str
    line: int | None = None

    def evidence(self) -> Evidence:
        return Evidence("package", f"package {self.name} {self.version} is installed ({self.db})", self.path, self.line)


@dataclass(frozen=True)
class Binary:
    """A known daemon executable present in the filesystem."""

    software: str
    path: str

    def evidence(self) -> Evidence:
        return Evidence("package", f"daemon executable {self.path} is present", self.path)


# How a service is set to start, and what must run for it to start.
MECHANISMS = ("command", "systemd", "sysv", "openrc", "supervisord", "s6", "runit", "inetd")


@dataclass(frozen=True)
class Enablement:
    """One reason a service would start."""

    software: str
    mechanism: str  # one of MECHANISMS
    text: str
    path: str | None = None
    line: int | None = None
    by_command: bool = False  # the image's own command starts it (directly or through what it launches)
    condition: str = ""  # it starts only when this holds, and nothing known decides it
    dormant: bool = False  # PID 1 is an init that does not read this mechanism: nothing would start it
    runs: str = ""  # the script an interpreter runs for it (`node server.js`): a process running it is this server

    def evidence(self) -> Evidence:
        """kind "command": starts wherever the image runs; "conditional": may start (a warning);
        "dormant": set up for an init that does not run; "unit": starts where an init boots."""
        if self.condition:
            return Evidence("conditional", f"{self.text}; it may start when {self.condition}", self.path, self.line)
        kind = "command" if self.by_command else "dormant" if self.dormant else "unit"
        return Evidence(kind, self.text, self.path, self.line)


@dataclass(frozen=True)
class ServiceState:
    """A service of an MTA that a live system's service manager knows but would not start at
    boot (disabled, static, indirect, masked): evidence on its finding, never a reason to fail."""

    software: str
    text: str
    path: str | None = None

    def evidence(self) -> Evidence:
        return Evidence("unit", self.text, self.path)


@dataclass(frozen=True)
class StaticFacts:
    """Everything read from one root filesystem (and image config)."""

    packages: tuple[Package, ...] = ()
    binaries: tuple[Binary, ...] = ()
    enabled: tuple[Enablement, ...] = ()
    listens: tuple[ConfiguredListen, ...] = ()
    states: tuple[ServiceState, ...] = ()  # services known but not started at boot (live systems)
    boots_init: bool = False
    init: str = ""  # what PID 1 would be, as far as the image command tells
    launched: tuple[str, ...] = ()  # mechanisms the image command launches (supervisord, systemd, ...)
    problems: tuple[str, ...] = ()  # unreadable or malformed inputs, limits hit
    complete: bool = True  # False: a limit cut the filesystem index or a listing short
    cuts: tuple[str, ...] = ()  # where a limit cut it (each also a problem)
    source: str = ""  # what was read ("image sha256:...", "/mnt/root", ...)

    def software_ids(self) -> list[str]:
        seen: dict[str, None] = {}
        for ids in ([e.software for e in self.enabled], [p.software for p in self.packages],
                    [b.software for b in self.binaries], [c.software for c in self.listens],
                    [s.software for s in self.states]):
            for sid in ids:
                seen.setdefault(sid, None)
        return list(seen)

    def of(self, software: str) -> SoftwareFacts:
        return SoftwareFacts(
            software,
            tuple(p for p in self.packages if p.software == software),
            tuple(b for b in self.binaries if b.software == software),
            tuple(e for e in self.enabled if e.software == software),
            tuple(c for c in self.listens if c.software == software),
            tuple(s for s in self.states if s.software == software),
        )


@dataclass(frozen=True)
class SoftwareFacts:
    """The facts about one MTA."""

    software: str
    packages: tuple[Package, ...]
    binaries: tuple[Binary, ...]
    enabled: tuple[Enablement, ...]
    listens: tuple[ConfiguredListen, ...]
    states: tuple[ServiceState, ...] = ()

    @property
    def installed(self) -> bool:
        return bool(self.packages or self.binaries)

    @property
    def by_command(self) -> bool:
        return any(e.by_command for e in self.enabled)

    @property
    def configured_scope(self) -> BindScope | None:
        """The widest configured scope (None when the config says nothing)."""
        scopes = {c.scope for c in self.listens}
        for scope in (BindScope.ALL, BindScope.SPECIFIC, BindScope.LOOPBACK):
            if scope in scopes:
                return scope
        return None

    def evidence(self) -> list[Evidence]:
        out = [e.evidence() for e in self.enabled]
        out += [s.evidence() for s in self.states]
        out += [c.evidence() for c in self.listens]
        out += [p.evidence() for p in self.packages]
        if not self.packages:
            out += [b.evidence() for b in self.binaries[:1]]
        return out
