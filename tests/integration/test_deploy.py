"""Scan what is deployed, on the real engine: run options, a Compose file and a
Kubernetes manifest (fixtures/deploy/) with the app-needs-env and env-relay
fixtures; secrets from every source never reach a report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from smtpgate.cli import main
from tests.integration.conftest import EXPECTED, ROOT, ScanRun, labelled

pytestmark = pytest.mark.integration

APP = EXPECTED["app-needs-env"]["image"]
RELAY = EXPECTED["env-relay"]["image"]
DEPLOY = ROOT / "fixtures" / "deploy"
COMPOSE = "fixtures/deploy/compose.yaml"
K8S = "fixtures/deploy/k8s.yaml"


def _targets(run) -> dict[str, dict]:
    return {t["ref"]: t for t in run.report["targets"]}


def _line_of_image(path: Path, after: str) -> int:
    """The line of the first `image:` after the line holding `after` (1-based)."""
    lines = path.read_text().splitlines()
    start = next(i for i, ln in enumerate(lines) if after in ln)
    return next(i for i in range(start, len(lines)) if lines[i].strip().startswith("image:")) + 1


@pytest.fixture(scope="module")
def deploy_scan(images, tmp_path_factory, docker_client):
    """deploy_scan(*args) -> ScanRun through the real CLI entry point, run from the repository
    (manifests are named relative to it, as CI names them); cached per argument list."""
    cache: dict[tuple, ScanRun] = {}

    def run(*args: str) -> ScanRun:
        if args not in cache:
            out = tmp_path_factory.mktemp("deploy")
            old = os.getcwd()
            os.chdir(ROOT)
            try:
                code = main(["scan", "--junit", str(out / "j.xml"), "--json", str(out / "r.json"),
                             "--sarif", str(out / "s.sarif"), "-q", *args])
            finally:
                os.chdir(old)
            text = (out / "j.xml").read_text(encoding="utf-8")
            run_ = ScanRun(code, json.loads((out / "r.json").read_text()), ET.fromstring(text), text)
            run_.sarif = json.loads((out / "s.sarif").read_text())  # type: ignore[attr-defined]
            cache[args] = run_
        return cache[args]

    yield run
    assert labelled(docker_client, os.getpid()) == ([], []), "scans left labelled containers/networks behind"


def test_app_without_its_env_could_not_be_decided(scan_image):
    run = scan_image(APP)
    assert run.code == 2
    (target,) = run.report["targets"]
    assert any("DATABASE_URL is not set" in e for e in target["errors"]), target["errors"]
    assert any("scan it as it is deployed: --env/--env-file" in n for n in target["notes"])


def test_app_with_its_env_passes_and_hides_the_value(scan_image):
    run = scan_image(APP, "--env", "DATABASE_URL=postgres://app:cli-db-secret-1234@db/app")
    assert run.code == 0, run.report
    (target,) = run.report["targets"]
    assert target["env"] == ["DATABASE_URL=***"]
    assert [li["port"] for li in target["listeners"]] == [8000]
    assert "cli-db-secret-1234" not in json.dumps(run.report) + run.junit_text


def test_relay_fails_with_the_variable_from_env(scan_image):
    run = scan_image(RELAY, "--env", "ENABLE_RELAY=1")
    assert run.code == 1, run.report
    (target,) = run.report["targets"]
    listening = [f for f in target["findings"] if f["state"] == "listening"]
    assert len(listening) == 1, target
    (finding,) = listening
    assert finding["software"]["id"] == "postfix" and finding["ports"] == [25]
    assert finding["decision"]["outcome"] == "fail"


def test_a_command_after_the_image_replaces_its_cmd(scan_image):
    # postfix-all runs `postfix start-fg`; deployed with another command, Postfix never starts and
    # the static half judges the deployed command too (no "the image command starts it").
    run = scan_image(EXPECTED["postfix-all"]["image"], "--", "sleep", "infinity")
    assert run.code == 0, run.report
    (target,) = run.report["targets"]
    assert target["listeners"] == []
    (finding,) = target["findings"]
    assert finding["state"] == "enabled" and finding["decision"]["outcome"] == "warn"
    assert not any(e["kind"] == "command" for e in finding["evidence"])


def test_static_judges_the_variable_from_env(scan_image):
    assert scan_image(RELAY, "--static", "--env", "ENABLE_RELAY=1").code == 1
    assert scan_image(RELAY, "--static").code == 0


def test_compose_services_are_scanned_as_declared(deploy_scan):
    run = deploy_scan("--compose", COMPOSE)
    assert run.code == 1, run.report
    targets = _targets(run)
    assert set(targets) == {f"{COMPOSE}#web", f"{COMPOSE}#relay"}  # `debug` is behind a profile
    web, relay = targets[f"{COMPOSE}#web"], targets[f"{COMPOSE}#relay"]
    assert web["verdict"] == "pass" and web["image"] == APP
    assert relay["verdict"] == "fail" and relay["image"] == RELAY
    assert relay["env"] == ["RELAY_PASSWORD=***", "ENABLE_RELAY=***", "RELAY_NOTE=***"]
    (finding,) = [f for f in relay["findings"] if f["state"] == "listening"]
    assert {"kind": "deployment", "text": "published by the deployment: ports: 127.0.0.1:2525:25",
            "path": None, "line": None} in finding["evidence"]
    assert f"mounted read-only: {DEPLOY / 'relay_password.txt'} at /run/secrets/relay_password; the static " \
           "evidence reads the image's own files there, not the mounted ones" in relay["notes"]
    line = _line_of_image(DEPLOY / "compose.yaml", "  relay:")
    assert (relay["source"], relay["line"]) == (COMPOSE, line)
    sarif = run.sarif
    (result,) = [r for r in sarif["runs"][0]["results"] if r["level"] == "error"]
    where = result["locations"][0]["physicalLocation"]
    assert where["artifactLocation"]["uri"] == COMPOSE and where["region"]["startLine"] == line
    suites = [s.get("name") for s in run.junit.iter("testsuite")]
    assert f"smtpgate: {COMPOSE}#relay" in suites and f"smtpgate: {COMPOSE}#web" in suites


def test_compose_without_the_variable_runs_the_default_branch(deploy_scan, monkeypatch):
    monkeypatch.setenv("ENABLE_RELAY", "0")  # the shell wins over the file's ${ENABLE_RELAY:-1}
    run = deploy_scan("--compose", COMPOSE, "--service", "relay", "--show-env")
    (target,) = run.report["targets"]
    assert target["listeners"] == [], target
    assert "ENABLE_RELAY=0" in target["env"]


def test_policy_scoped_to_one_workload(deploy_scan, tmp_path):
    policy = tmp_path / "policy.yml"
    policy.write_text("version: 1\napprovals:\n"
                      "  - {software: postfix, workloads: ['compose.yaml#relay'], reason: the shop's relay}\n")
    run = deploy_scan("--compose", COMPOSE, "--service", "relay", "--policy", str(policy))
    assert run.code == 0, run.report
    other = tmp_path / "other.yml"
    other.write_text("version: 1\napprovals:\n"
                     "  - {software: postfix, workloads: ['Deployment/*#relay'], reason: another relay}\n"
                     "  - {software: postfix, images: ['*/postfix-all:*'], reason: another image}\n")
    assert deploy_scan("--compose", COMPOSE, "--service", "relay", "--policy", str(other)).code == 1


def _cli(args: list[str], tmp_path: Path, stdin: bytes | None = None) -> tuple[subprocess.Popen, str]:
    """The real console entry point in a child process; every report it can write, and its output."""
    reports = {"junit": "j.xml", "json": "r.json", "sarif": "s.sarif", "codequality": "cq.json", "markdown": "m.md"}
    flags = [x for name, file in reports.items() for x in (f"--{name}", str(tmp_path / file))]
    with subprocess.Popen([sys.executable, "-m", "smtpgate", "scan", *flags, "--github", *args],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                          env={**os.environ, "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}) as proc:
        try:
            out, err = proc.communicate(stdin or b"", timeout=600)
        finally:
            proc.kill()
    texts = [out.decode("utf-8", "replace"), err.decode("utf-8", "replace")]
    texts += [(tmp_path / f).read_text("utf-8") for f in [*reports.values(), "summary.md"]]
    return proc, "\n".join(texts)


def test_kubernetes_manifest_from_stdin(tmp_path, docker_client):
    proc, _ = _cli(["--k8s", "-"], tmp_path, stdin=(DEPLOY / "k8s.yaml").read_bytes())
    assert proc.returncode == 1, (tmp_path / "m.md").read_text()
    report = json.loads((tmp_path / "r.json").read_text())
    targets = {t["ref"]: t for t in report["targets"]}
    assert list(targets) == ["Deployment/shop#migrate", "Deployment/shop#relay", "Deployment/shop#web",
                             "CronJob/nightly-report#report"]
    assert {ref: t["verdict"] for ref, t in targets.items()} == {
        "Deployment/shop#migrate": "pass", "Deployment/shop#relay": "fail", "Deployment/shop#web": "pass",
        "CronJob/nightly-report#report": "pass"}
    migrate = targets["Deployment/shop#migrate"]
    assert migrate["method"] == "static" and any("init container" in n for n in migrate["notes"])
    assert any("DATABASE_URL (valueFrom secretKeyRef shop-db/url)" in n for n in migrate["notes"])
    assert any("skipped 2 object(s)" in n and "Service/shop" in n for n in migrate["notes"])
    assert any("declared port 25 (containerPort: 25) listens and speaks SMTP" in n
               for n in targets["Deployment/shop#relay"]["notes"])
    assert targets["Deployment/shop#web"]["env"] == ["DB_HOST=***", "DATABASE_URL=***"]
    assert targets["Deployment/shop#relay"]["source"] is None  # stdin has no file to point at
    suites = [s.get("name") for s in ET.parse(tmp_path / "j.xml").getroot().iter("testsuite")]
    assert suites == [f"smtpgate: {ref}" for ref in targets]  # one testsuite per workload container
    assert labelled(docker_client, proc.pid) == ([], [])


SECRETS = ("compose-db-secret-4711", "relay-env-file-secret-0815", "compose-file-secret-2468",
           "k8s-db-secret-2342", "k8s-report-secret-99",
           "cli-db-secret-5678", "env-file-secret-9012")


def test_no_secret_reaches_any_report_or_log(tmp_path):
    # Compose environment + env_file and manifest env values, in one run ...
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
    proc, text = _cli(["--compose", COMPOSE, "--k8s", K8S], tmp_path / "a")
    assert proc.returncode == 1
    # ... then --env and --env-file, with a container that prints its URL and exits (its last
    # log lines become the error message) and an engine that must not echo them either.
    env_file = tmp_path / "app.env"
    env_file.write_text("API_TOKEN=env-file-secret-9012\n")
    proc_b, text_b = _cli([APP, "--env", "DATABASE_URL=postgres://u:cli-db-secret-5678@db/app",
                           "--env-file", str(env_file), "--", "sh", "-c", "echo $API_TOKEN; exit 3"], tmp_path / "b")
    assert proc_b.returncode == 2
    assert "DATABASE_URL=***" in text_b and "API_TOKEN=***" in text_b
    assert "exited with code 3" in text_b, text_b[-3000:]
    for secret in SECRETS:
        assert secret not in text + text_b, secret



def test_compose_static_judges_each_service_without_running_it(deploy_scan):
    run = deploy_scan("--compose", COMPOSE, "--static")
    assert run.code == 1, run.report
    targets = _targets(run)
    assert {ref: (t["method"], t["verdict"]) for ref, t in targets.items()} == {
        f"{COMPOSE}#web": ("static", "pass"), f"{COMPOSE}#relay": ("static", "fail")}


def test_build_only_services_are_refused_or_built(deploy_scan, tmp_path, docker_client):
    (tmp_path / "relay").mkdir()
    (tmp_path / "relay" / "Dockerfile").write_text(f"FROM {RELAY}\nENV ENABLE_RELAY=1\n")
    compose = tmp_path / "compose.yaml"
    compose.write_text("services:\n  relay:\n    build: ./relay\n")
    refused = deploy_scan("--compose", str(compose))
    assert refused.code == 2
    assert "service(s) relay have no `image:` (only `build:`)" in refused.report["errors"][0]
    tag = f"{tmp_path.name.lower().replace('.', '')}-relay:smtpgate"
    try:
        run = deploy_scan("--compose", str(compose), "--compose-build")
        assert run.code == 1, run.report
        (target,) = run.report["targets"]
        assert target["image"] == tag and target["ref"] == f"{compose}#relay"
    finally:
        docker_client.images.remove(tag, force=True)


def test_a_mounted_config_file_is_what_runs(scan_image, docker_client, tmp_path):
    # postfix-all listens on all interfaces; deployed with a main.cf that says loopback-only, it passes
    image = EXPECTED["postfix-all"]["image"]
    main_cf = docker_client.containers.run(image, ["cat", "/etc/postfix/main.cf"], remove=True,
                                           network_mode="none", labels={"smtpgate": "test-deploy"})
    lines = [ln for ln in main_cf.decode().splitlines() if not ln.startswith("inet_interfaces")]
    (tmp_path / "main.cf").write_text("\n".join([*lines, "inet_interfaces = loopback-only", ""]))
    run = scan_image(image, "--mount", f"{tmp_path}/main.cf:/etc/postfix/main.cf")
    assert run.code == 0, run.report
    (target,) = run.report["targets"]
    assert {li["scope"] for li in target["listeners"]} == {"loopback"}
    assert any(n.startswith("mounted read-only:") for n in target["notes"])
