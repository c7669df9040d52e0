"""JUnit XML: structure per target, and well-formed XML 1.0 whatever the target said."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import replace

import pytest

from smtpgate import software
from smtpgate.model import Decision, Evidence, Judged, Listener, Outcome, Protocol, ScanResult, SmtpProbe, Software
from smtpgate.report import ReportMeta, get_report
from smtpgate.report.junit import SUMMARY
from tests.unit.data.report import samples

# Anything outside XML 1.0's Char production (https://www.w3.org/TR/xml/#charsets).
NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def render(*results, meta=samples.META) -> str:
    return get_report("junit").render(list(results), meta)


def parse(xml: str) -> ET.Element:
    """Strict parse (expat); also no character XML 1.0 forbids, even escaped."""
    assert not NOT_XML_CHAR.search(xml)
    assert not re.search(r"&#(x0*[0-8bcef]|x0*1[0-9a-f]|0*([0-8]|1[1-24-9]|2[0-9]|3[01]));", xml, re.I)
    return ET.fromstring(xml.encode("utf-8"))


def suites(xml: str) -> list[ET.Element]:
    root = parse(xml)
    assert root.tag == "testsuites"
    return root.findall("testsuite")


def cases(suite: ET.Element) -> dict[str, ET.Element]:
    found = {case.get("name"): case for case in suite.findall("testcase")}
    assert len(found) == len(suite.findall("testcase")), "testcase names are unique"
    return found


def counts(suite: ET.Element) -> tuple[int, int, int]:
    """(tests, failures, errors) as the attributes say, checked against the elements."""
    tests, failures, errors = (int(suite.get(k)) for k in ("tests", "failures", "errors"))
    assert tests == len(suite.findall("testcase"))
    assert failures == len(suite.findall("testcase/failure"))
    assert errors == len(suite.findall("testcase/error"))
    return tests, failures, errors


def properties(suite: ET.Element) -> list[tuple[str, str]]:
    return [(p.get("name"), p.get("value")) for p in suite.findall("properties/property")]


def test_postfix_on_all_interfaces_fails_with_fix_and_verify():
    (suite,) = suites(render(samples.postfix_fail()))
    assert suite.get("name") == "smtpgate: registry.example.com/mail/relay:1.4"
    assert counts(suite) == (6, 5, 0)
    by_name = cases(suite)
    assert list(by_name) == [SUMMARY, "finding Postfix listening 25,587",
                             "listener 0.0.0.0:25 (smtp)", "listener [::]:25 (smtp)",
                             "listener 0.0.0.0:587 (smtp)", "listener 127.0.0.1:8080 (other)"]
    assert {c.get("classname") for c in by_name.values()} == {
        "smtpgate.registry_example_com_mail_relay_1_4"}
    finding = by_name["finding Postfix listening 25,587"].find("failure")
    assert finding.get("message") == samples.UNAPPROVED
    mta = software.get("postfix")
    for line in (*mta.fix, *mta.verify, "inet_interfaces = all (/etc/postfix/main.cf:42)"):
        assert line in finding.text
    assert by_name["listener 127.0.0.1:8080 (other)"].find("failure") is None
    assert "HTTP/1.0 400" in by_name["listener 127.0.0.1:8080 (other)"].find("system-out").text


def test_summary_failure_lists_violations_and_carries_total_time():
    (suite,) = suites(render(samples.postfix_fail()))
    summary = cases(suite)[SUMMARY]
    assert summary.get("time") == "7.250000"
    assert summary.find("failure").get("message") == (
        "1 unapproved SMTP service(s): Postfix listening on 25,587 (all interfaces)")
    assert summary.find("failure").get("type") == "unapproved-smtp"


def test_properties_name_the_image_tool_and_policy():
    (suite,) = suites(render(samples.postfix_fail()))
    props = properties(suite)
    assert ("smtpgate.version", "0.1.0") in props
    assert ("image.id", samples.postfix_fail().target.image_id) in props
    assert [v for k, v in props if k == "image.digest"] == list(samples.postfix_fail().target.digests)
    for pair in [("target.kind", "image"), ("scan.method", "host-netns"), ("verdict", "fail"),
                 ("policy", "default policy"), ("exit_code", "1")]:
        assert pair in props
    assert suite.get("timestamp") == "2024-05-01T12:00:00+00:00"


def test_loopback_and_warning_pass_with_reasons_in_system_out():
    (suite,) = suites(render(samples.loopback_pass()))
    assert counts(suite) == (5, 0, 0)
    by_name = cases(suite)
    assert suite.find("testcase/skipped") is None  # a warning is checked, not skipped
    warned = by_name["finding Sendmail installed -"].find("system-out").text
    assert warned.startswith("software: Sendmail 8.17.1") and "WARN: installed but" in warned
    assert all(line in warned for line in software.get("sendmail").fix)
    approved = by_name["listener 127.0.0.1:25 (smtp)"].find("system-out").text
    assert "rule: policy.yml:4" in approved and "owner: mail-team@example.com" in approved


def test_clean_image_is_never_an_empty_report():
    (suite,) = suites(render(samples.clean()))
    assert counts(suite) == (2, 0, 0)
    assert list(cases(suite)) == [SUMMARY, "listener 0.0.0.0:80 (other)"]


def test_inspection_errors_are_errors_never_passes():
    (suite,) = suites(render(samples.error_result()))
    assert counts(suite) == (3, 0, 3)
    by_name = cases(suite)
    summary = by_name[SUMMARY].find("error")
    assert summary.get("type") == "inspection-error"
    assert all(e.splitlines()[0] in summary.get("message") for e in samples.INSPECTION_ERRORS)
    assert list(by_name)[1:] == [
        "inspection: could not enter the network namespace of pid 4242: Operation not permitted",
        "inspection: port 2525: no greeting within 10 s"]
    assert by_name["inspection: port 2525: no greeting within 10 s"].find("error").text == \
        samples.INSPECTION_ERRORS[1]


def test_violations_decide_even_when_part_of_the_inspection_failed():
    result = samples.postfix_fail()
    result = replace(result, errors=("port 2525: timed out",))
    summary = cases(suites(render(result))[0])[SUMMARY]
    assert summary.find("error") is None
    assert summary.find("failure").get("message").endswith("(and 1 thing(s) could not be inspected)")


def test_no_target_still_gives_a_report_that_errors():
    (suite,) = suites(render())
    assert suite.get("name") == "smtpgate" and counts(suite) == (1, 0, 1)
    assert cases(suite)[SUMMARY].find("error").get("message") == "no target was scanned"


def test_run_level_errors_get_their_own_suite():
    meta = ReportMeta(errors=("policy.yml:3: unknown key 'allow'",))
    all_suites = suites(render(samples.clean(), meta=meta))
    assert [s.get("name") for s in all_suites] == ["smtpgate: nginx:1.25", "smtpgate"]
    assert counts(all_suites[1]) == (2, 0, 2)
    assert ("exit_code", "2") in properties(all_suites[0])


def test_every_sample_at_once():
    root = parse(render(*samples.all_results()))
    assert len(root.findall("testsuite")) == 5
    assert int(root.get("failures")) == 5 + 0 + 0 + 0 + 3
    assert all(s.find(f"testcase[@name='{SUMMARY}']") is not None for s in root)


def test_hostile_target_gives_valid_bounded_xml():
    xml = render(samples.hostile())
    (suite,) = suites(xml)
    assert len(xml) < 200_000  # megabyte banner, evidence, reason and error all cut
    assert counts(suite) == (4, 3, 1)
    listener = cases(suite)["listener 0.0.0.0:2525 (smtp)"].find("failure").text
    assert "greeting: 220 \\x00\\x07\\x1b[2J\\x1b]0;pwned\\x07\\x9b31m\\x0d\\x7f\\xff\\ud800" in listener
    assert "]]></failure><!--" in listener  # escaped on the way out, intact after parsing
    assert re.search(r"… \(\d+ bytes more\)", listener)
    assert suite.get("name").startswith("smtpgate: evil/\\x00")
    summary = cases(suite)[SUMMARY]
    assert summary.get("time") is None  # NaN total: no time rather than time="nan"


@pytest.mark.parametrize("text", ["\x00", "\x1b[31m", "]]>", "</failure>", "\udcff\udc80",
                                  "\ud800", "\ufffe\uffff", "\x85\x9b", "&amp;<>\"'", "\r\n\t"])
def test_each_hostile_string_in_every_field_of_a_finding(text):
    result = samples.postfix_fail()
    finding = replace(result.judged[0].finding, software=Software(text, text, text, text),
                      evidence=(Evidence(text, text, text, 1),))
    judged = Judged(finding, Decision(Outcome.FAIL, text, text, text))
    xml = render(replace(result, judged=(judged,), errors=(text,), notes=(text,), method=text))
    assert counts(suites(xml)[0])[1] == 5


def test_implicit_tls_and_unjudged_smtp_listeners():
    """An SMTP port no finding covers is a gate bug: shown as an error, never a silent pass."""
    probe = SmtpProbe("0.0.0.0", 465, Protocol.SMTP, tls=True, greeting="220 x ESMTP")
    (suite,) = suites(render(ScanResult(samples.clean().target, (Listener("0.0.0.0", 465, 4),), (probe,))))
    case = cases(suite)["listener 0.0.0.0:465 (smtp/tls)"]
    assert case.find("error").get("type") == "not-judged"


def test_unparsable_addresses_do_not_break_the_report():
    (suite,) = suites(render(ScanResult(samples.clean().target, (Listener("not-an-address", 25, 4),))))
    assert "scope: unknown" in cases(suite)["listener not-an-address:25 (not-probed)"].find("system-out").text
