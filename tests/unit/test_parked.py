"""Parked threads (smtpgate.collect.parked) and sleeps, on threads captured
from the fixture containers and dockerd (data/parked/capture.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from smtpgate.collect import parked
from smtpgate.collect.observe import sleep_seconds

DATA = Path(__file__).parent / "data" / "parked" / "threads.json"
CAPTURED = json.loads(DATA.read_text())
TABLE = parked.syscall_table(CAPTURED["machine"])


def peek_from(entry):
    memory = {int(addr, 16): bytes.fromhex(raw) for addr, raw in entry["memory"].items()}
    return lambda addr, size: memory.get(addr)


def wait_of(image: str, process: str) -> list[float | None]:
    return [parked.classify(t["syscall"], TABLE, peek_from(t)) for t in CAPTURED["threads"]
            if t["image"] == image and t["process"] == process]


@pytest.mark.parametrize(("image", "process", "expected"), [
    ("postfix-all", "master", 60.0),  # epoll_wait, 60000 ms: master's periodic tick
    ("postfix-all", "qmgr", 300.0),
    ("postfix-all", "pickup", 100.0),
    ("exim-all", "exim4", math.inf),  # poll(..., -1): only a connection wakes it
    ("clean", "python3", 0.5),  # http.server polls every half second
    ("supervisord-aiosmtpd", "supervisord", 1.0),  # its one-second tick, before it starts the program
    ("delayed-mta", "sh", math.inf),  # wait4 on its child
    ("delayed-mta", "sleep", 60.0),  # clock_nanosleep, the timespec read from memory
    ("noshell-smtp", "python3.11", 30.0),  # pselect6, asyncore's 30 s timeout
    ("aiosmtpd-2525", "python3", math.inf),  # epoll_wait(..., -1)
    ("symlink-escape", "sleep", math.inf),  # `sleep infinity` is pause()
])
def test_captured_waits(image, process, expected):
    assert wait_of(image, process) == [expected]


def test_a_go_program_parks_in_futex_for_ever_and_ticks_in_nanosleep():
    waits = wait_of("host-dockerd", "dockerd")
    assert waits.count(math.inf) >= 8  # futex(FUTEX_WAIT_PRIVATE, NULL) and waitid
    assert 0.01 in waits  # sysmon's 10 ms nanosleep
    assert None not in waits


@pytest.mark.parametrize("line", [
    "running",
    "",
    "-1 0x7ffd3153 0x7f0a1e08ca",  # blocked, but not in a system call
    "42 0x3 0x7ffd75ee77c0 0x10 0x0 0x0 0x0 0x7ffd 0x7f",  # connect: waits for a peer, start-up not over
    "73 0x3 0x2 0x0 0x0 0x0 0x0 0x7ffd 0x7f",  # flock
    "219 0x0 0x0 0x0 0x0 0x0 0x0 0x7ffd 0x7f",  # restart_syscall
])
def test_what_is_not_a_wait_for_the_outside(line):
    assert parked.classify(line, TABLE) is None


def test_a_pointer_timeout_that_cannot_be_read_is_not_parked():
    sleep = next(t for t in CAPTURED["threads"] if t["process"] == "sleep" and t["image"] == "delayed-mta")
    assert parked.classify(sleep["syscall"], TABLE, lambda addr, size: None) is None


def test_unknown_machines_have_no_table():
    assert parked.syscall_table("x86_64") is not None
    assert parked.syscall_table("aarch64") is not None
    assert parked.syscall_table("s390x") is None


def fake_proc(tmp_path: Path, entries: list[dict], elf_class: int = 2) -> tuple[str, list[int]]:
    """A /proc tree holding the captured threads, one process each."""
    pids = []
    for n, entry in enumerate(entries, start=100):
        task = tmp_path / str(n) / "task" / str(n)
        task.mkdir(parents=True)
        (task / "status").write_text(entry["status"])
        (task / "syscall").write_text(entry["syscall"] + "\n")
        (tmp_path / str(n) / "exe").write_bytes(b"\x7fELF" + bytes([elf_class]) + b"\0" * 11)
        pids.append(n)
    return str(tmp_path), pids


def test_read_threads_from_a_proc_tree(tmp_path, monkeypatch):
    monkeypatch.setattr(parked.platform, "machine", lambda: CAPTURED["machine"])
    entries = [t for t in CAPTURED["threads"] if t["image"] in ("postfix-all", "exim-all")]
    root, pids = fake_proc(tmp_path, entries)
    threads = parked.read_threads(root, pids + [99999])  # a pid that vanished meanwhile
    assert [t.wait for t in threads] == [60.0, 100.0, 300.0, 100.0, math.inf]
    assert all(t.runs > 0 for t in threads)


def test_32_bit_processes_are_never_parked(tmp_path, monkeypatch):
    monkeypatch.setattr(parked.platform, "machine", lambda: CAPTURED["machine"])
    entries = [t for t in CAPTURED["threads"] if t["image"] == "exim-all"]
    root, pids = fake_proc(tmp_path, entries, elf_class=1)
    assert [t.wait for t in parked.read_threads(root, pids)] == [None]


def test_running_and_zombie_threads(tmp_path, monkeypatch):
    monkeypatch.setattr(parked.platform, "machine", lambda: CAPTURED["machine"])
    exim = next(t for t in CAPTURED["threads"] if t["image"] == "exim-all")
    running = dict(exim, status=exim["status"].replace("S (sleeping)", "R (running)"), syscall="running")
    zombie = dict(exim, status=exim["status"].replace("S (sleeping)", "Z (zombie)"), syscall="")
    disk = dict(exim, status=exim["status"].replace("S (sleeping)", "D (disk sleep)"))
    root, pids = fake_proc(tmp_path, [running, zombie, disk])
    assert [t.wait for t in parked.read_threads(root, pids)] == [None, math.inf, None]


def tw(tid: int, runs: int, wait: float | None, site: str = "7@0x7f00") -> parked.ThreadWait:
    return parked.ThreadWait(tid, runs, wait, site)


def test_a_short_timer_counts_once_it_has_fired_unseen_anything():
    seen: dict = {}
    # supervisord on its 1 s tick, first seen: unfired (it may start a program when it fires)
    assert parked.all_parked(seen, [tw(7, 176, 1.0), tw(9, 40, math.inf)], long_wait=5.0) == ([], [7])
    assert parked.all_parked(seen, [tw(7, 176, 1.0), tw(9, 41, math.inf)], long_wait=5.0) == ([], [7])
    # it woke and waits again in the same place: parked
    assert parked.all_parked(seen, [tw(7, 177, 1.0), tw(9, 41, math.inf)], long_wait=5.0) == ([], [])


def test_a_thread_that_moves_to_another_timer_must_see_that_one_fire():
    seen: dict = {}
    assert parked.all_parked(seen, [tw(7, 10, 1.0)], long_wait=5.0) == ([], [7])
    assert parked.all_parked(seen, [tw(7, 11, 1.0)], long_wait=5.0) == ([], [])
    # the countdown is over; a 3 s wait somewhere else follows (a retry, a start-up delay)
    assert parked.all_parked(seen, [tw(7, 12, 3.0, "230@0x4011")], long_wait=5.0) == ([], [7])
    assert parked.all_parked(seen, [tw(7, 13, 3.0, "230@0x4011")], long_wait=5.0) == ([], [])


def test_long_timers_and_outside_waits_park_at_once_running_threads_never():
    assert parked.all_parked({}, [tw(1, 5, 60.0), tw(2, 3, math.inf)], long_wait=5.0) == ([], [])
    assert parked.all_parked({}, [tw(1, 5, 60.0), tw(2, 3, None)], long_wait=5.0) == ([2], [])
    assert parked.all_parked({}, [tw(1, 5, 5.0)], long_wait=5.0) == ([], [1])  # glibc's 5 s DNS try is short
    seen: dict = {}
    parked.all_parked(seen, [tw(1, -1, 0.5)], long_wait=5.0)
    assert parked.all_parked(seen, [tw(1, -1, 0.5)], long_wait=5.0) == ([], [1])  # run count unknown: never fires


def test_timers_within():
    assert parked.timers_within([tw(1, 1, math.inf), tw(2, 1, 8.0)], 8.0)
    assert not parked.timers_within([tw(1, 1, math.inf), tw(2, 1, 60.0), tw(3, 1, None)], 8.0)


def test_futex_lock_pi_without_timeout_is_not_a_plain_wait():
    assert parked.classify("202 0x563bb3843ac8 0x86 0x0 0x0 0x0 0x0 0x7ffd 0x7f0a", TABLE) is None  # LOCK_PI|PRIVATE
    assert parked.classify("202 0x563bb3843ac8 0x80 0x0 0x0 0x0 0x0 0x7ffd 0x7f0a", TABLE) == math.inf


def test_an_absolute_sleep_on_a_clock_we_cannot_read_is_not_parked():
    line = "230 0xfffffffffffffffe 0x1 0x7fffb5490130 0x0 0x0 0x0 0x7fff 0x7f41"  # a CPU clock, TIMER_ABSTIME
    memory = {0x7FFFB5490130: bytes.fromhex("3c000000000000000000000000000000")}
    assert parked.classify(line, TABLE, lambda addr, size: memory.get(addr)) is None


def test_armed_timerfds_from_fdinfo(tmp_path):
    """fdinfo of a timerfd as Linux 6.x writes it (systemd's sd-event arms these)."""
    (tmp_path / "40" / "fd").mkdir(parents=True)
    (tmp_path / "40" / "fdinfo").mkdir()
    for fd, value, ticks in (("5", "(2, 500000000)", 0), ("6", "(0, 0)", 3), ("7", "(3600, 0)", 1)):
        (tmp_path / "40" / "fd" / fd).symlink_to("anon_inode:[timerfd]")
        (tmp_path / "40" / "fdinfo" / fd).write_text(
            f"pos:\t0\nflags:\t02004002\nmnt_id:\t15\nino:\t1057\nclockid: 1\nticks: {ticks}\n"
            f"settime flags: 00\nit_value: {value}\nit_interval: (0, 0)\n")
    (tmp_path / "40" / "fd" / "8").symlink_to("socket:[1234]")
    assert parked.armed_timerfds(str(tmp_path), [40, 41], horizon=8.0) == {(40, 5): 0}


@pytest.mark.parametrize(("cmdline", "seconds"), [
    (("sleep", "60"), 60.0),
    (("/bin/sleep", "1m", "30s"), 90.0),  # GNU sums its arguments
    (("sleep", "0.5"), 0.5),
    (("sleep", ".25"), 0.25),
    (("sleep", "2h"), 7200.0),
    (("sleep", "infinity"), math.inf),
    (("sleep", "inf"), math.inf),
    (("sleep",), None),
    (("sleep", "$DELAY"), None),
    (("sleep", "-5"), None),
    (("wait-for-it", "db:5432"), None),
    ((), None),
])
def test_sleep_seconds(cmdline, seconds):
    assert sleep_seconds(cmdline) == seconds


def test_select_reads_a_timeval_and_pselect6_a_timespec():
    tv = {0x7FFD1000: bytes.fromhex("0100000000000000" "20a1070000000000")}  # 1 s + 500000 us
    select = "23 0x5 0x7ffd2000 0x0 0x0 0x7ffd1000 0x0 0x7ffd 0x7f"
    assert parked.classify(select, TABLE, lambda a, n: tv.get(a)) == 1.5
    ts = {0x7FFD1000: bytes.fromhex("0100000000000000" "0065cd1d00000000")}  # 1 s + 500000000 ns
    pselect6 = "270 0x5 0x7ffd2000 0x0 0x0 0x7ffd1000 0x0 0x7ffd 0x7f"
    assert parked.classify(pselect6, TABLE, lambda a, n: ts.get(a)) == 1.5
    assert parked.classify("23 0x5 0x7ffd2000 0x0 0x0 0x0 0x0 0x7ffd 0x7f", TABLE) == math.inf  # NULL: for ever
