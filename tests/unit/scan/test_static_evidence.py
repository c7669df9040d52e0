"""The static evidence read beside a normal scan: its failure is an error of the
scan, never a note (issue 16: a flood that outlasted it used to pass the image)."""

from __future__ import annotations

import threading
import types

import docker.errors
import pytest

from smtpgate import staticgate
from smtpgate.engines.docker import DockerEngine
from smtpgate.model import TargetInfo
from smtpgate.static import FsLimits


def _target(get) -> types.SimpleNamespace:
    """A target whose engine adapter (the real one) sits on an SDK client whose image inspect is ``get``."""
    client = types.SimpleNamespace(api=types.SimpleNamespace(inspect_image=get), version=lambda: {})
    info = TargetInfo(kind="image", ref="example/app", image_id="sha256:" + "ab" * 32)
    return types.SimpleNamespace(info=info, image_engine=lambda: DockerEngine(client))


def test_an_engine_error_is_an_error_not_a_note():
    def get(_ref):
        raise docker.errors.NotFound("No such image: sha256:abab")

    facts, errors = staticgate.StaticEvidence(_target(get)).result()
    assert facts is None
    assert errors and errors[0].startswith("static analysis of the image failed: ")


def test_a_read_that_outlasts_its_budget_is_an_error():
    release = threading.Event()

    def get(_ref):
        release.wait(10)
        raise docker.errors.NotFound("late")

    evidence = staticgate.StaticEvidence(_target(get), FsLimits(seconds=0.1))
    try:
        facts, errors = evidence.result(timeout=0.2)
    finally:
        release.set()
    assert facts is None
    assert errors == ["static analysis of the image did not finish within 0.2 s, so what its command or "
                      "services start is unknown"]


def test_an_unexpected_exception_is_raised_in_the_scanning_thread():
    def get(_ref):
        raise ZeroDivisionError("bug")

    with pytest.raises(ZeroDivisionError):
        staticgate.StaticEvidence(_target(get)).result()


def test_targets_without_an_image_have_no_static_evidence():
    target = types.SimpleNamespace(info=TargetInfo(kind="host", ref="ssh://h"), image_engine=lambda: None)
    assert staticgate.StaticEvidence(target).result() == (None, [])
