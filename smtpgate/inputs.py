"""Files the user names as inputs (--policy, --images-from), read safely.

smtpgate often runs as root in CI, and an input path is only a name: it may be
a FIFO (open() blocks until a writer comes, for ever), a character device
(/dev/zero never ends: reading it whole grows memory at a GB a second), a
directory, or a huge file. So the file is opened non-blocking (a FIFO opens
at once), must be a regular file, and is read up to a size limit; anything
else is a one-line error of the caller's type (exit 2).
"""

from __future__ import annotations

import errno
import os
import stat
import sys

from smtpgate.errors import SmtpgateError

STDIN = "-"

_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a directory"), (stat.S_ISSOCK, "a socket"))


def kind_of(mode: int) -> str:
    """What a file that is not a regular file is, in words."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def read_bounded(path: str, limit: int, cannot: str, too_large: str, error: type[SmtpgateError],
                 stdin: bool = False) -> bytes:
    """The bytes of the regular file ``path`` (or of standard input for "-"
    when ``stdin``), at most ``limit``; otherwise ``error`` with the message
    ``cannot`` + the reason, or ``too_large``."""
    if stdin and path == STDIN:
        return _bounded(sys.stdin.buffer.read(limit + 1), limit, too_large, error)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise error(f"{cannot}{exc.strerror or exc}") from exc
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise error(f"{cannot}{os.strerror(errno.EISDIR)}")
        if not stat.S_ISREG(mode):
            raise error(f"{cannot}it is {kind_of(mode)}, not a regular file"
                        + (" (use - to read standard input)" if stdin else ""))
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise error(f"{cannot}{exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    return _bounded(b"".join(chunks), limit, too_large, error)


def _bounded(data: bytes, limit: int, too_large: str, error: type[SmtpgateError]) -> bytes:
    if len(data) > limit:
        raise error(too_large)
    return data
