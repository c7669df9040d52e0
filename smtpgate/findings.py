"""From listeners and probes to findings: one finding per SMTP service.

A service is the process that holds the sockets (Postfix's ``master`` holds 25
and 587: one finding, two ports). A listener is SMTP when it answered like an
SMTP/LMTP server; where it could not be probed (or stayed silent) but is held
by a known MTA process, it is still reported, identified by process, and the
evidence says so.
"""

from __future__ import annotations

from collections.abc import Iterable

from smtpgate import software
from smtpgate.model import Evidence, Finding, Listener, Process, Protocol, SmtpProbe, State

_SCOPE_WORDS = {"all": "all interfaces", "loopback": "loopback only", "specific": "one address"}


def listening_evidence(listener: Listener) -> Evidence:
    owner = listener.process
    held = f", held by pid {owner.pid} {owner.name} ({owner.command[:200]})" if owner else ", owner unknown"
    return Evidence("listening", f"TCP {listener.endpoint} in LISTEN ({_SCOPE_WORDS[listener.scope.value]}){held}")


def probe_evidence(probe: SmtpProbe) -> Evidence:
    how = "over implicit TLS" if probe.tls else "in clear text"
    first = probe.greeting.splitlines()[0] if probe.greeting else ""
    caps = [line[4:] for line in probe.ehlo[1:]]
    text = f"{probe.protocol.value.upper()} {how} on {probe.connected_to}:{probe.port}: {first!r}"
    if caps:
        text += f"; EHLO capabilities: {', '.join(caps[:12])}"
    return Evidence("greeting", text)


def _smtp_listeners(
    listeners: Iterable[Listener], probes: dict[tuple[str, int], SmtpProbe]
) -> list[tuple[Listener, SmtpProbe | None, str]]:
    """(listener, probe, how) for every listener judged to be SMTP/LMTP."""
    chosen: list[tuple[Listener, SmtpProbe | None, str]] = []
    for listener in listeners:
        probe = probes.get(listener.key)
        if probe is not None and probe.speaks_smtp:
            chosen.append((listener, probe, "protocol"))
        elif listener.process is not None and (probe is None or not _answered_otherwise(probe)):
            if software.identify_process(listener.process) is not None:
                chosen.append((listener, probe, "process"))
    return chosen


def _answered_otherwise(probe: SmtpProbe) -> bool:
    """It spoke, and what it spoke is not SMTP: the protocol has decided."""
    return probe.protocol is Protocol.OTHER


def _group_key(listener: Listener, software_id: str) -> tuple:
    owner: Process | None = listener.process
    return (software_id, owner.pid if owner else f"port {listener.port}")


def listening_findings(listeners: Iterable[Listener], probes: Iterable[SmtpProbe]) -> list[Finding]:
    """Findings with state LISTENING, one per service."""
    by_key = {(p.address, p.port): p for p in probes}
    groups: dict[tuple, list[tuple[Listener, SmtpProbe | None, str]]] = {}
    identities: dict[tuple, software.Software] = {}
    for listener, probe, how in _smtp_listeners(listeners, by_key):
        ident = software.identify(probe.greeting if probe else "", probe.ehlo if probe else (), listener.process)
        key = _group_key(listener, ident.id)
        groups.setdefault(key, []).append((listener, probe, how))
        identities.setdefault(key, ident)
    return [_finding(identities[key], members) for key, members in groups.items()]


def _finding(ident, members: list[tuple[Listener, SmtpProbe | None, str]]) -> Finding:
    evidence: list[Evidence] = []
    for listener, probe, how in members:
        evidence.append(listening_evidence(listener))
        if probe is not None and probe.speaks_smtp:
            evidence.append(probe_evidence(probe))
        elif how == "process":
            why = probe.detail if probe is not None else "no way to connect from here"
            evidence.append(
                Evidence("process", f"identified by its process, not by protocol ({why}) on {listener.endpoint}")
            )
    protocols = {p.protocol for _, p, _ in members if p is not None and p.speaks_smtp}
    return Finding(
        software=ident,
        state=State.LISTENING,
        listeners=tuple(li for li, _, _ in members),
        probes=tuple(p for _, p, _ in members if p is not None),
        evidence=tuple(evidence),
        protocol=Protocol.LMTP if protocols == {Protocol.LMTP} else Protocol.SMTP,
    )
