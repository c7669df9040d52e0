"""Shared test set-up: engine checks for integration tests, and a leak check."""

from __future__ import annotations

import os

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
