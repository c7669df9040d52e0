"""What a workload adds to its scan result: the deployment's notes, the
declared ports compared with what listens, and secrets scrubbed from every
string (engine errors and container logs can repeat the environment)."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from typing import Any

from smtpgate.model import Evidence, Judged, ScanResult, State
from smtpgate.workload.spec import RunSpec, scrub

SMTP_PORTS = (25, 465, 587, 2525)


def finish(result: ScanResult, spec: RunSpec) -> ScanResult:
    """The result as reports show it for this workload."""
    notes = list(result.notes) + list(spec.notes)
    if spec.env:
        notes.append(f"environment set by the deployment: {', '.join(spec.env_shown())}")
    if spec.mounts:
        shown = ", ".join(f"{m.source} at {m.target}" for m in spec.mounts)
        notes.append(f"mounted read-only: {shown}; the static evidence reads the image's own files there, "
                     "not the mounted ones")
    if spec.unknown_env:
        notes.append("not known offline (Secrets, ConfigMaps, fields of the cluster): "
                     f"{'; '.join(spec.unknown_env)}; judged with them unset (the branch where they are not set)")
    if any("exited with code" in e for e in result.errors):
        notes.append(_exit_hint(spec))
    judged = result.judged
    if spec.ports and result.method != "static":
        port_notes, judged = compare_ports(result, spec)
        notes += port_notes
    return scrubbed(dataclasses.replace(result, notes=tuple(notes), judged=judged), spec.secrets())


def _exit_hint(spec: RunSpec) -> str:
    if spec.unknown_env:
        return ("it exited as the manifest declares it, with the variables not known offline unset: write their "
                "values into a copy of the manifest (or a Compose file) to scan the configured branch")
    if not spec.customised and not spec.name:
        return ("if the image needs configuration to start (variables, a command, a config file), scan it as it "
                "is deployed: --env/--env-file, -- CMD, --mount SRC:DST, or --compose FILE / --k8s FILE")
    return "it exited with the deployment's configuration: the container's last log lines say why"


def compare_ports(result: ScanResult, spec: RunSpec) -> tuple[list[str], tuple[Judged, ...]]:
    """Declared ports against what listens; a published port that speaks SMTP becomes evidence."""
    listening = {li.port for li in result.listeners}
    smtp = {p for j in result.judged if j.finding.state is State.LISTENING for p in j.finding.ports}
    notes = []
    for port in spec.ports:
        where = "published" if port.published else "declared"
        if port.port in smtp:
            notes.append(f"{where} port {port.port} ({port.text}) listens and speaks SMTP"
                         + (": reachable from outside, the strongest evidence there is" if port.published else ""))
        elif port.port in listening:
            notes.append(f"{where} port {port.port} ({port.text}) listens (not SMTP)")
        elif not result.errors:
            smtp_port = " (a well-known SMTP port)" if port.port in SMTP_PORTS else ""
            notes.append(f"{where} port {port.port}{smtp_port} ({port.text}): nothing listened on it during the scan")
    undeclared = sorted(smtp - {p.port for p in spec.ports})
    if undeclared:
        notes.append(f"SMTP listens on port(s) {', '.join(map(str, undeclared))} that the deployment does not "
                     "declare (reachable inside the pod or network all the same)")
    published = {p.port: p for p in spec.ports if p.published}
    judged = tuple(_with_published(j, published) for j in result.judged)
    return notes, judged


def _with_published(judged: Judged, published: dict[int, Any]) -> Judged:
    f = judged.finding
    hits = [published[p] for p in f.ports if p in published] if f.state is State.LISTENING else []
    if not hits:
        return judged
    extra = tuple(Evidence("deployment", f"published by the deployment: {p.text}") for p in hits)
    return dataclasses.replace(judged, finding=dataclasses.replace(f, evidence=f.evidence + extra))


def scrubbed(obj: Any, secrets: Sequence[str]) -> Any:
    """`obj` (dataclasses, tuples, lists, dicts, strings) with every secret value replaced by ***."""
    if not secrets or isinstance(obj, enum.Enum):
        return obj
    if isinstance(obj, str):
        return scrub(obj, secrets)
    if isinstance(obj, tuple):
        return tuple(scrubbed(v, secrets) for v in obj)
    if isinstance(obj, list):
        return [scrubbed(v, secrets) for v in obj]
    if isinstance(obj, dict):
        return {k: scrubbed(v, secrets) for k, v in obj.items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {f.name: scrubbed(getattr(obj, f.name), secrets) for f in dataclasses.fields(obj)}
        return dataclasses.replace(obj, **changes)
    return obj
