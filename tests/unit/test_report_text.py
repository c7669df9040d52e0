"""The human summary: what, why, how to fix, how to verify; nothing that drives a terminal."""

from __future__ import annotations

import re

from smtpgate import software
from smtpgate.report import ReportMeta, get_report
from smtpgate.report.text import TextReport
from tests.unit.data.report import samples

# What a terminal could act on: C0 but newline, DEL, C1, bidi controls, surrogates, noncharacters.
CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
                     "\ud800-\udfff\ufffe\uffff]")


def render(*results, meta=samples.META, **options) -> str:
    report = TextReport(**options) if options else get_report("text")
    return report.render(list(results), meta)


def test_violation_says_what_why_how_to_fix_and_verify():
    out = render(samples.postfix_fail())
    lines = out.splitlines()
    assert lines[0] == "== image registry.example.com/mail/relay:1.4 (3f4a9c0b1d2e) — FAIL"
    assert "  FAIL  Postfix listening on 25,587 (all interfaces)" in lines
    assert f"        {samples.UNAPPROVED}" in lines
    mta = software.get("postfix")
    start = lines.index(f"How to fix ({mta.name}):")
    assert all(any(step in line for line in lines[start:]) for step in mta.fix)
    verify = lines.index("Verify:")
    assert verify > start and all(f"  - {check}" in lines[verify:] for check in mta.verify)
    assert lines[-1] == "smtpgate: 1 target(s): 0 passed, 1 failed, 0 could not be decided — exit 1"


def test_listening_table_shows_endpoint_scope_process_and_protocol():
    lines = render(samples.postfix_fail()).splitlines()
    table = lines[lines.index("Listening:") + 1:lines.index("SMTP services:")]
    assert table[0].split() == ["ENDPOINT", "SCOPE", "PROCESS", "SPEAKS"]
    assert table[1].split()[:5] == ["0.0.0.0:25", "all", "master[812]", "smtp", "220"]
    assert table[4].split()[:4] == ["127.0.0.1:8080", "loopback", "python3[20]", "other"]
    speaks = table[0].index("SPEAKS")  # columns line up
    assert [row[speaks:].split()[0] for row in table[1:]] == ["smtp", "smtp", "smtp", "other"]


def test_warnings_rules_and_owners_are_shown_and_nothing_to_fix():
    out = render(samples.loopback_pass())
    assert out.startswith("== image example/app:2 (111111111111) — PASS\n")
    assert "rule: policy.yml:4, owner: mail-team@example.com" in out
    assert "Warnings:\n  Sendmail 8.17.1 installed: installed but neither running nor enabled" in out
    assert "How to fix" not in out


def test_clean_and_error_targets():
    out = render(samples.clean(), samples.error_result())
    assert "SMTP services: none found" in out and "Listening: nothing" in out
    assert "Could not inspect: could not enter the network namespace of pid 4242" in out
    assert "Could not inspect: port 2525: no greeting within 10 s\n    the port accepted" in out
    assert "— ERROR" in out
    assert out.endswith("smtpgate: 2 target(s): 1 passed, 0 failed, 1 could not be decided — exit 2\n")


def test_overall_line_for_every_sample_and_for_nothing():
    assert render(*samples.all_results()).endswith(
        "smtpgate: 5 target(s): 2 passed, 2 failed, 1 could not be decided — exit 2\n")
    assert render() == ("smtpgate: no target was scanned\n"
                        "smtpgate: 0 target(s): 0 passed, 0 failed, 0 could not be decided — exit 2\n")
    out = render(meta=ReportMeta(errors=("policy.yml:3: unknown key 'allow'",)))
    assert out.startswith("smtpgate: error: policy.yml:3: unknown key 'allow'\n")


def test_notes_are_listed():
    assert "Notes:\n  - probed from inside the container's network namespace" in render(samples.postfix_fail())


def test_hostile_target_cannot_drive_the_terminal():
    out = render(samples.hostile())
    assert not CONTROL.search(out)
    assert "\\x1b]0;pwned\\x07\\x9b31m\\x0d" in out  # shown, not obeyed
    assert "\\ud800\\ufffe\\uffff\\U0010ffff\\u202e" in out
    assert len(out) < 20_000  # 1 MB banner, reason, evidence and error cut for people


def test_no_colour_unless_asked():
    assert "\x1b" not in render(*samples.all_results())
    coloured = render(samples.postfix_fail(), samples.hostile(), color=True)
    assert "\x1b[31mFAIL\x1b[0m" in coloured
    assert set(re.findall(r"\x1b[^m]*m", coloured)) <= {"\x1b[0m", "\x1b[1m", "\x1b[31m", "\x1b[32m",
                                                         "\x1b[33m"}  # only our own SGR codes
    assert not CONTROL.search(re.sub(r"\x1b\[\d+m", "", coloured))
    assert "\x1b[32mPASS" in render(samples.clean(), meta=ReportMeta(color=True))
    assert "\x1b" not in render(samples.clean(), meta=ReportMeta(color=True), color=False)
