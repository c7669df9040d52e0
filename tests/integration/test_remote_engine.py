"""The remote-engine path: smtpgate talks to the engine over TCP (a socat proxy
on loopback stands in for GitLab's docker:dind service) and inspects each
fixture from a helper container in the target's namespaces, without this
host's /proc or any route to the target. It must reach the same verdicts as
the local path, on every fixture of fixtures/expected.yaml."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from smtpgate.cli import main
from smtpgate.targets.helper import DEFAULT_IMAGE
from tests.integration.conftest import EXPECTED, ROOT, fixture_names, labelled


@pytest.fixture(autouse=True)
def _default_helper_image(tool_image):
    """Every helper here is the default one: the tool image must be built."""


def _scan(tmp_path, monkeypatch, engine: str, ref: str, *extra: str) -> tuple[int, dict]:
    monkeypatch.setenv("DOCKER_HOST", engine)
    monkeypatch.delenv("SMTPGATE_HELPER_IMAGE", raising=False)
    out = tmp_path / "r.json"
    code = main(["scan", ref, "--json", str(out), "-q", "--pull", "never", *extra])
    return code, json.loads(out.read_text())


def _summary(report: dict) -> list[tuple]:
    (target,) = report["targets"]
    return sorted((f["software"]["id"], tuple(sorted(f["ports"])), f["scope"], f["decision"]["outcome"],
                   f["protocol"], f["state"]) for f in target["findings"])


@pytest.mark.parametrize("name", fixture_names())
def test_helper_over_tcp_gets_the_expected_verdict(tmp_path, monkeypatch, images, tcp_engine, docker_client, name):
    want = EXPECTED[name]
    code, report = _scan(tmp_path, monkeypatch, tcp_engine, want["image"], "--method", "helper")
    (target,) = report["targets"]
    if want.get("exits_at_once"):  # reported as exited before any helper could join it
        assert target["method"] == "exited" and code == want["exit"], target
        assert any("exited" in e for e in target["errors"]), target["errors"]
        assert labelled(docker_client, os.getpid()) == ([], [])
        return
    assert target["method"] == "helper", target
    assert any(f"({DEFAULT_IMAGE})" in note for note in target["notes"]), "the tool image is the default helper"
    assert code == want["exit"], target
    assert _summary(report) == sorted((e["software"], tuple(sorted(e["ports"])), e["scope"], e["outcome"],
                                       e.get("protocol", "smtp"), e.get("state", "listening"))
                                      for e in (want.get("findings") or []))
    for port in want.get("not_smtp") or []:
        probes = [li["probe"] for li in target["listeners"] if li["port"] == port]
        assert probes and all(p and p["protocol"] == "other" for p in probes), probes
    for e in [e for e in want.get("findings") or [] if e.get("state", "listening") == "listening"]:
        probes = [li["probe"] for li in target["listeners"] if li["port"] in e["ports"]]
        assert probes and all(p["tls"] == e.get("tls", False) for p in probes)
    assert any("helper container" in note for note in target["notes"])
    assert labelled(docker_client, os.getpid()) == ([], []), "the helper and the target are always removed"


IN_NAMESPACE_PID = 1  # smtpgate is PID 1 of its own pid namespace: its smtpgate.owner-pid label


def _unshared(args: list[str], env: dict) -> subprocess.CompletedProcess:
    """smtpgate in its own pid namespace with its own /proc: the engine's
    containers are invisible there, as on a remote or rootless engine."""
    unshare = shutil.which("unshare")
    assert unshare, "unshare (util-linux) is needed"
    return subprocess.run([unshare, "--pid", "--fork", "--mount-proc", sys.executable, "-m", "smtpgate", *args],
                          env=env, capture_output=True, text=True, timeout=180, cwd=ROOT)


def test_auto_falls_back_to_the_helper_when_proc_does_not_show_the_container(tmp_path, images, docker_client):
    env = {k: v for k, v in os.environ.items() if k != "SMTPGATE_HELPER_IMAGE"}  # the default helper image
    env["PYTHONPATH"] = str(ROOT)
    done = _unshared(["scan", "smtpgate-fixture/postfix-all", "--json", str(tmp_path / "r.json"), "-q"], env)
    report = json.loads((tmp_path / "r.json").read_text())
    (target,) = report["targets"]
    assert done.returncode == 1, done.stderr
    assert target["method"] == "helper"
    assert any("not visible in this host's /proc" in note for note in target["notes"])
    assert _summary(report) == [("postfix", (25, 587), "all", "fail", "smtp", "listening")]
    assert labelled(docker_client, IN_NAMESPACE_PID) == ([], [])


def test_no_helper_image_and_no_proc_is_exit_2_and_says_what_to_do(tmp_path, images, docker_client):
    env = dict(os.environ, PYTHONPATH=str(ROOT), SMTPGATE_HELPER_IMAGE="none")
    done = _unshared(["scan", "smtpgate-fixture/postfix-all", "--json", str(tmp_path / "r.json"), "-q"], env)
    assert done.returncode == 2, done.stderr
    (target,) = json.loads((tmp_path / "r.json").read_text())["targets"]
    assert target["method"] == "unavailable"
    assert "--helper-image" in " ".join(target["errors"] + target["notes"])
    assert labelled(docker_client, IN_NAMESPACE_PID) == ([], [])


def test_method_host_on_an_invisible_engine_is_exit_2(tmp_path, images, docker_client):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = _unshared(["scan", "smtpgate-fixture/clean", "--method", "host", "--json", str(tmp_path / "r.json"),
                      "-q"], env)
    assert done.returncode == 2
    (target,) = json.loads((tmp_path / "r.json").read_text())["targets"]
    assert "--method host" in target["errors"][0]
    assert labelled(docker_client, IN_NAMESPACE_PID) == ([], [])


def test_missing_helper_image_is_exit_2_and_nothing_is_left(tmp_path, monkeypatch, images, tcp_engine,
                                                            docker_client):
    code, report = _scan(tmp_path, monkeypatch, tcp_engine, "smtpgate-fixture/clean", "--method", "helper",
                         "--helper-image", "smtpgate-fixture/no-such-helper:1")
    assert code == 2
    assert "helper image" in report["targets"][0]["errors"][0]
    assert labelled(docker_client, os.getpid()) == ([], [])
