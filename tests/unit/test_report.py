"""The report registry, write_report, the exit code reports state, sanitising."""

from __future__ import annotations

import json
import os
import re
import stat
import xml.etree.ElementTree as ET

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smtpgate.errors import ReportError
from smtpgate.model import (
    Decision,
    Evidence,
    Finding,
    Judged,
    Listener,
    Outcome,
    Process,
    Protocol,
    ScanResult,
    SmtpProbe,
    Software,
    State,
    TargetInfo,
)
from smtpgate.report import FORMATS, Report, ReportMeta, get_report, run_exit_code, write_report
from smtpgate.report.sanitize import bound, bounded, escape, one_line, unpaired
from tests.unit.data.report import samples


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_format_renders_every_sample(name):
    report = get_report(name)
    assert isinstance(report, Report) and report.name == name
    for results in ([], [samples.clean()], list(samples.all_results())):
        assert isinstance(report.render(results, samples.META), str)


def test_the_three_formats_are_registered():
    assert {"junit", "json", "text", "sarif", "codequality", "github", "markdown"} <= set(FORMATS)


def test_unknown_format_names_the_known_ones():
    with pytest.raises(ReportError, match=r"'sarif2'.*codequality, github, json, junit, markdown, sarif, text"):
        get_report("sarif2")


def test_write_report_creates_parents_and_leaves_no_temp_file(tmp_path):
    dest = tmp_path / "reports" / "deep" / "junit.xml"
    write_report("junit", [samples.postfix_fail()], samples.META, dest)
    assert dest.read_text("utf-8") == get_report("junit").render([samples.postfix_fail()], samples.META)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o644
    assert os.listdir(dest.parent) == ["junit.xml"]


def test_write_report_replaces_and_keeps_the_mode(tmp_path):
    dest = tmp_path / "out.json"
    dest.write_text("old")
    dest.chmod(0o600)
    write_report("json", [samples.clean()], samples.META, str(dest))
    assert dest.read_text("utf-8").startswith("{") and stat.S_IMODE(dest.stat().st_mode) == 0o600


def test_write_report_failure_names_path_and_reason(tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(ReportError, match=r"cannot write report .*taken: Is a directory"):
        write_report("junit", [], samples.META, tmp_path / "taken")
    assert os.listdir(tmp_path) == ["taken"] and not os.listdir(tmp_path / "taken")


def test_write_report_under_a_file_fails_cleanly(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ReportError, match=r"file/r\.xml: File exists: .*/file$"):
        write_report("junit", [], samples.META, tmp_path / "file" / "r.xml")


def test_dash_writes_to_stdout(capsys):
    write_report("json", [samples.clean()], samples.META, "-")
    assert capsys.readouterr().out == get_report("json").render([samples.clean()], samples.META)


@pytest.mark.parametrize(("results", "meta", "code"), [
    ([samples.clean()], ReportMeta(), 0),
    ([samples.clean(), samples.postfix_fail()], ReportMeta(), 1),
    ([samples.postfix_fail(), samples.error_result()], ReportMeta(), 2),
    ([], ReportMeta(), 2),  # nothing scanned is never a pass
    ([samples.clean()], ReportMeta(errors=("policy.yml:3: unknown key 'allow'",)), 2),
    ([samples.clean()], ReportMeta(exit_code=2), 2),  # the CLI's word wins
])
def test_run_exit_code(results, meta, code):
    assert run_exit_code(results, meta) == code


def test_escape_shows_every_dangerous_character():
    assert escape("a\x00\x1b[2J\r\x9b\x7f") == "a\\x00\\x1b[2J\\x0d\\x9b\\x7f"
    assert escape("\udcff\ud800\ufffe\U0010ffff\u202e") == "\\xff\\ud800\\ufffe\\U0010ffff\\u202e"
    assert escape("l1\n\tl2") == "l1\\x0a\\x09l2"
    assert escape("l1\n\tl2", multiline=True) == "l1\n\tl2"
    assert escape("Grüße ✉ ]]> </failure>") == "Grüße ✉ ]]> </failure>"


def test_unpaired_only_touches_surrogates():
    assert unpaired("\x00\x1b\udc80\ud800ok") == "\x00\x1b\\x80\\ud800ok"


def test_bound_marks_what_was_cut_in_bytes():
    assert bound("x" * 10, 10) == "x" * 10
    assert bound("abcdé\udcff", 4) == "abcd… (3 bytes more)"
    assert len(bound("A" * 1_000_000)) < 4200


def test_one_line():
    assert one_line("first\n  second\r\n\nthird ") == "first / second / third"


def test_bounded_copies_the_model_with_short_strings_and_enums_intact():
    result = bounded(samples.hostile())
    probe = result.probes[0]
    assert len(probe.greeting) < 4200 and probe.greeting.endswith("bytes more)")
    assert all(len(line) < 4200 for line in probe.ehlo)
    assert result.judged[0].decision.outcome is Outcome.FAIL
    assert isinstance(result, ScanResult) and result.timings[samples.BAD] == 1.0
    assert bounded(samples.postfix_fail()) == samples.postfix_fail()


# Any text in any string field of the model -> every format still renders a valid document.

_PIECES = st.sampled_from(["\x00", "\x1b[2J", "\x1b]0;t\x07", "]]>", "</failure>", "<!--", "&",
                           "\r\n", "\x85", "\u202e", "\ufffe", "\uffff", "\U0010ffff", "\U0001fffe"])
TEXT = st.lists(st.one_of(st.characters(), st.integers(0, 0x1F).map(chr),
                          st.integers(0xD800, 0xDFFF).map(chr), _PIECES),
                max_size=12).map("".join)
ANY_TEXT = st.one_of(TEXT, TEXT.map(lambda t: t * 400))  # some beyond the 4 KB bound
OPT = st.none() | TEXT


@st.composite
def scan_results(draw):
    t = lambda: draw(ANY_TEXT)  # noqa: E731
    process = draw(st.none() | st.builds(Process, st.integers(0, 2**22), TEXT,
                                         st.lists(TEXT, max_size=3).map(tuple), OPT))
    listener = Listener(t(), draw(st.integers(0, 65535)), draw(st.sampled_from([4, 6])), 0, process)
    probe = SmtpProbe(listener.address, listener.port, draw(st.sampled_from(list(Protocol))),
                      draw(st.booleans()), t(), (t(), t()), t())
    decision = Decision(draw(st.sampled_from(list(Outcome))), t(), draw(OPT), draw(OPT))
    finding = Finding(Software(t(), t(), draw(OPT), t()), draw(st.sampled_from(list(State))),
                      draw(st.sampled_from([(), (listener,)])), (probe,),
                      (Evidence(t(), t(), draw(OPT), draw(st.none() | st.integers())),),
                      draw(st.sampled_from(list(Protocol))))
    timings = draw(st.dictionaries(TEXT, st.floats(allow_nan=True), max_size=2))
    return ScanResult(TargetInfo(t(), t(), draw(OPT), (t(),)), (listener,), (probe,),
                      (Judged(finding, decision, ((listener, decision),)),),
                      (t(),) * draw(st.integers(0, 2)), (t(),), t(), timings)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(scan_results(), max_size=2), st.lists(TEXT, max_size=2).map(tuple), OPT)
def test_any_text_in_any_field_renders_valid_documents(results, run_errors, policy):
    meta = ReportMeta(errors=run_errors, policy_source=policy or "", command_line=run_errors)
    root = ET.fromstring(get_report("junit").render(results, meta).encode("utf-8"))
    assert len(root.findall("testsuite")) == len(results) + bool(run_errors or not results)
    assert all(s.find("testcase[@name='no unapproved SMTP service']") is not None for s in root)
    doc = json.loads(get_report("json").render(results, meta).encode("utf-8"))
    assert len(doc["targets"]) == len(results)
    text = get_report("text").render(results, meta)
    assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff\u202e]", text)
