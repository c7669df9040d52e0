"""Isolation, bounded time, cleanup and concurrency on the real engine (issue 6)."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import subprocess
import threading

import docker.errors
import pytest

from smtpgate.cli import main
from tests.integration.conftest import labelled, scan_process

PYTHON = "smtpgate-fixture/python:latest"

# Tries every address in TARGETS, then serves what it learnt as a greeting on
# 0.0.0.0:7000, so the scan report carries the image's own view of its egress.
EGRESS = r'''
import os, socket
seen = []
for target in os.environ["TARGETS"].split():
    host, port = target.rsplit(":", 1)
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.settimeout(2)
    try:
        s.connect((host, int(port)))
        seen.append("REACHED " + target)
    except OSError as e:
        seen.append("blocked " + target + " " + (e.strerror or str(e)))
    s.close()
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", 7000)); srv.listen()
while True:
    c, _ = srv.accept()
    c.sendall(("EGRESS " + "; ".join(seen) + "\r\n").encode()); c.close()
'''

# Opens one more listening port every 0.3 s, forever.
NEVER_SETTLES = r'''
import socket, time
keep = []
while True:
    s = socket.socket(); s.bind(("0.0.0.0", 0)); s.listen(); keep.append(s); time.sleep(0.3)
'''


def build(client, tag: str, script: str, env: dict[str, str] | None = None) -> str:
    envs = "".join(f"ENV {k}={v}\n" for k, v in (env or {}).items())
    code = base64.b64encode(script.encode()).decode()
    dockerfile = f"FROM {PYTHON}\n{envs}RUN echo {code} | base64 -d > /srv.py\nCMD [\"python3\", \"/srv.py\"]\n"
    client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, labels={"smtpgate.test": "1"}, rm=True,
                        forcerm=True)
    return tag


def host_addresses() -> list[str]:
    """This host's own non-loopback IPv4 addresses (docker0 gateway included)."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True).stdout
    return [f.split()[3].split("/")[0] for f in out.splitlines() if " lo " not in f]


@pytest.fixture
def host_listener():
    """A TCP listener on all of this host's addresses that counts connections."""
    srv = socket.socket()
    srv.bind(("0.0.0.0", 0))
    srv.listen()
    srv.settimeout(0.2)
    hits: list[str] = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conn, peer = srv.accept()
                hits.append(peer[0])
                conn.close()
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield srv.getsockname()[1], hits
    stop.set()
    thread.join()
    srv.close()


def scan_json(tmp_path, *args: str) -> tuple[int, dict]:
    code = main(["scan", *args, "--json", str(tmp_path / "r.json"), "-q"])
    return code, json.loads((tmp_path / "r.json").read_text())


def test_image_under_test_reaches_nothing(tmp_path, docker_client, host_listener, images):
    port, hits = host_listener
    targets = " ".join(f"{addr}:{port}" for addr in host_addresses())
    tag = build(docker_client, "smtpgate-test/egress:latest", EGRESS, {"TARGETS": f'"{targets}"'})
    code, report = scan_json(tmp_path, tag)
    assert code == 0
    (listener,) = [li for li in report["targets"][0]["listeners"] if li["port"] == 7000]
    text = listener["probe"]["greeting"] + listener["probe"]["detail"]
    assert "EGRESS" in text and "blocked" in text and "REACHED" not in text, text
    assert hits == [], f"the image under test connected to this host from {hits}"


def test_never_settling_image_is_exit_2_within_the_timeout(tmp_path, docker_client, images):
    tag = build(docker_client, "smtpgate-test/never-settles:latest", NEVER_SETTLES)
    code, report = scan_json(tmp_path, tag, "--settle-timeout", "4")
    assert code == 2
    assert "still changing" in " ".join(report["targets"][0]["errors"])
    assert report["targets"][0]["timings"]["total"] < 4 + 15


def test_crashing_image_is_exit_2_with_its_logs(tmp_path, docker_client, images):
    script = "import sys\nprint('boom: config missing')\nsys.exit(3)\n"
    tag = build(docker_client, "smtpgate-test/crashes:latest", script)
    code, report = scan_json(tmp_path, tag)
    assert code == 2
    (error,) = report["targets"][0]["errors"]
    assert "exited with code 3" in error and "boom: config missing" in error


def test_cleanup_removes_leftovers_and_spares_running_scans(docker_client, images, capsys):
    dead = {"smtpgate": "crashed-run", "smtpgate.owner-pid": "999999999", "smtpgate.owner-host": socket.gethostname()}
    alive = dict(dead, **{"smtpgate.owner-pid": str(os.getpid())})
    net = docker_client.networks.create("smtpgate-leftover-test", labels=dead)
    ctr = docker_client.containers.create(PYTHON, command=["sleep", "60"], labels=dead)
    busy = docker_client.containers.create(PYTHON, command=["sleep", "60"], labels=alive)
    try:
        assert main(["cleanup"]) == 0
        out = capsys.readouterr().out
        assert f"removed container {ctr.name}" in out and "removed network smtpgate-leftover-test" in out
        assert f"spared container {busy.name}" in out
        assert busy.id in [c.id for c in labelled(docker_client)[0]]
        assert ctr.id not in [c.id for c in labelled(docker_client)[0]]
        busy.remove(force=True)
    finally:
        for obj in (ctr, net):
            try:
                obj.remove()
            except docker.errors.NotFound:  # already removed: the point of the test
                pass


def test_concurrent_scans_of_one_image_do_not_interfere(tmp_path, images):
    ref = "smtpgate-fixture/postfix-all"
    code, report = scan_json(tmp_path, ref, ref, ref, ref, "--jobs", "4")
    assert code == 1
    assert [t["verdict"] for t in report["targets"]] == ["fail"] * 4
    assert all(t["findings"][0]["ports"] == [25, 587] for t in report["targets"])
    assert len({t["notes"][0] for t in report["targets"]}) >= 1


def test_container_removed_under_the_scan_is_exit_2_and_leaves_nothing(tmp_path, docker_client, images):
    """The engine loses the container mid-scan (someone's `docker rm -f`, an
    engine restart): exit 2 with a reason, the network and reports still fine."""
    import time

    report = tmp_path / "r.json"
    args = ("smtpgate-fixture/slow-greeting", "--network", "internal", "--json", str(report), "-q")
    with scan_process(docker_client, *args) as proc:
        time.sleep(1.0)
        for container in labelled(docker_client, proc.pid)[0]:
            container.remove(force=True)
        _, stderr = proc.communicate(timeout=90)
    assert proc.returncode == 2, stderr
    assert json.loads(report.read_text())["targets"][0]["errors"]
    assert labelled(docker_client, proc.pid) == ([], [])
