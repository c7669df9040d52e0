"""Error paths, interruption and policy files, on the real engine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest

from smtpgate.cli import main
from tests.integration.conftest import labelled, scan_process

BASE = "smtpgate-fixture/debian-base:bookworm"


def scan(tmp_path, *args: str) -> tuple[int, dict, ET.Element]:
    code = main(["scan", *args, "--junit", str(tmp_path / "j.xml"), "--json", str(tmp_path / "r.json"), "-q"])
    return code, json.loads((tmp_path / "r.json").read_text()), ET.parse(tmp_path / "j.xml").getroot()


def junit_errors(root: ET.Element) -> list[str]:
    return [e.get("message", "") for e in root.iter("error")]


def test_missing_image_is_exit_2_with_junit(tmp_path, docker_client):
    code, report, junit = scan(tmp_path, "smtpgate-fixture/no-such-image:1", "--pull", "never")
    assert code == 2
    assert "not found" in report["targets"][0]["errors"][0]
    assert any("no-such-image" in m for m in junit_errors(junit))


def test_engine_unreachable_is_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    code, report, junit = scan(tmp_path, "smtpgate-fixture/clean")
    assert code == 2
    assert "Docker engine not reachable" in " ".join(report["errors"] + report["targets"][0]["errors"])
    assert junit_errors(junit)


def test_container_that_exits_at_once_is_exit_2(tmp_path, images, docker_client):
    code, report, _ = scan(tmp_path, BASE)  # CMD /bin/bash without stdin: exits with 0 at once
    assert code == 2
    (error,) = report["targets"][0]["errors"]
    assert "exited with code 0" in error
    assert labelled(docker_client, os.getpid()) == ([], [])


def test_container_that_exits_before_its_helper_joins_is_reported_as_exited(tmp_path, images, docker_client,
                                                                          monkeypatch):
    """The engine cannot join the namespaces of a container that has ended ("cannot join network of a
    non running container", seen in CI under load): that is the target's exit with its code, not a
    helper failure. The helper is created only once the target has ended, so the race always happens."""
    from smtpgate.engines.docker import DockerEngine
    from smtpgate.targets.docker import DockerImageTarget

    create = DockerEngine.create

    def late_helper(self, spec):
        if spec.labels.get("smtpgate.role") == "helper":
            target = spec.network_mode.removeprefix("container:")
            for _ in range(200):
                if not self.inspect(target)["State"].get("Running"):
                    break
                time.sleep(0.05)
        return create(self, spec)

    already_exited = DockerImageTarget._already_exited

    def running_when_the_method_is_chosen(self, grace=0.0):  # as in the race: the look before the helper
        return grace > 0 and already_exited(self, grace)  # says running; the look after its failure is real

    monkeypatch.setattr(DockerEngine, "create", late_helper)
    monkeypatch.setattr(DockerImageTarget, "_already_exited", running_when_the_method_is_chosen)
    code, report, _ = scan(tmp_path, BASE, "--method", "helper")
    assert code == 2
    (error,) = report["targets"][0]["errors"]
    assert "exited with code 0" in error, error
    assert "helper" not in error
    assert labelled(docker_client, os.getpid()) == ([], [])


def test_container_that_ends_after_it_settled_is_not_a_pass(tmp_path, images, docker_client, monkeypatch):
    """Judged on its last look, a target that ended after settling (a retry loop that gives up, a
    crash on first use) would pass: its exit is an error of the scan, as before settling. It is
    killed while its image is read, after it settled (a long sleep: parked at once)."""
    from smtpgate.staticgate import StaticEvidence

    result = StaticEvidence.result

    def killed_first(self, budget):
        (container,) = docker_client.containers.list(
            filters={"label": [f"smtpgate.owner-pid={os.getpid()}", "smtpgate.image=" + BASE]})
        container.kill()
        container.wait(timeout=30)
        return result(self, budget)

    monkeypatch.setattr(StaticEvidence, "result", killed_first)
    code = main(["scan", BASE, "--json", str(tmp_path / "r.json"), "-q", "--", "sleep", "600"])
    report = json.loads((tmp_path / "r.json").read_text())
    assert code == 2, report
    (error,) = report["targets"][0]["errors"]
    assert "exited with code 137 after it settled" in error, error
    assert labelled(docker_client, os.getpid()) == ([], [])


def test_a_reused_pid_is_not_taken_for_the_container(images, docker_client):
    """The host path asks /proc, not the engine, whether PID 1 still runs. Once the container has
    ended and been reaped, its pid number can be another process's (pid_max is 32768 on many
    hosts): that process is not the container, so the engine is asked."""
    from smtpgate.targets.docker import DockerImageTarget
    from smtpgate.workload.spec import RunSpec

    target = DockerImageTarget(BASE, pull="never", spec=RunSpec(image=BASE, cmd=("sleep", "600")))
    with target:
        assert target.method == "host-proc+netns", target.method
        assert target.state().running
        assert target.engine is not None and target.cid is not None
        docker_client.containers.get(target.cid).kill()
        docker_client.containers.get(target.cid).wait(timeout=30)
        target.pid = os.getpid()  # the number now names a live process that is not the container
        state = target.state()
        assert not state.running and state.exit_code == 137, state
    assert labelled(docker_client, os.getpid()) == ([], [])


def test_invalid_policy_is_exit_2_naming_file_and_line(tmp_path, images):
    policy = tmp_path / "smtpgate.yml"
    policy.write_text("version: 1\napprovals:\n  - software: postfix\n    bind: loopbak\n    reason: x\n")
    code, report, junit = scan(tmp_path, "smtpgate-fixture/clean", "--policy", str(policy))
    assert code == 2
    message = " ".join(report["errors"])
    assert f"{policy}:4" in message and "loopbak" in message
    assert junit_errors(junit)


def test_policy_approval_turns_a_failure_into_a_pass(tmp_path, images):
    policy = tmp_path / "smtpgate.yml"
    policy.write_text(
        "version: 1\napprovals:\n"
        "  - software: postfix\n    ports: [25, 587]\n    bind: all\n"
        "    reason: outbound relay for the billing app\n    owner: team-billing\n    expires: 2999-12-31\n"
    )
    code, report, _ = scan(tmp_path, "smtpgate-fixture/postfix-all", "--policy", str(policy))
    assert code == 0
    (finding,) = report["targets"][0]["findings"]
    assert finding["decision"]["outcome"] == "pass"
    assert finding["decision"]["rule"] == f"{policy}:3"


def test_expired_approval_fails_and_says_so(tmp_path, images):
    policy = tmp_path / "smtpgate.yml"
    policy.write_text(
        "version: 1\napprovals:\n"
        "  - software: postfix\n    reason: temporary exception\n    expires: 2020-01-31\n"
    )
    code, report, _ = scan(tmp_path, "smtpgate-fixture/postfix-all", "--policy", str(policy))
    assert code == 1
    (finding,) = report["targets"][0]["findings"]
    assert "expired" in finding["decision"]["reason"] and "2020-01-31" in finding["decision"]["reason"]


def test_several_images_one_report(tmp_path, images):
    code, report, junit = scan(tmp_path, "smtpgate-fixture/clean", "smtpgate-fixture/exim-all")
    assert code == 1
    assert [t["verdict"] for t in report["targets"]] == ["pass", "fail"]
    assert len(junit.findall("testsuite")) == 2


def test_python_dash_m_works_like_the_command():
    done = subprocess.run([sys.executable, "-m", "smtpgate", "--help"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and "scan" in done.stdout
    done = subprocess.run([sys.executable, "-m", "smtpgate", "scan", "--bogus"], capture_output=True, timeout=30)
    assert done.returncode == 2


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_scan_leaves_nothing_behind(tmp_path, images, docker_client, sig):
    """Ctrl-C (SIGINT) or CI cancellation (SIGTERM) mid-scan: exit 2, reports
    written, no container or network left."""
    junit = tmp_path / "j.xml"
    with scan_process(docker_client, "smtpgate-fixture/slow-greeting", "--junit", str(junit), "-q") as proc:
        time.sleep(0.5)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2, stderr
    assert labelled(docker_client, proc.pid) == ([], [])
    assert "interrupted" in " ".join(junit_errors(ET.parse(junit).getroot()))
