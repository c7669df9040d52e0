"""supervisord configuration: the programs it starts (autostart), with file and line.

Read like supervisord does: the main file (`-c`, else the first of the default
locations), then every file its `[include] files =` globs name (relative to
the including file's directory). INI continuation lines, `;`/`#` comments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from smtpgate.static.fs import RootFS

DEFAULT_CONFIGS = (
    "/usr/etc/supervisord.conf", "/usr/supervisord.conf", "/supervisord.conf", "/etc/supervisord.conf",
    "/etc/supervisor/supervisord.conf",
)
_SECTION = re.compile(r"^\[([^\]]+)\]\s*(?:[;#].*)?$")
_FALSE = {"false", "no", "off", "0"}
MAX_FILES = 200


@dataclass(frozen=True)
class Program:
    name: str
    command: str
    autostart: bool
    path: str
    line: int


def ini_sections(text: str) -> list[tuple[str, int, dict[str, tuple[str, int]]]]:
    """(section, line, {key: (value, line)}) in file order; malformed lines are skipped."""
    out: list[tuple[str, int, dict[str, tuple[str, int]]]] = []
    current: dict[str, tuple[str, int]] | None = None
    last = ""
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.rstrip()
        stripped = line.strip()
        if not stripped or stripped[0] in ";#":
            continue
        found = _SECTION.match(stripped)
        if found:
            current = {}
            out.append((found.group(1).strip(), number, current))
            last = ""
            continue
        if current is None:
            continue
        if raw[:1] in " \t" and last:  # continuation
            value, at = current[last]
            current[last] = (f"{value} {stripped}", at)
            continue
        key, sep, value = stripped.partition("=")
        if not sep:
            key, sep, value = stripped.partition(":")
        if sep:
            last = key.strip().lower()
            current[last] = (re.sub(r"\s+;.*$", "", value.strip()), number)
    return out


def config_files(fs: RootFS, main: str | None, problems: list[str]) -> list[str]:
    """The main config and what it includes, in read order."""
    first = main or next((p for p in DEFAULT_CONFIGS if fs.isfile(p)), None)
    if first is None:
        return []
    files: list[str] = []
    todo = [first]
    while todo and len(files) < MAX_FILES:
        path = todo.pop(0)
        if path in files:
            continue
        text = fs.text(path)
        if text is None:
            if path == first and main:
                problems.append(f"{path}: supervisord config named on the command line is not in the image")
            continue
        files.append(path)
        for section, _, keys in ini_sections(text):
            if section == "include" and "files" in keys:
                base = path.rsplit("/", 1)[0] or "/"
                for pattern in keys["files"][0].split():
                    full = pattern if pattern.startswith("/") else f"{base}/{pattern}"
                    todo += fs.glob(full)
    return files


_ENV_REF = re.compile(r"%\(ENV_([A-Za-z_][A-Za-z0-9_]*)\)s")


def expand_env(value: str, env: dict[str, str] | None) -> str:
    """supervisord's `%(ENV_X)s` with the container's environment (unset: left as written)."""
    if not env or "%(" not in value:
        return value
    return _ENV_REF.sub(lambda m: env.get(m.group(1), m.group(0)), value)


def programs(fs: RootFS, main: str | None, problems: list[str], env: dict[str, str] | None = None) -> list[Program]:
    """Every `[program:x]` (and `[fcgi-program:x]`) in the config tree; `%(ENV_X)s` in `command`
    and `autostart` expanded with `env` (an `autostart` that stays unexpanded counts as true)."""
    out = []
    for path in config_files(fs, main, problems):
        for section, line, keys in ini_sections(fs.text(path) or ""):
            kind, _, name = section.partition(":")
            if kind not in ("program", "fcgi-program") or not name:
                continue
            if "command" not in keys:
                problems.append(f"{path}:{line}: [{section}] has no command")
                continue
            command, at = keys["command"]
            command = expand_env(command, env)
            autostart = expand_env(keys.get("autostart", ("true", 0))[0], env).strip().lower() not in _FALSE
            out.append(Program(name.strip(), command, autostart, path, at))
    return out
