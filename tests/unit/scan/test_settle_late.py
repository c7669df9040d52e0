"""settle() on late starters and idle images, replaying what real fixture
containers showed every 0.1 s (tests/unit/data/settle/frames.json, captured by
tests/unit/data/settle/capture.py): snapshots and thread waits, on a fake clock.

- late-supervisorctl: supervisord, a start program looping on `sleep 1` for
  ~15 s (captured with START_DELAY 15; the fixture now loops 12 times), then
  `supervisorctl start postfix`: port 25 listens at ~21 s;
- late-service-start: a PID 1 script looping on `sleep 1`, then `postfix start`;
- expose-idle: `python3 -m http.server 8080` with an EXPOSE 25 that never opens.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from smtpgate.collect.observe import Snapshot, Waiter
from smtpgate.collect.parked import ThreadWait
from smtpgate.model import Listener, Process
from smtpgate.scan import settle as settling
from smtpgate.scan.options import ScanOptions
from smtpgate.targets.interface import RunState
from tests.unit.scan.test_settle import Clock

DATA = json.loads((Path(__file__).parents[1] / "data" / "settle" / "frames.json").read_text())["images"]


def _seconds(value):
    return math.inf if value == "inf" else value


def _snapshot(frame: dict) -> Snapshot:
    processes = tuple(Process(pid=pid, name=name, cmdline=tuple(cmd)) for pid, name, cmd in frame["processes"])
    return Snapshot(
        tuple(Listener(addr, port, family) for addr, port, family in frame["listeners"]), processes,
        cpu_seconds=frame["cpu"], runnable=frame["runnable"],
        waiting=tuple(Waiter(name, _seconds(secs), pid) for name, secs, pid in frame["waiting"]),
        host_pids=tuple(p.pid for p in processes),
    )


class Replay:
    """A target that shows, at each moment, the last frame captured by then."""

    method = "replay"

    def __init__(self, clock: Clock, frames: list[dict], cycle_from: float | None = None):
        self.clock, self.start = clock, clock.now
        self.frames = [(f["t"], _snapshot(f), f) for f in frames]
        self.cycle_from = cycle_from  # after the last frame, replay from this time on again (a loop that never ends)

    def _frame(self):
        elapsed = self.clock.now - self.start
        last = self.frames[-1][0]
        if self.cycle_from is not None and elapsed > last:
            elapsed = self.cycle_from + (elapsed - last) % (last - self.cycle_from)
        return [f for f in self.frames if f[0] <= elapsed + 1e-9][-1]

    def state(self):
        return RunState(running=True)

    def snapshot(self):
        return self._frame()[1]

    def threads(self, snap):
        raw = self._frame()[2]["threads"]
        return tuple(ThreadWait(tid, runs, _seconds(wait), site) for tid, runs, wait, site in raw)

    def timerfds(self, snap, horizon):
        return {(pid, fd): ticks for pid, fd, ticks in self._frame()[2]["timerfds"]}


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(settling, "time", fake)
    return fake


def replay(clock, name: str, frames=None, exposed=None, **opts):
    image = DATA[name]
    target = Replay(clock, frames or image["frames"], opts.pop("cycle_from", None))
    out = settling.settle(target, ScanOptions(**opts), tuple(image["exposed"] if exposed is None else exposed))
    return out, clock.now - target.start


def _opened_at(name: str, port: int) -> float:
    return next(f["t"] for f in DATA[name]["frames"] if any(li[1] == port for li in f["listeners"]))


@pytest.mark.parametrize("name", ["late-supervisorctl", "late-service-start"])
def test_a_late_starter_is_watched_until_its_exposed_port_listens(clock, name):
    out, took = replay(clock, name)
    assert 25 in {li.port for li in out.snapshot.listeners}
    assert _opened_at(name, 25) > ScanOptions().wait_after  # what the old 8 s rule gave up before
    assert took < ScanOptions().settle_timeout
    assert not out.errors and not out.still_starting
    assert not any("not listening" in n for n in out.notes)


def test_the_captured_start_script_is_seen_starting(clock):
    """Half-way through the loop of `sleep 1`: processes churn and a short sleep runs."""
    frames = DATA["late-supervisorctl"]["frames"]
    starting = settling.Starting(ScanOptions(), 0.0, (25,))
    looks = [(starting.look(_snapshot(f), f["t"], (f["t"] - 1, f["cpu"])), starting.reason) for f in frames
             if 8.0 <= f["t"] <= 12.0]
    assert all(held for held, _ in looks), looks
    assert all("waiting on purpose: sleep 1" in reason for _, reason in looks)
    assert any("processes still coming and going" in reason for _, reason in looks)


def test_an_idle_image_with_an_unopened_expose_is_not_held_to_the_timeout(clock):
    out, took = replay(clock, "expose-idle")
    assert [li.port for li in out.snapshot.listeners] == [8080]
    assert took <= ScanOptions().wait_after + 1.0  # the existing ticker rule, not the late-starter wait
    assert "EXPOSEd port(s) 25 not listening when settled" in out.notes
    assert "every thread waiting" in out.notes[0]
    assert not out.still_starting


def test_an_idle_image_whose_expose_listens_settles_at_once(clock):
    out, took = replay(clock, "expose-idle", exposed=(8080,))
    assert took < 1.5
    assert not any("EXPOSE" in n for n in out.notes)


def test_a_loop_that_never_ends_is_watched_to_the_timeout_and_said(clock):
    """The start script's `sleep 1` loop, replayed for ever: no port opens."""
    frames = [f for f in DATA["late-supervisorctl"]["frames"] if f["t"] <= 12.0]
    out, took = replay(clock, "late-supervisorctl", frames=frames, cycle_from=6.0)
    assert took == pytest.approx(ScanOptions().settle_timeout, abs=0.2)
    assert not out.errors  # listeners were stable: a caveat on the verdict, not "could not inspect"
    assert out.still_starting
    assert "EXPOSEd port(s) 25 not listening after --settle-timeout 30 s" in out.notes
    assert any(n.startswith("start-up was still going on after --settle-timeout 30 s") for n in out.notes)


def test_without_expose_a_loop_is_watched_too(clock):
    frames = [f for f in DATA["late-supervisorctl"]["frames"] if f["t"] <= 12.0]
    out, took = replay(clock, "late-supervisorctl", frames=frames, exposed=(), cycle_from=6.0, settle_timeout=20.0)
    assert took == pytest.approx(20.0, abs=0.2)
    assert out.still_starting


def test_a_sleep_that_ends_before_the_timeout_holds_the_fast_path(clock):
    """`sleep 15; supervisorctl start postfix`: a 15 s sleep is a long timer to the
    thread reader (parked), but it ends before --settle-timeout."""
    steps = [(0.0, Snapshot((), (Process(1, "sh"), Process(7, "sleep", ("sleep", "15"))),
                            waiting=(Waiter("sleep 15", 15.0, 7),), host_pids=(1, 7)),
              [ThreadWait(1, 3, math.inf, "61@0x1"), ThreadWait(7, 1, 15.0, "230@0x2")]),
             (15.0, Snapshot((Listener("0.0.0.0", 25, 4),), (Process(1, "sh"), Process(9, "master")),
                             host_pids=(1, 9)),
              [ThreadWait(1, 4, math.inf, "61@0x1"), ThreadWait(9, 9, 60.0, "232@0x3")])]
    from tests.unit.scan.test_settle import Scripted

    target = Scripted(clock, steps)
    out = settling.settle(target, ScanOptions(), (25,))
    assert [li.port for li in out.snapshot.listeners] == [25]
    assert not any("outlasts" in n for n in out.notes)


def test_a_vm_or_host_is_not_held_by_churn(clock):
    """late_start=False (a booted VM, a live host: cron and our own SSH commands
    always churn): the same loop gets the plain rules, which end at wait_after."""
    frames = [f for f in DATA["late-supervisorctl"]["frames"] if f["t"] <= 12.0]
    target = Replay(clock, frames, cycle_from=6.0)
    out = settling.settle(target, ScanOptions(), (), late_start=False)
    assert clock.now - target.start < 12.0
    assert not out.still_starting
