"""The CI-facing formats: SARIF (against the OASIS 2.1.0 schema), GitLab code
quality, GitHub annotations (escaping, limits) and the Markdown job summary."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from smtpgate.model import Decision, Evidence, Finding, Judged, Outcome, ScanResult, State, TargetInfo
from smtpgate.report import ReportMeta, get_report
from smtpgate.report.github import PER_KIND, command, escape_data, escape_property
from smtpgate.report.issues import RULES, image_name


def _load(name: str, path: Path):
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


HERE = Path(__file__).parent
samples = _load("report_samples", HERE / "data" / "report" / "samples.py")
checks = _load("report_checks", HERE.parent / "report_checks.py")
META = replace(samples.META, anchor="docker/Dockerfile")


def render(name: str, results, meta=META) -> str:
    return get_report(name).render(list(results), meta)


# -- SARIF -------------------------------------------------------------------------

@pytest.mark.parametrize("results", [[], [samples.clean()], list(samples.all_results())])
def test_sarif_is_valid_against_the_2_1_0_schema(results):
    checks.check_sarif(render("sarif", results))


def test_sarif_rules_and_results():
    doc = json.loads(render("sarif", [samples.postfix_fail(), samples.loopback_pass(), samples.error_result()]))
    run = doc["runs"][0]
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == [r.id for r in RULES]
    assert "inet_interfaces" in run["tool"]["driver"]["rules"][0]["help"]["text"]
    by_rule = {}
    for result in run["results"]:
        by_rule.setdefault(result["ruleId"], []).append(result)
    assert {k: len(v) for k, v in by_rule.items()} == {"SMTPGATE001": 1, "SMTPGATE003": 1, "SMTPGATE004": 2}
    (postfix,) = by_rule["SMTPGATE001"]
    assert postfix["level"] == "error" and by_rule["SMTPGATE003"][0]["level"] == "warning"
    location = postfix["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "docker/Dockerfile"} and location["region"] == {"startLine": 1}
    related = postfix["relatedLocations"][0]["physicalLocation"]  # the config file inside the image
    assert related["artifactLocation"] == {"uri": "etc/postfix/main.cf", "uriBaseId": "IMAGEROOT"}
    assert related["region"] == {"startLine": 42}
    assert "inet_interfaces = loopback-only" in postfix["message"]["text"]
    assert run["invocations"][0]["executionSuccessful"] is False  # an error result: exit 2


def test_an_anchor_is_pointed_at_only_inside_the_checkout(tmp_path, monkeypatch):
    """An absolute anchor inside the working directory (`$GITHUB_WORKSPACE/Dockerfile`) becomes
    repository-relative; one outside it is never a location: SARIF and code quality point at the
    default `Dockerfile` instead (both must name a repository file), GitHub annotations at no file."""
    monkeypatch.chdir(tmp_path)
    inside = replace(META, anchor=str(tmp_path / "docker" / "Dockerfile"))
    (result,) = json.loads(render("sarif", [samples.postfix_fail()], inside))["runs"][0]["results"]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"] == {"uri": "docker/Dockerfile"}
    assert json.loads(render("codequality", [samples.postfix_fail()], inside))[0]["location"]["path"] == \
        "docker/Dockerfile"
    for outside in ("/", "/elsewhere/Dockerfile", "../Dockerfile"):
        meta = replace(META, anchor=outside)
        (result,) = json.loads(render("sarif", [samples.postfix_fail()], meta))["runs"][0]["results"]
        # GitHub needs a location: the default, never the path outside
        assert [loc["physicalLocation"]["artifactLocation"] for loc in result["locations"]] == \
            [{"uri": "Dockerfile"}], outside
        (quality,) = json.loads(render("codequality", [samples.postfix_fail()], meta))
        assert quality["location"]["path"] == "Dockerfile", outside  # code quality's default path
        assert "file=" not in render("github", [samples.postfix_fail()], meta), outside


def test_sarif_fingerprints_are_stable_across_runs_and_tags():
    first = json.loads(render("sarif", [samples.postfix_fail()]))
    retagged = samples.postfix_fail()
    retagged = replace(retagged, target=replace(retagged.target, ref="registry.example.com/mail/relay:1.5",
                                                image_id="sha256:" + "9" * 64))
    again = json.loads(render("sarif", [retagged], replace(META, started_at=None)))
    fp = [r["partialFingerprints"] for r in first["runs"][0]["results"]]
    assert fp == [r["partialFingerprints"] for r in again["runs"][0]["results"]]
    assert re.fullmatch(r"[0-9a-f]{64}", fp[0]["smtpgate/v1"])


def test_image_name_drops_tag_and_digest():
    assert image_name("reg.example:5000/app:1.4") == "reg.example:5000/app"
    assert image_name("app@sha256:" + "a" * 64) == "app"
    assert image_name("app") == "app"


def test_a_repository_path_in_the_evidence_wins_over_the_anchor():
    result = samples.postfix_fail()
    judged = result.judged[0]
    finding = replace(judged.finding, evidence=judged.finding.evidence + (
        Evidence("command", "RUN apt-get install postfix", "Dockerfile", 7),))
    result = replace(result, judged=(replace(judged, finding=finding),))
    doc = json.loads(render("sarif", [result]))
    location = doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "Dockerfile" and location["region"]["startLine"] == 7
    cq = json.loads(render("codequality", [result]))
    assert cq[0]["location"] == {"path": "Dockerfile", "lines": {"begin": 7}}


# -- GitLab code quality --------------------------------------------------------------

def test_codequality_fields():
    issues = checks.check_codequality(render("codequality", samples.all_results()))
    assert {i["check_name"] for i in issues} == {"SMTPGATE001", "SMTPGATE003", "SMTPGATE004"}
    postfix = next(i for i in issues if i["check_name"] == "SMTPGATE001" and "Postfix" in i["description"])
    assert postfix["severity"] == "critical" and postfix["location"] == {"path": "docker/Dockerfile",
                                                                       "lines": {"begin": 1}}
    assert "inet_interfaces" in postfix["content"]["body"]


def test_codequality_clean_is_an_empty_array_and_defaults_to_dockerfile():
    assert json.loads(render("codequality", [samples.clean()])) == []
    (issue,) = json.loads(render("codequality", [samples.postfix_fail()], samples.META))
    assert issue["location"]["path"] == "Dockerfile"


# -- GitHub annotations ------------------------------------------------------------------

def test_workflow_command_escaping_follows_actions_core():
    assert escape_data("100%\r\nnext") == "100%25%0D%0Anext"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    assert command("error", "m", file="x,y:z", line=3, title=None) == "::error file=x%2Cy%3Az,line=3::m"
    assert command("warning", "only") == "::warning::only"


def test_annotations_point_at_the_anchor_with_a_title():
    lines = render("github", [samples.postfix_fail(), samples.loopback_pass()]).splitlines()
    assert lines[0].startswith("::error file=docker/Dockerfile,line=1,title=SMTPGATE001 Postfix listening on "
                               "25%2C587 (all interfaces) in registry.example.com/mail/relay%3A1.4::FAIL: ")
    assert lines[1].startswith("::warning file=docker/Dockerfile,line=1,title=SMTPGATE003 Sendmail 8.17.1 "
                               "installed")
    assert len(lines) == 2


def test_hostile_text_cannot_start_a_workflow_command():
    out = render("github", [samples.hostile()])
    for line in out.splitlines():
        assert re.match(r"^::(error|warning)( [a-z]+=[^:]*)?::", line), line
        assert "\r" not in line and "\x1b" not in line


def test_at_most_ten_annotations_per_kind():
    base = samples.postfix_fail()
    many = [replace(base, target=replace(base.target, ref=f"app{n}:1")) for n in range(15)]
    lines = render("github", many).splitlines()
    assert len(lines) == PER_KIND
    assert lines[-1].startswith("::error title=smtpgate%3A 6 more::6 more error(s)")


# -- Markdown job summary -------------------------------------------------------------------

def test_summary_table_per_image():
    text = render("markdown", [samples.postfix_fail(), samples.clean()])
    assert "| port | software | bind scope | state | verdict | fix |" in text
    assert re.search(r"^\| 25,587 \| Postfix \| all \| listening \| ❌ FAIL: .+ \| `inet_interfaces` .+ \|$",
                     text, re.M)
    assert "### ✅ nginx:1.25 — PASS" in text and "No SMTP service found." in text
    assert "How to fix Postfix" in text and "postconf -e inet_interfaces=loopback-only" in text


def test_summary_escapes_hostile_text():
    text = render("markdown", [samples.hostile()])
    assert "</failure>" not in text and "<!--" not in text and "\x1b" not in text
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("| ---"):
            assert len(re.findall(r"(?<!\\)\|", line)) == 7, line  # no cell breaks out of the table


# -- any text in any field -------------------------------------------------------------------------

def _junk_result(text: str, line: int | None) -> ScanResult:
    base = samples.postfix_fail()
    judged = base.judged[0]
    finding = replace(judged.finding, evidence=(Evidence(text, text, text, line),),
                      software=replace(judged.finding.software, name=text))
    return replace(base, target=TargetInfo("image", text, text), errors=(text,),
                   judged=(replace(judged, finding=finding, decision=Decision(Outcome.FAIL, text)),))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(), st.one_of(st.none(), st.integers(-5, 10**6)))
# paths outside the checkout, as manifest, anchor and evidence: found by hypothesis ("/" was a location)
@example("/", None)
@example("/tmp/k8s.yaml", 3)
@example("../deploy/k8s.yaml", 3)
@example(".", 1)
def test_any_text_gives_valid_ci_documents(text, line):
    results = [_junk_result(text, line)]
    meta = replace(META, anchor=text or None, errors=(text,))
    checks.check_sarif(render("sarif", results, meta))
    json.loads(render("codequality", results, meta))
    for out in render("github", results, meta).splitlines():
        assert out.startswith(("::error", "::warning")) and "\r" not in out
    render("markdown", results, meta)


def test_installed_only_finding_is_a_warning_on_the_default_path_when_no_anchor():
    """Without an anchor or a repository file in the evidence the result still has a location
    (`Dockerfile`, as code quality): GitHub refuses a result without one ("expected at least one
    location"); this test said `"locations" not in res` before that was known."""
    finding = Finding(samples.POSTFIX, State.INSTALLED, evidence=(Evidence("package", "postfix 3.7"),))
    result = ScanResult(TargetInfo("image", "app:1"), judged=(Judged(finding, Decision(Outcome.WARN, "installed")),))
    doc = json.loads(render("sarif", [result], ReportMeta()))
    (res,) = doc["runs"][0]["results"]
    assert res["ruleId"] == "SMTPGATE003" and res["level"] == "warning"
    assert res["locations"][0]["physicalLocation"] == {"artifactLocation": {"uri": "Dockerfile"},
                                                      "region": {"startLine": 1}}
    checks.check_github_sarif(doc)
