"""Validators for the CI report files, shared by the unit tests (rendered
samples) and the runner tests (files real runners produced).

- JUnit: parsed by a strict XML parser; valid against the Jenkins xunit plugin's
  junit-10.xsd (tests/unit/data/junit-10.xsd, with xmlschema); read back by
  junitparser with the same counts; the attributes GitLab and Jenkins read
  (testsuite name/tests/failures/errors, testcase name/classname, failure and
  error message) present, the counts consistent with the testcases, testcase
  names unique within a suite.
- SARIF: the OASIS SARIF 2.1.0 JSON schema (tests/unit/data/sarif-schema-2.1.0.json),
  plus what GitHub code scanning needs (check_github_sarif, one check per rule).
- GitLab code quality: the fields GitLab documents as required.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from functools import lru_cache
from pathlib import Path
from typing import Any

SARIF_SCHEMA = Path(__file__).parent / "unit" / "data" / "sarif-schema-2.1.0.json"
JUNIT_XSD = Path(__file__).parent / "unit" / "data" / "junit-10.xsd"
CQ_SEVERITIES = {"info", "minor", "major", "critical", "blocker"}


def check_junit(data: bytes, refs: list[str], failed: bool) -> list[dict[str, Any]]:
    """Suites as dicts; asserts the structure CI systems rely on."""
    root = ET.fromstring(data)  # raises on anything that is not well-formed XML
    check_junit_consumers(data)
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
def _junit_schema() -> Any:
    import xmlschema

    return xmlschema.XMLSchema10(str(JUNIT_XSD))


def check_junit_consumers(data: bytes) -> None:
    """junit-10.xsd accepts it and junitparser reads the same counts back."""
    import tempfile

    from junitparser import Error, Failure, JUnitXml

    errors = list(_junit_schema().iter_errors(data.decode("utf-8")))
    assert not errors, "; ".join(str(e.reason or e.message) + f" at {e.path}" for e in errors[:3])
    with tempfile.NamedTemporaryFile(suffix=".xml") as fh:
        fh.write(data)
        fh.flush()
        xml = JUnitXml.fromfile(fh.name)
    suites = ET.fromstring(data).findall("testsuite")
    assert len(list(xml)) == len(suites)
    for parsed, suite in zip(xml, suites):
        cases = list(parsed)
        assert parsed.name == suite.get("name") and parsed.tests == len(cases) == len(suite.findall("testcase"))
        assert parsed.failures == sum(1 for c in cases if any(isinstance(r, Failure) for r in c.result))
        assert parsed.errors == sum(1 for c in cases if any(isinstance(r, Error) for r in c.result))
        names = [c.name for c in cases]
        assert len(set(names)) == len(names), "GitLab keeps only the first of testcases with the same name"
        assert all(c.classname and c.classname.startswith("smtpgate.") for c in cases)


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
    check_github_sarif(doc)
    return doc  # type: ignore[no-any-return]


# What GitHub code scanning requires of an uploaded SARIF file beyond the schema
# (docs.github.com: "SARIF support for code scanning"), one function per rule.

def github_rule_texts(doc: dict[str, Any]) -> None:
    """rules[]: shortDescription.text, fullDescription.text, help.text and help.markdown."""
    for run in doc["runs"]:
        for rule in run["tool"]["driver"]["rules"]:
            for key in ("shortDescription", "fullDescription"):
                assert isinstance(rule[key]["text"], str) and rule[key]["text"].strip(), (rule["id"], key)
            assert rule["help"]["text"].strip() and rule["help"]["markdown"].strip(), rule["id"]


def github_security_severity(doc: dict[str, Any]) -> None:
    """rules[].properties: security-severity a number 0.0-10.0 (as a string) and the tag `security`."""
    for run in doc["runs"]:
        for rule in run["tool"]["driver"]["rules"]:
            props = rule["properties"]
            assert 0.0 <= float(props["security-severity"]) <= 10.0 and isinstance(props["security-severity"], str)
            assert "security" in props["tags"], rule["id"]


def github_fingerprints(doc: dict[str, Any]) -> None:
    """results[].partialFingerprints.primaryLocationLineHash, one per distinct finding (rule, image,
    finding) of a run: GitHub would otherwise hash the anchor's line, the same for every result
    pointing at it, and merge them."""
    for run in doc["runs"]:
        owners: dict[str, set] = {}
        for r in run["results"]:
            line_hash = r["partialFingerprints"]["primaryLocationLineHash"]
            assert isinstance(line_hash, str) and line_hash
            # a result without a finding is told by its message, its figures aside ("after 8.0 s")
            key = (r["ruleId"], r["properties"].get("image"), r["properties"].get("finding"),
                   None if "finding" in r["properties"] else re.sub(r"\d+(\.\d+)?", "#", r["message"]["text"]))
            owners.setdefault(line_hash, set()).add(key)
        assert all(len(keys) == 1 for keys in owners.values()), owners


def github_every_result_located(doc: dict[str, Any]) -> None:
    """results[].locations: at least one, with a non-empty artifactLocation.uri. Code scanning refuses
    the upload otherwise ("locationFromSarifResult: expected at least one location", "expected
    artifact location": github/codeql-action#2459, microsoft/sarif-sdk#2694 and #2704)."""
    for run in doc["runs"]:
        for result in run["results"]:
            locations = result.get("locations") or []
            assert locations, result["ruleId"]
            assert locations[0]["physicalLocation"]["artifactLocation"].get("uri"), locations[0]


def github_relative_locations(doc: dict[str, Any]) -> None:
    """results[].locations: artifactLocation.uri relative to the repository root (no scheme, no
    leading slash, no uriBaseId standing for something outside the checkout), startLine >= 1."""
    for run in doc["runs"]:
        for result in run["results"]:
            for location in result.get("locations", []):
                physical = location["physicalLocation"]
                uri = physical["artifactLocation"]["uri"]
                assert "uriBaseId" not in physical["artifactLocation"], uri
                assert uri and not uri.startswith("/") and "://" not in uri and not uri.startswith("./"), uri
                assert physical["region"]["startLine"] >= 1


def github_automation_details(doc: dict[str, Any]) -> None:
    """runs[].automationDetails.id: on each run, distinct (GitHub keeps one analysis per tool
    and category; the category is the id up to its last slash)."""
    ids = [run["automationDetails"]["id"] for run in doc["runs"]]
    assert all(isinstance(i, str) and i.startswith("smtpgate/") and i.endswith("/") for i in ids), ids
    assert len({i.rsplit("/", 1)[0] for i in ids}) == len(ids), ids


GITHUB_SARIF_RULES = (github_rule_texts, github_security_severity, github_fingerprints,
                      github_every_result_located, github_relative_locations, github_automation_details)


def check_github_sarif(doc: dict[str, Any]) -> None:
    for rule in GITHUB_SARIF_RULES:
        rule(doc)


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
