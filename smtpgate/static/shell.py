"""The commands a script or `sh -c` line would run, and the wrappers around them.

The script is walked on its tree-sitter parse tree (`shellwalk`: branches
decided by the environment, `"$@"` replaced by the positional parameters,
conditions kept where nothing decides them); each simple command then has its
leading wrappers (`exec`, `nohup`, `gosu user`, `tini --`, `su -c '...'`, ...)
peeled off, and `sh -c '...'` is walked again.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from smtpgate.static import shellwalk

SHELLS = {"sh", "bash", "dash", "ash", "ksh", "zsh", "busybox", "mksh"}
MAX_COMMANDS = 100_000
_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")

# wrapper -> how many arguments (option values) it takes before the real command; "--" ends options
_WRAPPERS: dict[str, int] = {
    "exec": 0, "nohup": 0, "setsid": 0, "command": 0, "builtin": 0, "time": 0, "nice": 0, "ionice": 0,
    "tini": 0, "tini-static": 0, "dumb-init": 0, "catatonit": 0, "docker-init": 0, "stdbuf": 0, "chrt": 0, "taskset": 0,
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
    condition: str = ""  # runs only when this holds (a branch the known environment does not decide)
    loop: bool = False  # in a loop body
    skipped: bool = False  # in a branch the environment given rules out (see `condition`)

    @property
    def text(self) -> str:
        return " ".join(self.argv)

    @property
    def name(self) -> str:
        return self.argv[0].rsplit("/", 1)[-1] if self.argv else ""


def commands(text: str, problems: list[str] | None = None, where: str = "", env: dict[str, str] | None = None,
             depth: int = 0, *, args: list[str] | tuple[str, ...] | None = None, arg0: str = "sh",
             exists: Callable[[str], bool] | None = None, glob: Callable[[str], list[str]] | None = None,
             ) -> list[Command]:
    """Every simple command a script (or `-c` string) would run, with `sh -c` and `su -c` strings opened.

    `env` decides the branches on variables and `args` are the positional parameters (`"$@"`; None:
    unknown); see `shellwalk` for how branches are decided and what `Command.condition` holds.
    """
    out: list[Command] = []
    if depth > 4:
        return out
    for raw in shellwalk.walk(text, env=env, args=args, arg0=arg0, problems=problems, where=where,
                              exists=exists, glob=glob):
        if len(out) >= MAX_COMMANDS:
            if problems is not None:
                problems.append(f"{where}: more than {MAX_COMMANDS} commands; the rest is not read")
            break
        for cmd in _command(list(raw.argv), raw.line, raw.background, problems, where, env, depth):
            condition = " and ".join(c for c in (raw.condition, cmd.condition) if c)
            out.append(replace(cmd, exec_=cmd.exec_ and raw.exec_, condition=condition, loop=raw.loop or cmd.loop,
                               skipped=raw.skipped or cmd.skipped))
    return out[:MAX_COMMANDS]


def _command(argv: list[str], line: int, background: bool, problems: list[str] | None, where: str,
             env: dict[str, str] | None, depth: int) -> list[Command]:
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


def shell_string_params(argv: list[str] | tuple[str, ...]) -> tuple[str, list[str]]:
    """`sh -c 'script' NAME ARG...`: $0 and the positional parameters the script gets."""
    args = list(argv[1:])
    for i, arg in enumerate(args):
        if arg.startswith("-") and not arg.startswith("--") and "c" in arg[1:]:
            rest = args[i + 2:]
            return (rest[0], rest[1:]) if rest else ("sh", [])
    return "sh", []


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
