"""The pytest plugin (entry point pytest11, fixture `smtpgate`) under pytest
with testinfra's docker backend, against running fixture containers:
`pytest --hosts=docker://<container>` with a one-line test that calls
`smtpgate.check(host)`."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

TEST = "def test_no_unapproved_smtp(host, smtpgate):\n    smtpgate.check(host)\n"


@pytest.fixture()
def running(docker_client, images):
    """start(image) -> a running container's id; all removed at the end."""
    started = []

    def start(image: str) -> str:
        container = docker_client.containers.run(image, detach=True, network_mode="none",
                                                 labels={"smtpgate": "", "smtpgate.test": "testinfra",
                                                         "smtpgate.owner-pid": str(os.getpid())})
        started.append(container)
        return str(container.id)

    yield start
    for container in started:
        container.remove(force=True)


def _pytest(tmp_path, container: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_mail.py").write_text(TEST)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--color=no",
                           f"--hosts=docker://{container}", "test_mail.py"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)


def test_an_approved_loopback_mta_passes_probed_by_the_targets_python(tmp_path, running):
    done = _pytest(tmp_path, running("smtpgate-fixture/postfix-loopback"))
    assert done.returncode == 0, done.stdout[-3000:]
    assert "1 passed" in done.stdout


def test_an_unapproved_listener_fails_the_test_with_smtpgates_message(tmp_path, running):
    done = _pytest(tmp_path, running("smtpgate-fixture/aiosmtpd-2525"))
    assert done.returncode == 1, done.stdout[-3000:]
    out = done.stdout
    assert "FAIL" in out and "0.0.0.0:2525" in out and "smtpgate: 1 target(s): 0 passed, 1 failed" in out, out[-3000:]
    assert "probed from inside the target by smtpgate's agent" in out


def test_without_python3_or_socket_owners_it_is_could_not_inspect_never_a_pass(tmp_path, running):
    done = _pytest(tmp_path, running("smtpgate-fixture/postfix-all"))
    assert done.returncode == 1, done.stdout[-3000:]
    out = done.stdout
    assert "no python3 >= 3.9 in the target" in out and "could not be decided" in out, out[-3000:]
    assert "Postfix" in out  # the package and the init script still say what is there
    assert "could not be read through this backend" in out
