"""Report formats: a registry of name -> "module:Class", imported lazily, and
`write_report`, which writes one rendered report atomically.

Adding a format: one module with a `Report` subclass, one line in `FORMATS`;
tests/unit/test_report.py walks `FORMATS` so none is forgotten.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
import re
import stat
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from smtpgate.errors import ReportError
from smtpgate.model import ScanResult
from smtpgate.report.interface import Report, ReportMeta, run_exit_code
from smtpgate.report.sanitize import inert

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

    A regular file (or a new one) appears whole or not at all: a temporary
    file in the same directory, then os.replace; missing parent directories
    are created. Anything else is written in place, never replaced by a
    regular file (as root a rename would swap /dev/null, /dev/full or
    /dev/stdout for a plain file): see _write_in_place. Any OS failure,
    ENOSPC on /dev/full included, becomes ReportError naming the path and
    the reason.
    """
    text = get_report(name).render(results, meta)
    if os.fspath(path) == STDOUT:
        _write_stdout(for_log(name, text))
        return
    target = Path(path)
    try:
        in_place = not stat.S_ISREG(target.lstat().st_mode)  # a symlink, device, FIFO, /proc/self/fd/N
    except OSError:  # not there (or a parent is no directory): the atomic write makes it or says why
        in_place = False
    if in_place:
        _write_in_place(target, text, name)
    else:
        _write_atomic(target, text.encode("utf-8"))


def append_report(name: str, results: Sequence[ScanResult], meta: ReportMeta,
                  path: str | os.PathLike[str]) -> None:
    """Render format `name` and append it to `path` (a file others write too,
    like GitHub's $GITHUB_STEP_SUMMARY); ReportError on any OS failure."""
    text = get_report(name).render(results, meta)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    fd = -1
    try:
        fd = os.open(path, flags, 0o644)  # non-blocking: a FIFO without a reader fails, never hangs
        if stat.S_ISBLK(os.fstat(fd).st_mode):
            raise ReportError(f"cannot append report to {os.fspath(path)}: it is a block device")
        os.set_blocking(fd, True)
        data = text.encode("utf-8", "surrogateescape")
        while data:
            data = data[os.write(fd, data):]
    except OSError as exc:
        reason = "a FIFO with no reader" if exc.errno == errno.ENXIO else exc.strerror or exc
        raise ReportError(f"cannot append report to {os.fspath(path)}: {reason}") from exc
    finally:
        if fd >= 0:
            os.close(fd)


def _write_in_place(path: Path, text: str, name: str) -> None:
    """Write into what ``path`` names without replacing it: the same file as
    our stdout or stderr (/dev/stdout, /proc/self/fd/1, a symlink to them)
    through that stream, so it interleaves as it should; a FIFO only when a
    reader is there already (opened non-blocking: no reader is an error, not
    a hang); a character device (/dev/null, /dev/full, a tty) as is; a
    symlink to a regular file truncated and rewritten (a dangling one made,
    as a shell redirect would). A block device or a directory is refused."""
    with contextlib.suppress(OSError):  # refused before it is even opened
        if stat.S_ISBLK(os.stat(path).st_mode):
            raise ReportError(f"cannot write report {path}: it is a block device; refusing to write onto it")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        fifo = exc.errno == errno.ENXIO and stat.S_ISFIFO(os.stat(path).st_mode)
        raise ReportError(f"cannot write report {path}: {'a FIFO with no reader' if fifo else exc.strerror or exc}") \
            from exc
    try:
        info = os.fstat(fd)
        stream = _std_stream(info)
        if stream is not None:
            os.close(fd)
            fd = -1
            _write_stream(stream, for_log(name, text), str(path))
            return
        if stat.S_ISBLK(info.st_mode):
            raise ReportError(f"cannot write report {path}: it is a block device; refusing to write onto it")
        os.set_blocking(fd, True)  # a FIFO's reader may be slow: wait for it, as a shell redirect would
        if stat.S_ISREG(info.st_mode):
            os.ftruncate(fd, 0)
        data = text.encode("utf-8", "surrogateescape")
        while data:
            data = data[os.write(fd, data):]
    except OSError as exc:
        raise ReportError(f"cannot write report {path}: {exc.strerror or exc}") from exc
    finally:
        if fd >= 0:
            os.close(fd)


_XML_LEGACY = re.compile(r"##(?=\[|vso\[)", re.IGNORECASE)
_XML_LINE = re.compile(r"^(\s*):(?=:)", re.MULTILINE)


def for_log(name: str, text: str) -> str:
    """A rendered report bound for stdout/stderr (a CI log): no line of it may
    be a workflow command (sanitize.inert). JSON formats are already inert and
    decode the same (sanitize.json_inert); `github` is our own commands, its
    messages inert already; JUnit XML gets character references (`#&#35;[`,
    `&#58;:`), which parse to the same text (it has no CDATA sections); any
    other text format is made inert."""
    if name in ("json", "sarif", "codequality", "github"):
        return text
    if name == "junit":
        return _XML_LINE.sub(r"\1&#58;", _XML_LEGACY.sub("#&#35;", text))
    return inert(text)


def _std_stream(info: os.stat_result) -> TextIO | None:
    """sys.stdout or sys.stderr when it is the file ``info`` describes."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if os.path.samestat(info, os.fstat(stream.fileno())):
                return stream
        except (OSError, ValueError, AttributeError):  # closed, or not a real file (pytest's capture)
            continue
    return None


def _write_stream(stream: TextIO, text: str, name: str) -> None:
    try:
        stream.write(text)
        stream.flush()
    except OSError as exc:  # closed pipe, full disk behind a redirect
        _discard(stream)
        raise ReportError(f"cannot write report to {name}: {exc.strerror or exc}") from exc


def _discard(stream: TextIO) -> None:
    """A stream whose write failed keeps what it buffered, and Python flushes it again at exit:
    that fails too and makes the exit status 120, not ours (2). Its descriptor is pointed at
    /dev/null, so that flush succeeds; nothing more can reach the broken file anyway."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        null = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.dup2(null, stream.fileno())
        finally:
            os.close(null)


def _write_stdout(text: str) -> None:
    _write_stream(sys.stdout, text, "stdout")


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
