"""Validators for the CI report files, shared by the unit tests (rendered
samples) and the runner tests (files real runners produced).

- JUnit: parsed by a strict XML parser; the attributes GitLab and Jenkins read
  (testsuite name/tests/failures/errors, testcase name/classname, failure and
  error message) present and the counts consistent with the testcases.
- SARIF: the OASIS SARIF 2.1.0 JSON schema (tests/unit/data/sarif-schema-2.1.0.json),
  plus what GitHub code scanning needs (a ruleId that names a rule, a location).
- GitLab code quality: the fields GitLab documents as required.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from functools import lru_cache
from pathlib import Path
from typing import Any

SARIF_SCHEMA = Path(__file__).parent / "unit" / "data" / "sarif-schema-2.1.0.json"
CQ_SEVERITIES = {"info", "minor", "major", "critical", "blocker"}


def check_junit(data: bytes, refs: list[str], failed: bool) -> list[dict[str, Any]]:
    """Suites as dicts; asserts the structure CI systems rely on."""
    root = ET.fromstring(data)  # raises on anything that is not well-formed XML
    suites = root.findall("testsuite") if root.tag == "testsuites" else [root]
    assert [s.get("name") for s in suites] == [f"smtpgate: {ref}" for ref in refs]
    out = []
    for suite in suites:
        cases = suite.findall("testcase")
        failures = [c for c in cases if c.find("failure") is not None]
        errors = [c for c in cases if c.find("error") is not None]
        assert int(suite.get("tests", "-1")) == len(cases) > 0
        assert int(suite.get("failures", "-1")) == len(failures)
        assert int(suite.get("errors", "-1")) == len(errors)
        for case in cases:
            assert case.get("name") and case.get("classname", "").startswith("smtpgate.")
        for element in [*suite.iter("failure"), *suite.iter("error")]:
            assert element.get("message") and element.get("type")
        names = [c.get("name") for c in cases]
        assert len(set(names)) == len(names), "testcase names must be unique within a suite"
        summary = cases[names.index("no unapproved SMTP service")]
        assert (summary.find("failure") is not None) == failed
        props = {p.get("name"): p.get("value") for p in suite.iter("property")}
        out.append({"name": suite.get("name"), "properties": props, "failed": bool(failures)})
    return out


@lru_cache(maxsize=1)
def _sarif_validator() -> Any:
    import jsonschema

    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def check_sarif(data: bytes | str) -> dict[str, Any]:
    doc = json.loads(data)
    errors = sorted(_sarif_validator().iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
    for run in doc["runs"]:
        rules = run["tool"]["driver"]["rules"]
        ids = [r["id"] for r in rules]
        assert len(set(ids)) == len(ids)
        for rule in rules:
            assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"] and rule["help"]["text"]
        for result in run["results"]:
            assert ids[result["ruleIndex"]] == result["ruleId"]
            assert result["partialFingerprints"]
    return doc  # type: ignore[no-any-return]


def check_codequality(data: bytes | str) -> list[dict[str, Any]]:
    issues = json.loads(data)
    assert isinstance(issues, list)
    for issue in issues:
        assert isinstance(issue["description"], str) and issue["description"]
        assert isinstance(issue["check_name"], str) and issue["check_name"]
        assert isinstance(issue["fingerprint"], str) and issue["fingerprint"]
        assert issue["severity"] in CQ_SEVERITIES
        assert isinstance(issue["location"]["path"], str) and not issue["location"]["path"].startswith("/")
        assert isinstance(issue["location"]["lines"]["begin"], int) and issue["location"]["lines"]["begin"] >= 1
    fingerprints = [i["fingerprint"] for i in issues]
    assert len(set(fingerprints)) == len(fingerprints), "GitLab needs unique fingerprints"
    return issues  # type: ignore[no-any-return]
