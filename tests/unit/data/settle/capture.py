"""Capture what tests/unit/scan/test_settle_late.py replays: every 0.1 s (settle's
poll), what settle() reads from a real fixture container -- its snapshot
(listeners, processes, CPU, runnable, waiters) and its threads' waits -- from
start until some seconds after. Run as root on an engine with the fixtures built:

    .venv/bin/python tests/unit/data/settle/capture.py > tests/unit/data/settle/frames.json
"""

import json
import math
import os
import sys
import time

from smtpgate.targets.docker import DockerImageTarget, engine

IMAGES = {"late-supervisorctl": 24.0, "late-service-start": 17.0, "expose-idle": 10.0}  # image: seconds to watch
POLL = 0.1
HORIZON = 8.0  # timerfds firing within this long (ScanOptions.wait_after)


def wait_text(value):
    return None if value is None else ("inf" if math.isinf(value) else round(value, 3))


def frame(target, t: float) -> dict:
    snap = target.snapshot()
    threads = target.threads(snap) or ()
    timers = target.timerfds(snap, HORIZON) or {}
    return {
        "t": round(t, 3),
        "listeners": [[li.address, li.port, li.family] for li in snap.listeners],
        "processes": [[p.pid, p.name, list(p.cmdline)] for p in snap.processes],
        "cpu": round(snap.cpu_seconds, 3), "runnable": snap.runnable,
        "waiting": [[w.name, wait_text(w.seconds), w.pid] for w in snap.waiting],
        "threads": [[th.tid, th.runs, wait_text(th.wait), th.site] for th in threads],
        "timerfds": [[pid, fd, ticks] for (pid, fd), ticks in timers.items()],
    }


def main() -> None:
    client = engine()
    out = {}
    for name, seconds in IMAGES.items():
        target = DockerImageTarget(f"smtpgate-fixture/{name}", client=client)
        frames = []
        with target:
            start = time.monotonic()
            while (now := time.monotonic()) - start < seconds:
                frames.append(frame(target, now - start))
                time.sleep(max(0.0, POLL - (time.monotonic() - now)))
            exposed = list(target.exposed_tcp_ports)
        out[name] = {"exposed": exposed, "frames": frames}
    json.dump({"machine": os.uname().machine, "kernel": os.uname().release, "images": out}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
