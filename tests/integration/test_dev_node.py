"""`./dev gitlab-ci-local` on a bare Debian bookworm whose only Node is
Debian's nodejs 18 (which gitlab-ci-local 4.70 refuses): it must bring a Node
that runs the pinned gitlab-ci-local, checked by version. Run in a throwaway
container of smtpgate-fixture/debian-node18 (./dev setup builds it); npm
fetches from its registry, as ./dev does on a new machine."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.integration.conftest import ROOT

pytestmark = pytest.mark.slow
IMAGE = "smtpgate-fixture/debian-node18"


def test_dev_brings_a_node_gitlab_ci_local_runs_on(docker_client):
    pinned = re.search(r"^GITLAB_CI_LOCAL_VERSION=(\S+)$", (ROOT / "dev").read_text(), re.M).group(1)
    script = ("node --version && cd /src && bash dev gitlab-ci-local >/dev/null 2>&1 && gitlab-ci-local --version "
              "&& /opt/smtpgate-node/node_modules/node/bin/node --version")
    done = subprocess.run(["docker", "run", "--rm", "--label", "smtpgate", "--label", "smtpgate.test=dev-node",
                           "-v", "/etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro",
                           "-v", f"{ROOT / 'dev'}:/src/dev:ro", IMAGE, "sh", "-c", script],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    system_node, glci, node = done.stdout.split()
    assert system_node.startswith("v18.")  # Debian's, too old for gitlab-ci-local
    assert glci == pinned
    assert int(node.lstrip("v").split(".")[0]) >= 20
