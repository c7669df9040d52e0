"""One scan of one target: start, settle, collect, probe, judge, stop.

Settling is smtpgate.scan.settle, the knobs smtpgate.scan.options (ScanOptions
is used from here by the callers that run the pipeline), the verdict
smtpgate.scan.judge.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from smtpgate.collect import observe
from smtpgate.collect.observe import Snapshot
from smtpgate.errors import Interrupted, SmtpgateError
from smtpgate.findings import listening_findings
from smtpgate.model import Listener, Process, Protocol, ScanResult, SmtpProbe
from smtpgate.scan import Evidence, judge
from smtpgate.scan.options import ScanOptions, past_deadline
from smtpgate.scan.settle import last_logs, settle
from smtpgate.staticgate import StaticEvidence
from smtpgate.targets.interface import Target

__all__ = ["INIT_NAMES", "ScanOptions", "boots_init", "inspect", "scan"]

# PID 1 names that mean "this container boots an init system": what is
# enabled would start in production even if the test run did not start it.
INIT_NAMES = {
    "systemd", "init", "openrc-init", "openrc", "s6-svscan", "s6-linux-init", "runsvdir", "runit", "my_init",
    "dinit", "supervisord", "circusd", "monit",
}



def boots_init(pid1: Process | None) -> bool:
    if pid1 is None:
        return False
    names = {pid1.name}
    if pid1.cmdline:
        names.add(pid1.cmdline[0].rsplit("/", 1)[-1])
        if len(pid1.cmdline) > 1 and pid1.name.startswith("python"):
            names.add(pid1.cmdline[1].rsplit("/", 1)[-1])  # supervisord is a python script
    return bool(names & INIT_NAMES)


def _not_probed(listeners: tuple[Listener, ...], why: str) -> list[SmtpProbe]:
    return [SmtpProbe(li.address, li.port, Protocol.NOT_PROBED, detail=why) for li in listeners]


def inspect(target: Target, policy: Any, opts: ScanOptions) -> ScanResult:
    """Settle, collect, probe and judge a started target."""
    timings: dict[str, float] = {}
    static = StaticEvidence(target, boots_init=opts.boots_init) if opts.static_evidence else None  # beside settling
    t0 = time.monotonic()
    exposed = tuple(target.exposed_tcp_ports)
    settled = settle(target, opts, exposed, late_start=target.info.kind == "image")
    timings["settle"] = time.monotonic() - t0
    snap = settled.snapshot
    errors, notes = list(settled.errors), list(settled.notes)
    notes.extend(f"/proc: {p}" for p in snap.problems)
    if snap.listeners and not snap.owners_readable:
        notes.append("the owners of sockets could not be read (/proc/<pid>/fd needs root)")
    t1 = time.monotonic()
    probes = _probe(target, snap, opts, settled.exited)
    timings["probe"] = time.monotonic() - t1
    unprobed = sum(1 for p in probes if p.detail == observe.NOT_PROBED_IN_TIME)
    if unprobed:
        errors.append(f"--scan-timeout {opts.scan_timeout:g} s ran out while probing: {len(probes) - unprobed} of "
                      f"{len(probes)} listening port(s) probed; the results are what was decided until then")
    pid1 = next((p for p in snap.processes if p.pid == 1), None)
    init = opts.boots_init if opts.boots_init is not None else boots_init(pid1)
    findings = listening_findings(snap.listeners, probes)
    facts = target.system_facts()  # a live system's own listings; an image's filesystem below
    if static is not None and facts is None:
        budget = None if opts.deadline is None else min(static.limits.seconds + 15.0, opts.deadline - t0)
        facts, static_errors = static.result(budget)  # the thread started at t0 (about)
        errors.extend(static_errors)
        if facts is None and budget is not None:
            errors.extend(past_deadline(opts, "the static read of the image"))
        timings["static"] = static.seconds
    if not settled.exited:  # judged on what it showed while it ran: say so when it ended meanwhile
        errors.extend(_ended_while_inspected(target, probed=bool(probes)))
    evidence = Evidence(findings=tuple(findings), static=facts, listeners=snap.listeners, probes=tuple(probes),
                        errors=tuple(errors), notes=tuple(target.notes + notes), method=target.method,
                        timings=timings, exposed=exposed, still_starting=settled.still_starting)
    return judge(replace(target.info, pid1=pid1, boots_init=init), evidence, policy, today=opts.today)


def _probe(target: Target, snap: Snapshot, opts: ScanOptions, exited: bool) -> list[SmtpProbe]:
    if not snap.listeners:
        return []
    if exited:
        return _not_probed(snap.listeners, "the container had exited")
    deadline = None if opts.deadline is None else opts.deadline - _stop_margin(len(snap.listeners))
    probes = target.probe(snap.listeners, opts.greeting_timeout, deadline)
    if probes is not None:
        return probes
    dial = target.dialler()
    if dial is None:
        return _not_probed(snap.listeners, f"no way into the target's network ({target.method})")
    return observe.probe_all(dial, snap.listeners, patience=opts.greeting_timeout, deadline=deadline)


def _stop_margin(listeners: int) -> float:
    """Time kept after probing for ending the probes and removing the container:
    1 s, plus 2 ms a port. Starting thousands of probes at once keeps the event
    loop busy for seconds (the probes' own timeout fires late by as much: 4 s
    for 3000 ports on a loaded 2-core runner), and each open connection is
    aborted on the loop at the end (2 s for 3000)."""
    return 1.0 + listeners * 0.002


def _ended_while_inspected(target: Target, probed: bool) -> list[str]:
    """A target that settled and then ended (while it was probed, or read): its exit is an error of
    the scan like an exit before settling, never a pass on the last look at it."""
    try:
        state = target.state()
    except SmtpgateError as exc:
        return [f"the target went away while it was inspected ({exc}); the results may be incomplete"]
    if state.running:
        return []
    logs = last_logs(state)
    if probed:
        return [f"the target stopped while it was probed (exited with code {state.exit_code}); the probe results "
                f"may be incomplete{logs}"]
    return [f"the target exited with code {state.exit_code} after it settled, before the scan ended; it was "
            f"judged on what it showed while it ran{logs}"]


def scan(target: Target, policy: Any, opts: ScanOptions) -> ScanResult:
    """Run one target from start to removal; every failure becomes an error in
    the result (never a pass), and the target is always stopped."""
    started = time.monotonic()
    if opts.scan_timeout > 0:
        opts = replace(opts, deadline=started + opts.scan_timeout)
    result: ScanResult | None = None
    try:
        with target:
            late = past_deadline(opts, "the start of the target")
            result = inspect(target, policy, opts) if not late else ScanResult(
                target=target.info, errors=tuple(late), notes=tuple(target.notes), method=target.method)
    except Interrupted:
        raise  # the CLI reports it; the target is already stopped
    except SmtpgateError as exc:
        if result is None:
            result = ScanResult(
                target=target.info, errors=(str(exc),), notes=tuple(target.notes), method=target.method
            )
        else:  # inspected, but cleanup failed
            result = replace(result, errors=result.errors + (str(exc),))
    except Exception as exc:  # noqa: BLE001 - one image's surprise must not stop the others
        message = f"internal error: {type(exc).__name__}: {exc}"
        result = ScanResult(target=target.info, errors=(message,), notes=tuple(target.notes), method=target.method)
    result.timings["total"] = time.monotonic() - started
    return result
