"""Shared test set-up: engine checks for integration tests, and a leak check."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

SKIP_ENV = "SMTPGATE_SKIP_INTEGRATION"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/integration/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def docker_client():
    """The real engine. Missing engine = failure, not a skip, unless the
    developer opts out explicitly with SMTPGATE_SKIP_INTEGRATION=1."""
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{SKIP_ENV}=1: integration tests skipped on request")
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.fail(
            f"no Docker engine reachable ({exc}); start one (./dev setup) or set {SKIP_ENV}=1 to opt out",
            pytrace=False,
        )
    return client


@pytest.fixture
def device_dir(tmp_path):
    """A directory where a character device made with mknod can be opened: tmp_path, unless its
    filesystem is mounted nodev (a tmpfs /tmp often is: systemd's tmp.mount, `docker run --tmpfs`),
    then a new directory under /var/tmp, removed afterwards."""
    if not os.statvfs(tmp_path).f_flag & os.ST_NODEV:
        yield tmp_path
        return
    where = Path(tempfile.mkdtemp(prefix="smtpgate-devnodes-", dir="/var/tmp"))
    try:
        if os.statvfs(where).f_flag & os.ST_NODEV:
            pytest.skip(f"both {tmp_path} and /var/tmp are mounted nodev: a device node cannot be opened there")
        yield where
    finally:
        shutil.rmtree(where, ignore_errors=True)
