"""The data that flows through a scan: target -> observations -> findings -> verdict.

Everything here is a frozen dataclass or an enum; behaviour lives elsewhere.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, field


class BindScope(str, enum.Enum):
    """Where a listener accepts connections from."""

    LOOPBACK = "loopback"  # 127.0.0.0/8, ::1, ::ffff:127.x
    ALL = "all"  # 0.0.0.0, :: (dual stack)
    SPECIFIC = "specific"  # one non-loopback address


class State(str, enum.Enum):
    """How strongly a service is present, strongest first."""

    LISTENING = "listening"
    ENABLED = "enabled"
    INSTALLED = "installed"


class Protocol(str, enum.Enum):
    """What a listening port turned out to speak."""

    SMTP = "smtp"
    LMTP = "lmtp"
    OTHER = "other"  # answered, but not SMTP (HTTP, FTP, SSH, ...)
    SILENT = "silent"  # accepted, said nothing we could classify in time
    UNREACHABLE = "unreachable"  # could not connect
    NOT_PROBED = "not-probed"  # no way to reach it from where we are


class Outcome(str, enum.Enum):
    """What the policy says about one finding."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


def bind_scope(address: str) -> BindScope:
    """Classify a listening address (already in text form, no brackets)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified:
        return BindScope.ALL
    if ip.is_loopback:
        return BindScope.LOOPBACK
    return BindScope.SPECIFIC


@dataclass(frozen=True)
class Process:
    """A process seen in the target (pid as the collector saw it)."""

    pid: int
    name: str  # comm, or argv[0]'s basename
    cmdline: tuple[str, ...] = ()
    exe: str | None = None
    uid: int | None = None

    @property
    def command(self) -> str:
        return " ".join(self.cmdline) if self.cmdline else f"[{self.name}]"


@dataclass(frozen=True)
class Listener:
    """A TCP socket in LISTEN state."""

    address: str  # "0.0.0.0", "::", "127.0.0.1", "::ffff:127.0.0.1", ...
    port: int
    family: int  # 4 or 6
    inode: int = 0
    process: Process | None = None

    @property
    def scope(self) -> BindScope:
        return bind_scope(self.address)

    @property
    def endpoint(self) -> str:
        return f"[{self.address}]:{self.port}" if ":" in self.address else f"{self.address}:{self.port}"

    @property
    def key(self) -> tuple[str, int]:
        return (self.address, self.port)


@dataclass(frozen=True)
class SmtpProbe:
    """The result of speaking to one listening port."""

    address: str  # the listener's address
    port: int
    protocol: Protocol
    tls: bool = False  # the answer came after an implicit TLS handshake
    greeting: str = ""  # sanitised, bounded
    ehlo: tuple[str, ...] = ()  # sanitised EHLO/LHLO/HELO reply lines
    detail: str = ""  # what happened, for people
    connected_to: str = ""  # the address actually dialled
    seconds: float = 0.0

    @property
    def speaks_smtp(self) -> bool:
        return self.protocol in (Protocol.SMTP, Protocol.LMTP)


@dataclass(frozen=True)
class Software:
    """An identified SMTP implementation."""

    id: str  # registry id, "unknown" when nothing matched
    name: str
    version: str | None = None
    how: str = ""  # "greeting", "process", "package", ...


@dataclass(frozen=True)
class Evidence:
    """One observation that supports a finding."""

    kind: str  # listening, greeting, process, config, package, unit, command
    text: str
    path: str | None = None  # a file in the target, for config evidence
    line: int | None = None


@dataclass(frozen=True)
class Finding:
    """One SMTP service in one target."""

    software: Software
    state: State
    listeners: tuple[Listener, ...] = ()
    probes: tuple[SmtpProbe, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    protocol: Protocol = Protocol.SMTP
    # Where its configuration says it listens (static analysis; None when unknown).
    configured_scope: BindScope | None = None

    @property
    def starts_with_image(self) -> bool:
        """The image's own command starts it (evidence kind "command"): it starts wherever the image runs."""
        return any(e.kind == "command" for e in self.evidence)

    @property
    def starts_only_maybe(self) -> bool:
        """Enabled only under a condition nothing decides, or for an init that does not run
        (evidence "conditional"/"dormant", no "command" or "unit"): it may start, it is not known to."""
        kinds = {e.kind for e in self.evidence}
        return bool(kinds & {"conditional", "dormant"}) and not kinds & {"command", "unit"}

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(sorted({li.port for li in self.listeners}))

    @property
    def scope(self) -> BindScope | None:
        """The widest bind scope among the listeners (None when not listening)."""
        scopes = {li.scope for li in self.listeners}
        for scope in (BindScope.ALL, BindScope.SPECIFIC, BindScope.LOOPBACK):
            if scope in scopes:
                return scope
        return None

    @property
    def key(self) -> str:
        """Stable identity across runs: software, state and sorted endpoints."""
        ends = ",".join(sorted(li.endpoint for li in self.listeners))
        return f"{self.software.id}/{self.state.value}/{ends}"


@dataclass(frozen=True)
class Decision:
    """The policy's word on one listener or one finding."""

    outcome: Outcome
    reason: str
    rule: str | None = None  # "policy.yml:12" when a rule decided
    owner: str | None = None


@dataclass(frozen=True)
class Judged:
    """A finding with the policy's decision, overall and per listener."""

    finding: Finding
    decision: Decision
    per_listener: tuple[tuple[Listener, Decision], ...] = ()


@dataclass(frozen=True)
class TargetInfo:
    """What was scanned."""

    kind: str  # "image", "container", "vm", "host"
    ref: str  # as the user named it
    image_id: str | None = None
    digests: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    user: str | None = None
    pid1: Process | None = None
    boots_init: bool = False
    # A workload container (Compose service, Kubernetes container): then `ref` is its
    # name ("compose.yaml#web", "Deployment/web#app") and `image` the image it runs.
    image: str | None = None
    workload: str | None = None
    source: str | None = None  # the manifest file
    line: int | None = None  # the line of the container's `image:` in it
    env: tuple[str, ...] = ()  # what the deployment sets, "KEY=***" unless --show-env

    @property
    def image_ref(self) -> str:
        """The image reference (the ref itself for a plain image scan)."""
        return self.image or self.ref


@dataclass(frozen=True)
class ScanResult:
    """Everything one scan of one target found and decided."""

    target: TargetInfo
    listeners: tuple[Listener, ...] = ()
    probes: tuple[SmtpProbe, ...] = ()
    judged: tuple[Judged, ...] = ()
    errors: tuple[str, ...] = ()  # could not inspect: never a pass
    notes: tuple[str, ...] = ()  # how it was inspected, what was odd
    method: str = ""  # "host-netns", "helper", "exec", ...
    timings: dict[str, float] = field(default_factory=dict, hash=False, compare=False)
    exposed: tuple[int, ...] = ()  # TCP ports the image EXPOSEs (runtime scans of images)
    still_starting: str = ""  # why start-up still looked unfinished when the scan stopped watching

    @property
    def exposed_not_listening(self) -> tuple[int, ...]:
        """EXPOSEd ports that did not listen when the scan looked: a service the
        image declares was not seen (it starts later, or the line is inherited)."""
        listening = {li.port for li in self.listeners}
        return tuple(sorted({p for p in self.exposed if p not in listening}))

    @property
    def violations(self) -> tuple[Judged, ...]:
        return tuple(j for j in self.judged if j.decision.outcome is Outcome.FAIL)

    @property
    def warnings(self) -> tuple[Judged, ...]:
        return tuple(j for j in self.judged if j.decision.outcome is Outcome.WARN)

    @property
    def verdict(self) -> str:
        """'fail' on any violation (the evidence decides even when part of the
        inspection failed), else 'error' when anything could not be inspected,
        else 'pass'."""
        if self.violations:
            return "fail"
        return "error" if self.errors else "pass"

    def probe_for(self, listener: Listener) -> SmtpProbe | None:
        for probe in self.probes:
            if (probe.address, probe.port) == listener.key:
                return probe
        return None


EXIT_PASS, EXIT_FAIL, EXIT_ERROR = 0, 1, 2


def exit_code(results: list[ScanResult] | tuple[ScanResult, ...]) -> int:
    """2 if any target could not be decided, else 1 if any violation, else 0."""
    if any(r.verdict == "error" for r in results):
        return EXIT_ERROR
    if any(r.verdict == "fail" for r in results):
        return EXIT_FAIL
    return EXIT_PASS
