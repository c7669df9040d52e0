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
    """A server that takes its listen address on its command line.

    `flags` take a "host:port" value (`-l HOST:PORT`, `-lHOST:PORT`, `--listen=HOST:PORT`;
    the last one given wins); `default` is the address without one (None: not known). Where
    `positional_after` is set, the address is instead the first positional word after
    that word (`python3 -m smtpd [options] [localaddr [remoteaddr]]`), skipping the values
    of `value_options`. A value without a port (`-l 0.0.0.0`, `[::1]`) is a host on the
    default's port; an empty host (`:25`) is `empty_host`: all interfaces for getopt
    smtpd, Go and pflag servers, but aiosmtpd's own default host (localhost).
    """

    flags: tuple[str, ...] = ()
    default: str | None = None
    positional_after: str = ""
    value_options: tuple[str, ...] = ()
    empty_host: str = "all"

    def __call__(self, argv: tuple[str, ...]) -> ArgvAddress | None:
        value = self.default
        for i, arg in enumerate(argv):
            for flag in self.flags:
                if arg == flag and i + 1 < len(argv):
                    value = argv[i + 1]
                elif arg.startswith(flag + "="):
                    value = arg.split("=", 1)[1]
                elif len(flag) == 2 and arg.startswith(flag) and len(arg) > 2:  # `-l0.0.0.0:25` (getopt, argparse)
                    value = arg[2:]
        if self.positional_after and self.positional_after in argv:
            rest = list(argv[argv.index(self.positional_after) + 1:])
            positional = [a for i, a in enumerate(rest)
                          if not a.startswith("-") and (i == 0 or rest[i - 1] not in self.value_options)]
            value = positional[0] if positional else self.default
        if value is None:
            return None
        host, colon, port = value.rpartition(":")
        if not colon or value.endswith("]"):  # a host alone: the default's port
            host, port = value, (self.default or "").rpartition(":")[2]
        address = host.strip("[]") or self.empty_host
        return ArgvAddress(address_scope(address), address, port, f"command line listens on {address}:{port}")


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
