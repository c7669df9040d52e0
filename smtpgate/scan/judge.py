"""The one place a verdict is reached, for every mode.

`judge(target_info, evidence, policy)` merges the filesystem's static facts
into the runtime findings (`smtpgate.static.merge`), evaluates each finding
against the policy, and turns evidence that is missing into errors: a static
read cut short by a limit (`StaticFacts.complete` False), a listener that
could not be spoken to and is no finding. Errors make the scan "could not
decide" (exit 2) unless a violation already decides it (`ScanResult.verdict`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from smtpgate.model import Finding, Listener, Protocol, ScanResult, SmtpProbe, TargetInfo
from smtpgate.static import StaticFacts, merge

MAX_PROBLEM_NOTES = 50


@dataclass(frozen=True)
class Evidence:
    """What the sources of one scan gathered about one target."""

    findings: tuple[Finding, ...] = ()  # from the running target: listening, and a VM's/host's units and packages
    static: StaticFacts | None = None  # from its filesystem (image layers or export, an offline disk)
    listeners: tuple[Listener, ...] = ()
    probes: tuple[SmtpProbe, ...] = ()
    errors: tuple[str, ...] = ()  # what a source could not do: never a pass
    notes: tuple[str, ...] = ()
    method: str = ""
    timings: dict[str, float] = field(default_factory=dict, hash=False, compare=False)
    exposed: tuple[int, ...] = ()  # ports the image EXPOSEs (runtime scans of images)
    still_starting: str = ""  # why start-up still looked unfinished when settling stopped watching


def judge(target_info: TargetInfo, evidence: Evidence, policy: Any, *, today: dt.date | None = None) -> ScanResult:
    """The ScanResult of one target; `target_info.boots_init` says how enabled services are judged."""
    from smtpgate.policy import evaluate

    findings = merge(evidence.findings, evidence.static)
    errors = [*evidence.errors, *static_errors(evidence.static), *unjudged_errors(evidence.probes, findings)]
    notes = [*evidence.notes, *static_notes(evidence.static)]
    judged = tuple(evaluate(policy, f, boots_init=target_info.boots_init, today=today, target=target_info)
                   for f in findings)
    return ScanResult(
        target=target_info,
        listeners=evidence.listeners,
        probes=evidence.probes,
        judged=judged,
        errors=tuple(dict.fromkeys(errors)),
        notes=tuple(notes),
        method=evidence.method,
        timings=dict(evidence.timings),
        exposed=evidence.exposed,
        still_starting=evidence.still_starting,
    )


def static_errors(facts: StaticFacts | None) -> list[str]:
    """A filesystem read cut short is evidence missing: what is enabled or installed may not be seen."""
    if facts is None or facts.complete:
        return []
    where = f" ({'; '.join(facts.cuts[:5])})" if facts.cuts else ""
    return [f"the filesystem of {facts.source} could not be read completely{where}, so what is enabled or "
            "installed may be missing"]


def static_notes(facts: StaticFacts | None) -> list[str]:
    if facts is None:
        return []
    shown = [f"static: {p}" for p in facts.problems[:MAX_PROBLEM_NOTES]]
    more = len(facts.problems) - MAX_PROBLEM_NOTES
    return shown + ([f"static: {more} more problem(s) not shown"] if more > 0 else [])


def unjudged_errors(probes: Iterable[SmtpProbe], findings: Iterable[Finding]) -> list[str]:
    """A listener we could not speak to and could not identify is undecided."""
    in_findings = {li.key for f in findings for li in f.listeners}
    errors = []
    for probe in probes:
        undecided = probe.protocol in (Protocol.NOT_PROBED, Protocol.UNREACHABLE, Protocol.SILENT)
        if undecided and (probe.address, probe.port) not in in_findings:
            hint = " (raise --greeting-timeout if it greets late)" if probe.protocol is Protocol.SILENT else ""
            errors.append(f"could not tell whether [{probe.address}]:{probe.port} speaks SMTP: {probe.detail}{hint}")
    return errors
