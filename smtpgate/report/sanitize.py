"""Make untrusted text safe to print: bound its size, escape what could break
a document or drive a terminal.

Banners, EHLO lines, command lines and paths come from the image under test and
may hold anything: NUL, ANSI escape sequences, C1 controls (0x9B is CSI on
8-bit terminals), bidi overrides, lone surrogates (invalid UTF-8 decoded with
`surrogateescape`), noncharacters, megabytes. Reports first `bounded()` the
whole model (every string field cut to `FIELD_LIMIT`), then each format escapes
at output time with `escape()` (text, XML) or `unpaired()` (JSON).
"""

from __future__ import annotations

import dataclasses
import enum
import re
from typing import Any, TypeVar

FIELD_LIMIT = 4096  # characters kept of any one string field
TEXT_LIMIT = 65536  # characters kept of a composed block (failure text, ...)

T = TypeVar("T")

# XML 1.0 forbids C0 controls but \t \n \r, lone surrogates and U+FFFE/U+FFFF;
# it discourages C1 controls and the other noncharacters (junit-xml strips
# those silently). Bidi overrides and isolates can disguise text on screen
# (CVE-2021-42574). All of them are shown as escapes rather than dropped.
_NONCHARS = "".join(chr(p << 16 | 0xFFFE) + chr(p << 16 | 0xFFFF) for p in range(17))
_UNSAFE = (
    "\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef"
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069" + _NONCHARS
)
_UNSAFE_LINE = re.compile(f"[{_UNSAFE}]")  # \t and \n kept
_UNSAFE_CELL = re.compile(f"[\t\n{_UNSAFE}]")  # everything on one line
_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape_char(match: re.Match[str]) -> str:
    """\\xNN for bytes and surrogate-escaped bytes, \\uNNNN / \\UNNNNNNNN above."""
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the original byte
        code -= 0xDC00
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def bound(text: str, limit: int = FIELD_LIMIT) -> str:
    """`text` cut to `limit` characters plus a marker saying how much was cut
    (in UTF-8 bytes, surrogates counted as the byte they stand for)."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({_utf8_len(text[limit:])} bytes more)"


def clip(text: str, width: int) -> str:
    """`text` cut to `width` characters, the last one '…' when cut: for names
    and table cells, where a byte count would be noise."""
    return text if len(text) <= width else text[: width - 1] + "…"


def _utf8_len(text: str) -> int:
    """Length in UTF-8; a surrogate-escaped byte counts as the one byte it was."""
    try:
        return len(text.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:  # a surrogate that surrogateescape did not make
        return len(text.encode("utf-8", "surrogatepass"))


def escape(text: str, multiline: bool = False) -> str:
    """`text` with unsafe characters shown as escapes; with `multiline`, tabs
    and newlines are kept, else they are escaped too (one table cell, one
    attribute)."""
    pattern = _UNSAFE_LINE if multiline else _UNSAFE_CELL
    return pattern.sub(_escape_char, text)


def unpaired(text: str) -> str:
    """`text` with only lone surrogates escaped: what JSON needs to be encodable
    as UTF-8 (json.dumps escapes control characters itself)."""
    return _SURROGATE.sub(_escape_char, text)


def one_line(text: str) -> str:
    """Lines joined with ' / ', for attributes and single-line messages."""
    return " / ".join(line.strip() for line in text.splitlines() if line.strip())


def bounded(obj: T, limit: int = FIELD_LIMIT) -> T:
    """A copy of a model object (dataclasses, tuples, dicts) with every string
    field bounded; the report layer's first step, so no format meets a
    megabyte banner. Enums (str subclasses) are left alone."""
    return _bounded(obj, limit)  # type: ignore[no-any-return]


def _bounded(obj: Any, limit: int) -> Any:
    if isinstance(obj, enum.Enum):
        return obj
    if isinstance(obj, str):
        return bound(obj, limit)
    if isinstance(obj, tuple):
        return tuple(_bounded(item, limit) for item in obj)
    if isinstance(obj, dict):
        return {_bounded(k, limit): _bounded(v, limit) for k, v in obj.items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {f.name: _bounded(getattr(obj, f.name), limit) for f in dataclasses.fields(obj)}
        return dataclasses.replace(obj, **changes)
    return obj
