"""How one workload container is run: the image plus what its deployment adds.

A `RunSpec` comes from `docker run`-style flags (`from_options`), a Compose
service (`workload.compose`) or a Kubernetes container (`workload.k8s`). `None`
means "the image's own" (entrypoint, command, user, workdir); an empty
entrypoint tuple resets the image's, as `docker run --entrypoint ''` does.

Precedence, the same in Docker, Compose and Kubernetes: a deployment that sets
the entrypoint (Kubernetes `command`) drops the image's command (CMD) too,
unless it sets one (`args`); a deployment that sets only the command keeps the
image's entrypoint. The engine applies that rule itself when it creates the
container; `effective()` applies it for the static reader.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from smtpgate.errors import WorkloadError

ENV_NAME = re.compile(r"[^=\s]+")
HIDDEN = "***"
# Values shorter than this are shown as KEY=*** but not searched for in free text: ENABLE_RELAY=1 or
# LOG_LEVEL=info would otherwise hide every '1' and 'info' of a report; passwords are longer.
MIN_SECRET = 6


@dataclass(frozen=True)
class Mount:
    """A read-only bind mount: host `source` (absolute) at `target` in the container."""

    source: str
    target: str


@dataclass(frozen=True)
class DeclaredPort:
    """A port the deployment declares: `published` ones are reachable from outside
    (Compose `ports:`, a Kubernetes `hostPort`); the others only name a port
    (Compose `expose:`, `containerPort`)."""

    port: int
    published: bool
    text: str  # as written, for the report: "ports: 2525:25", "containerPort: 25"


@dataclass(frozen=True)
class Healthcheck:
    """Docker's healthcheck config (durations in nanoseconds, as the API wants them)."""

    test: tuple[str, ...]
    interval: int = 0
    timeout: int = 0
    retries: int = 0
    start_period: int = 0

    def api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"test": list(self.test)}
        for key in ("interval", "timeout", "retries", "start_period"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out


@dataclass(frozen=True)
class RunSpec:
    """One workload container: which image, and how the deployment runs it."""

    image: str
    name: str = ""  # "compose.yaml#web", "Deployment/web#app"; "" for an image named on the command line
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    env: tuple[tuple[str, str], ...] = ()
    user: str | None = None
    workdir: str | None = None
    mounts: tuple[Mount, ...] = ()
    ports: tuple[DeclaredPort, ...] = ()
    healthcheck: Healthcheck | None = None
    source: str | None = None  # the manifest file, as the user named it
    line: int | None = None  # the line of the container's `image:` in it
    role: str = "container"  # "container", "sidecar", or "init" (runs to completion before the others)
    unknown_env: tuple[str, ...] = ()  # variables whose value is not known offline, with where they come from
    notes: tuple[str, ...] = ()
    show_env: bool = False
    hidden: tuple[str, ...] = ()  # more values never to write (the contents of Compose secret files)
    build: Mapping[str, Any] | None = field(default=None, hash=False, compare=False)  # Compose `build:`

    @property
    def label(self) -> str:
        """What reports call the target: the workload name, else the image."""
        return self.name or self.image

    @property
    def customised(self) -> bool:
        """Does the deployment change anything about how the image runs?"""
        return any(v is not None for v in (self.entrypoint, self.cmd, self.user, self.workdir, self.healthcheck)) \
            or bool(self.env or self.mounts)

    def target_info(self, kind: str = "image") -> Any:
        """The `TargetInfo` a scan of this spec starts from (the engine fills in the image's facts)."""
        from smtpgate.model import TargetInfo

        return TargetInfo(kind=kind, ref=self.label, image=self.image if self.name else None,
                          workload=self.name or None, source=self.source, line=self.line, env=self.env_shown())

    def env_shown(self) -> tuple[str, ...]:
        """`KEY=***` (or `KEY=value` with --show-env), in the order given."""
        return tuple(f"{k}={v if self.show_env else HIDDEN}" for k, v in self.env)

    def secrets(self) -> tuple[str, ...]:
        """Values never to write anywhere (longest first, so a value that holds
        another is replaced whole)."""
        if self.show_env:
            return ()
        values = {v for _, v in self.env if len(v) >= MIN_SECRET} | {v for v in self.hidden if len(v) >= MIN_SECRET}
        values |= {p for v in list(values) if (p := _url_password(v)) and len(p) >= MIN_SECRET}
        return tuple(sorted(values, key=len, reverse=True))

    def effective(self, config: Any) -> Any:
        """The image's `ImageConfig` as this deployment runs it (for static evidence)."""
        entrypoint, cmd = config.entrypoint, config.cmd
        if self.entrypoint is not None:
            entrypoint, cmd = tuple(a for a in self.entrypoint if a), ()
        if self.cmd is not None:
            cmd = self.cmd
        env = {**config.env, **dict(self.env)}
        return replace(config, entrypoint=entrypoint, cmd=cmd, env=env,
                       user=self.user if self.user is not None else config.user,
                       workdir=self.workdir if self.workdir is not None else config.workdir,
                       healthcheck=self.healthcheck.test if self.healthcheck else config.healthcheck)

    def create_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for the engine's container create (docker SDK names)."""
        out: dict[str, Any] = {}
        if self.entrypoint is not None:  # [""] resets the image's, like `docker run --entrypoint ''`
            out["entrypoint"] = list(self.entrypoint) or [""]
        if self.cmd is not None:
            out["command"] = list(self.cmd)
        if self.env:
            out["environment"] = [f"{k}={v}" for k, v in self.env]
        if self.user is not None:
            out["user"] = self.user
        if self.workdir is not None:
            out["working_dir"] = self.workdir
        if self.mounts:
            out["volumes"] = {m.source: {"bind": m.target, "mode": "ro"} for m in self.mounts}
        if self.healthcheck is not None:
            out["healthcheck"] = self.healthcheck.api()
        return out


def _url_password(value: str) -> str | None:
    """The password of a URL-shaped value (`postgres://user:PASSWORD@host/db`): programs
    print such URLs without the host part, so the password alone is a secret too."""
    if "://" not in value or "@" not in value:
        return None
    try:
        return urllib.parse.urlsplit(value.strip()).password
    except ValueError:
        return None


def scrub(text: str, secrets: Sequence[str]) -> str:
    """`text` with every secret value replaced by ***."""
    for value in secrets:
        if value in text:
            text = text.replace(value, HIDDEN)
    return text


# -- docker run-style options ---------------------------------------------------


def parse_env(items: Iterable[str], environ: Mapping[str, str], where: str = "--env") -> list[tuple[str, str]]:
    """`KEY=VALUE`, or `KEY` alone: its value from `environ` (skipped when unset), as docker run does."""
    out: list[tuple[str, str]] = []
    for item in items:
        key, eq, value = item.partition("=")
        if not ENV_NAME.fullmatch(key):
            raise WorkloadError(f"{where} {_shown(item)}: expected KEY=VALUE or KEY")
        if eq:
            out.append((key, value))
        elif key in environ:
            out.append((key, environ[key]))
    return out


def _shown(item: str) -> str:
    key, eq, _ = item.partition("=")
    return f"{key!r}" + ("=***" if eq else "")


def read_env_file(path: str, environ: Mapping[str, str], *, compose: bool = False) -> list[tuple[str, str]]:
    """Docker's env-file format: `KEY=VALUE` lines taken literally (no quotes
    removed, no expansion), `KEY` alone is taken from the environment, `#`
    lines and blank lines skipped. Compose's format (``compose=True``) also
    strips matching quotes around the value and `export ` before the key."""
    try:
        with open(path, encoding="utf-8-sig") as fh:
            lines = fh.read(1 << 20).splitlines()
    except OSError as exc:
        raise WorkloadError(f"cannot read env file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise WorkloadError(f"env file {path} is not UTF-8 text") from exc
    out: list[tuple[str, str]] = []
    for number, raw in enumerate(lines, 1):
        line = raw.lstrip() if compose else raw.lstrip(" \t")
        if not line.strip() or line.startswith("#"):
            continue
        if compose and line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, eq, value = line.partition("=")
        key = key.rstrip() if compose else key
        if not ENV_NAME.fullmatch(key):
            raise WorkloadError(f"{path}:{number}: expected KEY=VALUE or KEY")
        if compose:
            value = _compose_value(value)
        if eq:
            out.append((key, value))
        elif key in environ:
            out.append((key, environ[key]))
    return out


def _compose_value(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        inner = value[1:-1]
        return inner.replace("\\n", "\n").replace('\\"', '"') if value[0] == '"' else inner
    return value.split(" #", 1)[0].rstrip()


def parse_mount(text: str, base: str = ".") -> Mount:
    """`SRC:DST` or `SRC:DST:ro`: a read-only bind of an existing host path; anything else is refused."""
    parts = text.split(":")
    if len(parts) == 3 and parts[2] == "ro":
        parts = parts[:2]
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise WorkloadError(f"--mount {text!r}: expected SRC:DST (a read-only bind; nothing else is allowed)")
    source = os.path.abspath(os.path.join(base, parts[0]))
    if not parts[1].startswith("/"):
        raise WorkloadError(f"--mount {text!r}: the target {parts[1]!r} must be an absolute path")
    problem = bind_problem(source)
    if problem:
        raise WorkloadError(f"--mount {text!r}: {problem}")
    return Mount(source, parts[1])


def bind_problem(source: str, within: str | None = None) -> str | None:
    """Why a host path must not be bound into the image under test, or None.

    Only regular files and directories: a socket bound read-only still lets the
    image connect to it (the engine's own socket would hand it the host), and
    devices are not configuration. ``within``: the path (symlinks resolved) must
    lie inside that directory (a Compose file's project directory)."""
    real = os.path.realpath(source)
    if within is not None:
        root = os.path.realpath(within)
        if os.path.commonpath([root, real]) != root:
            return f"{source} is outside the project directory {root}; not mounted"
    if not os.path.exists(real):
        return f"{source} does not exist"
    if not (os.path.isfile(real) or os.path.isdir(real)):
        return f"{source} is not a regular file or directory (sockets and devices are never mounted)"
    return None


def env_items(pairs: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Later definitions win, first position kept (as the engine merges them)."""
    merged: dict[str, str] = {}
    for key, value in pairs:
        merged[key] = value
    return tuple(merged.items())
