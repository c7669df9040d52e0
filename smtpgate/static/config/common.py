"""Shared bits of the listen-scope readers: address words to bind scopes."""

from __future__ import annotations

import ipaddress

from smtpgate.model import BindScope, bind_scope

ALL_WORDS = {"all", "*", "", "0", "0.0.0.0", "::", "[::]", "any", "egress", "0/0"}
LOOPBACK_WORDS = {"loopback-only", "localhost", "lo", "lo0", "loopback", "ip6-localhost", "ip6-loopback"}


def address_scope(word: str) -> BindScope:
    """'all', '0.0.0.0', '[::]', '*' -> ALL; 'localhost', 'loopback-only', '127.0.0.1', '::1' -> LOOPBACK;
    any other address, host or interface name -> SPECIFIC."""
    word = word.strip().strip("'\"").lower()
    if word.startswith("[") and "]" in word:
        word = word[1: word.index("]")]
    if word in ALL_WORDS:
        return BindScope.ALL
    if word in LOOPBACK_WORDS:
        return BindScope.LOOPBACK
    try:
        return bind_scope(str(ipaddress.ip_address(word.split("%", 1)[0])))
    except ValueError:
        return BindScope.SPECIFIC


def widest(scopes: list[BindScope]) -> BindScope | None:
    for scope in (BindScope.ALL, BindScope.SPECIFIC, BindScope.LOOPBACK):
        if scope in scopes:
            return scope
    return None


def strip_comment(line: str, marker: str = "#") -> str:
    """Text before an unquoted comment marker."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == marker:
            return line[:i]
    return line


def read_once(fs, path: str, seen: list[str], max_files: int) -> str | None:
    """The text of a config file the first time an include chain reaches it,
    at most ``max_files`` files per chain (include loops, include storms);
    None when already read, over the bound, or unreadable."""
    if path in seen or len(seen) >= max_files:
        return None
    text = fs.text(path)
    if text is not None:
        seen.append(path)
    return text
