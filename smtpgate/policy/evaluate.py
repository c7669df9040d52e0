"""Judge findings against a Policy: the first matching, unexpired approval
passes; otherwise the policy's default for that kind of finding decides.

A LISTENING finding is judged per listener and takes the worst outcome of its
listeners (FAIL > WARN > PASS). ENABLED and INSTALLED findings are judged as a
whole. An expired approval never approves; the reason names it and its date.
"""

from __future__ import annotations

import dataclasses
import datetime
import fnmatch
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass

from smtpgate.model import (
    BindScope,
    Decision,
    Finding,
    Judged,
    Listener,
    Outcome,
    Protocol,
    State,
    TargetInfo,
)
from smtpgate.policy.rules import Approval, Bind, Defaults, Policy, normal_ip
from smtpgate.workload.k8s import POD_SPEC as WORKLOAD_KINDS

RANK = {Outcome.PASS: 0, Outcome.WARN: 1, Outcome.FAIL: 2}
SCOPE_WORDS = {
    BindScope.LOOPBACK: "loopback",
    BindScope.ALL: "all interfaces",
    BindScope.SPECIFIC: "specific address",
}
# What each defaults key covers, as the object of "allows", "only warns about", "fails".
DEFAULT_WORDS = {
    "loopback": "SMTP bound only to loopback",
    "listening": "SMTP listening beyond loopback",
    "enabled": "SMTP services that are enabled but not running",
    "installed": "MTAs that are installed but not enabled",
    "lmtp": "LMTP services",
}


@dataclass(frozen=True)
class Ruling:
    """Why some listeners (or a whole finding) got their outcome, before wording."""

    outcome: Outcome
    approval: Approval | None = None  # the approval that approved
    expired: tuple[Approval, ...] = ()  # approvals that would match but have expired
    default: str = ""  # the defaults key that decided when no approval did
    note: str = ""  # why that default gave this outcome, when it is not obvious


def evaluate(
    policy: Policy,
    finding: Finding,
    *,
    boots_init: bool,
    today: datetime.date | None = None,
    target: TargetInfo | None = None,
) -> Judged:
    """The policy's decision on `finding`, overall and per listener.

    `boots_init` says whether the target boots an init system (decides
    `enabled: auto`); `today` defaults to the current UTC date; `target` is what
    approvals scoped by `images:` and `workloads:` are matched against (an
    approval scoped that way approves nothing without it).
    """
    day = today if today is not None else datetime.datetime.now(datetime.timezone.utc).date()
    if any(a.images or a.workloads for a in policy.approvals):
        scoped = tuple(a for a in policy.approvals if target_matches(a, target))
        policy = dataclasses.replace(policy, approvals=scoped)
    if finding.state is not State.LISTENING or not finding.listeners:
        ruling = rule(policy, finding, finding.listeners, day, boots_init)
        return Judged(finding, decide(policy, finding, finding.listeners, ruling))
    rulings = [(li, rule(policy, finding, (li,), day, boots_init)) for li in finding.listeners]
    per_listener = tuple((li, decide(policy, finding, (li,), r)) for li, r in rulings)
    return Judged(finding, overall(policy, finding, rulings), per_listener)


def rule(
    policy: Policy,
    finding: Finding,
    listeners: Sequence[Listener],
    today: datetime.date,
    boots_init: bool,
) -> Ruling:
    """Approvals first (first unexpired match wins), else the default."""
    matching = [a for a in policy.approvals if matches(a, finding, listeners)]
    valid = [a for a in matching if not a.expired(today)]
    if valid:
        return Ruling(Outcome.PASS, approval=valid[0])
    expired = tuple(a for a in matching if a.expired(today))
    key, outcome, note = default_for(policy.defaults, finding, listeners, boots_init)
    return Ruling(outcome, expired=expired, default=key, note=note)


def default_for(
    defaults: Defaults, finding: Finding, listeners: Sequence[Listener], boots_init: bool
) -> tuple[str, Outcome, str]:
    """The defaults key that applies, its outcome, and a note when `auto` decided."""
    if finding.protocol is Protocol.LMTP and defaults.lmtp is not None:
        return "lmtp", defaults.lmtp, ""
    if finding.state is State.LISTENING:
        loopback = bool(listeners) and all(li.scope is BindScope.LOOPBACK for li in listeners)
        return (
            ("loopback", defaults.loopback, "")
            if loopback
            else ("listening", defaults.listening, "")
        )
    if finding.state is State.ENABLED:
        if defaults.enabled is not None:
            return "enabled", defaults.enabled, ""
        if finding.starts_only_maybe:
            return "enabled", Outcome.WARN, maybe_note(finding)
        if finding.configured_scope is BindScope.LOOPBACK and (boots_init or finding.starts_with_image):
            return "loopback", defaults.loopback, (
                "it would start, and its configuration binds it to loopback only, so it is judged as a "
                "loopback listener"
            )
        if not boots_init and finding.starts_with_image:
            return "enabled", Outcome.FAIL, (
                "the image's own command starts it (it was not seen listening), "
                "so it starts wherever the image runs"
            )
        return "enabled", *auto_enabled(boots_init)
    return "installed", defaults.installed, ""


def maybe_note(finding: Finding) -> str:
    """Why a finding that may start is only a warning (`Finding.starts_only_maybe`)."""
    if any(e.kind == "conditional" for e in finding.evidence):
        return ("the image's command starts it only under a condition that its configuration does not decide "
                "(the evidence names it), so this is a warning")
    return ("what enables it is read by no init system this image runs: PID 1 is another init or supervisor "
            "(the evidence names it), so this is a warning")


def auto_enabled(boots_init: bool) -> tuple[Outcome, str]:
    """`enabled: auto`: an enabled service starts only where an init system boots."""
    if boots_init:
        return Outcome.FAIL, "the target boots an init system, so it would start at boot"
    return Outcome.WARN, (
        "this is only a warning because the target boots no init system that would start it"
    )


# -- matching ----------------------------------------------------------------


def matches(approval: Approval, finding: Finding, listeners: Sequence[Listener]) -> bool:
    """Every field the approval gives matches; ports and bind need listeners to match."""
    if approval.software and finding.software.id.lower() not in approval.software:
        return False
    if approval.state and finding.state not in approval.state:
        return False
    if not listeners:
        return not approval.constrains_listeners
    return all(listener_matches(approval, li) for li in listeners)


def target_matches(approval: Approval, target: TargetInfo | None) -> bool:
    """`images:` globs match the image reference; `workloads:` globs match the workload
    name (`Deployment/web#app`, `compose.yaml#relay`; for a Compose file the name with
    the file's base name matches too, whatever directory it was named from)."""
    if approval.images and (target is None or not _any_glob(approval.images, (target.image_ref,))):
        return False
    if not approval.workloads:
        return True
    if target is None or not target.workload:
        return False
    names = [target.workload]
    path, hash_, rest = target.workload.rpartition("#")
    if hash_ and "/" in path and path.split("/", 1)[0] not in WORKLOAD_KINDS:
        names.append(f"{posixpath.basename(path)}#{rest}")
    return _any_glob(approval.workloads, names)


def _any_glob(globs: Sequence[str], names: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, glob) for glob in globs for name in names)


def listener_matches(approval: Approval, listener: Listener) -> bool:
    """The listener's port is listed (or none is) and its bind is covered (or none is)."""
    if approval.ports and listener.port not in approval.ports:
        return False
    return not approval.bind or any(bind_matches(b, listener) for b in approval.bind)


def bind_matches(bind: Bind, listener: Listener) -> bool:
    """A scope matches the listener's scope; an address matches it exactly (normalised)."""
    if isinstance(bind, BindScope):
        return listener.scope is bind
    return normal_ip(listener.address) == bind


# -- wording -----------------------------------------------------------------


def decide(
    policy: Policy, finding: Finding, listeners: Sequence[Listener], ruling: Ruling
) -> Decision:
    """A Ruling as a Decision, with the approval's source and owner when one approved."""
    reason = explain(policy, finding, listeners, ruling)
    if ruling.approval is None:
        return Decision(ruling.outcome, reason)
    return Decision(Outcome.PASS, reason, rule=ruling.approval.source, owner=ruling.approval.owner)


def overall(
    policy: Policy, finding: Finding, rulings: Sequence[tuple[Listener, Ruling]]
) -> Decision:
    """The worst listener outcome; the reason groups the worst listeners by why."""
    worst = max((r.outcome for _, r in rulings), key=RANK.__getitem__)
    groups: dict[Ruling, list[Listener]] = {}
    for listener, ruling in rulings:
        if ruling.outcome is worst:
            groups.setdefault(ruling, []).append(listener)
    reason = "; ".join(explain(policy, finding, lis, r) for r, lis in groups.items())
    first = next(iter(groups))
    if first.approval is None:
        return Decision(worst, reason)
    return Decision(worst, reason, rule=first.approval.source, owner=first.approval.owner)


def explain(policy: Policy, finding: Finding, listeners: Sequence[Listener], ruling: Ruling) -> str:
    """One sentence: expired approvals first, then the fact, then the judgement."""
    expired = [f"approval at {a.source} expired after {a.expires}" for a in ruling.expired]
    what = fact(finding, listeners)
    if ruling.approval is not None:
        return "; ".join([*expired, f"{what}; approved by {cite(ruling.approval)}"])
    return "; ".join([*expired, judgement(policy, what, len(listeners) > 1, ruling)])


def judgement(policy: Policy, what: str, plural: bool, ruling: Ruling) -> str:
    """`<fact> and no approval in <policy> covers it; <why the default says so>`."""
    head = what
    if ruling.outcome is not Outcome.PASS:
        comma, it = (",", "them") if plural else ("", "it")
        unexpired = "unexpired " if ruling.expired else ""
        head = f"{what}{comma} and no {unexpired}approval in {policy.name} covers {it}"
    tail = ruling.note or default_words(policy, ruling)
    return f"{head}; {tail}" if tail else head


def default_words(policy: Policy, ruling: Ruling) -> str:
    """What the default does, in words (nothing for the obvious: listening fails)."""
    if ruling.outcome is Outcome.FAIL and ruling.default == "listening":
        return ""
    words = DEFAULT_WORDS[ruling.default]
    if ruling.outcome is Outcome.PASS:
        local = " (CIS local-only mode)" if ruling.default == "loopback" else ""
        return f"{policy.name} allows {words}{local}"
    if ruling.outcome is Outcome.WARN:
        return f"{policy.name} only warns about {words}"
    return f"{policy.name} fails {words}"


def fact(finding: Finding, listeners: Sequence[Listener]) -> str:
    """`Postfix listens on 0.0.0.0:25 (all interfaces)`, `Exim is enabled but ...`."""
    software = finding.software
    unnamed = software.id in ("", "unknown")
    name = software.name or ("An unidentified SMTP service" if unnamed else software.id)
    subject = f"{name} (LMTP)" if finding.protocol is Protocol.LMTP else name
    if finding.state is State.ENABLED:
        return f"{subject} is enabled (configured to start) but not running"
    if finding.state is State.INSTALLED:
        return f"{subject} is installed but not enabled or running"
    if not listeners:
        return f"{subject} is listening"
    return f"{subject} listens on {where(listeners)}"


def where(listeners: Sequence[Listener]) -> str:
    """`0.0.0.0:25 (all interfaces) and [::1]:25 (loopback)`."""
    ends = [f"{li.endpoint} ({SCOPE_WORDS[li.scope]})" for li in listeners]
    return ends[0] if len(ends) == 1 else f"{', '.join(ends[:-1])} and {ends[-1]}"


def cite(approval: Approval) -> str:
    """`smtpgate.yml:9 (reason: ...; owner: ...; valid through 2027-03-31)`."""
    details = [f"reason: {approval.reason}"]
    if approval.owner:
        details.append(f"owner: {approval.owner}")
    if approval.expires:
        details.append(f"valid through {approval.expires}")
    return f"{approval.source} ({'; '.join(details)})"
