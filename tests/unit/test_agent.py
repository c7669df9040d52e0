"""The helper agent, run exactly as the helper runs it: `python3 -c <bootstrap>`
with no smtpgate importable, against a real SMTP-speaking socket on loopback."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading

import pytest

from smtpgate.collect.agent import MARKER, bootstrap
from smtpgate.targets.helper import _smtp_probe


@pytest.fixture
def smtp_server():
    """A tiny SMTP speaker on 127.0.0.1 (220, then 250 to EHLO), one connection at a time."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(b"220 agent.test ESMTP Postfix (Debian/GNU)\r\n")
                conn.settimeout(2)
                try:
                    while data := conn.recv(1024):
                        if data.upper().startswith(b"EHLO"):
                            conn.sendall(b"250-agent.test\r\n250 PIPELINING\r\n")
                        elif data.upper().startswith(b"QUIT"):
                            break
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield srv.getsockname()[1]
    stop.set()
    thread.join(2)
    srv.close()


def run_agent(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-I", "-S", "-c", bootstrap(), MARKER, *args], capture_output=True,
                          text=True, timeout=60, cwd="/")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_agent_needs_nothing_but_the_stdlib():
    done = subprocess.run([sys.executable, "-I", "-S", "-c", "import smtpgate"], capture_output=True, cwd="/")
    assert done.returncode != 0  # no site-packages: smtpgate is not importable, yet the agent runs
    assert "sockets" in run_agent("snapshot")


def test_snapshot_sees_a_listener_and_leaves_itself_out(smtp_server):
    answer = run_agent("snapshot")
    assert any(s["port"] == smtp_server and s["address"] == "127.0.0.1" for s in answer["sockets"])
    assert not any(MARKER in p["cmdline"] for p in answer["processes"])


def test_probe_speaks_smtp(smtp_server):
    answer = run_agent("probe", json.dumps({"patience": 3, "ports": [["127.0.0.1", smtp_server, "127.0.0.1"]]}))
    (raw,) = answer["probes"]
    probe = _smtp_probe(raw)
    assert probe.speaks_smtp and probe.greeting.startswith("220 agent.test ESMTP Postfix")
    assert probe.ehlo[-1] == "250 PIPELINING" and probe.connected_to == "127.0.0.1"


def test_bad_command_is_exit_2():
    done = subprocess.run([sys.executable, "-I", "-S", "-c", bootstrap(), MARKER, "bogus"], capture_output=True,
                          timeout=60)
    assert done.returncode == 2 and b"usage" in done.stderr


def test_snapshot_says_what_each_thread_waits_for():
    """In a pid namespace of its own (as in the helper container), the agent
    reads the threads and timerfds of the processes it reports (needs root and
    unshare(1), like the helper's CAP_SYS_PTRACE): a `sleep 100` waits ~100 s."""
    script = f"sleep 100 & sleep 0.3; exec {sys.executable} -I -S -c \"$SRC\" {MARKER} snapshot"
    done = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", script], capture_output=True,
                          text=True, timeout=60, cwd="/", env={"SRC": bootstrap(), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    (sleeper,) = [p for p in answer["processes"] if p["cmdline"][:2] == ["sleep", "100"]]
    assert answer["threads"] is not None and answer["timerfds"] == []
    (_, runs, wait, site) = next(t for t in answer["threads"] if t[0] == sleeper["host_pid"])
    nanosleeps = ("35@", "230@", "101@", "115@")  # nanosleep, clock_nanosleep on x86_64, aarch64
    assert 90 < wait <= 100 and runs >= 1 and site.startswith(nanosleeps)
