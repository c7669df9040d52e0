"""Compose files: each service with an `image:` becomes one `RunSpec`.

Read the way `docker compose` reads them (compose-go): `.env` beside the file
fills the interpolation environment (the process environment wins over it);
`${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}`,
`${VAR?message}`, `${VAR:+alternative}`, `${VAR+alternative}`, `$VAR` and
`$$` (a literal `$`) are interpolated in every value, then the file is
validated against the Compose Specification's own JSON schema
(schema/compose-spec.json, vendored). Services with `profiles:` are active only
when one of their profiles is enabled (`--profile`, `COMPOSE_PROFILES`) or when
they are named (`--service`), as Compose does. Networks, `ports:` and
`depends_on` are not reproduced (the scan stays isolated); declared ports are
kept to be compared with what listens.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from smtpgate.errors import WorkloadError
from smtpgate.workload.spec import (
    DeclaredPort,
    Healthcheck,
    Mount,
    RunSpec,
    bind_problem,
    env_items,
    read_env_file,
)
from smtpgate.workload.yamldoc import documents, dotted, key_line_of, line_of, read_text

SCHEMA = os.path.join(os.path.dirname(__file__), "schema", "compose-spec.json")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
NOT_REPRODUCED = ("networks", "depends_on", "links", "network_mode", "extra_hosts", "dns", "privileged", "cap_add",
                  "devices", "pid", "ipc", "security_opt", "sysctls", "ulimits")


@dataclass(frozen=True)
class ComposeOptions:
    services: tuple[str, ...] = ()  # only these (default: every active service)
    profiles: tuple[str, ...] = ()
    build: bool = False  # build-only services are built (else refused)
    show_env: bool = False


def load_compose(path: str, opts: ComposeOptions, environ: Mapping[str, str]) -> tuple[list[RunSpec], list[str]]:
    """The services to scan, and notes about the file (skipped services)."""
    base = os.path.dirname(os.path.abspath(path))
    docs = documents(read_text(path), path)
    if len(docs) != 1 or not isinstance(docs[0][0], dict):
        raise WorkloadError(f"{path}:1: a Compose file is one YAML mapping (with a `services:` key)")
    data, node = docs[0]
    env = {**dotenv(os.path.join(base, ".env"), environ), **environ}
    data = _interpolate(data, env, path, node, [])
    validate(data, path, node)
    services = data.get("services") or {}
    wanted = list(opts.services)
    for name in wanted:
        if name not in services:
            raise WorkloadError(f"{path}: --service {name!r}: no such service (services: {', '.join(services)})")
    profiles = set(opts.profiles) | {p for p in environ.get("COMPOSE_PROFILES", "").split(",") if p}
    specs, notes, build_only = [], [], []
    for name, svc in services.items():
        if wanted and name not in wanted:
            continue
        svc_profiles = set(svc.get("profiles") or ())
        if svc_profiles and not svc_profiles & profiles and name not in wanted:
            notes.append(f"{path}#{name}: not scanned, its profiles ({', '.join(sorted(svc_profiles))}) are "
                         "not enabled (--profile)")
            continue
        if svc.get("extends"):
            svc = extended(name, services, path, env)
            notes.append(f"{path}#{name}: extends {_short(services[name]['extends'])}, merged as Compose merges")
        if not svc.get("image") and not (opts.build and svc.get("build")):
            build_only.append(name)
            continue
        spec = service_spec(path, base, name, svc, node, env_file_env=environ, show_env=opts.show_env)
        specs.append(with_secrets(spec, svc.get("secrets") or (), data.get("secrets") or {}, base))
    if "include" in data:
        notes.append(f"{path}: `include:` is not followed; scan the included files with --compose too")
    if not specs and not build_only:
        why = "; ".join(notes) or "it declares no service"
        raise WorkloadError(f"{path}: no service to scan ({why})")
    if build_only:
        raise WorkloadError(f"{path}: service(s) {', '.join(build_only)} have no `image:` (only `build:`): "
                            "build and tag them first, or pass --compose-build to build them with the engine")
    return specs, notes


MERGED_LISTS = ("ports", "expose", "volumes", "env_file", "dns", "cap_add", "devices", "extra_hosts")


def extended(name: str, services: Mapping[str, Any], path: str, env: Mapping[str, str],
             seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """A service with its `extends:` chain merged in (same file, or `file:` relative to this
    one; paths inside another file's service are not rebased)."""
    svc = dict(services[name])
    ext = svc.pop("extends", None)
    if not ext:
        return svc
    key = f"{path}#{name}"
    if key in seen or len(seen) > 10:
        raise WorkloadError(f"{path}: services.{name}.extends: a cycle or a chain too long ({' -> '.join(seen)})")
    parent, file = (ext, None) if isinstance(ext, str) else (ext.get("service"), ext.get("file"))
    where, pool = path, services
    if file:
        where = os.path.join(os.path.dirname(path), str(file))
        docs = documents(read_text(where), where)
        data = _interpolate(docs[0][0] if docs else None, env, where, docs[0][1] if docs else None, [])
        pool = (data or {}).get("services") or {} if isinstance(data, dict) else {}
    if parent not in pool:
        raise WorkloadError(f"{path}: services.{name}.extends: no service {parent!r} in {where}")
    return _merge(extended(str(parent), pool, where, env, (*seen, key)), svc)


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        old = out.get(key)
        if key in ("environment", "labels"):
            out[key] = {**_as_map(old), **_as_map(value)}
        elif isinstance(value, dict) and isinstance(old, dict):
            out[key] = _merge(old, value)
        elif key in MERGED_LISTS and old is not None:
            olds = old if isinstance(old, list) else [old]
            out[key] = olds + [v for v in (value if isinstance(value, list) else [value]) if v not in olds]
        else:
            out[key] = value
    return out


def _as_map(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return dict(value)
    out: dict[str, Any] = {}
    for item in value or ():
        key, eq, val = str(item).partition("=")
        out[key] = val if eq else None
    return out


def with_secrets(spec: RunSpec, wanted: Sequence[Any], declared: Mapping[str, Any], base: str) -> RunSpec:
    """Compose secrets backed by a file are bound read-only at /run/secrets/<target>, as
    Compose does (images read `*_FILE` variables from there); their contents are secrets
    too. Secrets from the environment or an external store are not reproduced (noted)."""
    mounts, hidden, notes = list(spec.mounts), list(spec.hidden), list(spec.notes)
    for item in wanted:
        name, target = (item, item) if isinstance(item, str) else (item.get("source"), item.get("target"))
        target = str(target or name)
        target = target if target.startswith("/") else f"/run/secrets/{target}"
        source = (declared.get(name) or {}).get("file") if isinstance(declared.get(name), dict) else None
        if not source:
            notes.append(f"secret {name}: not file-backed, not reproduced (the container starts without it)")
            continue
        full = os.path.abspath(os.path.join(base, str(source)))
        problem = bind_problem(full, within=base)
        if problem or not os.path.isfile(full):
            notes.append(f"secret {name}: {problem or 'not a file'}".replace(full, str(source)))
            continue
        mounts.append(Mount(full, target))
        with open(full, encoding="utf-8", errors="replace") as fh:
            text = fh.read(64 * 1024)
        hidden += [v for v in {text, text.strip()} if v]
    return replace(spec, mounts=tuple(mounts), hidden=tuple(hidden), notes=tuple(notes))


def dotenv(path: str, environ: Mapping[str, str]) -> dict[str, str]:
    """The project's `.env` (interpolation only), when there is one."""
    return dict(read_env_file(path, environ, compose=True)) if os.path.isfile(path) else {}


# -- interpolation --------------------------------------------------------------


def _interpolate(value: Any, env: Mapping[str, str], path: str, node: Any, where: list[str | int]) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, env, path, node, [*where, k]) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, env, path, node, [*where, i]) for i, v in enumerate(value)]
    if isinstance(value, str) and "$" in value:
        place = f"{path}:{line_of(node, where)}: {dotted(where)}"
        return interpolate(value, env, place)
    return value


def interpolate(text: str, env: Mapping[str, str], place: str = "") -> str:
    """Compose's variable substitution on one string."""
    out, i = [], 0
    while i < len(text):
        char = text[i]
        if char != "$":
            out.append(char)
            i += 1
            continue
        nxt = text[i + 1:i + 2]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            value, i = _braced(text, i + 2, env, place)
            out.append(value)
        elif (m := _NAME.match(text, i + 1)) is not None:
            out.append(env.get(m.group(), ""))
            i = m.end()
        else:
            raise WorkloadError(f"{place}: invalid interpolation {text[i:i + 20]!r} (write $$ for a literal $)")
    return "".join(out)


def _braced(text: str, i: int, env: Mapping[str, str], place: str) -> tuple[str, int]:
    m = _NAME.match(text, i)
    if m is None:
        raise WorkloadError(f"{place}: invalid interpolation format in {text!r}")
    name, j = m.group(), m.end()
    if text[j:j + 1] == "}":
        return env.get(name, ""), j + 1
    op = text[j:j + 2] if text[j:j + 2] in (":-", ":?", ":+") else text[j:j + 1]
    if op not in (":-", ":?", ":+", "-", "?", "+"):
        raise WorkloadError(f"{place}: invalid interpolation format in {text!r}")
    start = k = j + len(op)
    depth = 1
    while k < len(text):
        if text.startswith("${", k):
            depth, k = depth + 1, k + 2
            continue
        if text[k] == "}":
            depth -= 1
            if depth == 0:
                break
        k += 1
    if depth:
        raise WorkloadError(f"{place}: unterminated ${{...}} in {text!r}")
    arg = interpolate(text[start:k], env, place)
    present = bool(env.get(name)) if op.startswith(":") else name in env
    if op.endswith("-"):
        return (env[name] if present else arg), k + 1
    if op.endswith("+"):
        return (arg if present else ""), k + 1
    if not present:
        raise WorkloadError(f"{place}: required variable {name} is missing a value: {arg or 'not set'}")
    return env[name], k + 1


# -- validation -------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema

    with open(SCHEMA, encoding="utf-8") as fh:
        schema = json.load(fh)
    return jsonschema.Draft7Validator(schema)


def validate(data: Any, path: str, node: Any) -> None:
    """Against the Compose Specification schema; the first errors, with file:line and the key path."""
    errors = sorted(_validator().iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    if not errors:
        return
    lines = []
    for err in errors[:5]:
        where = list(err.absolute_path)
        key = dotted(where) or "(top level)"
        extra = _unknown_keys(err)
        at = key_line_of(node, [*where, extra[0]]) if extra else line_of(node, where)
        lines.append(f"{path}:{at}: {key}: {_schema_message(err, extra)}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    raise WorkloadError("invalid Compose file: " + "; ".join(lines) + more)


def _unknown_keys(err: Any) -> list[str]:
    """The keys an `additionalProperties: false` error is about."""
    if err.validator != "additionalProperties" or not isinstance(err.instance, dict):
        return []
    known, patterns = err.schema.get("properties") or {}, err.schema.get("patternProperties") or {}
    return [str(k) for k in err.instance if k not in known and not any(re.search(p, str(k)) for p in patterns)]


def _schema_message(err: Any, extra: Sequence[str] = ()) -> str:
    if extra:
        known = list(err.schema.get("properties") or ())
        hints = [h for k in extra for h in difflib.get_close_matches(k, known, n=1)]
        guess = f" (did you mean {', '.join(map(repr, hints))}?)" if hints else ""
        return f"unknown key(s) {', '.join(map(repr, extra))}{guess}"
    if err.validator in ("oneOf", "anyOf"):
        return f"{_short(err.instance)} is not a valid value here"
    return err.message[:300]


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) < 80 else text[:77] + "..."


# -- one service -------------------------------------------------------------------


def service_spec(path: str, base: str, name: str, svc: Mapping[str, Any], node: Any, *,
                 env_file_env: Mapping[str, str], show_env: bool = False) -> RunSpec:
    """A service as `docker compose up` would create its container."""
    where = ["services", name]
    notes = [f"Compose {k!r} is not reproduced (the scan stays isolated and unprivileged)"
             for k in NOT_REPRODUCED if k in svc]
    env = _env_files(svc.get("env_file"), base, env_file_env) + _environment(svc.get("environment"), env_file_env)
    mounts, mount_notes = _volumes(svc.get("volumes") or (), base)
    build = svc.get("build") if not svc.get("image") else None
    return RunSpec(
        image=str(svc.get("image") or ""),
        name=f"{path}#{name}",
        entrypoint=_command(svc.get("entrypoint")),
        cmd=_command(svc.get("command")),
        env=env_items(env),
        user=_text(svc.get("user")),
        workdir=_text(svc.get("working_dir")),
        mounts=mounts,
        ports=_ports(svc.get("ports") or (), svc.get("expose") or ()),
        healthcheck=_healthcheck(svc.get("healthcheck")),
        source=path,
        line=line_of(node, [*where, "image"] if svc.get("image") else where),
        notes=tuple(notes + mount_notes),
        show_env=show_env,
        build=({"context": build} if isinstance(build, str) else dict(build or {})) | {"base": base}
        if build else None,
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _command(value: Any) -> tuple[str, ...] | None:
    """Compose's string form is split like a shell would (no shell runs it); a list is taken as is."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return tuple(shlex.split(value))
        except ValueError as exc:
            raise WorkloadError(f"cannot split command {value!r}: {exc}") from exc
    return tuple(str(v) for v in value)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _environment(value: Any, environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """List (`KEY=VALUE`, `KEY`) or map (`KEY: VALUE`, `KEY:` null) form; a bare or
    null key takes its value from the environment, and is unset when that has none."""
    out: list[tuple[str, str]] = []
    items = value.items() if isinstance(value, dict) else (
        (k, v if eq else None) for k, eq, v in (str(i).partition("=") for i in value or ()))
    for key, val in items:
        if val is None:
            if key in environ:
                out.append((key, environ[key]))
        else:
            out.append((key, _scalar(val)))
    return out


def _env_files(value: Any, base: str, environ: Mapping[str, str]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    entries = [value] if isinstance(value, (str, dict)) else list(value or ())
    for entry in entries:
        file, required = (entry, True) if isinstance(entry, str) else (entry.get("path"), entry.get("required", True))
        full = os.path.join(base, str(file))
        if not os.path.exists(full) and not required:
            continue
        out += read_env_file(full, environ, compose=True)
    return out


def _volumes(items: Sequence[Any], base: str) -> tuple[tuple[Mount, ...], list[str]]:
    """Bind mounts of host files and directories, always read-only; named volumes and tmpfs are not reproduced."""
    mounts, notes = [], []
    for item in items:
        if isinstance(item, str):
            parts = item.split(":")
            kind = "bind" if parts[0].startswith((".", "/", "~")) and len(parts) >= 2 else "volume"
            source, target = parts[0], parts[1] if len(parts) >= 2 else parts[0]
            mode = parts[2] if len(parts) >= 3 else "rw"
        else:
            kind, source, target = item.get("type", "volume"), str(item.get("source", "")), str(item.get("target"))
            mode = "ro" if item.get("read_only") else "rw"
        if kind != "bind":
            notes.append(f"volume {target}: a {kind} is not reproduced (the container starts without it)")
            continue
        full = os.path.abspath(os.path.join(base, os.path.expanduser(source)))
        problem = bind_problem(full, within=base)
        if problem:
            notes.append(f"volume {target}: {problem.replace(full, source)}")
            continue
        if "ro" not in mode.split(","):
            notes.append(f"volume {target}: mounted read-only (Compose says read-write; the scan never lets the "
                         "image write to this host)")
        mounts.append(Mount(full, target))
    return tuple(mounts), notes


def _ports(ports: Sequence[Any], expose: Sequence[Any]) -> tuple[DeclaredPort, ...]:
    out: list[DeclaredPort] = []
    for item in ports:
        if isinstance(item, dict):
            if item.get("protocol", "tcp") == "tcp":
                out += [DeclaredPort(p, True, f"ports: {_short(item)}") for p in _range(str(item.get("target")))]
            continue
        text = str(item)
        spec, _, proto = text.partition("/")
        if proto not in ("", "tcp"):
            continue
        out += [DeclaredPort(p, True, f"ports: {text}") for p in _range(spec.rsplit(":", 1)[-1])]
    for item in expose:
        spec, _, proto = str(item).partition("/")
        if proto in ("", "tcp"):
            out += [DeclaredPort(p, False, f"expose: {item}") for p in _range(spec)]
    return tuple(out)


def _range(text: str) -> list[int]:
    low, _, high = text.partition("-")
    try:
        first, last = int(low), int(high or low)
    except ValueError:
        return []
    return list(range(first, min(last, first + 1024) + 1)) if 0 < first <= last <= 65535 else []


def _healthcheck(value: Any) -> Healthcheck | None:
    if not value:
        return None
    if value.get("disable"):
        return Healthcheck(("NONE",))
    test = value.get("test")
    if test is None:
        return None
    argv = ("CMD-SHELL", test) if isinstance(test, str) else tuple(str(t) for t in test)
    return Healthcheck(argv, **{k: _duration(value.get(k)) for k in ("interval", "timeout", "start_period")},
                       retries=int(value.get("retries") or 0))


def _duration(text: Any) -> int:
    """`1m30s`, `10s`, `500ms` in nanoseconds (0 when absent)."""
    if text in (None, ""):
        return 0
    parts = _DURATION.findall(str(text))
    if not parts or "".join(n + u for n, u in parts) != str(text).replace(" ", ""):
        raise WorkloadError(f"healthcheck: {text!r} is not a duration (like 30s or 1m30s)")
    return int(sum(float(n) * _UNITS[u] for n, u in parts))
