"""Two real scans of the same image give the same code-quality fingerprints and
SARIF fingerprints and category (GitLab and GitHub match issues across
pipelines by them), and every report file passes its consumer's checks."""

from __future__ import annotations

from smtpgate.cli import main
from tests.report_checks import check_codequality, check_junit, check_sarif

IMAGE = "smtpgate-fixture/postfix-all"


def _scan(out) -> tuple[list, dict, bytes]:
    out.mkdir()
    code = main(["scan", IMAGE, "-q", "--pull", "never", "--sarif-anchor", "Dockerfile",
                 "--codequality", str(out / "cq.json"), "--sarif", str(out / "r.sarif"), "--junit", str(out / "j.xml")])
    assert code == 1
    return (check_codequality((out / "cq.json").read_bytes()), check_sarif((out / "r.sarif").read_bytes()),
            (out / "j.xml").read_bytes())


def test_fingerprints_are_stable_across_two_scans(tmp_path, images):
    first_cq, first_sarif, first_junit = _scan(tmp_path / "one")
    again_cq, again_sarif, again_junit = _scan(tmp_path / "two")
    assert [i["fingerprint"] for i in first_cq] == [i["fingerprint"] for i in again_cq] and len(first_cq) == 1
    assert first_cq[0]["severity"] == "critical" and first_cq[0]["location"]["lines"]["begin"] == 1
    (run1,), (run2,) = first_sarif["runs"], again_sarif["runs"]
    assert [r["partialFingerprints"] for r in run1["results"]] == [r["partialFingerprints"] for r in run2["results"]]
    assert run1["automationDetails"] == run2["automationDetails"] == {"id": f"smtpgate/{IMAGE}/"}
    for junit in (first_junit, again_junit):
        check_junit(junit, [IMAGE], failed=True)
