"""The report interface: a format turns scan results into one text document.

A format is one module with one `Report` subclass, registered by name in
`smtpgate.report.FORMATS`. Rendering never fails on hostile data (control
characters, invalid UTF-8 decoded with surrogateescape, megabyte banners): each
format sanitises and bounds what it prints. Writing is `write_report`'s job.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from smtpgate import __version__
from smtpgate.model import EXIT_ERROR, ScanResult, exit_code


@dataclass(frozen=True)
class ReportMeta:
    """What every report states about the run itself, beside the results.

    `errors` are run-level problems that belong to no target (bad policy file,
    engine unreachable); `exit_code` is the code the CLI will return when it
    already knows it, else it is derived from the results (see `run_exit_code`).
    """

    tool_version: str = __version__
    started_at: datetime | None = None
    command_line: tuple[str, ...] = ()
    policy_source: str = "default policy"
    errors: tuple[str, ...] = ()
    exit_code: int | None = None
    color: bool = False  # ANSI colour in the text summary; off unless asked
    anchor: str | None = None  # repository file CI findings point at (--sarif-anchor), e.g. Dockerfile


def run_exit_code(results: Sequence[ScanResult], meta: ReportMeta) -> int:
    """The exit code the reports state: meta's if set, 2 when nothing could be
    decided at all (run-level errors, or no target scanned), else the model's."""
    if meta.exit_code is not None:
        return meta.exit_code
    if meta.errors or not results:
        return EXIT_ERROR
    return exit_code(tuple(results))


class Report(abc.ABC):
    """One output format; `render` returns the whole document as text."""

    name: ClassVar[str]  # the --format value
    media_type: ClassVar[str] = "text/plain"

    @abc.abstractmethod
    def render(self, results: Sequence[ScanResult], meta: ReportMeta) -> str:
        """The document for `results` (one entry per target, possibly none)."""
