"""Kubernetes manifests: every container of every workload becomes one `RunSpec`.

Input is multi-document YAML (a file, every *.yaml/*.yml/*.json of a directory,
or stdin), so `helm template` and `kustomize build` output can be piped in.
`kind: List` (what `kubectl get -o yaml` prints) is unwrapped. Kinds that run
nothing (Service, ConfigMap, ...) are skipped with a note.

As the kubelet runs a container: `command` replaces the image's ENTRYPOINT
(and drops its CMD), `args` replaces CMD; `$(VAR)` in env values, command and
args expands to variables defined earlier in `env` (`$$(VAR)` is a literal,
an unknown reference stays as written). `valueFrom` and `envFrom` name
Secrets, ConfigMaps and fields that only the cluster knows: those variables
are left unset, and the scan says so (it judged the branch where they are
unset). `securityContext.runAsUser`/`runAsGroup` (the container's, else the
pod's) become the user. Init containers run to completion before the pod's
containers start; they are judged from their image and command (static
evidence) and not started. Sidecars (init containers with `restartPolicy:
Always`) run beside the containers and are scanned like them.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from smtpgate.errors import WorkloadError
from smtpgate.workload.spec import DeclaredPort, RunSpec, env_items
from smtpgate.workload.yamldoc import documents, dotted, line_of, read_text

POD_SPEC: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


@dataclass
class _Doc:
    """One document being read: where it is, for messages."""

    source: str
    index: int  # 1-based, in its file
    node: Any
    base: list[str | int] = field(default_factory=list)  # path of this object inside the document (List items)
    label: str = ""

    def fail(self, path: Sequence[str | int], message: str) -> WorkloadError:
        full = [*self.base, *path]
        line = line_of(self.node, full)
        what = f" ({self.label})" if self.label else ""
        return WorkloadError(f"{self.source}:{line}: document {self.index}{what}: {dotted(full) or '(document)'}: "
                             f"{message}")


def manifest_files(where: str) -> list[str]:
    """A file, or a directory's *.yaml, *.yml and *.json files (not recursive, like `kubectl apply -f DIR`)."""
    if where == "-" or not os.path.isdir(where):
        return [where]
    names = sorted(n for n in os.listdir(where) if n.endswith((".yaml", ".yml", ".json")))
    if not names:
        raise WorkloadError(f"--k8s {where}: the directory holds no .yaml, .yml or .json file")
    return [os.path.join(where, n) for n in names]


def load_k8s(where: str, *, show_env: bool = False, stdin: Any = None) -> tuple[list[RunSpec], list[str]]:
    """The workload containers of the manifests at `where` ('-': stdin), and notes."""
    specs: list[RunSpec] = []
    skipped: list[str] = []
    notes: list[str] = []
    for path in manifest_files(where):
        stream = (stdin or sys.stdin) if path == "-" else None
        name = "(stdin)" if path == "-" else path
        for index, (data, node) in enumerate(documents(read_text(name, stream), name), 1):
            for obj, at in _objects(data, _Doc(name, index, node), notes):
                specs += _workload(obj, at, skipped, show_env, None if path == "-" else path)
    if skipped:
        shown = ", ".join(skipped[:10]) + (f" and {len(skipped) - 10} more" if len(skipped) > 10 else "")
        notes.append(f"skipped {len(skipped)} object(s) that run no container: {shown}")
    if not specs:
        raise WorkloadError(f"--k8s {where}: no workload (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, "
                            "Job, CronJob) found")
    return specs, notes


def _objects(data: Any, doc: _Doc, notes: list[str]) -> list[tuple[Mapping[str, Any], _Doc]]:
    if data is None:
        return []  # an empty document (helm prints them between templates)
    if not isinstance(data, dict):
        raise doc.fail([], f"expected a Kubernetes object (a mapping), got {type(data).__name__}")
    kind = data.get("kind")
    if not isinstance(kind, str) or not kind:
        raise doc.fail(["kind"], "missing (every Kubernetes object names its kind)")
    if kind != "List" and not kind.endswith("List"):
        return [(data, doc)]
    items = data.get("items")
    if not isinstance(items, list):
        raise doc.fail(["items"], f"a {kind} needs a list of items")
    notes.append(f"{doc.source}: document {doc.index}: {kind} of {len(items)} item(s), each read as an object")
    out: list[tuple[Mapping[str, Any], _Doc]] = []
    for i, item in enumerate(items):
        sub = _Doc(doc.source, doc.index, doc.node, [*doc.base, "items", i])
        out += _objects(item, sub, notes)
    return out


def _workload(obj: Mapping[str, Any], doc: _Doc, skipped: list[str], show_env: bool,
              source: str | None) -> list[RunSpec]:
    kind = obj["kind"]
    meta = obj.get("metadata")
    name = meta.get("name") or meta.get("generateName") if isinstance(meta, dict) else None
    if kind not in POD_SPEC:
        skipped.append(f"{kind}/{name or '?'}")
        return []
    if not isinstance(name, str) or not name:
        raise doc.fail(["metadata", "name"], "missing: a workload needs a name")
    doc.label = f"{kind}/{name}"
    path = list(POD_SPEC[kind])
    pod = _walk(obj, path, doc)
    containers = _list(pod.get("containers"), [*path, "containers"], doc, required=True)
    inits = _list(pod.get("initContainers"), [*path, "initContainers"], doc)
    pod_security = pod.get("securityContext") or {}
    if not isinstance(pod_security, dict):
        raise doc.fail([*path, "securityContext"], "expected a mapping")
    out = []
    for group, items in (("initContainers", inits), ("containers", containers)):
        for i, item in enumerate(items):
            out.append(_container(item, [*path, group, i], doc, f"{kind}/{name}", group == "initContainers",
                                  pod_security, show_env, source))
    return out


def _walk(obj: Mapping[str, Any], path: Sequence[str], doc: _Doc) -> Mapping[str, Any]:
    here: Any = obj
    for depth, key in enumerate(path):
        here = here.get(key) if isinstance(here, dict) else None
        if not isinstance(here, dict):
            raise doc.fail(path[:depth + 1], "missing or not a mapping")
    return here


def _list(value: Any, path: list[str | int], doc: _Doc, required: bool = False) -> list[Any]:
    if value is None and not required:
        return []
    if not isinstance(value, list) or (required and not value):
        raise doc.fail(path, "expected a non-empty list of containers" if required else "expected a list")
    return value


def _container(c: Any, path: list[str | int], doc: _Doc, workload: str, init: bool,
               pod_security: Mapping[str, Any], show_env: bool, source: str | None) -> RunSpec:
    if not isinstance(c, dict):
        raise doc.fail(path, "expected a container (a mapping)")
    name = _string(c.get("name"), [*path, "name"], doc)
    image = _string(c.get("image"), [*path, "image"], doc)
    env, unknown = _env(c, path, doc)
    values = dict(env)
    command = _argv(c.get("command"), [*path, "command"], doc, values)
    args = _argv(c.get("args"), [*path, "args"], doc, values)
    sidecar = init and c.get("restartPolicy") == "Always"
    notes = []
    if c.get("volumeMounts"):
        notes.append("Kubernetes volumeMounts are not reproduced (their volumes live in the cluster)")
    if sidecar:
        notes.append("a sidecar (init container with restartPolicy: Always): it runs beside the pod's containers")
    return RunSpec(
        image=image,
        name=f"{workload}#{name}",
        entrypoint=command,
        cmd=args if args is not None else (() if command is not None else None),
        env=env,
        user=_user(c.get("securityContext"), pod_security, [*path, "securityContext"], doc),
        workdir=_optional(c.get("workingDir"), [*path, "workingDir"], doc),
        ports=_ports(c.get("ports"), [*path, "ports"], doc),
        source=source,
        line=line_of(doc.node, [*doc.base, *path, "image"]),
        role="init" if init and not sidecar else ("sidecar" if sidecar else "container"),
        unknown_env=unknown,
        notes=tuple(notes),
        show_env=show_env,
    )


def _string(value: Any, path: list[str | int], doc: _Doc) -> str:
    if not isinstance(value, str) or not value.strip():
        got = "nothing" if value is None else type(value).__name__
        raise doc.fail(path, f"expected text, got {got}")
    return value


def _optional(value: Any, path: list[str | int], doc: _Doc) -> str | None:
    return None if value is None else _string(value, path, doc)


def _argv(value: Any, path: list[str | int], doc: _Doc, env: Mapping[str, str]) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise doc.fail(path, f"expected a list of strings, got {type(value).__name__}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise doc.fail([*path, i], f"expected a string, got {type(item).__name__} (quote it)")
    return tuple(expand(item, env) for item in value)


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: known variables replaced, `$$` a literal `$`, the rest kept."""
    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return _REF.sub(one, text)


def _env(c: Mapping[str, Any], path: list[str | int], doc: _Doc) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    unknown: list[str] = []
    for i, src in enumerate(_list(c.get("envFrom"), [*path, "envFrom"], doc)):
        if not isinstance(src, dict):
            raise doc.fail([*path, "envFrom", i], "expected a mapping")
        for kind in ("configMapRef", "secretRef"):
            if isinstance(src.get(kind), dict):
                prefix = f" (prefix {src['prefix']})" if src.get("prefix") else ""
                unknown.append(f"envFrom {kind} {src[kind].get('name', '?')}{prefix}: its variables")
    values: dict[str, str] = {}
    for i, item in enumerate(_list(c.get("env"), [*path, "env"], doc)):
        where = [*path, "env", i]
        if not isinstance(item, dict):
            raise doc.fail(where, "expected a mapping with name and value (or valueFrom)")
        key = _string(item.get("name"), [*where, "name"], doc)
        if "valueFrom" in item:
            unknown.append(f"{key} (valueFrom {_value_from(item['valueFrom'], [*where, 'valueFrom'], doc)})")
            values.pop(key, None)
            continue
        value = item.get("value")
        if value is not None and not isinstance(value, str):
            raise doc.fail([*where, "value"], f"expected a string, got {type(value).__name__} (quote it)")
        values[key] = expand(value or "", values)
    return env_items(values.items()), tuple(unknown)


def _value_from(value: Any, path: list[str | int], doc: _Doc) -> str:
    if not isinstance(value, dict) or not value:
        raise doc.fail(path, "expected a mapping (secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef)")
    kind, ref = next(iter(value.items()))
    if isinstance(ref, dict):
        name = ref.get("name") or ref.get("fieldPath") or ref.get("resource") or "?"
        key = f"/{ref['key']}" if ref.get("key") else ""
        return f"{kind} {name}{key}"
    return str(kind)


def _user(sc: Any, pod: Mapping[str, Any], path: list[str | int], doc: _Doc) -> str | None:
    if sc is not None and not isinstance(sc, dict):
        raise doc.fail(path, "expected a mapping")
    sc = sc or {}
    ids = []
    for key in ("runAsUser", "runAsGroup"):
        value = sc.get(key, pod.get(key))
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise doc.fail([*path, key], f"expected a user or group id (a number), got {value!r}")
        ids.append(value)
    uid, gid = ids
    if uid is None:  # runAsGroup alone keeps the image's user, whose name cannot be combined offline
        return None
    return f"{uid}:{gid}" if gid is not None else str(uid)


def _ports(value: Any, path: list[str | int], doc: _Doc) -> tuple[DeclaredPort, ...]:
    out = []
    for i, item in enumerate(_list(value, path, doc)):
        port = item.get("containerPort") if isinstance(item, dict) else None
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            raise doc.fail([*path, i, "containerPort"], f"expected a port number 1..65535, got {port!r}")
        if item.get("protocol", "TCP") != "TCP":
            continue
        host = item.get("hostPort")
        text = f"containerPort: {port}" + (f", hostPort: {host}" if host else "")
        out.append(DeclaredPort(port, bool(host), text))
    return tuple(out)
