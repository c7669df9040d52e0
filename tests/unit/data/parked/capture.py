"""Capture what tests/unit/test_parked.py reads: the blocked system call of
every thread of a few fixture containers, as /proc showed it, with the bytes
behind pointer timeouts. Run as root on an engine with the fixtures built:

    .venv/bin/python tests/unit/data/parked/capture.py > tests/unit/data/parked/threads.json
"""

import json
import os
import sys
import time

from smtpgate.collect import parked, procfs
from smtpgate.targets.docker import DockerImageTarget, engine

IMAGES = {  # image: seconds after start to look
    "postfix-all": 2.0, "exim-all": 2.0, "clean": 2.0, "supervisord-aiosmtpd": 0.5,
    "delayed-mta": 1.0, "aiosmtpd-2525": 2.0, "noshell-smtp": 2.0, "symlink-escape": 1.0,
}


def pointers(line: str, table) -> dict[str, str]:
    parts = line.split()
    if not parts or not parts[0].isdigit() or table.get(int(parts[0])) is None:
        return {}
    kind, index = table[int(parts[0])]
    if kind == "ms" or len(parts) <= 1 + index:
        return {}
    addr = int(parts[1 + index], 16)
    return {hex(addr): ""} if addr else {}


def capture(out: list, image: str, base: str, tid: str, process: str, cmdline: list, table) -> None:
    task = f"{base}/task/{tid}"
    status = open(f"{task}/status").read()
    line = open(f"{task}/syscall").read().strip()
    peeks = pointers(line, table)
    for addr in peeks:
        peeks[addr] = (parked._peek(base, int(addr, 16), 16) or b"").hex()
    keep = ("State", "voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")
    out.append({
        "image": image, "process": process, "cmdline": cmdline,
        "status": "".join(ln + "\n" for ln in status.splitlines() if ln.split(":")[0] in keep),
        "syscall": line, "memory": peeks,
    })


def main() -> None:
    table = parked.syscall_table()
    client = engine()
    out = []
    for name, delay in IMAGES.items():
        target = DockerImageTarget(f"smtpgate-fixture/{name}", client=client)
        with target:
            time.sleep(delay)
            for raw in procfs.processes_like("/proc", target.pid, target.cid):
                base = f"/proc/{raw.host_pid}"
                for tid in sorted(os.listdir(f"{base}/task")):
                    capture(out, name, base, tid, raw.name, list(raw.cmdline), table)
    pid = int(open("/var/run/docker.pid").read())  # a Go program: futex and epoll_pwait threads
    for tid in sorted(os.listdir(f"/proc/{pid}/task"))[:12]:
        capture(out, "host-dockerd", f"/proc/{pid}", tid, "dockerd", ["dockerd"], table)
    json.dump({"machine": os.uname().machine, "kernel": os.uname().release, "threads": out}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
