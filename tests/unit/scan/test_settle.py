"""settle(): when it stops watching, driven by scripted snapshots on a fake clock.

The scripts replay what the fixture containers showed (see tests/unit/data/parked):
supervisord ticking once a second before it starts its program, Postfix's
master on its 60 s tick, `sleep infinity` keep-alives.
"""

from __future__ import annotations

import math

import pytest

from smtpgate.collect.observe import Snapshot, Waiter
from smtpgate.collect.parked import ThreadWait
from smtpgate.model import Listener, Process
from smtpgate.scan import settle as settling
from smtpgate.scan.options import ScanOptions
from smtpgate.targets.interface import RunState


class Clock:
    def __init__(self):
        self.now = 1000.0

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(settling, "time", fake)
    return fake


class Scripted:
    """A target whose snapshots and threads follow (from_second, snapshot, threads) steps."""

    method = "scripted"

    def __init__(self, clock, steps, threads_known=True):
        self.clock, self.steps, self.threads_known = clock, steps, threads_known
        self.start = clock.now
        self.thread_reads = 0

    def _step(self):
        elapsed = self.clock.now - self.start
        return [s for s in self.steps if s[0] <= elapsed + 1e-9][-1]

    def state(self):
        return RunState(running=True)

    def snapshot(self):
        return self._step()[1]

    def threads(self, snap):
        self.thread_reads += 1
        return self._step()[2] if self.threads_known else None

    def timerfds(self, snap, horizon):
        return {}


def listener(port, pid=1):
    return Listener("0.0.0.0", port, 4, 1000 + port, Process(pid=pid, name="srv"))


def snap(listeners=(), pids=(1,), cpu=0.0, runnable=0, waiting=()):
    procs = tuple(Process(pid=p, name=f"p{p}") for p in pids)
    return Snapshot(tuple(listeners), procs, cpu_seconds=cpu, runnable=runnable, waiting=tuple(waiting),
                    host_pids=tuple(pids))


def settle(clock, steps, **kw):
    target = Scripted(clock, steps, **{k: kw.pop(k) for k in list(kw) if k == "threads_known"})
    started = clock.now
    out = settling.settle(target, ScanOptions(**kw))
    return out, round(clock.now - started, 2), target


def test_parked_server_settles_after_the_fast_window(clock):
    steps = [
        (0.0, snap(cpu=0.0, runnable=1), [ThreadWait(1, 3, None)]),
        (0.3, snap([listener(25)], cpu=0.2), [ThreadWait(1, 40, 60.0)]),  # Postfix master: 60 s tick
    ]
    out, took, _ = settle(clock, steps)
    assert [li.port for li in out.snapshot.listeners] == [25]
    assert took == pytest.approx(0.6, abs=0.11)
    assert "every thread waiting" in out.notes[0]


def test_supervisord_tick_is_waited_for_and_the_late_program_is_seen(clock):
    """supervisord's own listener is up at once; the program comes on its first tick."""
    tick = [ThreadWait(1, 100, 1.0)]
    steps = [
        (0.0, snap([listener(9001)], cpu=0.1), tick),
        (1.2, snap([listener(9001)], pids=(1, 7), cpu=0.15), [ThreadWait(1, 101, 1.0), ThreadWait(7, 1, None)]),
        (1.5, snap([listener(9001), listener(2525, 7)], pids=(1, 7), cpu=0.3),
         [ThreadWait(1, 102, 1.0), ThreadWait(7, 30, math.inf)]),
    ]
    out, took, _ = settle(clock, steps)
    assert sorted(li.port for li in out.snapshot.listeners) == [2525, 9001]
    assert took >= 1.5


def test_without_thread_knowledge_the_plain_window_applies(clock):
    steps = [(0.0, snap([listener(25)]), [ThreadWait(1, 5, math.inf)])]
    out, took, target = settle(clock, steps, threads_known=False)
    assert took == pytest.approx(1.0, abs=0.11)
    assert target.thread_reads == 1  # asked once, then never again
    assert "every thread" not in out.notes[0]


def test_a_busy_thread_holds_the_fast_path(clock):
    steps = [(0.0, snap([listener(25)]), [ThreadWait(1, 5, math.inf), ThreadWait(2, 5, None)])]
    out, took, _ = settle(clock, steps)
    assert took == pytest.approx(1.0, abs=0.11)


def test_cpu_use_holds_the_fast_path(clock):
    steps = [(round(0.1 * i, 1), snap([listener(25)], cpu=0.09 * i), [ThreadWait(1, 5 + i, math.inf)])
             for i in range(40)]
    _, took, _ = settle(clock, steps)
    assert took > 1.0


def test_sleep_infinity_does_not_hold_settling_but_a_short_sleep_does(clock):
    keepalive = [(0.0, snap(waiting=[Waiter("sleep infinity", math.inf, 1)]), [ThreadWait(1, 2, math.inf)])]
    out, took, _ = settle(clock, keepalive, settle_fast=0)
    assert took == pytest.approx(2.0, abs=0.11)  # settle_quiet: nothing listens
    later = Clock()
    short = [(0.0, snap(pids=(1, 2), waiting=[Waiter("sleep 5", 5.0, 2)]), [ThreadWait(1, 2, math.inf)])]
    settling.time = later  # the fixture's monkeypatch restores it
    out, took, _ = settle(later, short, settle_fast=0)
    assert took >= 8.0  # wait_after: the sleep may end in a server starting
    assert "still waiting on purpose when settled: sleep 5" in out.notes


def test_a_long_sleep_before_the_server_is_noted_not_waited_for(clock):
    steps = [(0.0, snap(pids=(1, 2), waiting=[Waiter("sleep 60", 60.0, 2)]), [ThreadWait(1, 2, math.inf),
                                                                              ThreadWait(2, 2, 60.0)])]
    out, took, _ = settle(clock, steps)
    assert took < 1.0
    assert any("`sleep 60` outlasts the scan" in n for n in out.notes)


def test_exposed_port_not_open_is_not_waited_for_when_everything_is_parked(clock):
    steps = [(0.0, snap(waiting=[Waiter("sleep infinity", math.inf, 1)]), [ThreadWait(1, 2, math.inf)])]
    target = Scripted(clock, steps)
    out = settling.settle(target, ScanOptions(), exposed=(25,))
    assert clock.now - target.start < 1.0
    assert "EXPOSEd port(s) 25 not listening when settled" in out.notes


def test_a_timer_that_fires_between_the_snapshot_and_the_thread_read_is_not_trusted(clock):
    """The 3 s timer fires, the thread listens and goes back to accept just after
    the snapshot was read: the threads look parked, the snapshot is stale."""
    web = listener(8080)
    steps = [
        (0.0, snap([web]), [ThreadWait(1, 10, 3.0, "232@0x1")]),
        (3.0, snap([web]), [ThreadWait(1, 11, math.inf, "43@0x2")]),  # stale snapshot, fresh threads
        (3.1, snap([web, listener(2525)]), [ThreadWait(1, 11, math.inf, "43@0x2")]),
    ]
    out, took, _ = settle(clock, steps)
    assert sorted(li.port for li in out.snapshot.listeners) == [2525, 8080]


def test_an_exposed_port_is_waited_for_while_a_timer_can_still_fire(clock):
    """supervisord-like: a 1 s ticker, EXPOSE 25, the program retries and binds at 4 s."""
    steps = [
        (0.0, snap(), [ThreadWait(1, 10, 1.0, "7@0x1")]),
        *[(float(i), snap(), [ThreadWait(1, 10 + i, 1.0, "7@0x1")]) for i in range(1, 4)],
        (4.0, snap([listener(25)]), [ThreadWait(1, 20, 1.0, "7@0x1")]),
        (5.0, snap([listener(25)]), [ThreadWait(1, 21, 1.0, "7@0x1")]),
    ]
    target = Scripted(clock, steps)
    out = settling.settle(target, ScanOptions(), exposed=(25,))
    assert [li.port for li in out.snapshot.listeners] == [25]


def test_nothing_listening_with_a_ticker_takes_the_plain_quiet_window(clock):
    steps = [(0.0, snap(), [ThreadWait(1, 10, 0.5, "7@0x1")]),
             *[(0.5 * i, snap(), [ThreadWait(1, 10 + i, 0.5, "7@0x1")]) for i in range(1, 10)]]
    out, took, _ = settle(clock, steps)
    assert took >= 2.0
    assert "every thread" not in out.notes[0]
