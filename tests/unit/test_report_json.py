"""JSON: the documented schema, stable field by field, and always encodable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smtpgate import software
from smtpgate.report import ReportMeta, get_report
from smtpgate.report.jsonreport import SCHEMA, document
from tests.unit.data.report import samples

GOLDEN = Path(__file__).parent / "data" / "report" / "postfix_fail.json"


def render(*results, meta=samples.META) -> dict:
    text = get_report("json").render(list(results), meta)
    text.encode("utf-8")  # strict: no lone surrogate made it through
    return json.loads(text)


def without_remedy(doc: dict) -> dict:
    """The document minus fix/verify, which belong to the MTA registry."""
    for target in doc["targets"]:
        for finding in target["findings"]:
            del finding["fix"], finding["verify"]
    return doc


def test_postfix_document_matches_the_golden_file():
    # After an intended schema change (bump SCHEMA_VERSION if it is incompatible), rewrite
    # the file with json.dumps(without_remedy(render(samples.postfix_fail())), indent=2).
    assert without_remedy(render(samples.postfix_fail())) == json.loads(GOLDEN.read_text("utf-8"))


def test_fix_and_verify_come_from_the_mta_registry():
    (finding,) = render(samples.postfix_fail())["targets"][0]["findings"]
    mta = software.get("postfix")
    assert finding["fix"] == list(mta.fix) and finding["verify"] == list(mta.verify)


def test_unknown_software_gets_the_registry_unknown_entry():
    (finding,) = render(samples.hostile())["targets"][0]["findings"]
    unknown = software.get("unknown")
    assert finding["fix"] == list(unknown.fix) and finding["verify"] == list(unknown.verify)


def test_generic_remedy_if_the_registry_has_no_entry(monkeypatch):
    def missing(mta_id):
        raise KeyError(mta_id)

    monkeypatch.setattr(software, "get", missing)
    (finding,) = render(samples.postfix_fail())["targets"][0]["findings"]
    assert any("127.0.0.1 / ::1" in step for step in finding["fix"])
    assert finding["verify"][0].startswith("`ss -ltnp '( sport = :25 or sport = :587 )'` lists only")


@pytest.mark.parametrize("results", [(), (samples.clean(),), samples.all_results()])
def test_every_document_validates_against_the_schema(results):
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.validate(render(*results), SCHEMA, cls=jsonschema.Draft202012Validator)


def test_exit_code_and_verdicts():
    doc = render(*samples.all_results())
    assert doc["exit_code"] == 2 and doc["schema"] == 1 and doc["smtpgate"] == "0.1.0"
    assert [t["verdict"] for t in doc["targets"]] == ["fail", "pass", "pass", "error", "fail"]
    assert render(samples.clean())["exit_code"] == 0
    assert render(samples.clean(), samples.postfix_fail())["exit_code"] == 1


def test_run_level_errors_and_empty_runs():
    doc = render(meta=ReportMeta(errors=("engine unreachable",)))
    assert doc["errors"] == ["engine unreachable"] and doc["exit_code"] == 2 and doc["targets"] == []


def test_loopback_pass_keeps_rule_owner_and_null_scope_for_installed():
    exim, sendmail = render(samples.loopback_pass())["targets"][0]["findings"]
    assert exim["decision"] == {"outcome": "pass", "reason": "bound to loopback only (CIS local-only mode)",
                                "rule": "policy.yml:4", "owner": "mail-team@example.com"}
    assert exim["scope"] == "loopback" and exim["listeners"] == ["127.0.0.1:25", "[::1]:25"]
    assert sendmail["scope"] is None and sendmail["ports"] == [] and sendmail["state"] == "installed"


def test_hostile_strings_are_bounded_kept_and_encodable():
    target = render(samples.hostile())["targets"][0]
    probe = target["listeners"][0]["probe"]
    assert probe["greeting"].startswith("220 \x00\x07\x1b[2J")  # control characters kept: JSON escapes them
    assert "\\xff\\ud800" in probe["greeting"]  # lone surrogates written as text
    assert len(probe["greeting"]) < 4200 and probe["greeting"].endswith("bytes more)")
    assert target["timings"]["total"] is None  # NaN is not JSON
    assert len(json.dumps(target)) < 200_000


def test_document_is_plain_data():
    doc = document([samples.postfix_fail()], samples.META)
    assert json.loads(json.dumps(doc)) == doc
