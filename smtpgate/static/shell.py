"""Just enough shell to find the commands a script or `sh -c` line runs.

Not an interpreter: a script is split into simple commands (`;`, `&`, `&&`,
`||`, `|`, newlines, subshell parentheses), each with its line number; leading
variable assignments and wrappers (`exec`, `nohup`, `gosu user`, `tini --`,
`su -c '...'`, ...) are peeled off; `sh -c '...'` is split again. Quoting
follows POSIX (shlex); a line shlex cannot split (unbalanced quotes) is split
on white space and reported.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, replace

SHELLS = {"sh", "bash", "dash", "ash", "ksh", "zsh", "busybox", "mksh"}
MAX_COMMANDS = 5000
_OPERATORS = {";", "&", "&&", "||", "|", "(", ")", ";;", "|&", "{", "}", "!"}
_KEYWORDS = {"then", "do", "else", "elif", "if", "while", "until", "time"}
_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_HEREDOC = re.compile(r"<<-?\s*['\"]?([A-Za-z_0-9]+)['\"]?")
_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")

# wrapper -> how many arguments (option values) it takes before the real command; "--" ends options
_WRAPPERS: dict[str, int] = {
    "exec": 0, "nohup": 0, "setsid": 0, "command": 0, "builtin": 0, "time": 0, "nice": 0, "ionice": 0,
    "tini": 0, "dumb-init": 0, "catatonit": 0, "stdbuf": 0, "chrt": 0, "taskset": 0,
    "gosu": 1, "su-exec": 1, "s6-setuidgid": 1, "setuidgid": 1, "chpst": 0, "runuser": 0,
    "sudo": 0, "doas": 0, "env": 0, "timeout": 1, "unbuffer": 0, "xargs": 0, "with-contenv": 0,
}
_OPTS_WITH_VALUE = {"-u", "-g", "-n", "-c", "-p", "-U", "-G", "-s", "-k"}


@dataclass(frozen=True)
class Command:
    """One simple command: its words, the line it starts on, whether it runs in the background."""

    argv: tuple[str, ...]
    line: int
    exec_: bool = False  # `exec cmd`: it replaces the shell (becomes PID 1 when the shell was)
    background: bool = False

    @property
    def text(self) -> str:
        return " ".join(self.argv)

    @property
    def name(self) -> str:
        return self.argv[0].rsplit("/", 1)[-1] if self.argv else ""


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) with backslash-newline continuations joined, comments dropped."""
    out: list[tuple[int, str]] = []
    buf, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not buf:
            start = number
            if line.lstrip().startswith("#"):
                continue
        if line.endswith("\\") and not line.endswith("\\\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        if buf.strip():
            out.append((start, buf))
        buf = ""
    if buf.strip():
        out.append((start, buf))
    return out


def words(line: str, problems: list[str] | None = None, where: str = "") -> list[str]:
    lex = shlex.shlex(line, posix=True, punctuation_chars=";&|()<>")
    lex.whitespace_split = True
    lex.commenters = "#"
    try:
        return list(lex)
    except ValueError as exc:
        if problems is not None:
            problems.append(f"{where}: cannot split shell line ({exc}); read word by word")
        return line.split()


def commands(text: str, problems: list[str] | None = None, where: str = "", env: dict[str, str] | None = None,
             depth: int = 0) -> list[Command]:
    """Every simple command in a script (or `-c` string), with `sh -c` and `su -c` strings opened."""
    out: list[Command] = []
    if depth > 4:
        return out
    heredoc = ""
    groups = 0  # inside ( ... ): `exec` replaces a subshell, not the script
    for number, line in logical_lines(text[:1 << 20]):
        if len(out) >= MAX_COMMANDS:
            break
        if heredoc:
            heredoc = "" if line.strip() == heredoc else heredoc
            continue
        found = _HEREDOC.search(line)
        if found:  # the body is data, not commands
            heredoc, line = found.group(1), line[: found.start()]
        current: list[str] = []
        redirect = False
        for word in [*words(line, problems, f"{where}:{number}"), ";"]:
            if redirect:  # the target of a redirection is no argument
                redirect = False
            elif word and set(word) <= set("<>&") and word not in ("&", "&&"):
                redirect = True
                if current and len(current[-1]) == 1 and current[-1].isdigit():
                    current.pop()  # the "2" of "2>&1"
            elif word in _OPERATORS:
                if current:
                    simple = _command(current, number, word == "&", problems, where, env, depth)
                    out += [c if not groups else replace(c, exec_=False) for c in simple]
                current = []
                groups += {"(": 1, ")": -1}.get(word, 0)
                groups = max(groups, 0)
            elif word in _KEYWORDS and not current:
                continue
            else:
                current.append(word)
    return out[:MAX_COMMANDS]


def expand(word: str, env: dict[str, str] | None) -> str:
    if not env or "$" not in word:
        return word
    return _VAR.sub(lambda m: env.get(m.group(1) or m.group(2), m.group(0)), word)


def _command(argv: list[str], line: int, background: bool, problems: list[str] | None, where: str,
             env: dict[str, str] | None, depth: int) -> list[Command]:
    argv = [expand(w, env) for w in argv]
    argv, is_exec = unwrap(argv)
    if not argv:
        return []
    name = argv[0].rsplit("/", 1)[-1]
    inner = shell_string(argv)
    if inner is None and name in ("su", "runuser") and "-c" in argv[:-1]:
        inner = argv[argv.index("-c") + 1]
    if inner is not None:
        found = commands(inner, problems, where, env, depth + 1)
        return [replace(c, line=line, exec_=c.exec_ and is_exec, background=c.background or background)
                for c in found]
    return [Command(tuple(argv), line, is_exec, background)]


def unwrap(argv: list[str]) -> tuple[list[str], bool]:
    """Peel variable assignments and wrappers; True when `exec` was among them."""
    is_exec = False
    for _ in range(16):
        while argv and _ASSIGN.match(argv[0]):
            argv = argv[1:]
        if not argv:
            return argv, is_exec
        name = argv[0].rsplit("/", 1)[-1]
        if name not in _WRAPPERS:
            return argv, is_exec
        is_exec = is_exec or name == "exec"
        rest, fixed = argv[1:], _WRAPPERS[name]
        while rest and rest[0].startswith("-") and rest[0] != "-":
            opt = rest.pop(0)
            if opt == "--":
                break
            if opt in _OPTS_WITH_VALUE and rest and name not in ("env",):
                rest.pop(0)
        while rest and name == "env" and _ASSIGN.match(rest[0]):
            rest = rest[1:]
        if name in ("nice", "chrt", "taskset", "timeout") and rest and re.match(r"^[\d.x,-]+[smhd]?$", rest[0]):
            rest = rest[1:]
        if name == "chpst":
            rest = rest[1:] if rest and not rest[0].startswith("/") and " " not in rest[0] else rest
        argv = rest[fixed:] if fixed else rest
    return argv, is_exec


def shell_string(argv: list[str] | tuple[str, ...]) -> str | None:
    """The script of `sh -c 'script'` (also `bash -lc`, `busybox sh -c`), or None."""
    if not argv:
        return None
    name = argv[0].rsplit("/", 1)[-1]
    args = list(argv[1:])
    if name == "busybox" and args and args[0] in SHELLS:
        args = args[1:]
        name = "sh"
    if name not in SHELLS:
        return None
    for i, arg in enumerate(args):
        if arg.startswith("-") and not arg.startswith("--") and "c" in arg[1:]:
            return args[i + 1] if i + 1 < len(args) else ""
        if not arg.startswith("-"):
            return None
    return None


def script_argument(argv: tuple[str, ...]) -> str | None:
    """`sh /path/script.sh args` or `. /script`: the script it runs, or None."""
    if not argv:
        return None
    name = argv[0].rsplit("/", 1)[-1]
    if name in (".", "source") and len(argv) > 1:
        return argv[1]
    if name in SHELLS:
        rest = [a for a in argv[1:] if not a.startswith("-")]
        if rest and (name != "busybox" or rest[0] not in SHELLS):
            return rest[0]
    return None


def sleep_seconds(argv: tuple[str, ...]) -> float | None:
    """`sleep 30` / `sleep 2m`: the delay in seconds, else None."""
    if len(argv) < 2 or argv[0].rsplit("/", 1)[-1] != "sleep":
        return None
    total = 0.0
    for arg in argv[1:]:
        m = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd]?)", arg)
        if not m:
            return None
        total += float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    return total
