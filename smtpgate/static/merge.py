"""Static facts and runtime findings: one finding per service, with all the evidence.

- A listening finding gains the static evidence of its software (package,
  what enables it, the configuration lines that set where it listens) and a
  note where configuration and runtime disagree.
- Software that is enabled but was not seen listening becomes an ENABLED
  finding; installed-only software an INSTALLED finding. Configuration alone
  (a leftover /etc/postfix without the package) is no finding.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from smtpgate import software
from smtpgate.model import BindScope, Evidence, Finding, Software, State
from smtpgate.static.facts import SoftwareFacts, StaticFacts

_WORDS = {BindScope.LOOPBACK: "loopback only", BindScope.ALL: "all interfaces",
          BindScope.SPECIFIC: "a specific address"}


def merge(findings: Iterable[Finding], facts: StaticFacts | None) -> list[Finding]:
    """Runtime findings enriched with static facts, plus ENABLED/INSTALLED findings for the rest."""
    findings = list(findings)
    if facts is None:
        return findings
    out: list[Finding] = []
    covered: set[str] = set()
    for finding in findings:
        if finding.software.id == "unknown":
            finding = by_script(finding, facts)
        sf = facts.of(finding.software.id)
        if finding.software.id == "unknown" or not _has_facts(sf):
            out.append(finding)
            continue
        covered.add(sf.software)
        extra = sf.evidence() + disagreement(finding, sf)
        out.append(replace(finding, software=_versioned(finding.software, sf), configured_scope=sf.configured_scope,
                           evidence=finding.evidence + tuple(extra)))
    return out + [f for f in static_findings(facts) if f.software.id not in covered]


def by_script(finding: Finding, facts: StaticFacts) -> Finding:
    """An unknown server whose process runs the script that the image command runs for a known
    server library (`node server.js` requiring smtp-server, with a greeting and EHLO of its own):
    that library, identified by process and package."""
    for listener in finding.listeners:
        args = listener.process.cmdline[1:] if listener.process is not None else ()
        for item in facts.enabled:
            if item.runs and any(_same_script(arg, item.runs) for arg in args):
                mta = software.get(item.software)
                return replace(finding, software=Software(mta.id, mta.name, None, "process"))  # merge adds +package
    return finding


def _same_script(arg: str, script: str) -> bool:
    """`/app/server.js` is `/app/server.js`; a relative `server.js` (or `./server.js`) is any `.../server.js`."""
    if arg.startswith("/"):
        return arg == script
    return bool(arg) and arg.rsplit("/", 1)[-1] == script.rsplit("/", 1)[-1]


def static_findings(facts: StaticFacts) -> list[Finding]:
    """ENABLED and INSTALLED findings from static facts alone (what `--static` judges)."""
    out = []
    for sid in facts.software_ids():
        sf = facts.of(sid)
        if sf.enabled:
            state = State.ENABLED
        elif sf.installed:
            state = State.INSTALLED
        else:
            continue
        mta = software.get(sid)
        version = sf.packages[0].version if sf.packages else None
        how = "package" if sf.packages else "static"
        out.append(Finding(software=Software(mta.id, mta.name, version, how), state=state,
                           evidence=tuple(sf.evidence()), configured_scope=sf.configured_scope))
    return out


def _has_facts(sf: SoftwareFacts) -> bool:
    return bool(sf.packages or sf.binaries or sf.enabled or sf.listens or sf.states)


def _versioned(sw: Software, sf: SoftwareFacts) -> Software:
    if sw.version or not sf.packages:
        return sw
    return replace(sw, version=sf.packages[0].version, how=f"{sw.how}+package" if sw.how else "package")


def disagreement(finding: Finding, sf: SoftwareFacts) -> list[Evidence]:
    """Configuration and runtime tell different stories: say which, and what it means."""
    running, configured = finding.scope, sf.configured_scope
    if running is None or configured is None or running is configured:
        return []
    source = next((c for c in sf.listens if c.scope is configured), None)
    where = f" ({source.path}:{source.line})" if source and source.path and source.line else (
        f" ({source.path})" if source and source.path else "")
    if _rank(configured) < _rank(running):
        text = (f"disagreement: the configuration says {_WORDS[configured]}{where} but it listens on "
                f"{_WORDS[running]}: the running daemon has not picked up its configuration (a restart or "
                "rebuild of the compiled configuration was missed) or something overrides it on the command line")
    else:
        text = (f"disagreement: it listens on {_WORDS[running]} but the configuration says {_WORDS[configured]}"
                f"{where}: after a restart with these files it would listen more widely")
    return [Evidence("note", text, source.path if source else None, source.line if source else None)]


def _rank(scope: BindScope) -> int:
    return {BindScope.LOOPBACK: 0, BindScope.SPECIFIC: 1, BindScope.ALL: 2}[scope]
