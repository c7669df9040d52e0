"""JSON for machines (`--format json`, `--json FILE`): a stable schema, version 1.

Top level::

  {"smtpgate": "0.1.0",            tool version
   "schema": 1,                    bumped on any incompatible change
   "exit_code": 0 | 1 | 2,         what the run exits with
   "started_at": "...Z" | null,    ISO 8601
   "command": [str], "policy": str, "errors": [str],   run-level errors
   "targets": [target]}

target::

  {"ref", "kind", "image_id" (str|null), "digests": [str],
   "image" (the image reference), "workload" (str|null: "compose.yaml#web", "Deployment/web#app"),
   "source" (str|null: the manifest file), "line" (int|null: its `image:` line),
   "env": ["KEY=***"] (what the deployment sets; values only with --show-env),
   "verdict": "pass" | "fail" | "error", "method": str,
   "errors": [str], "notes": [str], "timings": {str: float|null},
   "exposed": [int],               TCP ports the image EXPOSEs (runtime scans of images)
   "exposed_not_listening": [int], of those, the ones that never listened while watched
   "still_starting": str | null,   why start-up still looked unfinished when watching stopped
   "caveats": [str],               what the verdict cannot vouch for (the two above, in words)
   "listeners": [{"address", "port", "family", "endpoint",
                  "scope": "loopback" | "all" | "specific" | "unknown",
                  "process": {"pid", "name", "cmdline": [str]} | null,
                  "probe": {"protocol", "tls", "greeting", "ehlo": [str], "detail"} | null}],
   "findings": [{"key", "software": {"id", "name", "version", "how"},
                 "state": "listening" | "enabled" | "installed",
                 "protocol", "scope" (str|null), "ports": [int], "listeners": [endpoint],
                 "decision": {"outcome": "pass" | "warn" | "fail", "reason", "rule", "owner"},
                 "per_listener": [{"endpoint", "outcome", "reason"}],
                 "evidence": [{"kind", "text", "path", "line"}],
                 "fix": [str], "verify": [str]}]}

`fix` and `verify` are the remediation for that software (generic steps when
smtpgate does not know it), present on every finding. Strings are bounded to
4096 characters plus a "… (N bytes more)" marker; control characters are kept
(JSON escapes them), lone surrogates from undecodable bytes become `\\xNN`
text so the document is valid UTF-8. `SCHEMA` is the JSON Schema of all this.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from smtpgate.model import Finding, Judged, Listener, ScanResult, SmtpProbe
from smtpgate.report import common
from smtpgate.report.interface import Report, ReportMeta, run_exit_code
from smtpgate.report.sanitize import bounded, unpaired

SCHEMA_VERSION = 1


class JsonReport(Report):
    """The JSON document described in this module's docstring."""

    name = "json"
    media_type = "application/json"

    def render(self, results: Sequence[ScanResult], meta: ReportMeta) -> str:
        return json.dumps(document(results, meta), indent=2, ensure_ascii=False,
                          allow_nan=False) + "\n"


def document(results: Sequence[ScanResult], meta: ReportMeta) -> dict[str, Any]:
    """The report as plain data, already bounded and encodable."""
    code = run_exit_code(results, meta)
    meta = bounded(meta)
    doc = {"smtpgate": meta.tool_version, "schema": SCHEMA_VERSION, "exit_code": code,
           "started_at": meta.started_at.isoformat() if meta.started_at else None,
           "command": list(meta.command_line), "policy": meta.policy_source,
           "errors": list(meta.errors),
           "targets": [_target(bounded(result)) for result in results]}
    return _encodable(doc)  # type: ignore[no-any-return]


def _encodable(obj: Any) -> Any:
    """Lone surrogates escaped in every string, non-finite floats as null."""
    if isinstance(obj, str):
        return unpaired(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {_encodable(k): _encodable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_encodable(item) for item in obj]
    return obj


def _target(result: ScanResult) -> dict[str, Any]:
    t = result.target
    return {"ref": t.ref, "kind": t.kind, "image": t.image_ref, "workload": t.workload,
            "source": t.source, "line": t.line, "env": list(t.env),
            "image_id": t.image_id, "digests": list(t.digests),
            "verdict": result.verdict, "method": result.method,
            "errors": list(result.errors), "notes": list(result.notes),
            "timings": {k: _number(v) for k, v in result.timings.items()},
            "exposed": list(result.exposed), "exposed_not_listening": list(result.exposed_not_listening),
            "still_starting": result.still_starting or None, "caveats": common.caveats(result),
            "listeners": [_listener(li, result.probe_for(li)) for li in result.listeners],
            "findings": [_finding(j) for j in result.judged]}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def _listener(listener: Listener, probe: SmtpProbe | None) -> dict[str, Any]:
    proc = listener.process
    return {"address": listener.address, "port": listener.port, "family": listener.family,
            "endpoint": listener.endpoint, "scope": common.scope_of(listener),
            "process": ({"pid": proc.pid, "name": proc.name, "cmdline": list(proc.cmdline)}
                        if proc else None),
            "probe": _probe(probe) if probe else None}


def _probe(probe: SmtpProbe) -> dict[str, Any]:
    return {"protocol": probe.protocol.value, "tls": probe.tls, "greeting": probe.greeting,
            "ehlo": list(probe.ehlo), "detail": probe.detail}


def _finding(judged: Judged) -> dict[str, Any]:
    f, d = judged.finding, judged.decision
    fix = common.remedy(f.software, f.ports)
    return {"key": f.key, "software": _software(f), "state": f.state.value,
            "protocol": f.protocol.value, "scope": common.finding_scope(f),
            "ports": list(f.ports), "listeners": [li.endpoint for li in f.listeners],
            "decision": {"outcome": d.outcome.value, "reason": d.reason, "rule": d.rule,
                         "owner": d.owner},
            "per_listener": [{"endpoint": li.endpoint, "outcome": ld.outcome.value,
                              "reason": ld.reason} for li, ld in judged.per_listener],
            "evidence": [{"kind": e.kind, "text": e.text, "path": e.path, "line": e.line}
                         for e in f.evidence],
            "fix": list(fix.fix), "verify": list(fix.verify)}


def _software(finding: Finding) -> dict[str, Any]:
    sw = finding.software
    return {"id": sw.id, "name": sw.name, "version": sw.version, "how": sw.how}


def _obj(**props: Any) -> dict[str, Any]:
    """A closed JSON Schema object whose every property is required."""
    return {"type": "object", "required": sorted(props), "additionalProperties": False,
            "properties": props}


def _arr(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


_STR, _INT, _BOOL = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
_OPT_STR = {"type": ["string", "null"]}
_OUTCOME = {"enum": ["pass", "warn", "fail"]}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "smtpgate report, schema 1",
    **_obj(
        smtpgate=_STR, schema={"const": SCHEMA_VERSION}, exit_code={"enum": [0, 1, 2]},
        started_at=_OPT_STR, command=_arr(_STR), policy=_STR, errors=_arr(_STR),
        targets=_arr(_obj(
            ref=_STR, kind=_STR, image=_STR, workload=_OPT_STR, source=_OPT_STR,
            line={"type": ["integer", "null"]}, env=_arr(_STR), image_id=_OPT_STR, digests=_arr(_STR),
            verdict={"enum": ["pass", "fail", "error"]}, method=_STR,
            errors=_arr(_STR), notes=_arr(_STR),
            timings={"type": "object", "additionalProperties": {"type": ["number", "null"]}},
            exposed=_arr(_INT), exposed_not_listening=_arr(_INT), still_starting=_OPT_STR,
            caveats=_arr(_STR),
            listeners=_arr(_obj(
                address=_STR, port=_INT, family=_INT, endpoint=_STR,
                scope={"enum": ["loopback", "all", "specific", "unknown"]},
                process={"oneOf": [{"type": "null"},
                                   _obj(pid=_INT, name=_STR, cmdline=_arr(_STR))]},
                probe={"oneOf": [{"type": "null"},
                                 _obj(protocol=_STR, tls=_BOOL, greeting=_STR,
                                      ehlo=_arr(_STR), detail=_STR)]})),
            findings=_arr(_obj(
                key=_STR, software=_obj(id=_STR, name=_STR, version=_OPT_STR, how=_STR),
                state={"enum": ["listening", "enabled", "installed"]}, protocol=_STR,
                scope={"enum": ["loopback", "all", "specific", "unknown", None]},
                ports=_arr(_INT), listeners=_arr(_STR),
                decision=_obj(outcome=_OUTCOME, reason=_STR, rule=_OPT_STR, owner=_OPT_STR),
                per_listener=_arr(_obj(endpoint=_STR, outcome=_OUTCOME, reason=_STR)),
                evidence=_arr(_obj(kind=_STR, text=_STR, path=_OPT_STR,
                                   line={"type": ["integer", "null"]})),
                fix=_arr(_STR), verify=_arr(_STR)))))),
}
