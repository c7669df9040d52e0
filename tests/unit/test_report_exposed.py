"""EXPOSEd ports that never listened, and start-up still going on: every format
says so next to the verdict, as a warning or a note, never as a failure."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace

import jsonschema

from smtpgate.report import get_report
from smtpgate.report.jsonreport import SCHEMA
from tests.unit.test_report_ci import META, checks, samples


def idle_with_expose():
    """nginx on :80, the image EXPOSEs 25 and 80: 25 never listened."""
    result = samples.clean()
    return replace(result, exposed=(25, 80), timings={"settle": 8.04, "total": 9.1})


def looping():
    return replace(samples.clean(), exposed=(25,), still_starting="processes still coming and going",
                   timings={"settle": 30.0})


def render(name, results):
    return get_report(name).render(list(results), META)


def test_the_model_says_which_exposed_ports_did_not_listen():
    assert idle_with_expose().exposed_not_listening == (25,)
    assert samples.clean().exposed_not_listening == ()


def test_json_fields_and_schema():
    doc = json.loads(render("json", [idle_with_expose(), looping(), samples.postfix_fail()]))
    jsonschema.validate(doc, SCHEMA, cls=jsonschema.Draft202012Validator)
    idle, loop, postfix = doc["targets"]
    assert idle["exposed"] == [25, 80] and idle["exposed_not_listening"] == [25] and idle["still_starting"] is None
    assert idle["verdict"] == "pass" and doc["exit_code"] == 1
    (caveat,) = idle["caveats"]
    assert caveat.startswith("EXPOSEd port(s) 25 never listened after 8.0 s of watching")
    assert loop["still_starting"] == "processes still coming and going" and len(loop["caveats"]) == 2
    assert postfix["caveats"] == [] and postfix["exposed"] == []


def test_junit_warning_testcase_and_properties():
    xml = render("junit", [idle_with_expose()])
    checks.check_junit(xml.encode(), ["nginx:1.25"], failed=False)
    suite = ET.fromstring(xml).find("testsuite")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["exposed.ports"] == "25, 80" and props["exposed.not_listening"] == "25"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    exposed = cases["EXPOSEd ports listening"]
    assert exposed.find("failure") is None and exposed.find("error") is None and exposed.find("skipped") is None
    assert exposed.findtext("system-out").startswith("warning: EXPOSEd port(s) 25 never listened")
    summary = cases["no unapproved SMTP service"].findtext("system-out").splitlines()
    verdict_at = summary.index("verdict: pass")
    assert any(line.startswith("warning: EXPOSEd port(s) 25") for line in summary[verdict_at:verdict_at + 3])


def test_junit_without_expose_has_no_such_testcase_and_all_listening_passes_quietly():
    assert "EXPOSEd ports listening" not in render("junit", [samples.clean()])
    listening = replace(samples.clean(), exposed=(80,))
    case = next(c for c in ET.fromstring(render("junit", [listening])).iter("testcase")
                if c.get("name") == "EXPOSEd ports listening")
    assert "warning" not in case.findtext("system-out") and "not listening: -" in case.findtext("system-out")


def test_text_says_it_under_the_verdict():
    lines = render("text", [idle_with_expose()]).splitlines()
    assert lines[0].startswith("== image nginx:1.25") and lines[0].endswith("PASS")
    assert lines[1].strip().startswith("warning: EXPOSEd port(s) 25 never listened")


def test_markdown_says_it_under_the_heading():
    text = render("markdown", [looping()])
    head = text.index("### ✅ nginx:1.25")
    assert text.index("> ⚠️ EXPOSEd port(s) 25 never listened") > head
    assert "> ⚠️ start-up was still going on when the scan stopped watching" in text


def test_sarif_codequality_github_carry_notes():
    results = [idle_with_expose(), looping()]
    doc = checks.check_sarif(render("sarif", results))
    got = [(r["ruleId"], r["level"]) for r in doc["runs"][0]["results"]]
    assert got == [("SMTPGATE005", "note"), ("SMTPGATE005", "note"), ("SMTPGATE006", "note")]
    levels = {r["id"]: r["defaultConfiguration"]["level"] for r in doc["runs"][0]["tool"]["driver"]["rules"]}
    assert levels["SMTPGATE005"] == levels["SMTPGATE006"] == "note" and levels["SMTPGATE003"] == "warning"
    assert doc["runs"][0]["invocations"][0]["executionSuccessful"] is True
    quality = checks.check_codequality(render("codequality", results))
    assert {(q["check_name"], q["severity"]) for q in quality} == {("SMTPGATE005", "info"), ("SMTPGATE006", "info")}
    assert len({q["fingerprint"] for q in quality}) == 3
    annotations = render("github", results).splitlines()
    assert annotations and all(a.startswith("::notice ") for a in annotations)
    assert "title=SMTPGATE005 EXPOSEd port never listened in nginx%3A1.25" in annotations[0]


def test_an_exposed_range_is_bounded_in_words():
    wide = replace(samples.clean(), exposed=tuple(range(1000, 2001)))
    (caveat,) = json.loads(render("json", [wide]))["targets"][0]["caveats"]
    assert "1000, 1001" in caveat and "and 989 more never listened" in caveat and len(caveat) < 600
    assert len(json.loads(render("json", [wide]))["targets"][0]["exposed_not_listening"]) == 1001
