"""Inside the capture container: greeting, EHLO reply and owning processes of one listener.

python3 probe.py ID PORT SOURCE -> one servers.yaml entry (JSON, one line) on stdout.
"""

import json
import os
import socket
import sys
import time


def read_reply(sock: socket.socket, timeout: float = 10.0) -> list[str]:
    sock.settimeout(timeout)
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
        lines = data.decode("utf-8", "replace").split("\r\n")
        done = [line for line in lines[:-1] if len(line) >= 4 and line[3] == " "]
        if done:
            return [line for line in lines if line]
    return [line for line in data.decode("utf-8", "replace").split("\r\n") if line]


def inode_of(port: int) -> set[str]:
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            for row in fh.read().splitlines()[1:]:
                cols = row.split()
                if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                    found.add(cols[9])
    return found


def owners(port: int) -> list[dict]:
    inodes = {f"socket:[{i}]" for i in inode_of(port)}
    out = []
    for pid in sorted((p for p in os.listdir("/proc") if p.isdigit()), key=int):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if not any(os.readlink(f"/proc/{pid}/fd/{fd}") in inodes for fd in fds):
                continue
            with open(f"/proc/{pid}/comm") as fh:
                name = fh.read().strip()
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                argv = [a.decode() for a in fh.read().split(b"\0") if a]
        except OSError:
            continue
        out.append({"name": name, "cmdline": argv})
    return out


def main() -> None:
    sid, port, source = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    for _ in range(120):
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            break
        except OSError:
            time.sleep(0.5)
    else:
        raise SystemExit(f"{sid}: nothing listens on {port}")
    greeting = read_reply(sock)
    sock.sendall(b"EHLO probe.invalid\r\n")
    ehlo = read_reply(sock)
    sock.sendall(b"QUIT\r\n")
    sock.close()
    entry = {"id": sid, "source": source, "greeting": " ".join(greeting), "ehlo": ehlo, "processes": owners(port)}
    print(json.dumps(entry))


main()
