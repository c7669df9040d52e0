"""SARIF 2.1.0 (`--sarif FILE`) for GitHub code scanning and other SARIF viewers.

One run (GitHub takes at most 20 per file, and one per tool and category) with
`automationDetails.id` = `smtpgate/<image name without tag>/` (see
automation_id for several images): GitHub code scanning keeps one analysis per
tool and category, so the uploads of a matrix (one job per image or shard) for
one commit do not overwrite each other, and an image keeps its category from
commit to commit. The run has tool `smtpgate`
with the rules of `smtpgate.report.issues` (id, name, short and full
description, help as text and markdown, default level, `security-severity`
and the `security` tag GitHub sorts by). One result per issue: ruleId/ruleIndex,
level, a message, `partialFingerprints` (stable across runs: rule, image name
without tag, finding key; `primaryLocationLineHash` too, because GitHub would
otherwise hash the anchor's line, the same for every result on it), a physical
location on a repository-relative file when there is one (`--sarif-anchor
Dockerfile`: GitHub needs a location to show a result), paths inside the image
only as related locations under the uriBaseId `IMAGEROOT`, and the image and
finding in the property bag. The invocation says whether smtpgate could decide
(executionSuccessful, exit code of the whole run) and why not.

Validated against the OASIS 2.1.0 schema and GitHub's requirements in
tests/unit/test_report_ci.py and tests/unit/test_report_consumers.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from smtpgate import software
from smtpgate.model import ScanResult
from smtpgate.report import common, issues
from smtpgate.report.interface import Report, ReportMeta, run_exit_code
from smtpgate.report.jsonreport import _encodable
from smtpgate.report.sanitize import bound, bounded, json_inert, unpaired

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
FINGERPRINT = "smtpgate/v1"


class SarifReport(Report):
    """A SARIF 2.1.0 log with one run."""

    name = "sarif"
    media_type = "application/sarif+json"

    def render(self, results: Sequence[ScanResult], meta: ReportMeta) -> str:
        return json_inert(json.dumps(document(results, meta), indent=2, ensure_ascii=False, allow_nan=False)) + "\n"


def document(results: Sequence[ScanResult], meta: ReportMeta) -> dict[str, Any]:
    code = run_exit_code(results, meta)
    meta = bounded(meta)
    found = issues.issues([bounded(r) for r in results], meta)
    run = {
        "tool": {"driver": _driver(meta)},
        "automationDetails": {"id": automation_id([r.target.ref for r in results])},
        "invocations": [_invocation(meta, code, found)],
        "originalUriBaseIds": {"IMAGEROOT": {"uri": "file:///",
                                             "description": {"text": "The root of the image's filesystem"}}},
        "results": [_result(issue, meta.anchor) for issue in found],
        "properties": {"exitCode": code, "policy": meta.policy_source,
                       "targets": [{"ref": r.target.ref, "imageId": r.target.image_id, "verdict": r.verdict,
                                    "method": r.method} for r in results]},
    }
    return _encodable({"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]})  # type: ignore[no-any-return]


def automation_id(refs: Sequence[str]) -> str:
    """`smtpgate/<image name>/` for one target; `smtpgate/<first name>+<n-1>-<hash>/` for several
    (the hash of the sorted names: the same set gives the same category in any order);
    `smtpgate/run/` for none. Tags and digests are left out, so an image keeps its category
    from commit to commit."""
    names = sorted({issues.image_name(ref) for ref in refs})
    if not names:
        return "smtpgate/run/"
    first = re.sub(r"[^A-Za-z0-9._/:@-]+", "_", issues.image_name(refs[0])).strip("/") or "target"
    if len(names) == 1:
        return f"smtpgate/{first}/"
    return f"smtpgate/{first}+{len(names) - 1}-{issues.fingerprint(*names)[:12]}/"


def _driver(meta: ReportMeta) -> dict[str, Any]:
    return {"name": "smtpgate", "semanticVersion": meta.tool_version, "version": meta.tool_version,
            "rules": [_rule(rule) for rule in issues.RULES]}


def _rule(rule: issues.Rule) -> dict[str, Any]:
    help_text = _rule_help(rule)
    return {"id": rule.id, "name": rule.slug, "shortDescription": {"text": rule.short},
            "fullDescription": {"text": rule.full},
            "help": {"text": help_text, "markdown": help_text},
            "defaultConfiguration": {"level": rule.level},
            "properties": {"tags": ["security", "smtp", "cis"], "precision": "high",
                           "security-severity": "7.5" if rule.id == "SMTPGATE001" else "5.0"}}


def _rule_help(rule: issues.Rule) -> str:
    """The rule's help: what to do, and for every known MTA the setting that
    decides where it listens (each result's message carries the exact steps)."""
    if rule.level == "note":
        return rule.full + " Compare the image's EXPOSE lines and start-up with what the report says listened."
    if rule is issues.ERROR_RULE:
        return ("Read the error in the result: start the Docker engine, build or pull the image, run smtpgate "
                "as root (or give it a helper image with --helper-image), then re-run.")
    lines = [rule.full, "", "How to fix: stop and disable the service, or bind it to loopback (127.0.0.1 / ::1); "
             "or approve it in the smtpgate policy with a reason, an owner and an expiry date.", "",
             "Where each MTA decides where it listens:"]
    lines += [f"- {mta.name}: {mta.listen_setting}" for mta in software.all_mtas() if mta.listen_setting]
    return "\n".join(lines)


def _invocation(meta: ReportMeta, code: int, found: list[issues.Issue]) -> dict[str, Any]:
    errors = [i.message for i in found if i.rule is issues.ERROR_RULE]
    out: dict[str, Any] = {"executionSuccessful": code != 2, "exitCode": code,
                           "exitCodeDescription": {0: "pass", 1: "unapproved SMTP found", 2: "could not decide"}[code]}
    if meta.command_line:
        out["commandLine"] = " ".join(meta.command_line)
    if meta.started_at:
        out["startTimeUtc"] = meta.started_at.isoformat().replace("+00:00", "Z")
    if errors:
        out["toolExecutionNotifications"] = [{"level": "error", "message": {"text": bound(e)}} for e in errors]
    return out


def _result(issue: issues.Issue, anchor: str | None) -> dict[str, Any]:
    rule_index = issues.RULES.index(issue.rule)
    text = issue.message
    fix = issue.fix
    if fix is not None:
        text += "\n" + "\n".join(common.remedy_lines(fix))
    out: dict[str, Any] = {
        "ruleId": issue.rule.id, "ruleIndex": rule_index, "level": issue.level,
        "message": {"text": bound(text, 16384)},
        "partialFingerprints": {FINGERPRINT: issue.fingerprint,
                                "primaryLocationLineHash": f"{issue.fingerprint[:16]}:1"},
        "properties": {"image": issue.target.target.image_ref, "imageId": issue.target.target.image_id,
                       "verdict": issue.target.verdict,
                       **({"workload": issue.target.target.workload} if issue.target.target.workload else {})},
    }
    # GitHub: at least one location per result, repository-relative
    out["locations"] = [_location(issues.ci_place(issue.place, anchor), issue.title)]
    if issue.judged is not None:
        f = issue.judged.finding
        out["properties"].update({"finding": f.key, "software": f.software.id, "state": f.state.value,
                                  "ports": list(f.ports), "scope": common.finding_scope(f)})
        related = [p for p in _image_places(f) if p != issue.place]
        if related:
            out["relatedLocations"] = [dict(_location(p, "in the image"), id=n) for n, p in enumerate(related)]
    return out


def _image_places(finding: Any) -> list[issues.Place]:
    return [issues.Place(ev.path, max(ev.line or 1, 1), in_repo=False)
            for ev in finding.evidence if ev.path and ev.path.startswith("/")]


def _location(place: issues.Place, text: str) -> dict[str, Any]:
    artifact: dict[str, Any] = {"uri": _uri(place.path)}
    if not place.in_repo:
        artifact = {"uri": _uri(place.path.lstrip("/")), "uriBaseId": "IMAGEROOT"}
    return {"physicalLocation": {"artifactLocation": artifact, "region": {"startLine": place.line}},
            "message": {"text": text}}


def _uri(path: str) -> str:
    """A relative URI reference for a path: percent-encode what a URI may not hold."""
    from urllib.parse import quote

    return quote(unpaired(path).encode("utf-8"), safe="/-._~!$&'()*+,;=:@")
