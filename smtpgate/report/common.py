"""What several formats say alike: decisions per listener, remediation per
software, the overall tally. Pure functions over the model; no escaping here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from smtpgate.model import (
    Decision,
    Finding,
    Judged,
    Listener,
    Outcome,
    Protocol,
    ScanResult,
    SmtpProbe,
    Software,
)

_RANK = {Outcome.PASS: 0, Outcome.WARN: 1, Outcome.FAIL: 2}
_SCOPE_ORDER = ("all", "specific", "loopback")
_SCOPE_WORDS = {"all": "all interfaces", "loopback": "loopback only",
                "specific": "a specific address"}
VERDICT_WORD = {"pass": "PASS", "fail": "FAIL", "error": "ERROR"}


@dataclass(frozen=True)
class Remedy:
    """How to fix one software's violation, and how to check the fix."""

    name: str
    setting: str  # the exact setting that decides where it listens; "" if unknown
    fix: tuple[str, ...]
    verify: tuple[str, ...]


def scope_of(listener: Listener) -> str:
    """The listener's bind scope as text; 'unknown' for an unparsable address."""
    try:
        return listener.scope.value
    except ValueError:
        return "unknown"


def finding_scope(finding: Finding) -> str | None:
    """The widest scope among a finding's listeners (None when not listening)."""
    scopes = {scope_of(li) for li in finding.listeners}
    return next((s for s in (*_SCOPE_ORDER, "unknown") if s in scopes), None)


def ports_text(finding: Finding) -> str:
    """'25,587', or '-' for a finding without listeners (enabled, installed)."""
    return ",".join(str(p) for p in finding.ports) or "-"


def speaks(probe: SmtpProbe | None) -> str:
    """What a port speaks, in a word: 'smtp', 'smtp/tls', 'other', 'not-probed'."""
    if probe is None:
        return Protocol.NOT_PROBED.value
    return f"{probe.protocol.value}/tls" if probe.tls else probe.protocol.value


def listener_decision(result: ScanResult, listener: Listener) -> Decision | None:
    """The worst decision about `listener` among the findings that include it
    (the per-listener decision where the policy gave one), or None."""
    found = [_decision_for(j.per_listener, j.decision, listener)
             for j in result.judged if listener.key in {li.key for li in j.finding.listeners}]
    return max(found, key=lambda d: _RANK[d.outcome], default=None)


def _decision_for(per_listener: Sequence[tuple[Listener, Decision]], overall: Decision,
                  listener: Listener) -> Decision:
    return next((d for li, d in per_listener if li.key == listener.key), overall)


def distinct_per_listener(judged: Judged) -> list[tuple[Listener, Decision]]:
    """The per-listener decisions that say something the overall one does not."""
    return [(li, d) for li, d in judged.per_listener
            if (d.outcome, d.reason) != (judged.decision.outcome, judged.decision.reason)]


def remedy(software: Software, ports: Sequence[int] = ()) -> Remedy:
    """The registry's exact fix and verification for this software (its `unknown`
    entry for software it cannot name); generic steps if it has no entry at all."""
    from smtpgate import software as registry  # lazy: only reports that fix need it

    try:
        mta = registry.get(software.id)
    except LookupError:
        mta = None
    if mta is None:
        return _generic_remedy(software.name, ports)
    return Remedy(mta.name, mta.listen_setting, tuple(mta.fix), tuple(mta.verify))


def _generic_remedy(name: str, ports: Sequence[int]) -> Remedy:
    """Steps that hold for any SMTP server, should the registry have no entry."""
    sports = " or ".join(f"sport = :{p}" for p in ports) or "sport = :25"
    return Remedy(
        name or "unknown SMTP server",
        "",
        ("Bind it to 127.0.0.1 / ::1 in its configuration or command line, or don't start it "
         "in the image (remove it from the entrypoint or command, disable its service)",
         "If it must accept mail from the network, approve it in the smtpgate policy with a "
         "reason, an owner and an expiry date"),
        (f"`ss -ltnp '( {sports} )'` lists only 127.0.0.1 / [::1] (or nothing)",
         "Re-run smtpgate on the rebuilt image"),
    )


def exposed_caveat(result: ScanResult) -> str | None:
    """EXPOSEd ports that did not listen, said next to the verdict: a pass with
    an unexplained closed EXPOSE 25 must read as suspicious."""
    ports = result.exposed_not_listening
    if not ports:
        return None
    watched = result.timings.get("settle")
    after = f" after {watched:.1f} s of watching" if isinstance(watched, (int, float)) else ""
    return (f"EXPOSEd port(s) {port_list(ports)} never listened{after}: what the image declares there "
            "was not seen running (it starts later, or the EXPOSE line is inherited from a base image); the "
            "verdict rests on what did run and on the static evidence")


def port_list(ports: Sequence[int], shown: int = 12) -> str:
    """'25, 587' -- or, for an EXPOSEd range, the first ones and how many more."""
    more = f" and {len(ports) - shown} more" if len(ports) > shown else ""
    return ", ".join(map(str, ports[:shown])) + more


def unfinished_caveat(result: ScanResult) -> str | None:
    """Start-up still visibly going on when the scan stopped watching."""
    if not result.still_starting:
        return None
    return (f"start-up was still going on when the scan stopped watching ({result.still_starting}): what the "
            "image starts later was not seen running; raise --settle-timeout to watch longer")


def caveats(result: ScanResult) -> list[str]:
    """What a runtime scan could not vouch for, for every report to show beside the verdict."""
    return [c for c in (exposed_caveat(result), unfinished_caveat(result)) if c]


def tally(results: Sequence[ScanResult]) -> dict[str, int]:
    """How many targets passed, failed, could not be decided."""
    verdicts = [r.verdict for r in results]
    return {v: verdicts.count(v) for v in ("pass", "fail", "error")}


def overall_line(results: Sequence[ScanResult], code: int) -> str:
    """'smtpgate: 3 target(s): 1 passed, 1 failed, 1 could not be decided — exit 2'."""
    n = tally(results)
    return (f"smtpgate: {len(results)} target(s): {n['pass']} passed, {n['fail']} failed, "
            f"{n['error']} could not be decided — exit {code}")


def finding_title(finding: Finding) -> str:
    """'Postfix 3.7.11 listening on 25,587 (all interfaces)', 'Exim installed'."""
    sw = finding.software
    name = f"{sw.name} {sw.version}" if sw.version else sw.name
    scope = _SCOPE_WORDS.get(finding_scope(finding) or "", "unknown scope")
    where = f" on {ports_text(finding)} ({scope})" if finding.listeners else ""
    return f"{name} {finding.state.value}{where}"


EVIDENCE_SHOWN = 50  # evidence entries listed per finding in text and JUnit


def decision_lines(decision: Decision) -> list[str]:
    """'FAIL: <reason>', the rule that decided ('default policy' when none), the owner."""
    lines = [f"{decision.outcome.value.upper()}: {decision.reason}"]
    lines += [f"rule: {decision.rule}"] if decision.rule else ["rule: default policy"]
    return lines + ([f"owner: {decision.owner}"] if decision.owner else [])


def evidence_lines(finding: Finding) -> list[str]:
    """'[kind] text (path:line)' per evidence entry, at most EVIDENCE_SHOWN."""
    lines = [_evidence_line(ev.kind, ev.text, ev.path, ev.line)
             for ev in finding.evidence[:EVIDENCE_SHOWN]]
    extra = len(finding.evidence) - EVIDENCE_SHOWN
    return lines + ([f"… {extra} more"] if extra > 0 else [])


def _evidence_line(kind: str, text: str, path: str | None, line: int | None) -> str:
    where = f"{path}:{line}" if path and line is not None else (path or "")
    return f"[{kind}] {text}" + (f" ({where})" if where else "")


def remedy_lines(fix: Remedy) -> list[str]:
    """The setting that decides where it listens, numbered fix steps, then the
    verification checks (prose with `commands` in backticks, as the registry writes them)."""
    lines = [f"How to fix ({fix.name}):"]
    lines += [f"  setting: {fix.setting}"] if fix.setting else []
    lines += [f"  {n}. {step}" for n, step in enumerate(fix.fix, 1)]
    return lines + ["Verify:"] + [f"  - {check}" for check in fix.verify]


def process_text(listener: Listener) -> str:
    """'master[812]' or '-' when no process was seen."""
    proc = listener.process
    return f"{proc.name}[{proc.pid}]" if proc else "-"
