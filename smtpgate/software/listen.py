"""Where an MTA listens, as its configuration or command line says: the shared words.

An `Mta` entry's listen reader (`Mta.listens`) reads the configuration files of one
MTA through `ConfigFiles` (`smtpgate.static.fs.RootFS` is one) and says where it would
listen as `ConfiguredListen`s; `ArgvListen` reads a server configured on its command line.
Nothing here imports `smtpgate.static`: static analysis uses the registry, not the
other way round.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Protocol

from smtpgate.model import BindScope, Evidence, bind_scope

ALL_WORDS = {"all", "*", "", "0", "0.0.0.0", "::", "[::]", "any", "egress", "0/0"}
LOOPBACK_WORDS = {"loopback-only", "localhost", "lo", "lo0", "loopback", "ip6-localhost", "ip6-loopback"}


class ConfigFiles(Protocol):
    """What a listen reader reads of a root filesystem (paths absolute inside the root)."""

    def text(self, path: str) -> str | None: ...

    def isfile(self, path: str) -> bool: ...

    def glob(self, pattern: str) -> list[str]: ...


@dataclass(frozen=True)
class ConfiguredListen:
    """Where an MTA's configuration says it listens."""

    software: str
    scope: BindScope
    address: str  # "all", "loopback", or the address as written
    port: str = ""  # as written ("smtp", "25", "" = the default)
    text: str = ""
    path: str | None = None
    line: int | None = None
    tls: bool = False

    def evidence(self) -> Evidence:
        return Evidence("config", self.text, self.path, self.line)


@dataclass(frozen=True)
class ArgvAddress:
    """Where a command line says a server listens: its scope, the address and port as written, and why."""

    scope: BindScope
    address: str
    port: str
    text: str


@dataclass(frozen=True)
class ArgvListen:
    """A server that takes its listen address on its command line, read as its own option
    parser reads it.

    `flags` take a "host:port" value (`-l HOST:PORT`, `-lHOST:PORT`, `--listen=HOST:PORT`, a
    short flag at the end of a group of short options, `-nl HOST:PORT`; the last one given
    wins); `default` is the address without one (None: not known). `value_options` are the
    parser's other options that take a value, so their values are never taken for the address
    (`-c DebuggingServer`, `-nc DebuggingServer`). `abbrev`: long options may be shortened to a
    prefix (argparse, getopt: `--lis 0.0.0.0:25`). `optional_value`: the flag's value is
    optional (argparse `nargs="?"`), so a following option word is not its value. The server's
    own options start after the word naming `program` (`-m aiosmtpd`, `/usr/bin/aiosmtpd`), so
    the interpreter's (`python3 -Wall`) are not read as its; without that word, the whole
    command line is read. `positional`: the address is the first positional word instead
    (`python3 -m smtpd [options] [localaddr [remoteaddr]]`). A value without a colon
    (`-l 0.0.0.0`, `-l ""`) is a host on the default's port, an empty one all interfaces (as
    asyncio binds host ''); an empty host before a colon (`:25`) is `empty_host`: all
    interfaces for getopt smtpd, Go and pflag servers, but aiosmtpd's own default host
    (localhost). The servers refuse a bracketed address without a port (`[::1]`); it is read
    as that host.
    """

    flags: tuple[str, ...] = ()
    default: str | None = None
    program: str = ""
    positional: bool = False
    value_options: tuple[str, ...] = ()
    empty_host: str = "all"
    abbrev: bool = False
    optional_value: bool = False

    def __call__(self, argv: tuple[str, ...]) -> ArgvAddress | None:
        named = [i for i, word in enumerate(argv)  # `/usr/bin/aiosmtpd`, `-m aiosmtpd`, `-maiosmtpd`
                 if self.program and self.program in (word.rsplit("/", 1)[-1], word.removeprefix("-m"))]
        given: str | None = None
        positional: list[str] = []  # without its program word, its address is not on this command line
        if named or not self.positional:
            given, positional = self._scan(argv[named[0] + 1:] if named else argv)
        if self.positional:
            value = positional[0] if positional else self.default
        else:
            value = self.default if given is None else given
        if value is None:
            return None
        host, colon, port = value.rpartition(":")
        if not colon or value.endswith("]"):  # a host alone: the default's port
            address, port = value.strip("[]") or "all", (self.default or "").rpartition(":")[2]
        else:
            address = host.strip("[]") or self.empty_host
        return ArgvAddress(address_scope(address), address, port, f"command line listens on {address}:{port}")

    def _scan(self, words: tuple[str, ...]) -> tuple[str | None, list[str]]:
        """The last value given to one of `flags` (None: none given, or the flag's optional value was
        left out), and the positional words, as the parser splits `words`."""
        value: str | None = None
        positional: list[str] = []
        i = 0
        while i < len(words):
            word, following = words[i], words[i + 1] if i + 1 < len(words) else None
            i += 1
            if len(word) < 2 or not word.startswith("-"):
                positional.append(word)
                continue
            named = self._long(word, self.flags)
            other = None if named else self._long(word, self.value_options)
            if named or other:
                has_value = "=" in word
                if named and has_value:
                    value = word.split("=", 1)[1]
                elif not has_value and following is not None and not (named and self._omitted(following)):
                    value = following if named else value
                    i += 1
                elif named:
                    value = None  # an optional value left out: the default
                continue
            if word.startswith("--"):
                continue
            for j, ch in enumerate(word[1:], 1):  # a group of short options: -n -l VALUE as -nl VALUE
                option, rest = "-" + ch, word[j + 1:]
                if option not in self.flags and option not in self.value_options:
                    continue
                if rest:  # the rest of the word is the option's value
                    value = rest if option in self.flags else value
                elif following is not None and not (option in self.flags and self._omitted(following)):
                    value = following if option in self.flags else value
                    i += 1
                elif option in self.flags:
                    value = None
                break
        return value, positional

    def _long(self, word: str, options: tuple[str, ...]) -> str | None:
        """The long option of `options` (longer than `-x`) that `word` names, with or without
        `=value`: exactly, or by a prefix where the parser takes one (`abbrev`)."""
        name = word.split("=", 1)[0]
        for option in options:
            if len(option) > 2 and (name == option or (
                    self.abbrev and name.startswith("--") and len(name) > 2 and option.startswith(name))):
                return option
        return None

    def _omitted(self, following: str) -> bool:
        """An optional value is left out when the next word is an option."""
        return self.optional_value and len(following) > 1 and following.startswith("-")


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


def read_once(fs: ConfigFiles, path: str, seen: list[str], max_files: int) -> str | None:
    """The text of a config file the first time an include chain reaches it,
    at most ``max_files`` files per chain (include loops, include storms);
    None when already read, over the bound, or unreadable."""
    if path in seen or len(seen) >= max_files:
        return None
    text = fs.text(path)
    if text is not None:
        seen.append(path)
    return text
