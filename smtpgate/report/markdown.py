"""A Markdown summary (`markdown`; `--markdown FILE`): the GitHub job summary
(appended to `$GITHUB_STEP_SUMMARY` in GitHub mode), also fit for a merge
request comment.

Per target: a heading with the verdict, then a table with one row per SMTP
service: port(s), software, bind scope, state, verdict, fix (the setting that
decides where it listens, else the first fix step); then the other listening
ports, what could not be inspected, and the fix steps of each violation.
Target text is escaped for Markdown tables and HTML (`|`, `<`, `>`, `&`,
backticks, control characters), and bounded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from smtpgate.model import Judged, ScanResult
from smtpgate.report import common
from smtpgate.report.interface import Report, ReportMeta, run_exit_code
from smtpgate.report.sanitize import bounded, clip, escape

CELL = 160
_ICON = {"pass": "✅", "fail": "❌", "error": "⚠️"}
_OUTCOME_ICON = {"pass": "✅", "fail": "❌", "warn": "⚠️"}
_MD = re.compile(r"([\\`*_{}\[\]<>|#!~])")


def cell(text: str, width: int = CELL) -> str:
    """One table cell: one line, escaped for Markdown and HTML, clipped."""
    text = clip(escape(text), width).replace("&", "&amp;")
    return _MD.sub(r"\\\1", text) or " "


def own(text: str, width: int = 1000) -> str:
    """smtpgate's own words (fix steps from the registry, which use `code`):
    only what would break a table row or open HTML is escaped."""
    text = clip(escape(text), width).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|")


class MarkdownReport(Report):
    """The job summary in GitHub-flavoured Markdown."""

    name = "markdown"
    media_type = "text/markdown"

    def render(self, results: Sequence[ScanResult], meta: ReportMeta) -> str:
        code_ = run_exit_code(results, meta)
        meta = bounded(meta)
        parts = ["## smtpgate: " + cell(common.overall_line(results, code_).removeprefix("smtpgate: "), 400)]
        parts += [f"- ⚠️ {cell(err, 1000)}" for err in meta.errors]
        parts += [_target(bounded(r)) for r in results]
        parts.append(f"<sub>smtpgate {cell(meta.tool_version, 40)}</sub>")
        return "\n\n".join(parts) + "\n"


def _target(result: ScanResult) -> str:
    t = result.target
    head = f"### {_ICON[result.verdict]} {cell(t.ref)} — {common.VERDICT_WORD[result.verdict]}"
    lines = [head, ""]
    lines += [f"> ⚠️ {own(c, 1000)}" for c in common.caveats(result)]
    lines += [""] if common.caveats(result) else []
    if result.judged:
        lines += ["| port | software | bind scope | state | verdict | fix |", "| --- | --- | --- | --- | --- | --- |"]
        lines += [_row(j) for j in result.judged]
    else:
        lines.append("No SMTP service found.")
    others = [li for li in result.listeners
              if not any(li.key in {x.key for x in j.finding.listeners} for j in result.judged)]
    if others:
        lines += ["", "Other listening ports: " + ", ".join(
            f"{cell(li.endpoint)} ({cell(common.speaks(result.probe_for(li)))})" for li in others[:50])]
    lines += ["", *(f"- ⚠️ could not inspect: {cell(err, 1000)}" for err in result.errors)]
    for judged in result.violations:
        lines += ["", *_fix_block(judged)]
    image = f"image: {cell(t.image_ref)}; " if t.workload else ""
    lines += ["", f"<sub>{image}method: {cell(result.method or '-')}; image id: {cell(t.image_id or '-')}</sub>"]
    return "\n".join(lines)


def _row(judged: Judged) -> str:
    f, d = judged.finding, judged.decision
    fix = common.remedy(f.software, f.ports)
    first = fix.setting or (fix.fix[0] if fix.fix else "")
    name = f"{f.software.name} {f.software.version or ''}".strip()
    verdict = f"{_OUTCOME_ICON[d.outcome.value]} {d.outcome.value.upper()}: {cell(d.reason)}"
    fix_cell = own(first, 300) if d.outcome.value != "pass" else "—"
    return (f"| {cell(common.ports_text(f))} | {cell(name)} | {cell(common.finding_scope(f) or '-')} | "
            f"{f.state.value} | {verdict} | {fix_cell} |")


def _fix_block(judged: Judged) -> list[str]:
    f = judged.finding
    fix = common.remedy(f.software, f.ports)
    lines = [f"<details><summary>How to fix {cell(common.finding_title(f))}</summary>", ""]
    lines += [f"{n}. {own(step)}" for n, step in enumerate(fix.fix, 1)]
    lines += ["", "Verify:", ""] + [f"- {own(check)}" for check in fix.verify]
    return [*lines, "", "</details>"]
