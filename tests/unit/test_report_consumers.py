"""The reports as their real consumers read them: JUnit against the Jenkins
xunit plugin's junit-10.xsd and read back by junitparser, SARIF against each
of GitHub code scanning's requirements, GitLab code quality's fingerprints and
severities; and the sizes for a run of 1000 images (GitLab refuses a JUnit
file over 30 MB). The scan results are real ones (data/report/capture.py)."""

from __future__ import annotations

import json
import pickle
import re
from dataclasses import replace
from pathlib import Path

import pytest

from smtpgate.report import ReportMeta, get_report
from tests import report_checks as checks
from tests.unit.data.report import samples

CAPTURED = Path(__file__).parent / "data" / "report" / "captured.pickle"
GITLAB_JUNIT_LIMIT = 30 * 1024 * 1024


@pytest.fixture(scope="module")
def captured():
    try:
        return pickle.loads(CAPTURED.read_bytes())
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"{CAPTURED} no longer loads ({exc}): re-run tests/unit/data/report/capture.py", pytrace=False)


def render(name: str, results, meta=samples.META) -> str:
    return get_report(name).render(list(results), meta)


def retagged(result, n: int):
    """The same scan as if of another image: app<n>:1.<n>."""
    return replace(result, target=replace(result.target, ref=f"registry.example.com/team/app{n}:1.{n}"))


def test_junit_passes_the_xsd_and_junitparser(captured):
    checks.check_junit_consumers(render("junit", captured).encode())
    checks.check_junit_consumers(render("junit", samples.all_results()).encode())
    checks.check_junit_consumers(render("junit", []).encode())
    checks.check_junit_consumers(render("junit", captured, replace(samples.META, errors=("engine gone",))).encode())


def test_the_xsd_check_catches_what_junit_xml_used_to_write(captured):
    xml = render("junit", captured[:1])
    with pytest.raises(AssertionError):
        checks.check_junit_consumers(xml.replace("<testsuites ", '<testsuites disabled="0" ', 1).encode())
    with pytest.raises(AssertionError):
        long_time = re.sub(r'(<testsuite [^>]*time=")[^"]*"', r'\g<1>7.2500001"', xml, count=1)
        checks.check_junit_consumers(long_time.encode())


def test_junit_classname_names_the_image_and_names_are_unique(captured):
    from xml.etree import ElementTree as ET

    root = ET.fromstring(render("junit", [captured[0], captured[0]]))
    for suite in root.findall("testsuite"):
        names = [c.get("name") for c in suite.findall("testcase")]
        assert len(names) == len(set(names))
        assert {c.get("classname") for c in suite.findall("testcase")} == {"smtpgate.smtpgate-fixture_postfix-all"}


def test_reports_for_1000_images_stay_far_below_gitlabs_limit(captured):
    results = [retagged(captured[n % len(captured)], n) for n in range(1000)]
    sizes = {name: len(render(name, results).encode()) for name in ("junit", "sarif", "codequality")}
    assert sizes["junit"] < GITLAB_JUNIT_LIMIT / 3, sizes  # measured 5.9 MB
    assert all(size < GITLAB_JUNIT_LIMIT for size in sizes.values()), sizes


@pytest.mark.parametrize("rule", checks.GITHUB_SARIF_RULES, ids=lambda r: r.__name__)
def test_sarif_meets_each_github_requirement(captured, rule):
    for results in (captured, samples.all_results(), [], [captured[0], captured[0]], [samples.hostile()]):
        rule(json.loads(render("sarif", results)))


@pytest.mark.parametrize("rule", checks.GITHUB_SARIF_RULES, ids=lambda r: r.__name__)
def test_each_github_check_can_fail(captured, rule):
    doc = json.loads(render("sarif", captured))
    broken = {
        "github_rule_texts": lambda d: d["runs"][0]["tool"]["driver"]["rules"][0]["help"].pop("markdown"),
        "github_security_severity": lambda d: d["runs"][0]["tool"]["driver"]["rules"][0]["properties"]
        .update(tags=["smtp"]),
        "github_fingerprints": lambda d: d["runs"][0]["results"][0]["partialFingerprints"]
        .pop("primaryLocationLineHash"),
        "github_every_result_located": lambda d: d["runs"][0]["results"][0].pop("locations"),
        "github_relative_locations": lambda d: d["runs"][0]["results"][0].update(locations=[
            {"physicalLocation": {"artifactLocation": {"uri": "/etc/postfix/main.cf"}, "region": {"startLine": 1}}}]),
        "github_automation_details": lambda d: d["runs"][0].pop("automationDetails"),
    }
    broken[rule.__name__](doc)
    with pytest.raises((AssertionError, KeyError)):
        rule(doc)


def test_sarif_category_per_image_or_image_set_stable_across_tags(captured):
    ids = [json.loads(render("sarif", results))["runs"][0]["automationDetails"]["id"]
           for results in ([captured[0]], [retagged(captured[0], 7)], [retagged(captured[2], 7)], [],
                           captured[:2], captured[1::-1], captured)]
    assert ids[:4] == ["smtpgate/smtpgate-fixture/postfix-all/", "smtpgate/registry.example.com/team/app7/",
                       "smtpgate/registry.example.com/team/app7/", "smtpgate/run/"]
    assert re.fullmatch(r"smtpgate/smtpgate-fixture/postfix-all\+1-[0-9a-f]{12}/", ids[4])
    assert ids[5].endswith(ids[4][-14:]) and ids[6] != ids[4]  # the same set in another order: same hash


def test_sarif_fingerprints_and_locations_for_github(captured):
    doc = json.loads(render("sarif", captured, replace(samples.META, anchor="Dockerfile")))
    (run,) = doc["runs"]
    assert len(run["results"]) == 4
    assert [r["locations"][0]["physicalLocation"]["artifactLocation"] for r in run["results"]] == \
        [{"uri": "Dockerfile"}] * 4
    first, other = (json.loads(render("sarif", [retagged(captured[0], n)]))["runs"][0]["results"][0]
                    for n in (7, 8))
    assert first["partialFingerprints"] != other["partialFingerprints"]  # another image
    again = json.loads(render("sarif", [retagged(captured[0], 7)], replace(samples.META, started_at=None)))
    assert first["partialFingerprints"] == again["runs"][0]["results"][0]["partialFingerprints"]


def test_codequality_fingerprints_are_stable_and_severities_gitlabs(captured):
    first = json.loads(render("codequality", captured))
    again = json.loads(render("codequality", captured, ReportMeta(tool_version="9.9.9")))
    assert [i["fingerprint"] for i in first] == [i["fingerprint"] for i in again]
    assert len(first) == 4
    for issue in first:
        assert issue["severity"] in {"info", "minor", "major", "critical", "blocker"}
        assert issue["location"]["lines"]["begin"] >= 1
    checks.check_codequality(json.dumps(first))


@pytest.mark.parametrize("name", ["json", "junit", "sarif", "markdown"])
def test_the_version_is_in_the_report(name):
    from smtpgate import __version__

    assert __version__ in render(name, [samples.clean()], ReportMeta())
