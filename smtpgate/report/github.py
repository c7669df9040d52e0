"""GitHub Actions workflow commands (`github`): one `::error` / `::warning` /
`::notice` annotation per issue, printed on stdout, where the runner turns them into
annotations on the run (and on the file and line they name).

GitHub shows at most 10 annotations of each kind per step, so at most 10 are
printed per kind, the tenth saying how many more there are. Escaping follows
@actions/core (toolkit packages/core/src/command.ts): in the message `%`, CR
and LF become `%25`, `%0D`, `%0A`; in properties (file, title) also `:` and
`,` (`%3A`, `%2C`). Text from the target is escaped first (control characters
as `\\xNN`), so it cannot start a workflow command of its own on a new line.

The job summary is another format, `markdown` (smtpgate.report.markdown).
"""

from __future__ import annotations

from collections.abc import Sequence

from smtpgate.model import ScanResult
from smtpgate.report import issues
from smtpgate.report.interface import Report, ReportMeta
from smtpgate.report.sanitize import bounded, clip, escape

PER_KIND = 10  # GitHub keeps 10 error, 10 warning and 10 notice annotations per step
_KIND = {"note": "notice"}  # SARIF's level name -> the workflow command
MESSAGE = 2000  # characters of one annotation message


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(kind: str, message: str, **props: str | int | None) -> str:
    """'::error file=Dockerfile,line=1,title=...::message' (empty props left out)."""
    given = ",".join(f"{k}={escape_property(str(v))}" for k, v in props.items() if v not in (None, ""))
    return f"::{kind}{' ' + given if given else ''}::{escape_data(message)}"


class GithubReport(Report):
    """Workflow commands for annotations (stdout in a GitHub Actions step)."""

    name = "github"

    def render(self, results: Sequence[ScanResult], meta: ReportMeta) -> str:
        found = issues.issues([bounded(r) for r in results], bounded(meta))
        lines: list[str] = []
        for level, kind in (("error", "error"), ("warning", "warning"), ("note", "notice")):
            mine = [i for i in found if i.level == level]
            shown = mine if len(mine) <= PER_KIND else mine[: PER_KIND - 1]
            lines += [_annotation(i) for i in shown]
            if len(mine) > len(shown):
                lines.append(command(kind, f"{len(mine) - len(shown)} more {kind}(s): see the smtpgate reports",
                                     title=f"smtpgate: {len(mine) - len(shown)} more"))
        return "".join(line + "\n" for line in lines)


def _annotation(issue: issues.Issue) -> str:
    place = issue.place if issue.place is not None and issue.place.in_repo else None
    text = issue.message
    fix = issue.fix
    if fix is not None and fix.verify:
        text += f"\nverify: {fix.verify[0]}"
    return command(_KIND.get(issue.level, issue.level), clip(escape(text, multiline=True), MESSAGE),
                   file=clip(escape(place.path), 500) if place else None, line=place.line if place else None,
                   title=clip(escape(f"{issue.rule.id} {issue.title}"), 200))
