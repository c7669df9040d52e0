"""docker run-style options, secrets kept out of results, policies scoped by target."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

import pytest

from smtpgate.cli import main
from smtpgate.errors import PolicyError, WorkloadError
from smtpgate.model import (
    BindScope,
    Evidence,
    Finding,
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
from smtpgate.policy import evaluate
from smtpgate.policy.schema import policy_from_text
from smtpgate.static.image import ImageConfig
from smtpgate.workload.deploy import cli_specs, public_argv
from smtpgate.workload.results import finish, scrubbed
from smtpgate.workload.spec import DeclaredPort, RunSpec, parse_env, parse_mount, read_env_file

IMAGE = ImageConfig(entrypoint=("/docker-entrypoint.sh",), cmd=("postfix", "start-fg"), env={"PATH": "/bin"},
                    user="", workdir="/")


@pytest.mark.parametrize(("spec", "argv"), [
    (RunSpec("i"), ("/docker-entrypoint.sh", "postfix", "start-fg")),
    (RunSpec("i", cmd=("sleep", "9")), ("/docker-entrypoint.sh", "sleep", "9")),
    (RunSpec("i", entrypoint=("/bin/sh",)), ("/bin/sh",)),  # a new entrypoint drops the image's CMD
    (RunSpec("i", entrypoint=("/bin/sh",), cmd=("-c", "x")), ("/bin/sh", "-c", "x")),
    (RunSpec("i", entrypoint=(), cmd=("exim", "-bd")), ("exim", "-bd")),  # --entrypoint '' resets it
])
def test_effective_config_follows_docker_precedence(spec, argv):
    assert spec.effective(IMAGE).argv == argv


def test_effective_env_user_workdir():
    spec = RunSpec("i", env=(("ENABLE_RELAY", "1"), ("PATH", "/usr/bin")), user="1000", workdir="/srv")
    config = spec.effective(IMAGE)
    assert config.env == {"PATH": "/usr/bin", "ENABLE_RELAY": "1"}
    assert (config.user, config.workdir) == ("1000", "/srv")
    assert spec.create_kwargs() == {"environment": ["ENABLE_RELAY=1", "PATH=/usr/bin"], "user": "1000",
                                    "working_dir": "/srv"}
    assert RunSpec("i", entrypoint=()).create_kwargs() == {"entrypoint": [""]}
    assert RunSpec("i").create_kwargs() == {}


def test_env_like_docker_run(tmp_path):
    assert parse_env(["A=1", "B", "C", "D=x=y", "E="], {"B": "from-env"}) == [
        ("A", "1"), ("B", "from-env"), ("D", "x=y"), ("E", "")]
    with pytest.raises(WorkloadError, match=r"--env ''=\*\*\*: expected KEY=VALUE or KEY") as err:
        parse_env(["=oops"], {})  # even a malformed item's value is not repeated
    assert "oops" not in str(err.value)
    env_file = tmp_path / "app.env"
    env_file.write_text('# comment\n\nQUOTED="kept as is"\n  SPACED=v\nFROM_ENV\nMISSING\nexport X=1\n')
    # Compose's format: quotes removed, `export ` allowed
    assert read_env_file(str(env_file), {"FROM_ENV": "e"}, compose=True) == [
        ("QUOTED", "kept as is"), ("SPACED", "v"), ("FROM_ENV", "e"), ("X", "1")]


def test_docker_env_file_takes_values_literally(tmp_path):
    env_file = tmp_path / "app.env"
    env_file.write_text('QUOTED="kept as is"\nSPACED=v \nFROM_ENV\nMISSING\n')
    assert read_env_file(str(env_file), {"FROM_ENV": "e"}) == [
        ("QUOTED", '"kept as is"'), ("SPACED", "v "), ("FROM_ENV", "e")]
    env_file.write_text("export X=1\n")
    with pytest.raises(WorkloadError, match=r"app.env:1: expected KEY=VALUE or KEY"):
        read_env_file(str(env_file), {})


def test_mounts_are_read_only_binds_only(tmp_path):
    (tmp_path / "main.cf").write_text("x")
    mount = parse_mount(f"{tmp_path}/main.cf:/etc/postfix/main.cf:ro")
    assert (mount.source, mount.target) == (str(tmp_path / "main.cf"), "/etc/postfix/main.cf")
    for bad in (f"{tmp_path}/main.cf:/etc/x:rw", "volume-name", f"{tmp_path}/main.cf:relative",
                f"{tmp_path}/nope:/etc/x", "a:b:c:d"):
        with pytest.raises(WorkloadError):
            parse_mount(bad)
    import socket

    with socket.socket(socket.AF_UNIX) as sock:  # a read-only bound socket still connects (docker.sock)
        sock.bind(str(tmp_path / "engine.sock"))
        with pytest.raises(WorkloadError, match="sockets and devices are never mounted"):
            parse_mount(f"{tmp_path}/engine.sock:/var/run/docker.sock:ro")


def _args(**kw):
    base = dict(env=[], env_file=[], entrypoint=None, user=None, workdir=None, mount=[], show_env=False,
                compose=[], k8s=[], run_command=None)
    return SimpleNamespace(**{**base, **kw})


def test_cli_specs_refuse_ambiguous_use():
    with pytest.raises(WorkloadError, match="a command after -- runs in one image"):
        cli_specs(["a", "b"], _args(run_command=["sleep", "1"]), {})
    with pytest.raises(WorkloadError, match="not to ssh:// hosts"):
        cli_specs(["ssh://root@h"], _args(env=["A=1"]), {})
    with pytest.raises(WorkloadError, match="a Compose file or manifest says how its own containers run"):
        cli_specs(["a"], _args(env=["A=1"], compose=["c.yaml"]), {})
    (spec,) = cli_specs(["a"], _args(entrypoint="", run_command=["x"]), {})
    assert (spec.entrypoint, spec.cmd, spec.name, spec.label) == ((), ("x",), "", "a")


def test_command_after_double_dash_reaches_the_spec(capsys):
    assert main(["scan", "a", "b", "--", "postfix", "start-fg", "-q"]) == 2
    assert "a command after -- runs in one image" in capsys.readouterr().err


def test_public_argv_hides_env_values():
    argv = ["scan", "img", "--env", "DB=postgres://u:pw-secret-1@h/db", "-e", "X=1", "--env=Y=2", "-eZ=3",
            "--env-file", "f.env", "--", "sh", "-c", "echo pw-secret-1"]
    assert public_argv(argv, ["pw-secret-1"], False) == (
        "scan", "img", "--env", "DB=***", "-e", "X=***", "--env=Y=***", "-eZ=***", "--env-file", "f.env",
        "--", "sh", "-c", "echo ***")
    assert public_argv(argv, [], True) == tuple(argv)


def _listener(port: int = 25) -> Listener:
    return Listener("0.0.0.0", port, 4, process=Process(1, "master", ("master", "--token=tok-secret-77")))


def _result(errors=()) -> ScanResult:
    li = _listener()
    probe = SmtpProbe("0.0.0.0", 25, Protocol.SMTP, greeting="220 tok-secret-77 ESMTP")
    finding = Finding(Software("postfix", "Postfix"), State.LISTENING, (li,), (probe,),
                      (Evidence("greeting", "220 tok-secret-77 ESMTP"),))
    judged = evaluate(policy_from_text("version: 1\n", "p.yml"), finding, boots_init=False, today=dt.date(2026, 12, 1))
    return ScanResult(TargetInfo("image", "c.yaml#relay"), listeners=(li,), probes=(probe,), judged=(judged,),
                      errors=errors, notes=("log: TOKEN=tok-secret-77",))


def test_secrets_are_scrubbed_from_every_string_of_a_result():
    spec = RunSpec("i", name="c.yaml#relay", env=(("TOKEN", "tok-secret-77"), ("ENABLE_RELAY", "1")),
                   ports=(DeclaredPort(25, True, "ports: 2525:25"), DeclaredPort(8080, False, "expose: 8080")))
    out = finish(_result(errors=("engine: invalid env TOKEN=tok-secret-77",)), spec)
    assert "tok-secret-77" not in repr(out)
    assert out.probes[0].protocol is Protocol.SMTP and out.judged[0].decision.outcome is Outcome.FAIL
    assert out.listeners[0].scope is BindScope.ALL
    assert "environment set by the deployment: TOKEN=***, ENABLE_RELAY=***" in out.notes
    assert Evidence("deployment", "published by the deployment: ports: 2525:25") in out.judged[0].finding.evidence
    assert scrubbed(("a1", ["1"]), ()) == ("a1", ["1"])  # nothing to hide: untouched
    assert RunSpec("i", env=(("A", "1"), ("B", "info"))).secrets() == ()  # too short to scrub from free text
    url = RunSpec("i", env=(("DB", "postgres://app:db-pass-1@db:5432/app"),))
    assert url.secrets() == ("postgres://app:db-pass-1@db:5432/app", "db-pass-1")
    assert RunSpec("i", env=(("A", "abcdefgh"),), show_env=True).secrets() == ()


def test_declared_ports_compared_with_what_listens():
    spec = RunSpec("i", name="c.yaml#relay", ports=(DeclaredPort(25, True, "ports: 2525:25"),
                                                    DeclaredPort(587, False, "expose: 587")))
    notes = finish(_result(), spec).notes
    assert ("published port 25 (ports: 2525:25) listens and speaks SMTP: reachable from outside, the strongest "
            "evidence there is") in notes
    assert "declared port 587 (a well-known SMTP port) (expose: 587): nothing listened on it during the scan" in notes


POLICY = """version: 1
approvals:
  - software: postfix
    workloads: ["compose.yaml#relay", "Deployment/mail#*"]
    reason: the one relay
  - software: exim
    images: ["registry.example/mail/*:*"]
    reason: the mail image
"""


@pytest.mark.parametrize(("software", "target", "outcome"), [
    ("postfix", TargetInfo("image", "deploy/compose.yaml#relay", workload="deploy/compose.yaml#relay"), "pass"),
    ("postfix", TargetInfo("image", "compose.yaml#web", workload="compose.yaml#web"), "fail"),
    ("postfix", TargetInfo("image", "Deployment/mail#postfix", workload="Deployment/mail#postfix"), "pass"),
    ("postfix", TargetInfo("image", "Deployment/shop#postfix", workload="Deployment/shop#postfix"), "fail"),
    ("postfix", TargetInfo("image", "postfix:3"), "fail"),  # not a workload: the scoped approval is out
    ("postfix", None, "fail"),
    ("exim", TargetInfo("image", "registry.example/mail/exim:4.96"), "pass"),
    ("exim", TargetInfo("image", "Deployment/x#y", image="registry.example/mail/exim:4", workload="Deployment/x#y"),
     "pass"),
    ("exim", TargetInfo("image", "registry.example/other/exim:4.96"), "fail"),
])
def test_approvals_scoped_by_image_and_workload(software, target, outcome):
    policy = policy_from_text(POLICY, "smtpgate.yml")
    finding = Finding(Software(software, software), State.LISTENING, (_listener(),))
    judged = evaluate(policy, finding, boots_init=False, target=target)
    assert judged.decision.outcome.value == outcome


@pytest.mark.parametrize(("text", "message"), [
    ("images: []", "approvals[0].images: empty list; leave the key out to mean any"),
    ("workloads: ['']", "approvals[0].workloads[0]: '': a name or glob has no surrounding spaces and is not empty"),
    ("workloads: [' a']", "a name or glob has no surrounding spaces"),
    ("images: ['reg/[abc:*']", "unbalanced [ ] in the glob"),
    ("workload: [x]", "unknown key 'workload' (did you mean 'workloads'?)"),
])
def test_scoped_approvals_are_validated(text, message):
    with pytest.raises(PolicyError) as err:
        policy_from_text(f"version: 1\napprovals:\n  - reason: r\n    {text}\n", "p.yml")
    assert message in str(err.value)


def test_effective_config_is_what_the_engine_makes_of_the_create_call():
    # captured from docker 20.10 by data/workload/capture/engine_precedence.py (containers created, never run)
    from pathlib import Path

    from smtpgate.static.image import image_config
    from tests.unit.data.workload.capture.engine_precedence import CASES

    captured = json.loads((Path(__file__).parent / "data/workload/capture/engine-precedence.json").read_text())
    image = image_config({"Config": captured["image"]})
    assert set(captured["cases"]) == set(CASES)
    for name, spec in CASES.items():
        engine = image_config({"Config": captured["cases"][name]["config"]})
        mine = spec.effective(image)
        assert captured["cases"][name]["create"] == json.loads(json.dumps(spec.create_kwargs())), name
        assert (mine.entrypoint, mine.cmd, mine.env, mine.user, mine.workdir) == (
            engine.entrypoint, engine.cmd, engine.env, engine.user, engine.workdir), name


def test_issues_point_at_the_manifest_line(tmp_path, monkeypatch):
    from smtpgate.report.interface import ReportMeta
    from smtpgate.report.issues import issues

    monkeypatch.chdir(tmp_path)
    for source, shown in ((str(tmp_path / "deploy" / "compose.yaml"), "deploy/compose.yaml"),
                          ("./k8s.yaml", "k8s.yaml"), ("/elsewhere/k8s.yaml", "/elsewhere/k8s.yaml")):
        result = _result()
        result = ScanResult(TargetInfo("image", "w#c", workload="w#c", source=source, line=12),
                            listeners=result.listeners, judged=result.judged, errors=("boom",))
        places = {(i.place.path, i.place.line) for i in issues([result], ReportMeta(anchor="Dockerfile"))}
        assert places == {(shown, 12)}, source
