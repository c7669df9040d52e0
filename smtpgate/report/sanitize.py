"""Make untrusted text safe to print: bound its size, escape what could break
a document or drive a terminal.

Banners, EHLO lines, command lines and paths come from the image under test and
may hold anything: NUL, ANSI escape sequences, C1 controls (0x9B is CSI on
8-bit terminals), bidi overrides, lone surrogates (invalid UTF-8 decoded with
`surrogateescape`), noncharacters, megabytes. Reports first `bounded()` the
whole model (every string field cut to `FIELD_LIMIT`), then each format escapes
at output time with `escape()` (text, XML) or `unpaired()` (JSON).

Text bound for a CI log (stdout, stderr) is also made `inert()`: CI runners
read workflow commands out of every line a step prints. GitHub's runner
(actions/runner, ActionCommandManager) takes a line that starts with `::`
after its leading white space is trimmed (`::error::`, `::add-mask::`,
`::stop-commands::`), and, the legacy syntax, `##[cmd]` *anywhere* in a line
(`##[error]`, `##[warning]`, `##[add-mask]`, `##[group]`); Azure Pipelines
takes `##vso[` anywhere (any case). Lines are laid out only after escaping:
`str.splitlines()` also breaks on \\x1c-\\x1e, \\x85, U+2028 and U+2029, which
`escape()` shows as escapes, so untrusted text is split on "\\n" alone.
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
    "\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069" + _NONCHARS
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


def lines(text: str) -> list[str]:
    """`text` split on LF only (a CR before it dropped): never on the other
    separators `str.splitlines()` honours, which escape() makes visible."""
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


def one_line(text: str) -> str:
    """Lines joined with ' / ', for attributes and single-line messages."""
    return " / ".join(line.strip() for line in lines(text) if line.strip())


_LEGACY_COMMAND = re.compile(r"##(?=\[|vso\[)", re.IGNORECASE)
_LINE_COMMAND = re.compile(r"^(\s*):(?=:)", re.MULTILINE)


def inert(text: str) -> str:
    """`text` (already escaped) with no active CI workflow command: `##[` and
    `##vso[` anywhere become `#\\x23[`, a line starting with `::` (after white
    space) starts with `\\x3a:` instead. Readable, and in the same \\xNN
    notation as every other escape. Lines are LF-separated (CR is escaped
    before this, and the runner's line reader splits on CR too)."""
    return _LINE_COMMAND.sub(r"\1\\x3a", _LEGACY_COMMAND.sub(r"#\\x23", text))


_JSON_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029]")


def json_inert(document: str) -> str:
    """A JSON document (made by json.dumps, indented) that a CI log or a
    terminal can show as is, decoding to the same values: DEL, C1 controls
    (json.dumps escapes only C0) and U+2028/2029 become \\uNNNN escapes, and
    the `#` of `##[` / `##vso[` becomes \\u0023. Both occur only inside
    strings, where these escapes mean the same character."""
    document = _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", document)
    return _LEGACY_COMMAND.sub(r"#\\u0023", document)


def for_log(text: str) -> str:
    """Untrusted text for one line of a CI log: escaped, then inert."""
    return inert(escape(text))


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
