"""Report formats: a registry of name -> "module:Class", imported lazily, and
`write_report`, which writes one rendered report atomically.

Adding a format: one module with a `Report` subclass, one line in `FORMATS`;
tests/unit/test_report.py walks `FORMATS` so none is forgotten.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from smtpgate.errors import ReportError
from smtpgate.model import ScanResult
from smtpgate.report.interface import Report, ReportMeta, run_exit_code

__all__ = ["FORMATS", "Report", "ReportMeta", "append_report", "get_report", "run_exit_code", "write_report"]

FORMATS: dict[str, str] = {
    "junit": "smtpgate.report.junit:JunitReport",
    "json": "smtpgate.report.jsonreport:JsonReport",
    "text": "smtpgate.report.text:TextReport",
    "sarif": "smtpgate.report.sarif:SarifReport",
    "codequality": "smtpgate.report.codequality:CodeQualityReport",
    "github": "smtpgate.report.github:GithubReport",
    "markdown": "smtpgate.report.markdown:MarkdownReport",
}

STDOUT = "-"


def get_report(name: str) -> Report:
    """A fresh instance of the format called `name` (ReportError if unknown)."""
    try:
        module, cls = FORMATS[name].split(":")
    except KeyError:
        known = ", ".join(sorted(FORMATS))
        raise ReportError(f"unknown report format {name!r} (choose from: {known})") from None
    report: Report = getattr(importlib.import_module(module), cls)()
    return report


def write_report(name: str, results: Sequence[ScanResult], meta: ReportMeta,
                 path: str | os.PathLike[str]) -> None:
    """Render format `name` and write it to `path` ("-" for stdout).

    The file appears whole or not at all: a temporary file in the same
    directory, then os.replace. Missing parent directories are created.
    Any OS failure becomes ReportError naming the path and the reason.
    """
    text = get_report(name).render(results, meta)
    if os.fspath(path) == STDOUT:
        _write_stdout(text)
    else:
        _write_atomic(Path(path), text.encode("utf-8"))


def append_report(name: str, results: Sequence[ScanResult], meta: ReportMeta,
                  path: str | os.PathLike[str]) -> None:
    """Render format `name` and append it to `path` (a file others write too,
    like GitHub's $GITHUB_STEP_SUMMARY); ReportError on any OS failure."""
    text = get_report(name).render(results, meta)
    try:
        with open(path, "a", encoding="utf-8", errors="surrogateescape") as out:
            out.write(text)
    except OSError as exc:
        raise ReportError(f"cannot append report to {os.fspath(path)}: {exc.strerror or exc}") from exc


def _write_stdout(text: str) -> None:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except OSError as exc:  # closed pipe, full disk behind a redirect
        raise ReportError(f"cannot write report to stdout: {exc.strerror or exc}") from exc


def _write_atomic(path: Path, data: bytes) -> None:
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise ReportError(f"cannot write report {path}: {_reason(exc, path, tmp)}") from exc


def _reason(exc: OSError, path: Path, tmp: str | None) -> str:
    """The OS reason, plus the path it concerns when that is not the report
    itself (a parent that is a file: 'File exists: /out/reports')."""
    culprit = exc.filename if exc.filename not in (None, tmp, str(path)) else None
    return f"{exc.strerror or exc}: {culprit}" if culprit else str(exc.strerror or exc)


def _mode_for(path: Path) -> int:
    """Keep an existing report's mode; a new one is readable by all (mkstemp
    makes 0600, which CI artifact uploaders running as another user cannot read)."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return 0o644
