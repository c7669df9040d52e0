"""From the command line to scanned workloads: RunSpecs from the run options,
Compose files and Kubernetes manifests; init containers judged statically;
every result finished (notes, declared ports, secrets scrubbed)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from smtpgate.errors import WorkloadError
from smtpgate.model import ScanResult
from smtpgate.workload.compose import ComposeOptions, load_compose
from smtpgate.workload.k8s import load_k8s
from smtpgate.workload.results import finish
from smtpgate.workload.spec import HIDDEN, RunSpec, env_items, parse_env, parse_mount, read_env_file, scrub

INIT_NOTE = ("an init container: Kubernetes runs it to completion before the pod's containers start, so it was not "
             "started here; judged from its image and command (static evidence)")
_PROJECT = re.compile(r"[^a-z0-9_-]+")


def cli_specs(images: Sequence[str], args: Any, environ: Mapping[str, str]) -> list[RunSpec]:
    """One spec per image named on the command line, all with the same run options."""
    command = getattr(args, "run_command", None)
    if command is not None and len(images) != 1:
        raise WorkloadError("a command after -- runs in one image; with several images, describe each in a "
                            "Compose file or Kubernetes manifest (--compose, --k8s)")
    env = [pair for path in args.env_file for pair in read_env_file(path, environ)]
    env += parse_env(args.env, environ)
    entrypoint = None if args.entrypoint is None else ((args.entrypoint,) if args.entrypoint else ())
    template = RunSpec(image="", entrypoint=entrypoint, cmd=tuple(command) if command is not None else None,
                       env=env_items(env), user=args.user, workdir=args.workdir,
                       mounts=tuple(parse_mount(m) for m in args.mount), show_env=args.show_env)
    if template.customised and any(i.startswith("ssh://") for i in images):
        raise WorkloadError("run options (--env, --entrypoint, a command, ...) apply to images, not to ssh:// hosts")
    if template.customised and (args.compose or args.k8s):
        raise WorkloadError("run options (--env, --entrypoint, a command, ...) apply to the images named on the "
                            "command line; a Compose file or manifest says how its own containers run")
    return [replace(template, image=ref) for ref in images]


def compose_specs(args: Any, environ: Mapping[str, str]) -> list[RunSpec]:
    if args.service and not args.compose:
        raise WorkloadError("--service needs --compose FILE")
    opts = ComposeOptions(services=tuple(args.service), profiles=tuple(args.profile), build=args.compose_build,
                          show_env=args.show_env)
    out: list[RunSpec] = []
    for path in args.compose:
        specs, notes = load_compose(path, opts, environ)
        specs = [_built(s, path) if not s.image and s.build else s for s in specs]
        out += _with_file_notes(specs, notes)
    return out


def k8s_specs(args: Any) -> list[RunSpec]:
    out: list[RunSpec] = []
    for where in args.k8s:
        specs, notes = load_k8s(where, show_env=args.show_env)
        out += _with_file_notes(specs, notes)
    return out


def _with_file_notes(specs: list[RunSpec], notes: list[str]) -> list[RunSpec]:
    """Notes about the whole file go to its first target (they are said once)."""
    if specs and notes:
        specs[0] = replace(specs[0], notes=specs[0].notes + tuple(notes))
    return specs


def _built(spec: RunSpec, path: str) -> RunSpec:
    """--compose-build: the service's `build:` built with the engine, tagged `<project>-<service>`."""
    from smtpgate.targets.docker import build_image

    build = dict(spec.build or {})
    context = os.path.join(str(build.pop("base")), str(build.get("context", ".")))
    project = _PROJECT.sub("", os.path.basename(os.path.dirname(os.path.abspath(path))).lower()) or "compose"
    service = spec.name.rsplit("#", 1)[-1]
    tag = f"{project}-{_PROJECT.sub('', service.lower()) or 'service'}:smtpgate"
    args = build.get("args") or {}
    if isinstance(args, list):
        args = dict(str(a).partition("=")[::2] for a in args)
    build_image(context, tag, dockerfile=build.get("dockerfile"), target=build.get("target"),
                buildargs={str(k): str(v) for k, v in args.items() if v is not None})
    return replace(spec, image=tag, notes=spec.notes + (f"built from {context} (--compose-build) as {tag}",))


def scan_specs(specs: Sequence[RunSpec], make_target: Callable[[RunSpec], Any],
               scan_static: Callable[[RunSpec], ScanResult], policy: Any, opts: Any, args: Any) -> list[ScanResult]:
    """Scan every spec (in order): init containers and --static judged statically, the rest run."""
    from smtpgate.scan.runner import run_many

    static = [i for i, s in enumerate(specs) if args.static or s.role == "init"]
    results: dict[int, ScanResult] = {}
    for i in static:
        spec = specs[i]
        result = scan_static(spec)
        if spec.role == "init" and not args.static:
            result = replace(result, notes=(INIT_NOTE, *result.notes))
        results[i] = result
    running = [i for i in range(len(specs)) if i not in results]
    ran = run_many([specs[i] for i in running], make_target, policy, opts, jobs=args.jobs) if running else []
    results.update(zip(running, ran))
    return [finish(results[i], specs[i]) for i in range(len(specs)) if i in results]


_ENV_FLAG = re.compile(r"(--env=|-e=?)?([^=]+)=(.*)", re.S)


def public_argv(argv: Sequence[str], secrets: Sequence[str], show_env: bool) -> tuple[str, ...]:
    """The command line as reports show it: `--env KEY=***`, and no secret anywhere."""
    if show_env:
        return tuple(argv)
    out: list[str] = []
    after_env = False
    for word in argv:
        if after_env or word.startswith(("--env=", "-e=")) or (word.startswith("-e") and "=" in word[2:]
                                                                and not word.startswith("--")):
            m = _ENV_FLAG.fullmatch(word)
            if m and (after_env or m.group(1)):
                word = f"{m.group(1) or ''}{m.group(2)}={HIDDEN}"
        after_env = word in ("--env", "-e")
        out.append(scrub(word, secrets))
    return tuple(out)
