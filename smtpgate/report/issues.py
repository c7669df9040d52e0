"""What the CI-facing formats (SARIF, GitLab code quality, GitHub annotations and
summary) have in common: one flat list of issues, each with a rule id, a level,
a stable fingerprint and a place in the repository to point at.

An issue is a finding the policy did not pass (FAIL or WARN) or something that
could not be inspected; approved findings are not issues. Rule ids follow
bandit's style (a fixed id reused by every format):

| id | slug | what |
| --- | --- | --- |
| SMTPGATE001 | unapproved-smtp-listener | an SMTP service listens and the policy does not approve it |
| SMTPGATE002 | unapproved-smtp-enabled | an SMTP service is configured to start (not listening now) |
| SMTPGATE003 | smtp-installed | an MTA is installed (neither running nor enabled) |
| SMTPGATE004 | inspection-error | the target could not be inspected: never a pass |
| SMTPGATE005 | exposed-port-not-listening | (note) an EXPOSEd port never listened while the scan watched |
| SMTPGATE006 | start-up-unfinished | (note) start-up was still going on when the scan stopped watching |

Where an issue points: a repository file named by the finding's evidence (a
relative path with a line: the Dockerfile line that installs it, say); else the
line of the container's `image:` in the Compose file or manifest it came from; else the
anchor (`--sarif-anchor`, e.g. the Dockerfile that built the image), line 1;
else an evidence path inside the image (/etc/postfix/main.cf:42), which CI
systems show as text but cannot open; else nothing. Only paths inside the
checkout (the working directory) are repository places; a manifest outside it
is named but is no repository place. A path inside the image is always quoted
in the message, so it is never lost. Formats that must name a repository file
(SARIF for GitHub, GitLab code quality) fall back to the anchor, then
`Dockerfile` (`ci_place`).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from smtpgate.model import Finding, Judged, Outcome, ScanResult, State, TargetInfo
from smtpgate.report import common
from smtpgate.report.interface import ReportMeta


@dataclass(frozen=True)
class Rule:
    """One check, with the same id in every format."""

    id: str
    slug: str
    short: str
    full: str
    level: str = "error"  # the default level: error, warning or note


RULES: tuple[Rule, ...] = (
    Rule("SMTPGATE001", "unapproved-smtp-listener", "Unapproved SMTP listener",
         "A process in the image listens on a TCP port and answers like an SMTP (or LMTP) server, and the "
         "policy does not approve it. Only SMTP bound to loopback is approved by default (CIS: mail transfer "
         "agent configured for local-only mode); an exposed MTA is reconnaissance bait and a relay risk."),
    Rule("SMTPGATE002", "unapproved-smtp-enabled", "SMTP service enabled at boot",
         "An SMTP service is configured to start (entrypoint, init system, supervisor) although it did not "
         "listen during the scan; where the image boots an init system it would listen in production."),
    Rule("SMTPGATE003", "smtp-installed", "MTA installed",
         "A mail transfer agent is installed in the image but neither runs nor is enabled; it widens the "
         "attack surface and can be started by anything that runs in the image.", "warning"),
    Rule("SMTPGATE004", "inspection-error", "Image could not be inspected",
         "smtpgate could not decide whether the image runs an unapproved SMTP service (it would not start, "
         "a port could not be probed, the engine failed). Could not inspect is never a pass."),
    Rule("SMTPGATE005", "exposed-port-not-listening", "EXPOSEd port never listened",
         "The image EXPOSEs a port that did not listen while smtpgate watched it start. Whatever the image "
         "declares there was not seen running: it may start later than the scan watched (raise "
         "--settle-timeout), or the EXPOSE line is inherited from a base image. The verdict rests on what did "
         "run and on the image's static evidence.", "note"),
    Rule("SMTPGATE006", "start-up-unfinished", "Start-up still going on",
         "Processes were still coming and going, sleeping briefly or using CPU when smtpgate stopped watching "
         "(--settle-timeout): whatever the image starts after that was not seen running. The verdict rests on "
         "what did run and on the image's static evidence.", "note"),
)
RULE_BY_STATE = {State.LISTENING: RULES[0], State.ENABLED: RULES[1], State.INSTALLED: RULES[2]}
ERROR_RULE = RULES[3]
EXPOSED_RULE, UNFINISHED_RULE = RULES[4], RULES[5]


@dataclass(frozen=True)
class Place:
    """Where an issue points: a file and a line (1-based)."""

    path: str
    line: int = 1
    in_repo: bool = True  # False: a path inside the image, or a manifest outside the checkout


@dataclass(frozen=True)
class Issue:
    """One problem to show in a CI system."""

    rule: Rule
    level: str  # "error", "warning" or "note"
    title: str  # one line
    message: str  # a few lines: what, why, where
    fingerprint: str  # stable across runs: sha256 hex
    target: ScanResult
    judged: Judged | None = None
    place: Place | None = None

    @property
    def fix(self) -> common.Remedy | None:
        if self.judged is None:
            return None
        f = self.judged.finding
        return common.remedy(f.software, f.ports)


def image_name(ref: str) -> str:
    """The reference without tag or digest ('reg:5000/app:1.4' -> 'reg:5000/app'), so
    that a rebuilt image with a new tag keeps its fingerprints."""
    name = ref.split("@", 1)[0]
    last = name.rsplit("/", 1)
    if ":" in last[-1]:
        last[-1] = last[-1].split(":", 1)[0]
    return "/".join(last)


def fingerprint(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def _error_key(message: str) -> str:
    """An error message without what changes from run to run (numbers, ids)."""
    return re.sub(r"[0-9a-f]{12,}|\d+(\.\d+)?", "#", message.split("\n", 1)[0])[:200]


def place_of(finding: Finding | None, anchor: str | None, target: TargetInfo | None = None) -> Place | None:
    """See the module docstring: repository evidence, the workload's manifest, anchor,
    image evidence, nothing."""
    located = [(ev.path, max(ev.line or 1, 1)) for ev in (finding.evidence if finding else ()) if ev.path]
    for path, line in located:
        rel = repo_path(path) if not path.startswith("/") else None
        if rel is not None:
            return Place(rel, line)
    if target is not None and target.source:  # the line of the container's `image:` in its manifest
        manifest = repo_path(target.source)
        if manifest is None:  # outside the checkout: named, but no CI format can point at it
            return Place(target.source, max(target.line or 1, 1), in_repo=False)
        return Place(manifest, max(target.line or 1, 1))
    anchor_path = repo_path(anchor) if anchor else None
    if anchor_path is not None:
        return Place(anchor_path, 1)
    for path, line in located:
        return Place(path, line, in_repo=False)
    return None


DEFAULT_PATH = "Dockerfile"  # where a format that must name a repository file points when nothing else is known


def ci_place(place: Place | None, anchor: str | None) -> Place:
    """The repository file a format that must name one points at: the issue's own place when it is
    in the repository, else the anchor, else DEFAULT_PATH line 1. GitHub code scanning refuses a
    SARIF result without a location ("locationFromSarifResult: expected at least one location"),
    and GitLab code quality needs `location.path`."""
    if place is not None and place.in_repo:
        return place
    return Place((repo_path(anchor) if anchor else None) or DEFAULT_PATH, 1)


def repo_path(path: str) -> str | None:
    """A path as the repository names it: relative to the checkout (the working directory),
    normalised, without "./"; None for one outside it (`/tmp/k8s.yaml`, `../x`, `/`), which CI
    systems cannot open and GitHub refuses as a location."""
    if os.path.isabs(path):
        try:
            path = os.path.relpath(path)
        except (OSError, ValueError):  # the working directory is gone (or another drive)
            return None
    rel = os.path.normpath(path)
    if rel in (".", "") or rel == ".." or rel.startswith(("../", "/")):
        return None
    return rel


def image_paths(finding: Finding) -> list[str]:
    """'path:line' of every evidence entry that names a file inside the image."""
    return [f"{ev.path}:{ev.line}" if ev.line is not None else ev.path
            for ev in finding.evidence if ev.path and ev.path.startswith("/")]


def issues(results: Sequence[ScanResult], meta: ReportMeta) -> list[Issue]:
    """Every issue of the run, most severe first within each target."""
    found: list[Issue] = []
    for result in results:
        found += [_finding_issue(result, j, meta.anchor) for j in result.violations]
        found += [_error_issue(result, err, meta.anchor) for err in result.errors]
        found += [_finding_issue(result, j, meta.anchor) for j in result.warnings]
        found += _caveat_issues(result, meta.anchor)
    found += [_run_error(err, meta.anchor) for err in meta.errors]
    return found


def _finding_issue(result: ScanResult, judged: Judged, anchor: str | None) -> Issue:
    f, d = judged.finding, judged.decision
    rule = RULE_BY_STATE[f.state]
    title = f"{common.finding_title(f)} in {result.target.ref}"
    lines = [f"{d.outcome.value.upper()}: {title}: {d.reason}",
             f"rule: {d.rule or 'default policy'}" + (f", owner: {d.owner}" if d.owner else "")]
    lines += [f"configured in the image at {p}" for p in image_paths(f)]
    fix = common.remedy(f.software, f.ports)
    lines += [f"fix: {fix.fix[0]}"] if fix.fix else []
    level = "error" if d.outcome is Outcome.FAIL else "warning"
    return Issue(rule, level, title, "\n".join(lines),
                 fingerprint(rule.id, image_name(result.target.ref), f.key), result, judged,
                 place_of(f, anchor, result.target))


def _caveat_issues(result: ScanResult, anchor: str | None) -> list[Issue]:
    """Notes: what the runtime scan could not vouch for (common.caveats)."""
    found = []
    pairs = ((EXPOSED_RULE, common.exposed_caveat(result), ",".join(map(str, result.exposed_not_listening))),
             (UNFINISHED_RULE, common.unfinished_caveat(result), ""))
    for rule, text, key in pairs:
        if text:
            title = f"{rule.short} in {result.target.ref}"
            found.append(Issue(rule, "note", title, f"NOTE: {title}: {text}",
                               fingerprint(rule.id, image_name(result.target.ref), key), result,
                               place=place_of(None, anchor)))
    return found


def _error_issue(result: ScanResult, error: str, anchor: str | None) -> Issue:
    title = f"could not inspect {result.target.ref}"
    return Issue(ERROR_RULE, "error", title, f"{title}: {error}",
                 fingerprint(ERROR_RULE.id, image_name(result.target.ref), _error_key(error)), result,
                 place=place_of(None, anchor, result.target))


def _run_error(error: str, anchor: str | None) -> Issue:
    empty = ScanResult(target=TargetInfo(kind="run", ref="smtpgate"))
    return Issue(ERROR_RULE, "error", "smtpgate could not run", error,
                 fingerprint(ERROR_RULE.id, "run", _error_key(error)), empty, place=place_of(None, anchor))

