"""One registry entry (`Mta`) and the text matching it knows how to do."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from smtpgate.model import Process
from smtpgate.software.listen import ArgvAddress, ConfigFiles, ConfiguredListen

ListenReader = Callable[[ConfigFiles, list[str]], list[ConfiguredListen]]
ArgvReader = Callable[[tuple[str, ...]], "ArgvAddress | None"]

TEXT_LIMIT = 4096  # an SMTP reply line is at most 512 octets (RFC 5321); anything longer is junk


def patterns(*sources: str) -> tuple[re.Pattern[str], ...]:
    """Compile case-insensitive patterns for an `Mta` field."""
    return tuple(re.compile(source, re.IGNORECASE) for source in sources)


def import_patterns(*sources: str) -> tuple[re.Pattern[str], ...]:
    """Compile patterns searched in a whole script (`^`/`$` at each line) for `Mta.imports`."""
    return tuple(re.compile(source, re.MULTILINE) for source in sources)


def py_import(module: str) -> str:
    """A Python `import module` / `from module[.sub] import ...` line."""
    name = re.escape(module)
    return (rf"^[ \t]*(?:import[ \t]+(?:[\w.]+[ \t]*,[ \t]*)*{name}(?:\.[\w.]+)?\b"
            rf"|from[ \t]+{name}(?:\.[\w.]+)?[ \t]+import\b)")


def js_require(package: str) -> str:
    """A JavaScript `require("package")`, `import ... from "package"` or `import("package")` (subpaths too)."""
    name = re.escape(package)
    return (r"(?:\brequire[ \t]*\(|\bimport[ \t]*\(|\bfrom[ \t]+|^[ \t]*import[ \t]+)"
            rf"""[ \t]*['"`]{name}(?:/[^'"`]*)?['"`]""")


def first_match(pats: Iterable[re.Pattern[str]], texts: Iterable[str]) -> re.Match[str] | None:
    """The first hit of any pattern (in order) in any text."""
    texts = tuple(texts)
    for pat in pats:
        for text in texts:
            found = pat.search(text)
            if found:
                return found
    return None


def process_texts(process: Process) -> tuple[str, ...]:
    """What a process is known by: comm, the full command line, the executable's path."""
    texts = (process.name, " ".join(process.cmdline), process.exe or "")
    return tuple(text[:TEXT_LIMIT] for text in texts if text)


@dataclass(frozen=True)
class Mta:
    """An SMTP implementation: everything smtpgate knows of it, in its one module.

    How to recognise it (greeting, EHLO, process), what installs, enables and starts it
    (packages, units, binaries, starts), where it listens (`listens` reads its
    configuration files, `argv_listen` its command line) and how to fix an exposed
    listener (`listen_setting`, `fix`, `verify`).

    `banners` are searched in the greeting text (reply codes stripped, lines joined)
    and may name a group 'version'; `ehlo` in each EHLO reply line (codes stripped);
    `processes` in the process name, command line and executable path.
    """

    id: str
    name: str
    banners: tuple[re.Pattern[str], ...]
    ehlo: tuple[re.Pattern[str], ...] = ()
    processes: tuple[re.Pattern[str], ...] = ()
    packages: tuple[str, ...] = ()
    listen_setting: str = ""
    fix: tuple[str, ...] = ()
    verify: tuple[str, ...] = ()
    # Static analysis (smtpgate.static): service names (systemd units without suffix, init.d
    # scripts, OpenRC/runit/s6 service directories), daemon executables whose presence means
    # installed, and command lines that start the listening daemon (empty: `processes`).
    units: tuple[str, ...] = ()
    binaries: tuple[str, ...] = ()
    starts: tuple[re.Pattern[str], ...] = ()
    # Language ecosystems (smtpgate.static.langpkg): packages as "npm:<name>", "pypi:<name>"
    # (normalised, PEP 503), "gem:<name>", "jar:<artifactId prefix>"; `imports`: patterns
    # that find the server library in a script the image command runs (`node server.js`,
    # `python app.py`); `built_on`: ids of libraries whose banner or EHLO this server shows,
    # so that its own process or package names it instead of the library.
    lang_packages: tuple[str, ...] = ()
    imports: tuple[re.Pattern[str], ...] = ()
    built_on: tuple[str, ...] = ()
    # True where the daemon serves SMTP only when its configuration says so (Dovecot's
    # submission, nginx's mail proxy): installed/enabled alone is no SMTP finding.
    needs_smtp_config: bool = False
    # Where it listens: `listens(fs, problems)` reads its configuration files in a root
    # filesystem (parse problems appended to `problems`); `argv_listen(argv)` reads the
    # command line that starts it (None: the command line does not say).
    listens: ListenReader | None = None
    argv_listen: ArgvReader | None = None
    # Files and directories (ending in "/") its readers read outside /etc/ and /usr/local/etc/:
    # an image read from a stream keeps their contents (smtpgate.static.tarfs), others only indexed.
    config_paths: tuple[str, ...] = ()

    def command_listen(self, argv: tuple[str, ...], context: str, path: str | None = None,
                       line: int | None = None) -> ConfiguredListen | None:
        """Where the command line `argv` makes it listen (None: it does not say); `context` says where
        the command line was found (the command itself, a supervisord program), `path`:`line` its file."""
        found = self.argv_listen(argv) if self.argv_listen is not None else None
        if found is None:
            return None
        text = f"{self.name} {found.text} ({context})"
        return ConfiguredListen(self.id, found.scope, found.address, found.port, text, path, line)

    def starts_daemon(self, command: str) -> bool:
        """Does this command line (as written in an entrypoint, unit or script) start the daemon?"""
        return first_match(self.starts or self.processes, (command[:TEXT_LIMIT],)) is not None

    def greeting_match(self, text: str) -> re.Match[str] | None:
        return first_match(self.banners, (text,))

    def ehlo_match(self, lines: Iterable[str]) -> re.Match[str] | None:
        return first_match(self.ehlo, lines)

    def runs_as(self, process: Process) -> bool:
        return first_match(self.processes, process_texts(process)) is not None


def ss_check(ports: str) -> str:
    """The verify step every MTA shares: what listens on its ports, and where."""
    sports = " or ".join(f"sport = :{port}" for port in ports.split(","))
    return f"`ss -ltnp '( {sports} )'` lists only 127.0.0.1 / [::1] (or nothing)"


RERUN = "Re-run smtpgate on the rebuilt image: the finding is gone or reported as loopback-only"
