"""Every fixture on a nested Docker 28.5 engine with the containerd image store
and a minimum API version of 1.44: Docker 29's defaults for new installs
(tests/machines.py). Same verdicts as on the host's engine, normal and
--static, through the host path (the machine shares the host's pid namespace,
as an engine on a CI runner does), and a client that negotiates its API
version instead of pinning one."""

from __future__ import annotations

import json
import os

import pytest

from smtpgate.cli import main
from tests import machines
from tests.integration.conftest import EXPECTED, fixture_names

# Fixtures marked `machines: false` in expected.yaml (a million-file layer, a
# 1 GiB file) cost minutes to copy into a nested engine and test nothing that
# is engine-specific; every other fixture runs there.
NAMES = [n for n in fixture_names() if EXPECTED[n].get("machines", True)]


@pytest.fixture(scope="module")
def containerd_engine(images):
    kind = machines.KINDS["docker-28-containerd"]
    with machines.machine(kind.name, sorted(EXPECTED[n]["image"] for n in NAMES)) as m:
        yield m


def _scan(tmp_path, monkeypatch, engine, ref: str, *extra: str) -> tuple[int, dict]:
    for key, value in engine.env().items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "r.json"
    code = main(["scan", ref, "--json", str(out), "-q", "--pull", "never", *extra])
    return code, json.loads(out.read_text())


def _summary(report: dict) -> list[tuple]:
    (target,) = report["targets"]
    return sorted((f["software"]["id"], tuple(sorted(f["ports"])), f["scope"], f["decision"]["outcome"],
                   f["protocol"], f["state"]) for f in target["findings"])


def _want(name: str) -> list[tuple]:
    found = EXPECTED[name].get("findings") or []
    return sorted((e["software"], tuple(sorted(e["ports"])), e["scope"], e["outcome"], e.get("protocol", "smtp"),
                   e.get("state", "listening")) for e in found)


def test_the_machine_is_the_containerd_store_and_refuses_old_clients(containerd_engine):
    info = containerd_engine.client().info()  # the SDK: the host's docker CLI may be too old for this engine
    assert info["ServerVersion"].startswith("28.")
    assert info["Driver"] == "overlayfs", info["Driver"]  # the containerd snapshotter, not overlay2
    import docker

    pinned = docker.DockerClient(base_url=containerd_engine.docker_host, version="1.41")
    with pytest.raises(docker.errors.APIError) as refused:
        pinned.images.list()
    assert refused.value.status_code == 400 and "too old" in str(refused.value)


@pytest.mark.parametrize("name", NAMES)
def test_same_verdict_on_the_containerd_store(tmp_path, monkeypatch, containerd_engine, name):
    want = EXPECTED[name]
    code, report = _scan(tmp_path, monkeypatch, containerd_engine, want["image"])
    (target,) = report["targets"]
    assert code == want["exit"], target
    # the host path, as on a CI runner's own engine
    if want.get("exits_at_once"):
        # Gone before the first look ("exited"), or seen for the moment it lives on a loaded runner
        # (the host path): either way the report says it exited, and why.
        assert target["method"] in ("exited", "host-proc+netns"), target["method"]
        assert any("exited with code" in e for e in target["errors"]), target["errors"]
    else:
        assert target["method"] == "host-proc+netns", target["method"]
    assert _summary(report) == _want(name)
    assert machines.labelled_on(containerd_engine, os.getpid()) == []


@pytest.mark.parametrize("name", [n for n in NAMES if "static_exit" in EXPECTED[n]])
def test_same_static_verdict_on_the_containerd_store(tmp_path, monkeypatch, containerd_engine, name):
    code, report = _scan(tmp_path, monkeypatch, containerd_engine, EXPECTED[name]["image"], "--static")
    (target,) = report["targets"]
    assert code == EXPECTED[name]["static_exit"], target
    assert target["method"] == "static" and not target["listeners"]
    assert machines.labelled_on(containerd_engine, os.getpid()) == []


def test_a_tls_verified_remote_engine_through_the_helper(tmp_path, monkeypatch, images, tool_image):
    """GitLab's docker:dind: DOCKER_HOST=tcp://...:2376 with --tlsverify, certificates
    from DOCKER_CERT_PATH, no shared /proc (the helper, the tool image by default),
    and a CA bundle variable in the environment as on many CI machines (requests
    would let it replace the engine's CA)."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    with machines.machine("docker-28-tls", [EXPECTED["postfix-all"]["image"], tool_image]) as m:
        code, report = _scan(tmp_path, monkeypatch, m, EXPECTED["postfix-all"]["image"], "--method", "helper")
        (target,) = report["targets"]
        assert code == 1, target
        assert target["method"] == "helper"
        assert _summary(report) == _want("postfix-all")
        assert machines.labelled_on(m, os.getpid()) == []
