"""The human summary for stderr: what was found, why it fails, how to fix it
for that MTA (the exact setting and steps), and how to verify the fix.

Everything that came from the target is escaped (`\\xNN`), so a hostile banner
cannot move the cursor, recolour or retitle the terminal; ANSI colour is only
ever added to smtpgate's own words, and only when asked for.
"""

from __future__ import annotations

from collections.abc import Sequence

from smtpgate.model import Judged, Listener, ScanResult
from smtpgate.report import common
from smtpgate.report.interface import Report, ReportMeta, run_exit_code
from smtpgate.report.sanitize import bounded, clip, escape

CELL = 60  # characters of a table cell before it is clipped
FIELD = 512  # characters of any one field a person reads (JSON and JUnit keep 4096)
_COLORS = {"PASS": "32", "WARN": "33", "ERROR": "33", "FAIL": "31", "bold": "1"}


class TextReport(Report):
    """Plain text; `color` (default: the meta's, which defaults to off) adds ANSI."""

    name = "text"

    def __init__(self, color: bool | None = None) -> None:
        self.color = color

    def render(self, results: Sequence[ScanResult], meta: ReportMeta) -> str:
        paint = _Painter(meta.color if self.color is None else self.color)
        code = run_exit_code(results, meta)
        blocks = [_target_block(bounded(r, FIELD), paint) for r in results]
        blocks.append(_run_block(results, bounded(meta, FIELD), code, paint))
        return "\n\n".join(blocks) + "\n"


class _Painter:
    """Wraps smtpgate's own words in ANSI colour when enabled, else no-op."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, style: str) -> str:
        code = _COLORS.get(style)
        return f"\x1b[{code}m{text}\x1b[0m" if self.enabled and code else text


def _safe(text: str) -> str:
    """Target data for one line: every control character escaped."""
    return escape(text)


def _clip(text: str, width: int = CELL) -> str:
    """One table cell: escaped and cut to `width` characters."""
    return clip(escape(text), width)


def _target_block(result: ScanResult, paint: _Painter) -> str:
    sections = [_header(result, paint), _caveats(result, paint), _listening(result, paint), _services(result, paint),
                *(_remedy(j, paint) for j in _distinct_software(result.violations)),
                _warnings(result, paint), _errors(result, paint), _notes(result, paint)]
    return "\n".join(s for s in sections if s)


def _header(result: ScanResult, paint: _Painter) -> str:
    t = result.target
    word = common.VERDICT_WORD[result.verdict]
    ident = _short_id(t.image_id) if t.image_id else ""
    image = f" ({_safe(t.image_ref)}{', ' + ident if ident else ''})" if t.workload else (
        f" ({ident})" if ident else "")
    return paint(f"== {_safe(t.kind)} {_safe(t.ref)}{image} — ", "bold") + paint(word, word)


def _caveats(result: ScanResult, paint: _Painter) -> str:
    """Right under the verdict: what it cannot vouch for."""
    return "\n".join(paint("  warning: ", "WARN") + _safe(c) for c in common.caveats(result))


def _short_id(image_id: str) -> str:
    """'sha256:3f4a9c...' -> '3f4a9c0b1d2e' (12 hex digits, like docker)."""
    return _safe(image_id.split(":", 1)[-1][:12])


def _listening(result: ScanResult, paint: _Painter) -> str:
    if not result.listeners:
        return paint("Listening:", "bold") + " nothing"
    rows: list[tuple[str, ...]] = [("ENDPOINT", "SCOPE", "PROCESS", "SPEAKS")]
    rows += [_listener_row(result, li) for li in result.listeners]
    return paint("Listening:", "bold") + "\n" + _table(rows)


def _listener_row(result: ScanResult, listener: Listener) -> tuple[str, ...]:
    probe = result.probe_for(listener)
    says = (f"{common.speaks(probe)} {probe.greeting or probe.detail}".strip() if probe
            else common.speaks(None))
    return (_clip(listener.endpoint), common.scope_of(listener),
            _clip(common.process_text(listener), 30), _clip(says))


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
                     for row in rows)


def _services(result: ScanResult, paint: _Painter) -> str:
    head = paint("SMTP services:", "bold")
    if not result.judged:
        return head + " none found"
    return head + "\n" + "\n".join(_service(j, paint) for j in result.judged)


def _service(judged: Judged, paint: _Painter) -> str:
    f, d = judged.finding, judged.decision
    word = d.outcome.value.upper()
    lines = [f"  {paint(word.ljust(4), word)}  {_safe(common.finding_title(f))}",
             f"        {_safe(d.reason)}", f"        rule: {_safe(d.rule or 'default policy')}"
             + (f", owner: {_safe(d.owner)}" if d.owner else "")]
    lines += [f"        {_safe(li.endpoint)}: {ld.outcome.value}: {_safe(ld.reason)}"
              for li, ld in common.distinct_per_listener(judged)]
    lines += [f"        evidence: {_safe(_evidence_line(e))}" for e in f.evidence[:EVIDENCE_SHOWN]]
    if len(f.evidence) > EVIDENCE_SHOWN:
        lines.append(f"        evidence: ... {len(f.evidence) - EVIDENCE_SHOWN} more in the JSON/JUnit reports")
    return "\n".join(lines)


EVIDENCE_SHOWN = 6


def _evidence_line(evidence) -> str:
    """One evidence line; its file:line is added unless the text names it already."""
    place = f"{evidence.path}:{evidence.line}" if evidence.path and evidence.line else evidence.path or ""
    where = f" ({place})" if place and place not in evidence.text else ""
    return _clip(f"[{evidence.kind}] {evidence.text}{where}", 200)


def _distinct_software(violations: Sequence[Judged]) -> list[Judged]:
    """One violation per software id: one fix block each, not one per port."""
    seen: dict[str, Judged] = {}
    for judged in violations:
        seen.setdefault(judged.finding.software.id, judged)
    return list(seen.values())


def _remedy(judged: Judged, paint: _Painter) -> str:
    f = judged.finding
    lines = common.remedy_lines(common.remedy(f.software, f.ports))
    return "\n".join(paint(_safe(line), "bold") if not line.startswith(" ") else
                     escape(line, multiline=True) for line in lines)


def _warnings(result: ScanResult, paint: _Painter) -> str:
    lines = [f"  {_safe(common.finding_title(j.finding))}: {_safe(j.decision.reason)}"
             for j in result.warnings]
    return "\n".join([paint("Warnings:", "WARN"), *lines]) if lines else ""


def _errors(result: ScanResult, paint: _Painter) -> str:
    return "\n".join(paint("Could not inspect: ", "ERROR") + _indented(e) for e in result.errors)


def _indented(text: str) -> str:
    """A multi-line message: continuation lines indented under the first."""
    return "\n    ".join(_safe(line) for line in text.splitlines() or [""])


def _notes(result: ScanResult, paint: _Painter) -> str:
    lines = [f"  - {_safe(note)}" for note in result.notes]
    return "\n".join([paint("Notes:", "bold"), *lines]) if lines else ""


def _run_block(results: Sequence[ScanResult], meta: ReportMeta, code: int,
               paint: _Painter) -> str:
    lines = [paint("smtpgate: error: ", "ERROR") + _indented(e) for e in meta.errors]
    if not results:
        lines.append("smtpgate: no target was scanned")
    return "\n".join([*lines, paint(common.overall_line(results, code), "bold")])
