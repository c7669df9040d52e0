"""The TARGETS registry: every kind imports lazily to a Target that can be made
from a reference, and the reference's form picks the kind."""

from __future__ import annotations

import pytest

from smtpgate.errors import TargetError
from smtpgate.targets import TARGETS, TargetOptions, kind_of, make_target, target_class
from smtpgate.targets.interface import Target


@pytest.mark.parametrize("kind", sorted(TARGETS))
def test_every_kind_is_a_target_made_from_a_reference(kind):
    cls = target_class(kind)
    assert issubclass(cls, Target)
    assert cls.from_ref.__func__ is not Target.from_ref.__func__, f"{cls.__name__} lacks from_ref"


@pytest.mark.parametrize(("ref", "kind"), [
    ("postfix:3.7", "image"),
    ("registry.example:5000/team/app@sha256:" + "0" * 64, "image"),
    ("ssh://deploy@staging.example:22", "ssh"),
    ("SSH://deploy@staging.example", "ssh"),
])
def test_the_form_of_the_reference_picks_the_kind(ref, kind):
    assert kind_of(ref) == kind


def test_an_unknown_scheme_is_refused_not_taken_for_an_image():
    with pytest.raises(TargetError, match=r"unknown reference form 'docker://' \(known: ssh://"):
        kind_of("docker://postfix")


def test_targets_are_made_without_contacting_anything():
    options = TargetOptions(ssh_key="/k", ssh_known_hosts="/kh")
    image = make_target("example/app:1", options)
    assert (image.info.kind, image.info.ref) == ("image", "example/app:1")
    host = make_target("ssh://ci@host.example.invalid:2222", options)
    assert host.info.kind == "host" and host.endpoint.identity == "/k" and host.endpoint.known_hosts == "/kh"
