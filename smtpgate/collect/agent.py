"""The in-target agent: collect and probe from inside the target's namespaces,
answer with JSON on stdout. Pure stdlib, like procfs and smtp, because it runs
in a helper container (any image with python3 >= 3.9), shipped as source with
``python3 -c`` (see ``bootstrap``), with nothing of smtpgate installed there.

Commands (argv after the marker ``smtpgate-agent``):

- ``snapshot``: the LISTEN sockets of this network namespace and every process
  of this pid namespace except the agent's own (marked by ``MARKER`` in their
  command line), then what each of their threads waits for and their armed
  timerfds (smtpgate.collect.parked, read right after the processes, as the
  host path does; the helper has CAP_SYS_PTRACE for /proc/<pid>/syscall and
  mem): ``{"sockets": [...], "processes": [...], "problems": [...], "threads":
  [[tid, runs, wait, site], ...] or null, "timerfds": [[pid, fd, seconds, ticks], ...]}``
  (a wait of -1 is one without end: JSON has no infinity; null: not waiting)
- ``probe JSON``: JSON ``{"patience": s, "ports": [[address, port, host], ...]}``
  (and ``"budget": s``: ports not done by then answer protocol ``not-probed``);
  probes every port concurrently from this network namespace, connecting to
  ``host``; a dual-stack ``::`` listener unreachable on ``::1`` is retried on
  127.0.0.1. Answers ``{"probes": [{"address", "port", "host", "verdict": {...},
  "seconds"}]}``.
- ``sleep``: keep the helper container alive.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
import threading
import time

from smtpgate.collect import parked, procfs, smtp

MARKER = "smtpgate-agent"


def snapshot(proc_root: str = "/proc") -> dict:
    sockets, problems = procfs.read_listening(f"{proc_root}/self")
    processes = []
    for pid in procfs._pids(proc_root):
        if pid == os.getpid():
            continue
        raw = procfs.read_process(proc_root, pid)
        if raw is not None and MARKER not in raw.cmdline:
            processes.append(dataclasses.asdict(raw))
    pids = [p["host_pid"] for p in processes]
    threads = parked.read_threads(proc_root, pids)
    return {"sockets": [dataclasses.asdict(s) for s in sockets], "processes": processes, "problems": problems,
            "threads": None if threads is None else [[t.tid, t.runs, _finite(t.wait), t.site] for t in threads],
            "timerfds": [[pid, fd, seconds, ticks] for (pid, fd), (seconds, ticks)
                         in parked.timerfd_states(proc_root, pids).items()]}


def _finite(wait: float | None) -> float | None:
    return -1.0 if wait is not None and wait == float("inf") else wait


async def _probe_one(address: str, port: int, host: str, patience: float) -> dict:
    started = time.monotonic()
    verdict, host = await smtp.probe_listener(smtp.direct_dial, address, host, port, patience)
    return {"address": address, "port": port, "host": host, "verdict": dataclasses.asdict(verdict),
            "seconds": round(time.monotonic() - started, 3)}


CONCURRENT_PROBES = 512  # the helper has 256 MiB: 3000 ports at once (9000 connections, TLS state) were killed


async def _probe_all(ports: list, patience: float, done: dict | None = None) -> list:
    """Up to CONCURRENT_PROBES ports at once; each answer also lands in ``done``
    (by index) when it is there."""
    done = {} if done is None else done
    gate = asyncio.Semaphore(CONCURRENT_PROBES)

    async def one(index: int, address: str, port: int, host: str) -> None:
        async with gate:
            done[index] = await _probe_one(address, port, host, patience)

    await asyncio.gather(*(one(i, a, int(p), h) for i, (a, p, h) in enumerate(ports)))
    return [done[i] for i in range(len(ports))]


def probe(request: dict) -> dict:
    """With a ``budget`` the loop runs in a daemon thread and the answer is
    given when the budget is spent, whatever is still running (thousands of
    ports keep a loop too busy for its own timers to be on time); the ports
    not done then are ``not-probed``. main() exits at once after answering."""
    ports, patience, budget = request["ports"], float(request.get("patience", 8.0)), request.get("budget")
    if budget is None:
        return {"probes": asyncio.run(_probe_all(ports, patience))}
    done: dict = {}
    thread = threading.Thread(target=lambda: asyncio.run(_probe_all(ports, patience, done)), daemon=True)
    thread.start()
    thread.join(max(0.0, float(budget)))
    late = {"protocol": "not-probed", "tls": False, "greeting": [], "ehlo": [], "detail": smtp.NOT_PROBED_IN_TIME,
            "final": True}
    return {"probes": [done.get(i) or {"address": a, "port": int(p), "host": h, "verdict": late, "seconds": 0.0}
                       for i, (a, p, h) in enumerate(ports)]}


def main(argv: list[str]) -> int:
    args = [a for a in argv if a != MARKER]
    if args[:1] == ["sleep"]:
        while True:
            time.sleep(3600)
    if args[:1] == ["snapshot"]:
        answer = snapshot()
    elif args[:1] == ["probe"] and len(args) == 2:
        answer = probe(json.loads(args[1]))
    else:
        print(f"usage: {MARKER} snapshot | probe JSON | sleep", file=sys.stderr)
        return 2
    sys.stdout.write(json.dumps(answer, ensure_ascii=True, allow_nan=False, default=str))
    sys.stdout.flush()
    if threading.active_count() > 1:  # probes cut off by the budget: do not wait for them
        os._exit(0)
    return 0


def bootstrap() -> str:
    """Python source that runs this agent anywhere with python3 and no smtpgate:
    the four modules' sources as string literals, loaded as modules under their
    own names, then ``main(sys.argv[1:])``. Use as ``python3 -c SOURCE smtpgate-agent CMD``."""
    here = os.path.dirname(os.path.abspath(__file__))
    sources = {}
    for name in ("procfs", "smtp", "parked", "agent"):
        with open(os.path.join(here, f"{name}.py"), encoding="utf-8") as fh:
            sources[f"smtpgate.collect.{name}"] = fh.read()
    return (
        "import sys, types\n"
        f"SOURCES = {sources!r}\n"
        "for pkg in ('smtpgate', 'smtpgate.collect'):\n"
        "    sys.modules[pkg] = types.ModuleType(pkg); sys.modules[pkg].__path__ = []\n"
        "sys.modules['smtpgate'].collect = sys.modules['smtpgate.collect']\n"
        "for name, src in SOURCES.items():\n"
        "    mod = types.ModuleType(name); sys.modules[name] = mod\n"
        "    exec(compile(src, '<' + name + '>', 'exec'), mod.__dict__)\n"
        "    setattr(sys.modules['smtpgate.collect'], name.rsplit('.', 1)[1], mod)\n"
        "sys.exit(sys.modules['smtpgate.collect.agent'].main(sys.argv[1:]))\n"
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
