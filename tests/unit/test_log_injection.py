"""Image text on stdout/stderr never becomes a CI workflow command (issue 16.4/16.5).

The sample result carries, in every field a reporter prints, the commands the
GitHub runner acts on (`::cmd::` at a line start after white space, `##[cmd]`
anywhere) and Azure's `##vso[`, after each separator `str.splitlines()` breaks
on. Every format is rendered for stdout and checked line by line, as the
runner splits its input (CR and LF)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

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
from smtpgate.report import FORMATS, for_log, get_report
from smtpgate.report.sanitize import for_log as line_for_log
from smtpgate.report.sanitize import inert, json_inert, lines
from tests.unit.data.report import samples

SEPARATORS = ("\n", "\r", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\x0b", "\x0c")
COMMANDS = ("::error::pwned", "  ::add-mask::secret", "##[error]legacy", "x ##[add-mask]mask", "##[group]g",
            "##vso[task.complete result=Failed]x", "##VSO[task.setvariable]y")
EVIL = "start " + " ".join(sep + cmd for sep in SEPARATORS for cmd in COMMANDS)

_NET_SPACE = ("".join(chr(c) for c in range(0x09, 0x0E)) + "\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000-\u200a"
              "\u2028\u2029\u202f\u205f\u3000")
_ANYWHERE = re.compile(r"##(\[|vso\[)", re.IGNORECASE)
_OURS = re.compile(r"^::(error|warning) (file=[^,:]*,)?(line=\d+,)?title=(SMTPGATE\d{3}|smtpgate: )")


def active(text: str, ours_allowed: bool = False) -> list[str]:
    found = []
    for line in re.split(r"\r\n|\r|\n", text):
        bare = re.sub(f"^[{_NET_SPACE}]+", "", line)
        if _ANYWHERE.search(line) or (bare.startswith("::") and not (ours_allowed and _OURS.match(bare))):
            found.append(line)
    return found


def evil_result() -> ScanResult:
    proc = Process(1, EVIL[:15], (EVIL, EVIL), EVIL)
    li = Listener("0.0.0.0", 25, 4, 9, proc)
    probe = SmtpProbe("0.0.0.0", 25, Protocol.SMTP, False, "220-" + EVIL + "\n220 " + EVIL, ("250-" + EVIL, "250 x"),
                      EVIL, "127.0.0.1")
    finding = Finding(Software("unknown", "unknown SMTP server", EVIL, EVIL), State.LISTENING, (li,), (probe,),
                      (Evidence("greeting", EVIL, EVIL, 1), Evidence("process", EVIL)))
    fail = Decision(Outcome.FAIL, EVIL, None, None)
    return ScanResult(TargetInfo("image", "evil/" + EVIL[:40]), listeners=(li,), probes=(probe,),
                      judged=(Judged(finding, fail, ((li, fail),)),), errors=(EVIL,), notes=(EVIL,), method="host")


def test_no_separator_survives_line_layout():
    assert lines("a\x1cb\x85c\u2028d\r\ne") == ["a\x1cb\x85c\u2028d", "e"]
    shown = line_for_log("w\x1c::error::pwned\u2028##[error]x")
    assert "\n" not in shown and not active(shown)
    assert shown == "w\\x1c::error::pwned\\u2028#\\x23[error]x"


def test_inert_is_readable_and_idempotent():
    assert inert("::error::x\n  ::warning::y\nok ##[group]z ##vso[a]") == \
        "\\x3a:error::x\n  \\x3a:warning::y\nok #\\x23[group]z #\\x23vso[a]"
    assert inert(inert("##[x]")) == inert("##[x]")
    assert inert("a::b ## [c] #[d]") == "a::b ## [c] #[d]", "only the command syntaxes change"


def test_json_inert_decodes_to_the_same_values():
    value = {"greeting": EVIL + " \x9b[31m \x7f", "list": [EVIL]}
    text = json_inert(json.dumps(value, ensure_ascii=False, indent=2))
    assert json.loads(text) == value
    assert not active(text)
    assert not re.search("[\x7f-\x9f\u2028\u2029]", text)


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_format_on_stdout_prints_no_active_command(name):
    results = [evil_result(), samples.hostile()]
    text = for_log(name, get_report(name).render(results, samples.META))
    assert active(text, ours_allowed=name == "github") == [], name
    if name == "github":
        assert text.startswith("::error "), "our own annotations still work"
    if name in ("json", "sarif", "codequality"):
        assert "##[error]legacy" in json.dumps(json.loads(text), ensure_ascii=False), "the values are intact"
    if name == "junit":
        decoded = "".join(ET.tostring(ET.fromstring(text), encoding="unicode", method="text"))
        decoded += " ".join(str(e.attrib) for e in ET.fromstring(text).iter())
        assert "##[error]legacy" in decoded, "character references decode to the text sent"


def test_text_summary_error_lines_split_on_lf_only():
    text = get_report("text").render([evil_result()], samples.META)
    assert not active(text)
    assert "\\x1c\\x3a:error::pwned" in text or "\\x1c::error::pwned" in text
