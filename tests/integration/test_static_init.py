"""What would really start, on the real engine (issue 11 §1 static, §2, §3): the init that PID 1
is decides what its links mean; control commands and entrypoint wrappers are followed. Exit codes
and findings of these fixtures are checked by test_fixtures.py from expected.yaml; here, the
evidence that says why. Scans are cached per arguments (conftest.scan_image)."""

from __future__ import annotations

import pytest

from tests.integration.conftest import EXPECTED


def _finding(run, software):
    (target,) = run.report["targets"]
    return next(f for f in target["findings"] if f["software"]["id"] == software)


def _evidence(finding, kind):
    return [e["text"] for e in finding["evidence"] if e["kind"] == kind]


@pytest.mark.parametrize("mode", [(), ("--static",)])
def test_supervisord_off_links_are_dormant(scan_image, mode):
    run = scan_image(EXPECTED["supervisord-off"]["image"], *mode)
    assert run.code == 0, run.report
    finding = _finding(run, "postfix")
    assert finding["state"] == "enabled" and finding["decision"]["outcome"] == "warn"
    dormant = _evidence(finding, "dormant")
    assert len(dormant) == 2 and all("PID 1 would be supervisord" in t for t in dormant)
    assert not _evidence(finding, "unit") and not _evidence(finding, "command")
    assert "read by no init system this image runs" in finding["decision"]["reason"]
    notes = " ".join(run.report["targets"][0]["notes"])
    assert "supervisord program postfix runs Postfix but has autostart=false" in notes


@pytest.mark.parametrize("mode", [(), ("--static",)])
def test_runit_late_sv_up_is_the_image_command(scan_image, mode):
    run = scan_image(EXPECTED["runit-late"]["image"], *mode)
    assert run.code == 1, run.report
    finding = _finding(run, "postfix")
    assert finding["decision"]["outcome"] == "fail"
    (command,) = _evidence(finding, "command")
    assert "runit service postfix (defined by /etc/service/postfix/run): `sv up postfix`" in command
    assert "/usr/local/bin/start.sh:9" in command


def test_wrapper_exec_static_follows_exec_dollar_at(scan_image):
    run = scan_image(EXPECTED["wrapper-exec"]["image"], "--static")
    assert run.code == 1, run.report
    finding = _finding(run, "exim")
    (command,) = _evidence(finding, "command")
    assert "`exim4 -bdf -q30m` (/usr/local/bin/docker-entrypoint.sh:16)" in command
    assert "boots an init system: no (PID 1 would be exim4)" in run.report["targets"][0]["notes"]


def test_wrapper_exec_normal_scan_has_the_command_evidence(scan_image):
    run = scan_image(EXPECTED["wrapper-exec"]["image"])
    finding = _finding(run, "exim")
    assert finding["state"] == "listening" and 25 in finding["ports"]
    assert any("docker-entrypoint.sh:16" in t for t in _evidence(finding, "command"))


@pytest.mark.parametrize("mode", [(), ("--static",)])
def test_s6_svscan_starts_its_scanned_directory(scan_image, mode):
    run = scan_image(EXPECTED["s6-exim"]["image"], *mode)
    assert run.code == 1, run.report
    finding = _finding(run, "exim")
    (command,) = _evidence(finding, "command")
    assert "s6 service exim runs Exim (/srv/s6/exim/run); the image command launches s6" in command
    (dormant,) = _evidence(finding, "dormant")
    assert "/etc/rc2.d/S01exim4" in dormant and "PID 1 would be s6-svscan" in dormant
    assert "static: /srv/s6/idle: has a `down` file" in " ".join(run.report["targets"][0]["notes"])
