"""JUnit XML for CI test tabs (GitLab, Jenkins, GitHub test-reporter actions).

One <testsuite> per target, named `smtpgate: <ref>`, with properties for the
tool version, image id and digests, target kind, scan method, verdict, policy
and exit code. Testcases, most important first:

- `no unapproved SMTP service`: always present, so a clean image never gives
  an empty report; <failure> on violations, else <error> when anything could
  not be inspected; carries the scan's total time;
- `inspection: <short>`: one <error> per thing that could not be inspected;
- `finding <software> <state> <ports>`: <failure> when the policy fails it,
  message = the reason, text = evidence, fix steps and verify commands;
- `listener <endpoint> (<protocol>)`: one per listening port; passes with what
  it speaks, or carries the decision of the findings that include it;
- `EXPOSEd ports listening`: when the image EXPOSEs ports; a warning (see
  below) when some never listened, as the summary's system-out says too.

Warnings are passing testcases with the warning first in <system-out>, not
<skipped>: GitLab and Jenkins both present skipped as "not run" and count it
apart, while a warned finding was checked and did not fail the build, which is
what "passed" says; both show system-out on the testcase page. Names carry no
outcome, so Jenkins' per-test history stays continuous from run to run.

The document conforms to the Jenkins xunit plugin's junit-10.xsd (validated in
tests/unit/test_report_junit.py) and reads back with junitparser: junit-xml's
`disabled` attributes (outside that schema) are dropped and times have at most
3 decimals on <testsuite(s)> (its SUREFIRE_TIME pattern; a testcase's time is free
text there). Testcase names are unique within a
suite (GitLab keeps only the first of duplicates); `classname` names the image
(GitLab shows it as the suite).

The XML is always well-formed XML 1.0 whatever the target said: every string is
bounded and its control characters, lone surrogates and noncharacters are
shown as escapes before junit-xml sees it (junit-xml itself would crash on a
lone surrogate and silently drop the rest).
"""

from __future__ import annotations

import math
import re
import xml.dom.minidom
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence

from junit_xml import TestCase, TestSuite

from smtpgate.model import Decision, Judged, Listener, Outcome, ScanResult
from smtpgate.report import common
from smtpgate.report.interface import Report, ReportMeta, run_exit_code
from smtpgate.report.sanitize import (
    FIELD_LIMIT,
    TEXT_LIMIT,
    bound,
    bounded,
    clip,
    escape,
    one_line,
)

SUMMARY = "no unapproved SMTP service"
FAILURE_TYPE = "unapproved-smtp"
ERROR_TYPE = "inspection-error"
SHORT = 80  # characters of an error kept in its testcase name
ATTR_LIMIT = 2 * FIELD_LIMIT  # an attribute may quote a whole (already bounded) field


class JunitReport(Report):
    """JUnit XML via the junit-xml package."""

    name = "junit"
    media_type = "application/xml"

    def render(self, results: Sequence[ScanResult], meta: ReportMeta) -> str:
        code = run_exit_code(results, meta)
        meta = bounded(meta)
        suites = [_suite(bounded(result), meta, code) for result in results]
        if meta.errors or not results:
            suites.append(_run_suite(meta, code))
        return _document(suites)


def _document(suites: Sequence[TestSuite]) -> str:
    """<testsuites> with the totals, in the shape of junit-10.xsd (junit-xml's own
    to_xml_report_string adds `disabled`, which that schema does not allow)."""
    root = ET.Element("testsuites", {"name": "smtpgate"})
    totals = dict.fromkeys(("tests", "failures", "errors"), 0)
    elapsed = 0.0
    for suite in suites:
        element = suite.build_xml_doc()
        element.attrib.pop("disabled", None)
        for key in totals:
            totals[key] += int(element.get(key, 0))
        elapsed += float(element.get("time") or 0)
        element.set("time", _time(float(element.get("time") or 0)))
        root.append(element)
    root.attrib.update({key: str(value) for key, value in totals.items()}, time=_time(elapsed))
    pretty: str = xml.dom.minidom.parseString(ET.tostring(root, encoding="utf-8")).toprettyxml()
    return pretty


def _time(seconds: float) -> str:
    """Seconds with at most 3 decimals (junit-10.xsd's SUREFIRE_TIME)."""
    return f"{seconds:.3f}"


class _Properties(list):  # type: ignore[type-arg]
    """(name, value) pairs that junit-xml reads through .items(); a dict would
    not allow one `image.digest` property per digest."""

    def items(self) -> Iterable[tuple[str, str]]:
        return iter(self)


def _attr(text: str) -> str:
    """One line, bounded, escaped: for names, messages and property values."""
    return escape(one_line(bound(text, ATTR_LIMIT)))


def _body(lines: Iterable[str]) -> str:
    """Multi-line element text, bounded as a whole, escaped."""
    return escape(bound("\n".join(lines), TEXT_LIMIT), multiline=True)


def _classname(ref: str) -> str:
    """`smtpgate.<ref>` with everything but [A-Za-z0-9_-] turned into `_`
    (dots too: Jenkins splits package and class at the last dot)."""
    return "smtpgate." + (re.sub(r"[^A-Za-z0-9_-]+", "_", ref).strip("_")[:120] or "target")


def _suite(result: ScanResult, meta: ReportMeta, code: int) -> TestSuite:
    cls = _classname(result.target.ref)
    cases = [_summary_case(result, cls),
             *(_error_case(err, cls) for err in result.errors),
             *(_finding_case(j, cls) for j in result.judged),
             *(_listener_case(result, li, cls) for li in result.listeners),
             *_exposed_cases(result, cls)]
    return TestSuite(_attr(f"smtpgate: {result.target.ref}"), _unique(cases),
                     timestamp=_timestamp(meta), properties=_properties(result, meta, code))


def _run_suite(meta: ReportMeta, code: int) -> TestSuite:
    """A suite for run-level errors, or for a run that scanned nothing."""
    errors = meta.errors or ("no target was scanned",)
    summary = TestCase(SUMMARY, "smtpgate.run")
    summary.add_error_info(_attr("; ".join(errors)), _body(errors), ERROR_TYPE)
    cases = [summary, *(_error_case(err, "smtpgate.run") for err in meta.errors)]
    props = _Properties([("smtpgate.version", _attr(meta.tool_version)),
                         ("policy", _attr(meta.policy_source)), ("exit_code", str(code))])
    return TestSuite("smtpgate", _unique(cases), timestamp=_timestamp(meta), properties=props)


def _timestamp(meta: ReportMeta) -> str | None:
    return meta.started_at.isoformat(timespec="seconds") if meta.started_at else None


def _properties(result: ScanResult, meta: ReportMeta, code: int) -> _Properties:
    target = result.target
    pairs = [("smtpgate.version", meta.tool_version), ("image.id", target.image_id or ""),
             *(("image.digest", d) for d in target.digests),
             ("target.kind", target.kind), ("scan.method", result.method),
             *((("image", target.image_ref), ("workload", target.workload)) if target.workload else ()),
             *((("workload.source", f"{target.source}:{target.line or 1}"),) if target.source else ()),
             *(("env", item) for item in target.env),
             ("verdict", result.verdict), ("policy", meta.policy_source),
             ("exit_code", str(code))]
    if result.exposed:
        pairs += [("exposed.ports", _ports(result.exposed)),
                  ("exposed.not_listening", _ports(result.exposed_not_listening))]
    if meta.command_line:
        pairs.append(("smtpgate.command", " ".join(meta.command_line)))
    return _Properties((name, _attr(value)) for name, value in pairs)


def _summary_case(result: ScanResult, cls: str) -> TestCase:
    """Mirrors the verdict: failure on violations (they decide even when part of
    the inspection failed), else error when anything could not be inspected."""
    case = TestCase(SUMMARY, cls, elapsed_sec=_seconds(result.timings.get("total")),
                    stdout=_body(_summary_lines(result)))
    if result.violations:
        case.add_failure_info(_attr(_violations_message(result)),
                              _body(_violation_lines(result.violations)), FAILURE_TYPE)
    elif result.errors:
        case.add_error_info(_attr("could not inspect: " + "; ".join(result.errors)),
                            _body(result.errors), ERROR_TYPE)
    return case


def _seconds(value: float | None) -> float | None:
    """A time junit-xml can print: finite and not negative, else none."""
    ok = isinstance(value, (int, float)) and math.isfinite(value) and value >= 0
    return float(value) if ok else None  # type: ignore[arg-type]


def _summary_lines(result: ScanResult) -> list[str]:
    target = result.target
    lines = [f"target: {target.kind} {target.ref}", *([f"image: {target.image_ref}"] if target.workload else []),
             f"image id: {target.image_id or '-'}",
             f"method: {result.method or '-'}", f"verdict: {result.verdict}",
             f"listeners: {len(result.listeners)}, SMTP findings: {len(result.judged)}, "
             f"violations: {len(result.violations)}, warnings: {len(result.warnings)}",
             *(f"warning: {c}" for c in common.caveats(result))]
    return lines + [f"note: {note}" for note in result.notes]


EXPOSED = "EXPOSEd ports listening"


def _ports(ports: Sequence[int]) -> str:
    return common.port_list(ports, 200)


def _exposed_cases(result: ScanResult, cls: str) -> list[TestCase]:
    """Present whenever the image EXPOSEs ports (a stable name for Jenkins'
    history); a warning, i.e. passing with the warning first in system-out,
    when some never listened."""
    if not result.exposed:
        return []
    closed = common.exposed_caveat(result)
    lines = [*([f"warning: {closed}"] if closed else []), f"EXPOSEd: {_ports(result.exposed)}",
             f"not listening: {_ports(result.exposed_not_listening) or '-'}"]
    return [TestCase(EXPOSED, cls, stdout=_body(lines))]


def _violations_message(result: ScanResult) -> str:
    titles = "; ".join(common.finding_title(j.finding) for j in result.violations)
    message = f"{len(result.violations)} unapproved SMTP service(s): {titles}"
    if result.errors:
        message += f" (and {len(result.errors)} thing(s) could not be inspected)"
    return message


def _violation_lines(violations: Sequence[Judged]) -> list[str]:
    return [f"{common.finding_title(j.finding)}: {j.decision.reason}" for j in violations]


def _error_case(error: str, cls: str) -> TestCase:
    lines = error.split("\n")
    case = TestCase(_attr(f"inspection: {clip(lines[0].strip(), SHORT)}"), cls)
    case.add_error_info(_attr(error), _body(lines), ERROR_TYPE)
    return case


def _finding_case(judged: Judged, cls: str) -> TestCase:
    finding = judged.finding
    name = f"finding {finding.software.name} {finding.state.value} {common.ports_text(finding)}"
    lines = [f"software: {finding.software.name} {finding.software.version or ''}".rstrip(),
             f"state: {finding.state.value}", f"scope: {common.finding_scope(finding) or '-'}",
             *common.decision_lines(judged.decision), *_per_listener_lines(judged),
             "evidence:", *common.evidence_lines(finding)]
    if judged.decision.outcome is not Outcome.PASS:
        lines += common.remedy_lines(common.remedy(finding.software, finding.ports))
    return _with_decision(TestCase(_attr(name), cls), judged.decision, lines)


def _per_listener_lines(judged: Judged) -> list[str]:
    return [f"{li.endpoint}: {d.outcome.value}: {d.reason}"
            for li, d in common.distinct_per_listener(judged)]


def _listener_case(result: ScanResult, listener: Listener, cls: str) -> TestCase:
    probe = result.probe_for(listener)
    case = TestCase(_attr(f"listener {listener.endpoint} ({common.speaks(probe)})"), cls)
    lines = [f"speaks: {common.speaks(probe)}", f"scope: {common.scope_of(listener)}",
             f"process: {_process_line(listener)}"]
    if probe is not None:
        lines += [*([f"greeting: {probe.greeting}"] if probe.greeting else []),
                  *(f"ehlo: {e}" for e in probe.ehlo), f"detail: {probe.detail or '-'}"]
    decision = common.listener_decision(result, listener)
    if decision is not None:
        return _with_decision(case, decision, [*common.decision_lines(decision), *lines])
    if probe is not None and probe.speaks_smtp:  # the gate judges every SMTP port
        case.add_error_info(_attr("speaks SMTP but no finding covers it"), _body(lines),
                            "not-judged")
    case.stdout = _body(lines)
    return case


def _process_line(listener: Listener) -> str:
    proc = listener.process
    return f"{proc.name} (pid {proc.pid}): {proc.command}" if proc else "-"


def _with_decision(case: TestCase, decision: Decision, lines: list[str]) -> TestCase:
    """FAIL becomes <failure>; WARN and PASS pass, the decision in system-out."""
    if decision.outcome is Outcome.FAIL:
        case.add_failure_info(_attr(decision.reason), _body(lines), FAILURE_TYPE)
    else:
        case.stdout = _body(lines)
    return case


def _unique(cases: list[TestCase]) -> list[TestCase]:
    """Make testcase names unique within a suite (' #2', ' #3', ...)."""
    seen: dict[str, int] = {}
    for case in cases:
        seen[case.name] = seen.get(case.name, 0) + 1
        if seen[case.name] > 1:
            case.name = f"{case.name} #{seen[case.name]}"
    return cases
