"""VM images on real qemu (TCG here: KVM aborts on this machine) and a live host over SSH.

Each fixture image is booted once per session (a boot takes 1.5-2.5 minutes
under TCG); every assertion about that boot reads the cached result. Fixture
images come from fixtures/vm/build.sh (./dev setup builds them; cached under
/var/cache/smtpgate-fixtures/vm).
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from smtpgate.cli import main

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "fixtures" / "vm" / "build.sh"
TEMP_PATTERNS = ("smtpgate-vm.*", "smtpgate-disk.*", "smtpgate-ssh.*")

pytestmark = pytest.mark.slow


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def our_qemus() -> list[str]:
    """qemu processes started by smtpgate (named smtpgate-scan on their command line)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"qemu-system-x86_64") and (b"smtpgate-scan" in cmd or b"kvm" in cmd):
            found.append(pid)
    return found


def temp_leftovers() -> set[str]:
    tmp = tempfile.gettempdir()
    return {p for pattern in TEMP_PATTERNS for p in glob.glob(os.path.join(tmp, pattern))}


@pytest.fixture(scope="session")
def vm_images() -> Path:
    if os.environ.get("SMTPGATE_SKIP_INTEGRATION") == "1":
        pytest.skip("SMTPGATE_SKIP_INTEGRATION=1: integration tests skipped on request")
    out = Path(subprocess.run(["bash", str(BUILD), "--print-dir"], capture_output=True, text=True,
                              check=True).stdout.strip())
    missing = [n for n in ("postfix-all", "postfix-disabled", "clean", "unbootable")
               if not (out / f"{n}.qcow2").is_file()]
    if missing:
        pytest.fail(f"VM fixture images not built in {out}: {missing} (run ./dev setup or fixtures/vm/build.sh)",
                    pytrace=False)
    return out


@pytest.fixture(scope="session", autouse=True)
def nothing_left_behind():
    """After every test of this module: no qemu of ours, no temporary directory of ours."""
    before = temp_leftovers()
    yield
    assert our_qemus() == [], "a qemu process was left running"
    assert temp_leftovers() - before == set(), "temporary files were left behind"


@dataclass
class Run:
    code: int
    report: dict
    junit: ET.Element
    seconds: float
    sha_before: str = ""
    sha_after: str = ""

    @property
    def target(self) -> dict:
        return self.report["targets"][0]

    def findings(self, state: str | None = None) -> list[dict]:
        return [f for f in self.target["findings"] if state is None or f["state"] == state]


@pytest.fixture(scope="session")
def scan_vm(vm_images, tmp_path_factory):
    """scan_vm(name_or_path, *args) -> Run through the real CLI; cached per argument list."""
    cache: dict[tuple, Run] = {}

    def run(name: str, *extra: str) -> Run:
        key = (name, *extra)
        if key not in cache:
            disk = Path(name) if os.sep in name else vm_images / f"{name}.qcow2"
            out = tmp_path_factory.mktemp("vmscan")
            before = sha256(disk)
            started = time.monotonic()
            code = main(["scan", "--vm", str(disk), "--junit", str(out / "j.xml"), "--json", str(out / "r.json"),
                         "-q", *extra])
            seconds = time.monotonic() - started
            report = json.loads((out / "r.json").read_text())
            junit = ET.fromstring((out / "j.xml").read_text(encoding="utf-8"))
            cache[key] = Run(code, report, junit, seconds, before, sha256(disk))
            print(f"\nsmtpgate scan --vm {disk.name} {' '.join(extra)}: exit {code} in {seconds:.1f} s",
                  file=sys.stderr)
        return cache[key]

    return run


def text_of(run: Run) -> str:
    return json.dumps(run.report)


# -- booted (TCG) -----------------------------------------------------------------------------


def test_postfix_all_booted_fails(scan_vm):
    run = scan_vm("postfix-all")
    assert run.code == 1, text_of(run)
    assert run.target["method"] == "qemu+ssh"
    notes = "\n".join(run.target["notes"])
    assert "snapshot mode" in notes and ("TCG" in notes or "KVM" in notes)
    listening = run.findings("listening")
    assert [f["software"]["id"] for f in listening] == ["postfix"]
    assert "0.0.0.0:25" in listening[0]["listeners"] and listening[0]["decision"]["outcome"] == "fail"
    evidence = " ".join(e["text"] for e in listening[0]["evidence"])
    assert "ESMTP Postfix" in evidence  # judged by protocol through the SSH channel
    assert "postfix.service is enabled" in evidence and "package postfix" in evidence
    assert run.sha_before == run.sha_after, "the image file changed"


def test_clean_booted_passes(scan_vm):
    run = scan_vm("clean")
    assert run.code == 0, text_of(run)
    assert run.findings() == []
    probes = {li["port"]: (li["probe"] or {}).get("protocol") for li in run.target["listeners"]}
    assert probes.get(22) == "other"  # sshd was probed and is not SMTP
    assert run.sha_before == run.sha_after


def test_junit_names_the_vm(scan_vm):
    run = scan_vm("postfix-all")
    suites = run.junit.findall("testsuite") if run.junit.tag == "testsuites" else [run.junit]
    assert any("postfix-all.qcow2" in (s.get("name") or "") for s in suites)
    assert run.junit.findall(".//failure")


# -- a held VM: gate.inspect on it, and the same guest as an ssh:// host ------------------------


@pytest.fixture(scope="module")
def held_disabled_vm(vm_images):
    """postfix-disabled booted once and kept up for the ssh:// test."""
    from smtpgate import gate
    from smtpgate.policy import default_policy
    from smtpgate.targets.vm import VmOptions, VmTarget

    disk = vm_images / "postfix-disabled.qcow2"
    before = sha256(disk)
    target = VmTarget(str(disk), VmOptions())
    with target:
        result = gate.inspect(target, default_policy(), gate.ScanOptions(boots_init=True))
        yield target, result
    assert sha256(disk) == before


def test_postfix_disabled_booted_warns(held_disabled_vm):
    _, result = held_disabled_vm
    assert result.verdict == "pass", result
    states = {(j.finding.software.id, j.finding.state.value, j.decision.outcome.value) for j in result.judged}
    assert states == {("postfix", "installed", "warn")}
    assert not [li for li in result.listeners if li.port == 25]
    evidence = " ".join(e.text for j in result.judged for e in j.finding.evidence)
    assert "postfix.service is disabled" in evidence


def test_ssh_host_target(held_disabled_vm, tmp_path):
    target, _ = held_disabled_vm
    ep = target.session.endpoint
    host_key = Path(target.dir, "host_ed25519.pub").read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{ep.port} {' '.join(host_key)}\n")
    out = tmp_path / "r.json"
    code = main(["scan", f"ssh://{ep.user}@127.0.0.1:{ep.port}", "--ssh-key", ep.identity,
                 "--ssh-known-hosts", str(known), "--json", str(out), "-q"])
    report = json.loads(out.read_text())["targets"][0]
    assert code == 0, report
    assert report["kind"] == "host" and report["method"] == "ssh"
    assert [f["state"] for f in report["findings"]] == ["installed"]
    assert target.state().running, "an ssh:// scan must never stop the host"


def test_ssh_host_unreachable_is_exit_2(tmp_path):
    out = tmp_path / "r.json"
    code = main(["scan", "ssh://nobody@127.0.0.1:1", "--json", str(out), "-q"])
    assert code == 2
    assert "ssh" in json.loads(out.read_text())["targets"][0]["errors"][0]


# -- offline -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "code", "states"), [
    ("postfix-all", 1, {("postfix", "enabled", "fail")}),
    ("postfix-disabled", 0, {("postfix", "installed", "warn")}),
    ("clean", 0, set()),
])
def test_offline(scan_vm, name, code, states):
    run = scan_vm(name, "--static")
    assert run.code == code, text_of(run)
    assert run.target["method"] == "offline"
    assert {(f["software"]["id"], f["state"], f["decision"]["outcome"]) for f in run.target["findings"]} == states
    assert any("--static" in n for n in run.target["notes"])
    assert any("MBR partition table" in n for n in run.target["notes"])
    assert run.sha_before == run.sha_after
    assert run.seconds < 60


# -- failure paths -------------------------------------------------------------------------------


def test_unbootable_without_fallback_is_exit_2_with_console(scan_vm):
    run = scan_vm("unbootable", "--no-static-fallback")
    assert run.code == 2
    error = run.target["errors"][0]
    assert "did not boot" in error and "No bootable device" in error and "SeaBIOS" in error


def test_unbootable_falls_back_to_offline(scan_vm):
    run = scan_vm("unbootable")
    assert run.code == 1, text_of(run)  # the offline reading finds Postfix enabled
    assert run.target["method"] == "offline-fallback"
    notes = "\n".join(run.target["notes"])
    assert "offline fallback" in notes and "No bootable device" in notes
    assert "no partition table" in notes
    assert run.sha_before == run.sha_after


def test_empty_disk_is_exit_2_even_with_fallback(scan_vm, tmp_path_factory):
    disk = tmp_path_factory.mktemp("empty") / "empty.raw"
    with open(disk, "wb") as fh:
        fh.truncate(64 << 20)
    run = scan_vm(str(disk))
    assert run.code == 2
    assert "no ext4 or xfs filesystem" in run.target["errors"][0]
    assert "No bootable device" in "\n".join(run.target["notes"])


def test_boot_timeout_is_exit_2_with_console(scan_vm):
    run = scan_vm("clean", "--boot-timeout", "8", "--no-static-fallback")
    assert run.code == 2
    error = run.target["errors"][0]
    assert "within --boot-timeout 8 s" in error and "last serial console lines" in error


def test_sigterm_mid_boot_cleans_up(vm_images, tmp_path):
    before = temp_leftovers()
    others = set(our_qemus())  # VMs other tests of this session keep running (the ssh:// host)

    def mine() -> set[str]:
        return set(our_qemus()) - others

    out = tmp_path / "r.json"
    proc = subprocess.Popen([sys.executable, "-m", "smtpgate", "scan", "--vm", str(vm_images / "clean.qcow2"),
                             "--json", str(out), "-q"], cwd=ROOT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not mine():
        time.sleep(0.5)
    assert mine(), "qemu never started"
    time.sleep(10)  # mid-boot: past the KVM probe, the VM is booting
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 2
    gone = time.monotonic() + 5  # the kernel may still be tearing a SIGKILLed qemu down
    while mine() and time.monotonic() < gone:
        time.sleep(0.2)
    assert mine() == set()
    assert temp_leftovers() - before == set()
    assert "SIGTERM" in out.read_text()
