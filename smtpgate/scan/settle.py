"""Settling: when a started target has finished starting up (not a fixed sleep).

`settle(target, opts, exposed)` watches the target's listeners, processes,
CPU and threads until start-up looks over, and returns what it saw last
(`Settled`: the snapshot, notes, errors, whether the target exited, why
start-up still looked unfinished). `Starting` tells late starters (a start
script that runs ``supervisorctl start postfix`` after 20 s) from idle images;
`Quiet` is the early way out when every thread is parked. The pipeline
(smtpgate.gate) collects, probes and judges what it returns.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from smtpgate.collect import parked
from smtpgate.collect.observe import Snapshot
from smtpgate.errors import SmtpgateError
from smtpgate.scan.options import ScanOptions
from smtpgate.targets.interface import Target


@dataclass
class Settled:
    """What settle() saw last: the snapshot the pipeline collects from, and what it makes of it."""

    snapshot: Snapshot
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    exited: bool = False
    still_starting: str = ""  # why start-up still looked unfinished when settling stopped watching


def settle(
    target: Target, opts: ScanOptions, exposed: tuple[int, ...] = (), late_start: bool = True,
) -> Settled:
    """Watch listeners until they stop changing (not a fixed sleep).

    Settled when the listener set has not changed for ``settle_window`` (or
    ``settle_quiet`` while nothing listens) and start-up looks over: the
    processes used under a quarter of a core and none was runnable (a starved
    JVM on a loaded runner is busy too), no process waits on purpose (``sleep
    5 && exec server``, wait-for-it), and when the image EXPOSEs ports, at
    least one of them listens; busy processes are trusted up to ``busy_after``,
    purposeful waits and unopened EXPOSEd ports up to ``wait_after``. A
    HEALTHCHECK in 'starting' holds it for up to five quiet windows more.
    ``settle_timeout`` bounds it all. EXPOSEd ports that never listen are
    noted (images inherit EXPOSE lines from their bases).

    Late starters (Starting): while an EXPOSEd port does not listen yet (or
    the image EXPOSEs nothing, so nothing says what is still to come) and
    start-up is visibly going on -- processes coming and going (a loop of
    ``sleep 1``, config generation), a sleep that ends before the timeout,
    CPU use -- the wait goes on up to ``settle_timeout``: all-in-one images
    prepare for 10-20 s, then ``supervisorctl start postfix``. An idle image
    (nothing new, nothing sleeping briefly, no CPU) is not held by it. Only
    for targets started by the scan (``late_start``): a booted VM or a live
    host always has processes coming and going (cron, our own SSH commands).

    Sooner, after ``settle_fast``, when the target can show that every thread
    stayed parked (smtpgate.collect.parked, Quiet): nothing changed, nothing
    ran, and every thread waits for a connection, a child, a long timer, or a
    short one it has already seen fire. Then no start-up step is pending, and
    waiting out the window would only cost time. Short timers not yet fired
    hold the plain window too (up to ``wait_after``).
    """
    start = time.monotonic()
    last_keys: tuple | None = None
    since = listeners_since = start
    cpu_mark = (start, 0.0)
    snap = Snapshot((), ())
    quiet = Quiet(target, opts, exposed)
    starting = Starting(opts, start, exposed, late_start)
    was_unfired = False
    while True:
        now = time.monotonic()
        state = target.state()
        if not state.running:
            return _exited(snap, state, now - start)
        try:
            snap = target.snapshot()
        except SmtpgateError:
            state = target.state()
            if not state.running:  # it exited while it was read (an image that stops at once, a loaded runner)
                return _exited(snap, state, time.monotonic() - start)
            raise
        keys = snap.fingerprint[0]
        if keys != last_keys:
            last_keys, since, cpu_mark = keys, now, (now, snap.cpu_seconds)
            listeners_since = now
        window = opts.settle_window if snap.listeners else opts.settle_quiet
        waited = now - start
        late = starting.look(snap, now, cpu_mark)
        if quiet.parked(snap, now, waited, state.health) and not _short_waits(snap, opts) \
                and not starting.sleeping:
            how = " (every thread waiting for connections, a child, or a timer)"
            return _settled(snap, waited, exposed, state.health, opts, how)
        if was_unfired and not quiet.unfired:
            since = max(since, now - window / 2)  # a timer just fired: what it did shows at the next looks
        was_unfired = quiet.unfired
        stable = now - since >= window
        timer_pending = quiet.unfired and waited < opts.wait_after
        if stable and (timer_pending or late or _starting_up(snap, cpu_mark, now, exposed, waited, opts)):
            cpu_mark = (now, snap.cpu_seconds)  # measure the next window afresh
            since = now - window / 2
            stable = False
        health_wait = state.health == "starting" and now - since < 5 * window
        if stable and not health_wait:
            return _settled(snap, waited, exposed, state.health, opts)  # `late` was False: start-up looks over
        if waited >= opts.settle_timeout:
            unchanged = now - listeners_since >= window  # held for start-up is not "still changing"
            return _timed_out(snap, opts, unchanged, state.health == "starting", exposed, starting.reason)
        if opts.deadline is not None and now >= _settle_until(opts):
            return Settled(snap, errors=[f"--scan-timeout {opts.scan_timeout:g} s: not settled after {waited:.1f} s, "
                                          "when the time left was needed to probe; inspected as it was"])
        time.sleep(opts.poll)



def _settle_until(opts: ScanOptions) -> float:
    """When settling must end so that probing fits in the deadline: the greeting
    patience plus a connect are kept for it (half the scan timeout at most)."""
    assert opts.deadline is not None
    return opts.deadline - min(opts.greeting_timeout + 3.0, opts.scan_timeout / 2)



class Starting:
    """Is start-up visibly still going on, while something may still open?

    Pending: an EXPOSEd port does not listen yet, or the image EXPOSEs
    nothing (then nothing says what is still to come). Still going on: a
    process came, went or exec'd (its name changed; a command line rewritten
    in place, Sidekiq's "[0 of 10 busy]", is not start-up) within
    ``churn_window`` (a loop of ``sleep
    1`` makes a new sleep every second; config generation runs sed, openssl,
    postconf), a sleep or wait-for-it that ends before ``settle_timeout`` runs
    (``sleep 15; supervisorctl start postfix``), or the processes used CPU.
    These are what every start script shows, whatever command it ends in
    (``supervisorctl start``, ``s6-svc -u``, ``sv up``, ``service x start``,
    ``postfix start``): no command is recognised by name. Supervisors
    retrying a program spawn it again, which is churn too. The first look
    is the baseline: the processes found at start are not churn.
    """

    def __init__(self, opts: ScanOptions, start: float, exposed: tuple[int, ...], active: bool = True):
        self.opts, self.start, self.exposed, self.active = opts, start, set(exposed), active
        self.processes: frozenset | None = None
        self.changed = -math.inf  # when a process last came, went or exec'd
        self.first_seen: dict[tuple[int, str], float] = {}  # waiter (pid, name): when first seen
        self.reason = ""  # why start-up looks unfinished at the last look ("": it does not, or nothing pending)
        self.sleeping = False  # a pending port and a sleep that ends before the timeout: no early way out

    def look(self, snap: Snapshot, now: float, cpu_mark: tuple[float, float]) -> bool:
        """True while something may still open and start-up is visibly going on."""
        processes = frozenset((p.pid, p.name) for p in snap.processes)  # not the command line: set-proctitle
        if self.processes is not None and processes != self.processes:
            self.changed = now
        self.processes = processes
        listening = {li.port for li in snap.listeners}
        pending = self.active and (not self.exposed or bool(self.exposed - listening))
        sleeps = self._outlastable(snap, now)
        self.reason = _joined([
            *(["processes still coming and going"] if now - self.changed < self.opts.churn_window else []),
            *([f"waiting on purpose: {', '.join(sleeps)}"] if sleeps else []),
            *(["CPU in use"] if _cpu_busy(snap, cpu_mark, now) else []),
        ]) if pending else ""
        self.sleeping = pending and bool(sleeps)
        return bool(self.reason)

    def _outlastable(self, snap: Snapshot, now: float) -> list[str]:
        """Sleeps and wait-for-its that end (at the latest: their length after
        they were first seen) before ``settle_timeout``; wait-for-it's length
        is not known, so it always counts."""
        seen = {(w.pid, w.name) for w in snap.waiting}
        self.first_seen = {k: v for k, v in self.first_seen.items() if k in seen}
        ends_by = self.start + self.opts.settle_timeout
        names = []
        for w in snap.waiting:
            first = self.first_seen.setdefault((w.pid, w.name), now)
            ends = first + (w.seconds if w.seconds is not None else 0.0)
            overdue = w.seconds is not None and now > ends + self.opts.churn_window  # stopped, or not what it says
            if w.seconds is None or (ends <= ends_by and not overdue):
                names.append(w.name)
        return sorted(set(names))


class Quiet:
    """What the threads say (smtpgate.collect.parked): the early way out of
    settle() when everything is parked, and a reason to hold the plain window
    while a short timer has not fired yet (supervisord starts its programs on
    its first one-second tick)."""

    def __init__(self, target: Target, opts: ScanOptions, exposed: tuple[int, ...]):
        self.target, self.opts, self.exposed = target, opts, set(exposed)
        self.fingerprint: tuple | None = None
        self.since = 0.0  # the last change, or the last time anything ran or was not parked
        self.cpu = (0.0, 0.0)  # (when, CPU seconds) at the last look
        self.seen: dict[int, tuple[str, int]] = {}  # threads first seen on a short timer: (wait site, run count)
        self.timerfds: dict[tuple[int, int], int] = {}  # timerfds first seen armed: expirations then
        self.known = True
        self.unfired = False  # some timer that can fire soon has not fired since first seen

    def parked(self, snap: Snapshot, now: float, waited: float, health: str | None) -> bool:
        """Every thread parked, continuously, for the fast window (the threads are
        read after the snapshot: a thread that leaves its wait in between is
        seen at the next look, and the quiet starts again)."""
        if not self.known:
            return False
        if snap.fingerprint != self.fingerprint:  # a listener or a process came or went: start afresh
            self.fingerprint, self.since = snap.fingerprint, now
            self.seen, self.timerfds = {}, {}
        if snap.runnable or snap.cpu_seconds - self.cpu[1] > 0.25 * (now - self.cpu[0]):
            self.since = now  # busy since the last look: the quiet starts now
        self.cpu = (now, snap.cpu_seconds)
        threads = self._ask(self.target.threads, snap)  # every poll: a timer must be seen before it fires
        if threads is None:
            self.known = self.unfired = False  # this target cannot tell: the plain window it is
            return False
        busy, unfired = parked.all_parked(self.seen, threads, self.opts.long_wait)
        self.unfired = bool(unfired)
        if busy or unfired:
            self.since = now
            return False
        if self.opts.settle_fast <= 0 or health == "starting" or not snap.owners_readable:
            return False
        ports = {li.port for li in snap.listeners}
        if not ports and parked.timers_within(threads, self.opts.long_wait):
            return False  # nothing listens and a ticker runs: the plain window, held while timers are unfired
        hold = self.opts.wait_after - waited
        if self.exposed and not ports & self.exposed and hold > 0 and \
                parked.timers_within(threads, self.opts.wait_after):
            # an EXPOSEd port may still open when a timer fires before wait_after (a timer
            # longer than that cannot: it started after the container did): the plain rules decide
            return False
        window = self.opts.settle_fast if ports else 2 * self.opts.settle_fast
        if now - self.since < window:
            return False
        return not self._timerfd_pending(snap, max(hold, self.opts.settle_window))

    def _timerfd_pending(self, snap: Snapshot, horizon: float) -> bool:
        """A timerfd (systemd's RestartSec=, sd-event) firing soon, behind a wait
        without timeout, that has not fired since first seen."""
        armed = self._ask(self.target.timerfds, snap, horizon) or {}
        pending = False
        for key, ticks in armed.items():
            first = self.timerfds.setdefault(key, ticks)
            pending = pending or ticks <= first
        self.unfired = self.unfired or pending
        return pending

    @staticmethod
    def _ask(method, *args):
        try:
            return method(*args)
        except (SmtpgateError, OSError):  # an early way out only; the window still applies
            return None


def _starting_up(
    snap: Snapshot, cpu_mark: tuple[float, float], now: float, exposed: tuple[int, ...], waited: float,
    opts: ScanOptions,
) -> bool:
    """Does start-up look unfinished? Busy processes count for ``busy_after``
    (a JVM binding late); purposeful waits and unopened EXPOSEd ports for
    ``wait_after`` (``sleep infinity`` keep-alives and inherited EXPOSE lines
    would otherwise cost every such image the whole wait)."""
    if waited < opts.busy_after and _cpu_busy(snap, cpu_mark, now):
        return True
    if waited < opts.wait_after:
        none_exposed = bool(exposed) and not ({li.port for li in snap.listeners} & set(exposed))
        return bool(_short_waits(snap, opts)) or none_exposed
    return False


def _cpu_busy(snap: Snapshot, cpu_mark: tuple[float, float], now: float) -> bool:
    """Over a quarter of a core since the mark, or a process wanting CPU now."""
    used = snap.cpu_seconds - cpu_mark[1]
    return used > 0.25 * max(now - cpu_mark[0], 1e-3) or snap.runnable > 0


def _joined(parts: list[str]) -> str:
    return "; ".join(parts)


def _short_waits(snap: Snapshot, opts: ScanOptions) -> list[str]:
    """Waiters worth waiting for: a ``sleep`` longer than ``wait_after`` (``sleep
    infinity`` keep-alives, ``sleep 60; exec server``) cannot be outlasted, so
    it does not hold settling at all; what it delays is noted instead."""
    return [w.name for w in snap.waiting if w.seconds is None or w.seconds <= opts.wait_after]


def _long_waits(snap: Snapshot, opts: ScanOptions) -> list[str]:
    return [w.name for w in snap.waiting if w.seconds is not None and w.seconds > opts.wait_after and w.pid != 1]


def _settled(
    snap: Snapshot, waited: float, exposed: tuple[int, ...], health: str | None, opts: ScanOptions, how: str = "",
) -> Settled:
    return Settled(snap, notes=_settled_notes(snap, waited, exposed, health, opts, how))


def _unfinished_note(reason: str, limit: str) -> str:
    return (f"start-up was still going on after {limit} ({reason}): whatever the image starts later was not "
            "seen running (the static evidence reads the image's command and services)")


def _missing(snap: Snapshot, exposed: tuple[int, ...], shown: int = 12) -> list[str]:
    """EXPOSEd ports not listening, for a note (an EXPOSEd range: the first ones, and how many more)."""
    listening = {li.port for li in snap.listeners}
    missing = [str(p) for p in exposed if p not in listening]
    return missing[:shown] + ([f"and {len(missing) - shown} more"] if len(missing) > shown else [])


def _settled_notes(
    snap: Snapshot, waited: float, exposed: tuple[int, ...], health: str | None, opts: ScanOptions, how: str = "",
) -> list[str]:
    notes = [f"settled after {waited:.1f} s{how}"]
    if missing := _missing(snap, exposed):
        notes.append(f"EXPOSEd port(s) {', '.join(missing)} not listening when settled")
    if short := _short_waits(snap, opts):
        notes.append(f"still waiting on purpose when settled: {', '.join(sorted(set(short)))}")
    if long := _long_waits(snap, opts):
        notes.append(f"{', '.join(f'`{n}`' for n in sorted(set(long)))} outlasts the scan: whatever the image runs "
                     "after it was not seen running (the static evidence reads the image's command and services)")
    if health == "starting":
        notes.append("the HEALTHCHECK still said 'starting'; listeners had long been stable")
    return notes


def last_logs(state: Any) -> str:
    """'; last log lines: ...' of a target that ended (RunState.detail), or ''."""
    return f"; last log lines: {state.detail[-600:]!r}" if state.detail else ""


def _exited(snap: Snapshot, state: Any, waited: float) -> Settled:
    msg = f"the container exited with code {state.exit_code} after {waited:.1f} s, before it settled{last_logs(state)}"
    return Settled(snap, errors=[msg], exited=True)


def _timed_out(
    snap: Snapshot, opts: ScanOptions, stable: bool, starting: bool, exposed: tuple[int, ...] = (),
    still_starting: str = "",
) -> Settled:
    out = Settled(snap, still_starting=still_starting)
    limit = f"--settle-timeout {opts.settle_timeout:g} s"
    out.notes.append(f"stopped watching after {limit}")
    if not stable:
        out.errors.append(f"listening sockets were still changing after {limit}; inspected as they were")
    if starting:
        out.notes.append(f"the HEALTHCHECK still said 'starting' after {limit}")
    if missing := _missing(snap, exposed):
        out.notes.append(f"EXPOSEd port(s) {', '.join(missing)} not listening after {limit}")
    if short := _short_waits(snap, opts):
        out.notes.append(f"still waiting on purpose after {limit}: {', '.join(sorted(set(short)))}")
    if still_starting:
        out.notes.append(_unfinished_note(still_starting, limit))
    return out

