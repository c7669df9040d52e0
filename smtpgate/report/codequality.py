"""GitLab code-quality JSON (`--codequality FILE`, `artifacts: reports: codequality:`).

A JSON array with one object per issue (see smtpgate.report.issues), with the
fields GitLab documents as required: `description`, `check_name`, `fingerprint`,
`severity` (info, minor, major, critical, blocker) and `location.path` +
`location.lines.begin`. GitLab shows the issue in the merge request widget and
on the diff line of `location.path`; the path is the issue's place, else the
anchor, else `Dockerfile` (GitLab needs a path; `--sarif-anchor` sets it).
An empty array when nothing is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from smtpgate.model import ScanResult
from smtpgate.report import issues
from smtpgate.report.interface import Report, ReportMeta
from smtpgate.report.jsonreport import _encodable
from smtpgate.report.sanitize import bounded, json_inert, one_line

SEVERITY = {("SMTPGATE001", "error"): "critical", ("SMTPGATE002", "error"): "major",
            ("SMTPGATE003", "error"): "major", ("SMTPGATE004", "error"): "major",
            ("SMTPGATE005", "note"): "info", ("SMTPGATE006", "note"): "info"}
FIELDS = ("description", "check_name", "fingerprint", "severity", "location")


class CodeQualityReport(Report):
    """GitLab code quality: a JSON array of issues."""

    name = "codequality"
    media_type = "application/json"

    def render(self, results: Sequence[ScanResult], meta: ReportMeta) -> str:
        return json_inert(json.dumps(document(results, meta), indent=2, ensure_ascii=False, allow_nan=False)) + "\n"


def document(results: Sequence[ScanResult], meta: ReportMeta) -> list[dict[str, Any]]:
    found = issues.issues([bounded(r) for r in results], bounded(meta))
    entries, seen = [], set()
    for issue in found:
        entry = _entry(issue, meta.anchor)
        while entry["fingerprint"] in seen:  # GitLab keeps one issue per fingerprint
            entry["fingerprint"] = issues.fingerprint(entry["fingerprint"], "again")[:32]
        seen.add(entry["fingerprint"])
        entries.append(entry)
    return _encodable(entries)  # type: ignore[no-any-return]


def _entry(issue: issues.Issue, anchor: str | None) -> dict[str, Any]:
    place = issues.ci_place(issue.place, anchor)
    fix = issue.fix
    body = issue.message + ("\n\n" + "\n".join(f"- {step}" for step in fix.fix) if fix and fix.fix else "")
    return {
        "type": "issue",
        "description": f"{issue.rule.short}: {one_line(issue.message.partition(chr(10))[0])[:900]}",
        "check_name": issue.rule.id,
        "fingerprint": issue.fingerprint[:32],
        "severity": SEVERITY.get((issue.rule.id, issue.level), "minor"),
        "categories": ["Security"],
        "content": {"body": body},
        "location": {"path": place.path, "lines": {"begin": place.line}},
    }
