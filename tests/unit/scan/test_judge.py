"""One judge for every mode, and the pipeline's boundaries (issue 12): what a
source could not read is an error of the scan (exit 2), never a note on a pass."""

from __future__ import annotations

import contextlib
import json
import types

import pytest

from smtpgate import gate, vmgate
from smtpgate.cli import main
from smtpgate.errors import TargetError
from smtpgate.model import Protocol, SmtpProbe, TargetInfo, exit_code
from smtpgate.policy import default_policy
from smtpgate.scan import Evidence, judge
from smtpgate.scan.settle import Quiet
from smtpgate.static import DirFS, StaticError, StaticFacts, analyse, services
from smtpgate.static.facts import Enablement

WANTS = "etc/systemd/system/multi-user.target.wants"
IMAGE = TargetInfo(kind="image", ref="example/app")


def _enabled_postfix(by_command: bool = True) -> Enablement:
    return Enablement("postfix", "command", "the image command starts postfix", by_command=by_command)


def test_complete_static_facts_are_judged_like_runtime_findings():
    facts = StaticFacts(enabled=(_enabled_postfix(),), complete=True, source="image x")
    result = judge(IMAGE, Evidence(static=facts), default_policy())
    assert [j.finding.software.id for j in result.judged] == ["postfix"]
    assert result.verdict == "fail" and result.errors == ()


def test_static_facts_cut_short_are_an_error_naming_the_cut():
    cut = "/etc/systemd/system/multi-user.target.wants: more than 10000 entries, only 10000 listed; " \
          "the file listing is incomplete"
    facts = StaticFacts(complete=False, cuts=(cut,), problems=(cut,), source="image x")
    result = judge(IMAGE, Evidence(static=facts), default_policy())
    assert result.verdict == "error" and exit_code([result]) == 2
    assert len(result.errors) == 1 and cut in result.errors[0]
    assert f"static: {cut}" in result.notes


def test_a_violation_still_decides_when_the_static_read_was_cut():
    facts = StaticFacts(enabled=(_enabled_postfix(),), complete=False, cuts=("x: cut",), source="image x")
    result = judge(IMAGE, Evidence(static=facts), default_policy())
    assert result.verdict == "fail" and result.errors  # the evidence decides; the error is still reported


def test_an_undecided_listener_is_an_error_of_every_mode():
    probe = SmtpProbe("0.0.0.0", 2525, Protocol.SILENT, detail="no greeting in 8 s")
    result = judge(IMAGE, Evidence(probes=(probe,)), default_policy())
    assert result.verdict == "error"
    assert "[0.0.0.0]:2525" in result.errors[0] and "--greeting-timeout" in result.errors[0]


# -- offline VM disks: the same judge, so a cut index is exit 2 there too -----------------------


@pytest.fixture
def offline_disk(monkeypatch, tmp_path):
    """scan_offline on a directory standing in for the mounted root (the mount itself needs loop devices)."""

    @contextlib.contextmanager
    def mounted(image):
        yield types.SimpleNamespace(path=str(tmp_path), notes=[f"mounted {image}"])

    monkeypatch.setattr(vmgate, "mounted_root", mounted)
    return tmp_path


def test_an_offline_vm_disk_with_a_flooded_wants_directory_is_exit_2(offline_disk):
    wants = offline_disk / WANTS
    wants.mkdir(parents=True)
    for i in range(10_001):  # one past the default per-directory cap
        (wants / f"flood-{i:05d}.service").touch()
    result = vmgate.scan_offline("disk.qcow2", default_policy(), gate.ScanOptions(), why="--static")
    assert result.verdict == "error" and exit_code([result]) == 2, result
    assert any("more than 10000 entries" in e for e in result.errors), result.errors


def test_an_offline_vm_disk_read_completely_passes(offline_disk):
    (offline_disk / WANTS).mkdir(parents=True)
    result = vmgate.scan_offline("disk.qcow2", default_policy(), gate.ScanOptions(), why="--static")
    assert result.verdict == "pass" and result.errors == ()


# -- a crashing reader is an error of the scan, never a note ---------------------------------


def _crash(*_args):
    raise KeyError("unit")


def test_a_crashing_reader_is_a_static_error_naming_it(tmp_path, monkeypatch):
    monkeypatch.setattr(services, "systemd", _crash)
    with DirFS(tmp_path) as fs, pytest.raises(StaticError) as err:
        analyse(fs)
    assert "systemd units reader failed (KeyError" in str(err.value)


def test_a_crashing_reader_on_an_offline_disk_is_exit_2(offline_disk, monkeypatch):
    monkeypatch.setattr(services, "systemd", _crash)
    result = vmgate.scan_offline("disk.qcow2", default_policy(), gate.ScanOptions(), why="--static")
    assert result.verdict == "error" and "systemd units reader failed" in result.errors[0]


def test_input_nested_too_deeply_cuts_the_read(tmp_path, monkeypatch):
    def deep(*_args):
        raise RecursionError

    monkeypatch.setattr(services, "supervisord", deep)
    with DirFS(tmp_path) as fs:
        facts = analyse(fs)
    assert facts.complete is False and "supervisord: input nested too deeply, not read" in facts.cuts[0]


# -- the settle loop asks targets about threads: only their own errors are an early way out ---


def test_settle_asks_swallow_only_target_and_os_errors():
    def lost():
        raise TargetError("lost the container")

    def gone():
        raise FileNotFoundError("/proc/123/task")

    def bug():
        raise KeyError("bug")

    assert Quiet._ask(lost) is None
    assert Quiet._ask(gone) is None
    with pytest.raises(KeyError):
        Quiet._ask(bug)


# -- the command line -------------------------------------------------------------------------


@pytest.fixture
def no_engine(monkeypatch):
    """Any Docker engine call fails the test."""
    import smtpgate.targets.docker as docker_target

    def engine(*_a, **_k):
        raise AssertionError("the Docker engine was asked")

    monkeypatch.setattr(docker_target, "engine", engine)


def _run(tmp_path, *args: str) -> tuple[int, dict]:
    out = tmp_path / "r.json"
    code = main(["scan", *args, "--json", str(out), "-q"])
    return code, json.loads(out.read_text())


def test_static_on_an_ssh_host_never_looks_for_a_docker_image(tmp_path, no_engine):
    code, report = _run(tmp_path, "--static", "ssh://ci@host.example.invalid")
    (target,) = report["targets"]
    assert code == 2 and not report["errors"], report
    assert target["kind"] == "host" and target["ref"] == "ssh://ci@host.example.invalid"
    assert "live host" in target["errors"][0] and "without --static" in target["errors"][0]


def test_an_unknown_reference_scheme_is_refused(tmp_path, no_engine):
    code, report = _run(tmp_path, "--static", "sftp://host.example.invalid/x")
    assert code == 2
    assert "unknown reference form 'sftp://'" in report["targets"][0]["errors"][0]


def test_a_typo_in_a_policy_software_id_is_exit_2_naming_it(tmp_path, no_engine):
    policy = tmp_path / "smtpgate.yml"
    policy.write_text("version: 1\napprovals:\n  - software: postifx\n    reason: the relay\n")
    code, report = _run(tmp_path, "example/app", "--policy", str(policy))
    assert code == 2
    (message,) = report["errors"]
    assert "unknown software 'postifx' (did you mean 'postfix'?)" in message and str(policy) in message


def test_every_known_software_id_is_accepted_in_a_policy(tmp_path):
    from smtpgate import software
    from smtpgate.cli import _policy

    ids = list(dict.fromkeys([m.id for m in software.all_mtas()] + ["unknown"]))
    policy = tmp_path / "smtpgate.yml"
    policy.write_text("version: 1\napprovals:\n" + "".join(f"  - software: {i}\n    reason: r\n" for i in ids))
    assert [a.software for a in _policy(str(policy)).approvals] == [(i,) for i in ids]
