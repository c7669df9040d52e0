"""Turn raw /proc facts into model objects, and probe every listener.

The runtime collectors of every target end here: a Snapshot of what listens
(with owners) and what runs, and ``probe_all`` to speak to each listener.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import os
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from smtpgate.collect import procfs, smtp
from smtpgate.model import Listener, Process, Protocol, SmtpProbe

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class Waiter:
    """A process whose job is to delay start-up, and for how long when it says
    (``sleep 5``: 5.0; ``sleep infinity``: inf; wait-for-it: None, unknown)."""

    name: str
    seconds: float | None = None
    pid: int = 0  # in the target's namespace: 1 means nothing runs after it

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Snapshot:
    """What listens and what runs in a target at one moment."""

    listeners: tuple[Listener, ...]
    processes: tuple[Process, ...]
    problems: tuple[str, ...] = ()
    owners_readable: bool = True
    cpu_seconds: float = 0.0  # CPU time used so far by the processes seen
    runnable: int = 0  # processes in state R: wanting CPU, whether they got it or not
    waiting: tuple[Waiter, ...] = ()  # processes that wait on purpose (sleep, wait-for-it): start-up not over
    host_pids: tuple[int, ...] = ()  # the processes' pids as the collecting host sees them

    @property
    def fingerprint(self) -> tuple:
        """Changes whenever a listener or a process comes or goes."""
        return (
            tuple(sorted(li.key for li in self.listeners)),
            tuple(sorted((p.pid, p.cmdline) for p in self.processes)),
        )


def to_process(raw: procfs.RawProcess) -> Process:
    return Process(pid=raw.pid, name=raw.name, cmdline=raw.cmdline, exe=raw.exe, uid=raw.uid)


def build_snapshot(
    sockets: Iterable[procfs.RawSocket],
    raw_processes: Iterable[procfs.RawProcess],
    problems: Iterable[str] = (),
) -> Snapshot:
    """Join sockets to the process holding them (the lowest pid, i.e. the
    parent/master, when several processes share one socket)."""
    raws = sorted(raw_processes, key=lambda p: p.pid)
    owners: dict[int, Process] = {}
    readable = all(p.socket_inodes is not None for p in raws) if raws else False  # vanished ones hold ()
    for raw in raws:
        for inode in raw.socket_inodes or ():
            owners.setdefault(inode, to_process(raw))
    listeners = {}
    for sock in sockets:
        key = (sock.address, sock.port)
        if key not in listeners:
            listeners[key] = Listener(sock.address, sock.port, sock.family, sock.inode, owners.get(sock.inode))
    ordered = tuple(sorted(listeners.values(), key=lambda li: (li.port, li.family, li.address)))
    cpu = sum(r.cpu_ticks for r in raws) / _CLOCK_TICKS
    runnable = sum(1 for r in raws if r.state == "R")
    waiting = tuple(Waiter(_waiter_name(r), sleep_seconds(r.cmdline), r.pid) for r in raws if _waits(r))
    return Snapshot(
        ordered, tuple(to_process(r) for r in raws), tuple(problems), readable, cpu, runnable, waiting,
        tuple(r.host_pid for r in raws),
    )


WAITERS = ("sleep", "wait-for-it", "wait-for", "dockerize", "wait4x", "waitforit")


def _waits(raw: procfs.RawProcess) -> bool:
    """A process whose job is to delay start-up (``sleep 5 && exec server``)."""
    names = {raw.name, os.path.basename(raw.cmdline[0]) if raw.cmdline else ""}
    names |= {os.path.basename(a) for a in raw.cmdline[1:2] if a.endswith(".sh")}
    return any(n == w or n.startswith(w + ".") for n in names for w in WAITERS)


def _waiter_name(raw: procfs.RawProcess) -> str:
    if raw.name == "sleep" and raw.cmdline:
        return " ".join(("sleep", *raw.cmdline[1:4]))[:60]
    return raw.name


_SLEEP_ARG = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)([smhd]?)$")
_SLEEP_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def sleep_seconds(cmdline: tuple[str, ...]) -> float | None:
    """How long ``sleep ARG...`` sleeps (GNU and busybox sum their arguments,
    each with an optional s/m/h/d suffix; ``infinity`` never ends); None when
    it is not a sleep or its arguments are not understood."""
    if not cmdline or os.path.basename(cmdline[0]) != "sleep" or len(cmdline) < 2:
        return None
    total = 0.0
    for arg in cmdline[1:]:
        if arg.lower() in ("inf", "infinity"):
            return math.inf
        match = _SLEEP_ARG.match(arg)
        if match is None:
            return None
        total += float(match.group(1)) * _SLEEP_UNIT[match.group(2)]
    return total


def read_snapshot(
    proc_root: str, anchor_pid: int, marker: str | None = None,
    listening: tuple[list[procfs.RawSocket], list[str]] | None = None,
) -> Snapshot:
    """Snapshot of the namespaces of ``anchor_pid`` from a /proc tree; the
    listening sockets as given (sock_diag), else from /proc/<pid>/net/tcp{,6}."""
    sockets, problems = listening or procfs.read_listening(f"{proc_root}/{anchor_pid}")
    processes = procfs.processes_like(proc_root, anchor_pid, marker)
    return build_snapshot(sockets, processes, problems)


def dial_address(listener: Listener) -> str:
    """Where to connect to reach a listener from inside its namespace."""
    ip = ipaddress.ip_address(listener.address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified:
        return "127.0.0.1" if ip.version == 4 else "::1"
    return str(ip)


async def _probe_one(dial: smtp.Dialler, listener: Listener, patience: float) -> SmtpProbe:
    started = time.monotonic()
    verdict, host = await smtp.probe_listener(dial, listener.address, dial_address(listener), listener.port, patience)
    return SmtpProbe(
        address=listener.address,
        port=listener.port,
        protocol=Protocol(verdict.protocol),
        tls=verdict.tls,
        greeting="\n".join(verdict.greeting),
        ehlo=verdict.ehlo,
        detail=verdict.detail,
        connected_to=host,
        seconds=round(time.monotonic() - started, 3),
    )


MIN_CONCURRENT_PROBES = 64  # x3 connections each: well under the usual 1024 open files
MAX_CONCURRENT_PROBES = 4096
FILES_PER_PROBE = 3 * 4  # a patient, a TLS and a speak-first connection; room for --jobs 4
NOT_PROBED_IN_TIME = smtp.NOT_PROBED_IN_TIME


def concurrent_probes() -> int:
    """How many ports to probe at once. A silent port costs the whole greeting
    patience, so with 64 at a time 3000 silent ports took 3000 / 64 x 8.3 s
    (0.14 s a port, 411 s in all); the open-file limit is what bounds it, so
    the soft limit is raised to the hard one (as far as 65536) and the
    concurrency follows it. Where the limit cannot be raised it stays 64, and
    a connection that still fails for want of descriptors is "unreachable",
    undecided, never a pass."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
    except (ImportError, ValueError, OSError):
        return MIN_CONCURRENT_PROBES
    limit = 1 << 20 if soft == resource.RLIM_INFINITY else soft
    return max(MIN_CONCURRENT_PROBES, min(MAX_CONCURRENT_PROBES, (limit - 256) // FILES_PER_PROBE))


async def _probe_all(
    dial: smtp.Dialler, listeners: list[Listener], patience: float, done: dict[int, SmtpProbe] | None = None,
    running: dict[str, Any] | None = None,
) -> list[SmtpProbe]:
    """Probe every listener; each result also lands in ``done`` (by index) as
    soon as it is there, and ``running["stop"]`` cancels what is left from
    another thread."""
    gate = asyncio.Semaphore(concurrent_probes())
    done = {} if done is None else done

    async def one(index: int, listener: Listener) -> None:
        async with gate:
            done[index] = await _probe_one(dial, listener, patience)

    tasks = [asyncio.ensure_future(one(i, li)) for i, li in enumerate(listeners)]
    if running is not None:
        loop = asyncio.get_running_loop()
        running["stop"] = lambda: loop.call_soon_threadsafe(lambda: [t.cancel() for t in tasks])
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result
    return [done[i] for i in range(len(listeners)) if i in done]


STOP_GRACE = 0.5  # s given to the probes to end once the deadline has come


def probe_all(
    dial: smtp.Dialler, listeners: Iterable[Listener], patience: float = 8.0, deadline: float | None = None,
) -> list[SmtpProbe]:
    """Probe every listener concurrently; one shared event loop, bounded time.

    With a ``deadline`` (time.monotonic()) the loop runs in a thread of its own
    and this one waits for it until the deadline only: thousands of ports keep
    a loop so busy on a starved runner that its own timers fire seconds late,
    a thread's join does not. Ports whose probe has not ended by then are
    NOT_PROBED (NOT_PROBED_IN_TIME), undecided; the loop is told to stop and
    ends on its own (a daemon thread; its connections go with it)."""
    listeners = list(listeners)
    if deadline is None:
        return asyncio.run(_probe_all(dial, listeners, patience))
    done: dict[int, SmtpProbe] = {}
    running: dict[str, Any] = {}

    def work() -> None:
        try:
            asyncio.run(_probe_all(dial, listeners, patience, done, running))
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            running["error"] = exc

    thread = threading.Thread(target=work, name="smtpgate-probe", daemon=True)
    thread.start()
    thread.join(max(0.0, deadline - time.monotonic()))
    if thread.is_alive():
        stop = running.get("stop")
        if stop is not None:
            stop()
        thread.join(STOP_GRACE)
    elif "error" in running:
        raise running["error"]
    late = SmtpProbe("", 0, Protocol.NOT_PROBED, detail=NOT_PROBED_IN_TIME)
    return [done.get(i) or replace(late, address=li.address, port=li.port) for i, li in enumerate(listeners)]
