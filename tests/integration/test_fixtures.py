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
        (f["software"]["id"], tuple(sorted(f["ports"])), f["scope"], f["decision"]["outcome"], f["protocol"],
         f["state"])
        for f in found
    )
    want = sorted(
        (e["software"], tuple(sorted(e["ports"])), e["scope"], e["outcome"], e.get("protocol", "smtp"),
         e.get("state", "listening"))
        for e in expected
    )
    assert got == want
    for e in expected:
        finding = next(f for f in found if f["software"]["id"] == e["software"])
        if e.get("state", "listening") == "listening":
            probes = [li["probe"] for li in _listeners(run) if li["port"] in e["ports"] and li["probe"]]
            assert probes and all(p["tls"] == e.get("tls", False) for p in probes)
        if e["outcome"] == "fail":
            assert finding["fix"], "a violation must come with the fix"


@pytest.mark.parametrize("name", NAMES)
def test_static_exit_code(scan_image, name):
    """--static: judged from the image alone, no container started, same software as a normal scan."""
    run = scan_image(EXPECTED[name]["image"], "--static")
    assert run.code == EXPECTED[name]["static_exit"], run.report
    (target,) = run.report["targets"]
    assert target["method"] == "static" and not target["listeners"]
    assert {f["state"] for f in target["findings"]} <= {"enabled", "installed"}
    known = {e["software"] for e in EXPECTED[name].get("findings") or []}
    assert {f["software"]["id"] for f in target["findings"]} <= known


@pytest.mark.parametrize("name", [n for n in NAMES if "boots_init_exit" in EXPECTED[n]])
def test_boots_init_exit_code(scan_image, name):
    for extra in (("--boots-init",), ("--boots-init", "--static")):
        run = scan_image(EXPECTED[name]["image"], *extra)
        assert run.code == EXPECTED[name]["boots_init_exit"], (extra, run.report)


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
