"""Collection on a live container: sock_diag and /proc/net/tcp{,6} agree."""

from __future__ import annotations

import time

import pytest

from smtpgate.collect import procfs
from smtpgate.targets.docker import DockerImageTarget


@pytest.mark.parametrize("name", ["postfix-all", "postfix-loopback", "loopback-filter"])
def test_sock_diag_sees_what_proc_net_tcp_sees(name, images, docker_client):
    target = DockerImageTarget(images[name], client=docker_client)
    with target:
        time.sleep(1.5)  # settled or not, both must see the same sockets at the same moment
        snap = target.snapshot()
        assert target._diag, "sock_diag was not used"
        diag, problems = target._diag.listening()
        raw, _ = procfs.read_listening(f"/proc/{target.pid}")
    assert problems == []
    key = lambda s: (s.address, s.port, s.family, s.inode, s.uid)  # noqa: E731
    assert {key(s) for s in diag} == {key(s) for s in raw}
    assert {(li.address, li.port) for li in snap.listeners} == {(s.address, s.port) for s in raw}
    assert snap.listeners
