"""Integration fixtures: built fixture images, scans run once and shared."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import docker.errors
import pytest
import yaml

from smtpgate.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = yaml.safe_load((ROOT / "fixtures" / "expected.yaml").read_text())["fixtures"]


def fixture_names() -> list[str]:
    return sorted(EXPECTED)


def labelled(client, owner_pid: int | None = None) -> tuple[list, list]:
    """Containers and networks labelled smtpgate (by one scanning process)."""
    label = "smtpgate" if owner_pid is None else f"smtpgate.owner-pid={owner_pid}"
    return (
        client.containers.list(all=True, sparse=True, filters={"label": label}),  # no inspect: no 404 race
        client.networks.list(filters={"label": label}),
    )


@dataclass
class ScanRun:
    code: int
    report: dict
    junit: ET.Element
    junit_text: str


@pytest.fixture(scope="session")
def tool_image(docker_client) -> str:
    """The smtpgate tool image of this version (the default helper image), built by ./dev setup."""
    import runpy

    from smtpgate.targets.helper import DEFAULT_IMAGE

    try:
        image = docker_client.images.get(DEFAULT_IMAGE)
    except Exception:  # noqa: BLE001
        pytest.fail(f"the tool image {DEFAULT_IMAGE} is not built (run ./dev tool-image)", pytrace=False)
    want = runpy.run_path(str(ROOT / "fixtures" / "source-hash.py"))["source_hash"](ROOT)
    if (image.labels or {}).get("smtpgate.source") != want:
        pytest.fail(f"the tool image {DEFAULT_IMAGE} was built from other sources than this checkout "
                    "(run ./dev tool-image)", pytrace=False)
    return DEFAULT_IMAGE


@pytest.fixture(scope="session")
def images(docker_client):
    """Every fixture image must exist (built by ./dev setup / fixtures/build.sh)."""
    missing = []
    for name in fixture_names():
        ref = EXPECTED[name]["image"]
        try:
            docker_client.images.get(ref)
        except docker.errors.ImageNotFound:
            missing.append(ref)
    if missing:
        pytest.fail(f"fixture images not built: {', '.join(missing)} (run ./dev fixtures)", pytrace=False)
    return {name: EXPECTED[name]["image"] for name in fixture_names()}


@pytest.fixture(scope="session")
def scan_image(images, tmp_path_factory, docker_client):
    """scan_image(ref, *args) -> ScanRun, through the real CLI entry point;
    results are cached per argument list so each fixture is scanned once."""
    cache: dict[tuple, ScanRun] = {}

    def run(ref: str, *extra: str) -> ScanRun:
        key = (ref, *extra)
        if key not in cache:
            out = tmp_path_factory.mktemp("scan")
            code = main(["scan", ref, "--junit", str(out / "j.xml"), "--json", str(out / "r.json"), "-q", *extra])
            text = (out / "j.xml").read_text(encoding="utf-8")
            cache[key] = ScanRun(code, json.loads((out / "r.json").read_text()), ET.fromstring(text), text)
        return cache[key]

    yield run
    containers, networks = labelled(docker_client, os.getpid())  # ours only: other runs may share the engine
    assert not containers and not networks, "scans left labelled containers/networks behind"


@contextlib.contextmanager
def scan_process(client, *args: str, timeout: float = 30.0):
    """`python -m smtpgate scan ARGS` in a subprocess, yielded once its container
    runs; killed on the way out if it is still running, whatever happened."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "smtpgate", "scan", *args],
        env=dict(os.environ, PYTHONPATH=str(ROOT)), stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while not any(c.status == "running" for c in labelled(client, proc.pid)[0]):
            if time.monotonic() > deadline:
                raise AssertionError("the scan never started its container")
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def tcp_engine(docker_client):
    """DOCKER_HOST=tcp://127.0.0.1:PORT, proxied by socat to the local engine's socket."""
    socat = shutil.which("socat")
    if not socat:
        pytest.fail("socat is not installed (./dev setup installs it)", pytrace=False)
    port = _free_port()
    proc = subprocess.Popen([socat, f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr",
                             "UNIX-CONNECT:/var/run/docker.sock"], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("socat did not start listening", pytrace=False)
            time.sleep(0.05)
    yield f"tcp://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)
