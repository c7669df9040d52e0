"""A helper agent command that never answers (docker 20.10 can leave an exec's
stream open for ever when the target dies under it) ends in a CollectError
within its time bound, and the helper is removed: never a hung scan."""

from __future__ import annotations

import os
import time

import pytest

from smtpgate.engines import as_engine
from smtpgate.errors import CollectError
from smtpgate.targets.helper import HelperAgent


def test_an_agent_that_never_answers_is_cut_off_and_the_helper_removed(docker_client, images, tool_image):
    labels = {"smtpgate": "", "smtpgate.owner-pid": str(os.getpid()), "smtpgate.test": "helper-timeout"}
    target = docker_client.containers.run("smtpgate-fixture/clean", detach=True, network_mode="none", labels=labels)
    agent = HelperAgent(as_engine(docker_client), tool_image, pull="never")
    try:
        agent.start(target.id, f"smtpgate-test-{os.getpid()}-helper", labels)
        helper_id = agent.cid
        agent._source = "import time\ntime.sleep(600)\n"  # an agent that never answers
        started = time.monotonic()
        with pytest.raises(CollectError, match="did not answer within 3 s"):
            agent._run("snapshot", timeout=3)
        assert time.monotonic() - started < 30
        assert agent.cid is None
        assert not docker_client.containers.list(all=True, filters={"id": helper_id})
    finally:
        agent.remove()
        target.remove(force=True)
