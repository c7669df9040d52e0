"""Late starters on the real engine (issue 11, section 1): a start script that
prepares for 10-20 s and then starts the MTA is watched until it listens; an
idle image whose EXPOSEd port never opens settles without that wait and every
report says the port never listened."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET

import pytest

from smtpgate.cli import main
from tests.integration.conftest import EXPECTED

LATE = ["late-supervisorctl", "late-service-start"]
EXPOSE_CASE = "EXPOSEd ports listening"


def _target(run) -> dict:
    (target,) = run.report["targets"]
    return target


@pytest.mark.parametrize("name", LATE)
def test_a_late_starter_fails_on_what_it_started(scan_image, name):
    run = scan_image(EXPECTED[name]["image"])
    target = _target(run)
    assert run.code == 1, target
    (postfix,) = [f for f in target["findings"] if f["software"]["id"] == "postfix"]
    assert postfix["state"] == "listening" and 25 in postfix["ports"]  # seen running, not only read statically
    assert target["timings"]["settle"] < 30.0  # caught within --settle-timeout, not by timing out
    assert not target["errors"]
    assert target["exposed"] == [25] and target["exposed_not_listening"] == []
    assert not any(c.startswith("EXPOSEd") for c in target["caveats"])


@pytest.mark.parametrize("name", [n for n in EXPECTED if "exposed_not_listening" in EXPECTED[n]])
def test_exposed_not_listening_is_reported(scan_image, name):
    run = scan_image(EXPECTED[name]["image"])
    target = _target(run)
    assert target["exposed_not_listening"] == EXPECTED[name]["exposed_not_listening"]
    case = [c for c in run.junit.iter("testcase") if c.get("name") == EXPOSE_CASE]
    assert len(case) == 1 and case[0].find("failure") is None and case[0].find("error") is None
    warned = "warning: EXPOSEd port(s)" in (case[0].findtext("system-out") or "")
    assert warned == bool(EXPECTED[name]["exposed_not_listening"])


def test_an_idle_image_with_an_unopened_expose_passes_with_the_warning_everywhere(tmp_path, capsys, images):
    out = {fmt: tmp_path / f"r.{fmt}" for fmt in ("junit", "json", "sarif", "codequality", "markdown")}
    code = main(["scan", images["expose-idle"], *(a for fmt, path in out.items() for a in (f"--{fmt}", str(path)))])
    text = capsys.readouterr().err
    assert code == 0
    (target,) = json.loads(out["json"].read_text())["targets"]
    assert target["verdict"] == "pass" and target["exposed_not_listening"] == [25]
    assert not target["still_starting"]
    assert target["timings"]["settle"] < 15.0  # not held to --settle-timeout: nothing was starting
    assert any(n.startswith("settled after") for n in target["notes"])
    (caveat,) = target["caveats"]
    assert caveat.startswith("EXPOSEd port(s) 25 never listened")
    header = text.splitlines()
    verdict_at = next(i for i, line in enumerate(header) if "expose-idle" in line and "PASS" in line)
    assert header[verdict_at + 1].strip().startswith("warning: EXPOSEd port(s) 25 never listened")
    suite = ET.fromstring(out["junit"].read_text()).find("testsuite")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["exposed.not_listening"] == "25" and props["verdict"] == "pass"
    summary = next(c for c in suite.iter("testcase") if c.get("name") == "no unapproved SMTP service")
    assert summary.find("failure") is None and "warning: EXPOSEd port(s) 25" in summary.findtext("system-out")
    sarif = json.loads(out["sarif"].read_text())["runs"][0]["results"]
    assert [(r["ruleId"], r["level"]) for r in sarif] == [("SMTPGATE005", "note")]
    quality = json.loads(out["codequality"].read_text())
    assert [(q["check_name"], q["severity"]) for q in quality] == [("SMTPGATE005", "info")]
    assert "> ⚠️ EXPOSEd port(s) 25 never listened" in out["markdown"].read_text()


# No EXPOSE at all: a start script loops on `sleep 1` for 12 s, then runs an
# SMTP server. Nothing declares a port, so start-up going on is what holds.
NO_EXPOSE = (
    "FROM smtpgate-fixture/aiosmtpd:latest\n"
    "CMD [\"sh\", \"-c\", \"for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo preparing $i; sleep 1; done; "
    "exec python3 -m aiosmtpd -n -l 0.0.0.0:2525\"]\n"
)


def test_a_late_starter_without_expose_is_watched_too(tmp_path, docker_client, images):
    tag = "smtpgate-test/late-no-expose:latest"
    docker_client.images.build(fileobj=io.BytesIO(NO_EXPOSE.encode()), tag=tag, labels={"smtpgate.test": "1"},
                               rm=True, forcerm=True)
    code = main(["scan", tag, "--json", str(tmp_path / "r.json"), "-q"])
    (target,) = json.loads((tmp_path / "r.json").read_text())["targets"]
    assert code == 1, target
    assert [f["ports"] for f in target["findings"] if f["state"] == "listening"] == [[2525]]
    assert target["exposed"] == [] and not target["errors"]
