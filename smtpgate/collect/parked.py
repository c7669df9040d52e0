"""Is every thread of a target waiting on the outside world?

Settling ends sooner when it can see *why* nothing changes: every thread of
the target is blocked in a system call that only an outside event ends
(``accept``, ``epoll_wait`` with no timeout, ``wait4`` on a child, a read), or
in a timed wait so long that it is a periodic tick (Postfix's master waits
60 s), or it has already woken since the last change and gone back to sleep
(Python's http.server polls every 0.5 s). Then no start-up step is pending:
a process that is still starting is running, blocked on a file or a
connection, or sleeping a short while, and none of those counts.

Read from /proc/<pid>/task/<tid>/syscall (the blocked system call and its
arguments; needs ptrace access to the process, i.e. root for other users'
processes) and, for timeouts passed by pointer, /proc/<pid>/mem. Only x86_64
and aarch64 system-call numbers are known; on other machines, and for 32-bit
processes, nothing counts as parked and settling uses its plain window.
Timers a wait without timeout can hide: timerfds are read from
/proc/<pid>/fdinfo (armed_timerfds); alarm()/setitimer and socket receive
timeouts are not visible in /proc and are not seen.
"""

from __future__ import annotations

import math
import os
import platform
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass

# How a blocking system call's timeout is passed: None (it has none: only an
# outside event ends it), ("ms", i) an int of milliseconds in argument i (< 0:
# none), ("ts", i) / ("tv", i) a pointer to a timespec / timeval (NULL: none),
# ("futex", 3) futex's own rules, ("clock_ns", 2) clock_nanosleep's.
_X86_64: dict[int, tuple[str, int] | None] = {
    0: None, 17: None, 19: None, 45: None, 47: None,  # read, pread64, readv, recvfrom, recvmsg
    43: None, 288: None,  # accept, accept4
    61: None, 247: None,  # wait4, waitid
    34: None, 130: None, 70: None,  # pause, rt_sigsuspend, msgrcv
    7: ("ms", 2), 232: ("ms", 3), 281: ("ms", 3),  # poll, epoll_wait, epoll_pwait
    23: ("tv", 4), 270: ("ts", 4), 271: ("ts", 2), 441: ("ts", 3),  # select, pselect6, ppoll, epoll_pwait2
    35: ("ts", 0), 230: ("clock_ns", 2), 128: ("ts", 2),  # nanosleep, clock_nanosleep, rt_sigtimedwait
    202: ("futex", 3),
}
_AARCH64: dict[int, tuple[str, int] | None] = {  # the generic table: no poll, select, epoll_wait or pause
    63: None, 67: None, 65: None, 207: None, 212: None,
    202: None, 242: None,
    260: None, 95: None,
    133: None, 188: None,
    22: ("ms", 3), 72: ("ts", 4), 73: ("ts", 2), 441: ("ts", 3),
    101: ("ts", 0), 115: ("clock_ns", 2), 137: ("ts", 2),
    98: ("futex", 3),
}
_TABLES = {"x86_64": _X86_64, "amd64": _X86_64, "aarch64": _AARCH64, "arm64": _AARCH64}

_FUTEX_WAIT, _FUTEX_WAIT_BITSET, _FUTEX_CLOCK_REALTIME = 0, 9, 256
_TIMER_ABSTIME = 1


@dataclass(frozen=True)
class ThreadWait:
    """One thread: how often it has run, and what it waits for."""

    tid: int  # as this host sees it
    runs: int  # context switches so far: grows each time the thread wakes
    wait: float | None  # seconds its current wait may last (inf: only an outside event ends it); None: not waiting
    site: str = ""  # system call number @ program counter: the same wait when the thread comes back to it


def syscall_table(machine: str | None = None) -> dict[int, tuple[str, int] | None] | None:
    return _TABLES.get((machine or platform.machine()).lower())


MAX_THREADS = 4096  # more than this, or reading for longer than READ_BUDGET: the plain window it is
READ_BUDGET = 0.5


def read_threads(proc_root: str, host_pids: Iterable[int]) -> tuple[ThreadWait, ...] | None:
    """Every thread of these processes; None when this machine's system calls
    are unknown here, or there are too many threads to read quickly."""
    table = syscall_table()
    if table is None:
        return None
    out: list[ThreadWait] = []
    deadline = time.monotonic() + READ_BUDGET
    for pid in host_pids:
        if len(out) > MAX_THREADS or time.monotonic() > deadline:
            return None
        base = os.path.join(proc_root, str(pid))
        try:
            tids = [int(t) for t in os.listdir(os.path.join(base, "task")) if t.isdigit()]
        except OSError:
            continue  # gone meanwhile
        wide = _is_64bit(base)
        for tid in tids:
            thread = read_thread(base, tid, table if wide else {})
            if thread is not None:
                out.append(thread)
    return tuple(out)


def read_thread(base: str, tid: int, table: dict[int, tuple[str, int] | None]) -> ThreadWait | None:
    task = os.path.join(base, "task", str(tid))
    status = _read(os.path.join(task, "status"))
    if status is None:
        return None  # gone
    fields = dict(line.split(":", 1) for line in status.split("\n") if ":" in line)
    try:
        runs = int(fields["voluntary_ctxt_switches"]) + int(fields["nonvoluntary_ctxt_switches"])
    except (KeyError, ValueError):
        runs = -1
    state = fields.get("State", "?").split()[0] if fields.get("State", "").strip() else "?"
    if state in ("Z", "X", "T", "t"):  # a zombie or a stopped thread does nothing by itself
        return ThreadWait(tid, runs, math.inf)
    if state != "S":  # running, runnable, or blocked on a disk (D): busy starting
        return ThreadWait(tid, runs, None)
    syscall = _read(os.path.join(task, "syscall"))
    parts = (syscall or "").split()
    site = f"{parts[0]}@{parts[-1]}" if len(parts) > 1 else ""
    return ThreadWait(tid, runs, classify(syscall, table, lambda addr, size: _peek(base, addr, size)), site)


def classify(syscall: str | None, table: dict[int, tuple[str, int] | None], peek=None) -> float | None:
    """Seconds the blocked system call in a /proc/<pid>/syscall line may
    last: inf for no timeout, the timeout for a timed one, None when it is not
    a wait for the outside world (a connect, a file lock, anything unknown)."""
    parts = (syscall or "").split()
    if not parts or not parts[0].lstrip("-").isdigit():
        return None  # "running", or unreadable
    number = int(parts[0])
    if number not in table:
        return None
    how = table[number]
    if how is None:
        return math.inf
    try:
        args = [int(a, 16) for a in parts[1:7]]
    except ValueError:
        return None
    kind, index = how
    if len(args) <= index:
        return None
    arg = args[index]
    if kind == "ms":
        ms = struct.unpack("<i", struct.pack("<I", arg & 0xFFFFFFFF))[0]
        return math.inf if ms < 0 else ms / 1000
    if kind == "futex" and args[1] & 0x7F not in (_FUTEX_WAIT, _FUTEX_WAIT_BITSET):
        return None  # a PI lock or a requeue: not a plain wait
    if arg == 0:
        return math.inf  # a NULL timeout: wait for ever
    if kind == "futex":
        seconds = _timespec(peek, arg)
        if seconds is None or args[1] & 0x7F == _FUTEX_WAIT:
            return seconds
        clock = time.CLOCK_REALTIME if args[1] & _FUTEX_CLOCK_REALTIME else time.CLOCK_MONOTONIC
        return _until(seconds, clock)
    if kind == "clock_ns":
        seconds = _timespec(peek, arg)
        if seconds is None or not args[1] & _TIMER_ABSTIME:
            return seconds
        return _until(seconds, args[0])
    return _timespec(peek, arg, 1e-9 if kind == "ts" else 1e-6)


# Clocks an absolute deadline may be on, as this process reads them: realtime,
# monotonic, boottime (and their _ALARM twins), TAI. Negative ids are CPU
# clocks of the sleeper itself: not readable from here.
_CLOCKS = {0: 0, 1: 1, 7: 7, 8: 0, 9: 7, 11: 11}


def _until(deadline: float, clock: int) -> float | None:
    """Seconds from now to an absolute deadline on a clock; None for clocks
    this process cannot read for the sleeper."""
    ours = _CLOCKS.get(clock)
    if ours is None:
        return None
    try:
        return max(0.0, deadline - time.clock_gettime(ours))
    except (OSError, OverflowError, ValueError):
        return None


def _timespec(peek, addr: int, unit: float = 1e-9) -> float | None:
    """A struct timespec (or, with unit 1e-6, a struct timeval: both are two
    64-bit fields here) at ``addr`` in the sleeper's memory, in seconds."""
    raw = peek(addr, 16) if peek else None
    if raw is None or len(raw) != 16:
        return None
    sec, fraction = struct.unpack("<qq", raw)
    return sec + fraction * unit if sec >= 0 else None


def _peek(base: str, addr: int, size: int) -> bytes | None:
    try:
        fd = os.open(os.path.join(base, "mem"), os.O_RDONLY)
    except OSError:
        return None
    try:
        return os.pread(fd, size, addr)
    except (OSError, OverflowError, ValueError):
        return None
    finally:
        os.close(fd)


def _is_64bit(base: str) -> bool:
    """32-bit programs make other system calls under the same numbers."""
    try:
        with open(os.path.join(base, "exe"), "rb") as fh:
            head = fh.read(5)
    except OSError:
        return False  # kernel threads, vanished processes: unknown
    return head[:4] == b"\x7fELF" and head[4] == 2


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as fh:
            return fh.read(8192).decode("ascii", "replace")
    except OSError:
        return None


def all_parked(
    seen: dict[int, tuple[str, int]], now: Iterable[ThreadWait], long_wait: float,
) -> tuple[list[int], list[int]]:
    """Which threads are not parked: (busy, unfired). A thread is parked when
    it waits for the outside world, or on a timer longer than ``long_wait`` (a
    periodic tick), or on a shorter timer that has fired since we first saw
    it waiting there (its run count grew, and it came back to the same wait)
    without anything we could see happening. Busy threads run or wait on
    something else (a disk, a connect); unfired ones wait on a short timer
    that has not fired since first seen: start-up may go on when it does.
    ``seen`` remembers, per thread, the wait it was first seen in and its run
    count then; the caller empties it when anything changes."""
    busy, unfired = [], []
    for thread in now:
        if thread.wait is None:
            busy.append(thread.tid)
        elif thread.wait <= long_wait:
            first = seen.get(thread.tid)
            if first is None or first[0] != thread.site:
                seen[thread.tid] = (thread.site, thread.runs)  # a new wait: it must fire once to count
                unfired.append(thread.tid)
            elif not thread.runs > first[1] >= 0:
                unfired.append(thread.tid)
    return busy, unfired


def timers_within(threads: Iterable[ThreadWait], horizon: float) -> bool:
    """Does any thread wait on a timer of at most ``horizon`` seconds (one that
    can fire while we still watch)?"""
    return any(t.wait is not None and t.wait <= horizon for t in threads)


_TIMERFD = "anon_inode:[timerfd]"


def armed_timerfds(proc_root: str, host_pids: Iterable[int], horizon: float) -> dict[tuple[int, int], int]:
    """Timers hidden behind a wait without timeout: timerfds (systemd's
    RestartSec=, sd-event, libuv) that fire within ``horizon`` seconds, as
    {(pid, fd): expirations so far}. A wait that only an outside event ends
    is not the whole story when such a timer is one of its events."""
    return within(timerfd_states(proc_root, host_pids), horizon)


def within(states: dict[tuple[int, int], tuple[float, int]], horizon: float) -> dict[tuple[int, int], int]:
    """{(pid, fd): ticks} of the timerfd_states that fire within ``horizon`` seconds."""
    return {key: ticks for key, (remaining, ticks) in states.items() if remaining <= horizon}


def timerfd_states(proc_root: str, host_pids: Iterable[int]) -> dict[tuple[int, int], tuple[float, int]]:
    """Every armed timerfd of these processes: {(pid, fd): (seconds until it fires, expirations so far)}."""
    found: dict[tuple[int, int], tuple[float, int]] = {}
    deadline = time.monotonic() + READ_BUDGET
    for pid in host_pids:
        fd_dir = os.path.join(proc_root, str(pid), "fd")
        try:
            names = os.listdir(fd_dir)
        except OSError:
            continue
        for name in names[:65536]:
            if time.monotonic() > deadline:
                return found
            try:
                if os.readlink(os.path.join(fd_dir, name)) != _TIMERFD:
                    continue
            except OSError:
                continue
            info = _read(os.path.join(proc_root, str(pid), "fdinfo", name)) or ""
            fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
            remaining = _pair_seconds(fields.get("it_value", ""))
            if remaining is not None and remaining > 0:
                try:
                    ticks = int(fields.get("ticks", "0").strip())
                except ValueError:
                    ticks = 0
                found[(pid, int(name))] = (remaining, ticks)
    return found


def _pair_seconds(text: str) -> float | None:
    """'(1, 500000000)' -> 1.5"""
    numbers = text.strip().strip("()").split(",")
    try:
        sec, nsec = (int(n) for n in numbers)
    except ValueError:
        return None
    return sec + nsec / 1e9
