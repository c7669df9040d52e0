"""Every fixture image, scanned on the real engine: exit code, findings, JUnit."""

from __future__ import annotations

import pytest

from tests.integration.conftest import EXPECTED, fixture_names

NAMES = fixture_names()


def _findings(run):
    (target,) = run.report["targets"]
    return target["findings"]


def _listeners(run):
    (target,) = run.report["targets"]
    return target["listeners"]


@pytest.mark.parametrize("name", NAMES)
def test_exit_code(scan_image, name):
    run = scan_image(EXPECTED[name]["image"])
    assert run.code == EXPECTED[name]["exit"], run.report


@pytest.mark.parametrize("name", NAMES)
def test_findings(scan_image, name):
    run = scan_image(EXPECTED[name]["image"])
    expected = EXPECTED[name].get("findings") or []
    found = _findings(run)
    got = sorted(
        (f["software"]["id"], tuple(sorted(f["ports"])), f["scope"], f["decision"]["outcome"], f["protocol"])
        for f in found
    )
    want = sorted(
        (e["software"], tuple(sorted(e["ports"])), e["scope"], e["outcome"], e.get("protocol", "smtp"))
        for e in expected
    )
    assert got == want
    for e in expected:
        finding = next(f for f in found if f["software"]["id"] == e["software"])
        probes = [li["probe"] for li in _listeners(run) if li["port"] in e["ports"] and li["probe"]]
        assert probes and all(p["tls"] == e.get("tls", False) for p in probes)
        if e["outcome"] == "fail":
            assert finding["fix"], "a violation must come with the fix"


@pytest.mark.parametrize("name", NAMES)
def test_non_smtp_ports_are_not_smtp(scan_image, name):
    run = scan_image(EXPECTED[name]["image"])
    for port in EXPECTED[name].get("not_smtp") or []:
        probes = [li["probe"] for li in _listeners(run) if li["port"] == port]
        assert probes, f"port {port} should be listening"
        assert all(p and p["protocol"] == "other" for p in probes), probes


@pytest.mark.parametrize("name", NAMES)
def test_junit(scan_image, name):
    run = scan_image(EXPECTED[name]["image"])
    suites = run.junit.findall("testsuite") if run.junit.tag == "testsuites" else [run.junit]
    assert len(suites) == 1
    cases = suites[0].findall("testcase")
    names = [c.get("name") for c in cases]
    assert "no unapproved SMTP service" in names
    summary = cases[names.index("no unapproved SMTP service")]
    failed = summary.find("failure") is not None
    assert failed == (EXPECTED[name]["exit"] == 1)
    props = {p.get("name"): p.get("value") for p in suites[0].iter("property")}
    assert props.get("image.id", "").startswith("sha256:")
    assert "smtpgate.version" in props
    n_fail = sum(1 for f in _findings(run) if f["decision"]["outcome"] == "fail")
    assert sum(1 for c in cases if c.get("name", "").startswith("finding") and c.find("failure") is not None) == n_fail
