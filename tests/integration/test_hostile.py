"""The image under test is the attacker (issue 16): evasions, CI log
injections, report paths and inputs, the overall deadline. Real images on
the real engine; the CLI in a subprocess where its stdout/stderr matter."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time

import pytest

from smtpgate.cli import main
from tests.integration.conftest import ROOT, labelled

PYTHON = "smtpgate-fixture/python:latest"
CLEAN = "smtpgate-fixture/clean:latest"


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m smtpgate ARGS`, stdout and stderr as raw bytes."""
    return subprocess.run([sys.executable, "-m", "smtpgate", *args], capture_output=True, timeout=timeout,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=ROOT)


# The runner splits its input on CR and LF; it acts on a line that starts with `::`
# after leading white space (.NET's, which includes \x1c-\x1f, \x85, U+2028/2029),
# and on `##[` (GitHub legacy) or `##vso[` (Azure) anywhere in a line.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_NET_SPACE = ("".join(chr(c) for c in range(0x09, 0x0E)) + "\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000-\u200a"
              "\u2028\u2029\u202f\u205f\u3000")
_ANYWHERE = re.compile(r"##(\[|vso\[)", re.IGNORECASE)
# what smtpgate itself prints on purpose with --github: its annotations
_OURS = re.compile(r"^::(error|warning) (file=[^,:]*,)?(line=\d+,)?title=(SMTPGATE\d{3}|smtpgate: )")


def active_commands(output: bytes, ours_allowed: bool = False) -> list[str]:
    """Lines of ``output`` a CI runner would act on as a workflow command
    (with ``ours_allowed``: other than smtpgate's own annotations, which must
    carry no legacy command either)."""
    found = []
    for line in _LINE_BREAK.split(output.decode("utf-8", "surrogateescape")):
        bare = re.sub(f"^[{_NET_SPACE}]+", "", line)
        ours = ours_allowed and _OURS.match(bare)
        if _ANYWHERE.search(line) or (bare.startswith("::") and not ours):
            found.append(line)
    return found


def test_dribbled_greeting_is_undecided(scan_image):
    """'2' at once, the rest of the greeting after 13 s: SMTP to a patient client, so never 'other'."""
    run = scan_image("smtpgate-fixture/hostile-dribble:latest")
    assert run.code == 2, run.report
    (target,) = run.report["targets"]
    (listener,) = [li for li in target["listeners"] if li["port"] == 25]
    assert listener["probe"]["protocol"] == "silent", listener
    assert any("[0.0.0.0]:25" in e and "may still be coming" in e for e in target["errors"]), target["errors"]


@pytest.mark.parametrize("method", [(), ("--method", "helper", "--helper-image", PYTHON)], ids=["host", "helper"])
def test_3000_silent_ports_end_within_the_scan_timeout(tmp_path, docker_client, method):
    """Each silent port is undecided; the whole scan ends within --scan-timeout with what it decided.
    A greeting patience longer than the timeout makes sure the deadline is what ends it."""
    out = tmp_path / "r.json"
    started = time.monotonic()
    code = main(["scan", "smtpgate-fixture/hostile-ports:latest", "--scan-timeout", "20", "--greeting-timeout", "30",
                 "--json", str(out), "--junit", str(tmp_path / "j.xml"), "-q", *method])
    elapsed = time.monotonic() - started
    report = json.loads(out.read_text())
    (target,) = report["targets"]
    assert code == 2
    assert len(target["listeners"]) == 3000
    assert target["timings"]["total"] < 20, target["timings"]
    assert elapsed < 20 + 8, f"{elapsed:.1f} s: reports of 3000 listeners take a few seconds, not more"
    assert any(e.startswith("--scan-timeout 20 s ran out while probing") for e in target["errors"]), target["errors"]
    assert all(li["probe"]["protocol"] in ("not-probed", "silent") for li in target["listeners"])
    assert len(target["errors"]) < 30, "thousands of undecided ports are summarised, not listed one by one"
    assert "--scan-timeout 20 s ran out" in (tmp_path / "j.xml").read_text(), "in every report"
    assert labelled(docker_client, os.getpid()) == ([], [])


def test_workflow_commands_in_banners_and_process_titles_stay_inert(tmp_path):
    """Greeting, EHLO lines, comm, argv and the script's path hold ##[...], ::cmd:: and
    separators that are not \\n: the scan fails (exit 1) and prints no active command."""
    done = _cli("scan", "smtpgate-fixture/hostile-logcmd:latest", "--format", "json", "--github",
                "--json", str(tmp_path / "r.json"))
    assert done.returncode == 1, done.stderr.decode(errors="replace")
    assert active_commands(done.stderr) == []
    assert active_commands(done.stdout, ours_allowed=True) == []
    document, end = json.JSONDecoder().raw_decode(done.stdout.decode("utf-8"))
    assert done.stdout[end:].lstrip().startswith(b"::error "), "our own annotations follow the JSON, and work"
    greeting = document["targets"][0]["listeners"][0]["probe"]["greeting"]
    assert "##[error]greeting-legacy" in greeting and "\u2028::error::sep-2028" in greeting, \
        "the JSON still says exactly what the server sent"
    assert b"#\\x23[error]greeting-legacy" in done.stderr, "escaped readably"


@pytest.fixture
def hostile_workdir(docker_client):
    """An image whose WORKDIR holds \\x1c::error::pwned (under a file, so the engine's start error repeats it)."""
    container = docker_client.containers.create(PYTHON, ["true"], labels={"smtpgate": "test"})
    try:
        image = container.commit(repository="smtpgate-test/hostile-workdir", tag=str(os.getpid()),
                                 changes=["WORKDIR /usr/bin/python3/\x1c::error::pwned\u2028::warning::w"])
    finally:
        container.remove(force=True)
    try:
        yield image.tags[0]
    finally:
        docker_client.images.remove(image.id, force=True)


def test_engine_error_repeating_the_workdir_stays_on_one_line(hostile_workdir):
    done = _cli("scan", hostile_workdir, "--format", "json")
    assert done.returncode == 2
    assert b"pwned" in done.stderr, done.stderr
    assert active_commands(done.stderr) == [] and active_commands(done.stdout) == []
    (target,) = json.loads(done.stdout)["targets"]
    assert any("\x1c::error::pwned" in e for e in target["errors"]), target["errors"]


# -- report paths and inputs, as root (item 6, 7) -------------------------------------------------

def test_report_to_dev_stdout_is_written_to_stdout_and_dev_stdout_survives():
    done = _cli("scan", CLEAN, "--static", "-q", "--json", "/dev/stdout", "--junit", "/proc/self/fd/1")
    assert done.returncode == 0, done.stderr
    text = done.stdout.decode("utf-8")
    start = text.index('{\n  "smtpgate"')  # the JUnit XML comes first (reports are written in option order)
    document, _ = json.JSONDecoder().raw_decode(text, start)
    assert document["exit_code"] == 0
    assert "<testsuite" in text[:start]
    assert stat.S_ISLNK(os.lstat("/dev/stdout").st_mode)


def test_full_device_is_exit_2_and_stays_a_device(device_dir):
    """A node of the real /dev/full driver (1,7) in tmp: ENOSPC is exit 2, and the node is not replaced."""
    full = device_dir / "full"
    os.mknod(full, stat.S_IFCHR | 0o666, os.makedev(1, 7))
    done = _cli("scan", CLEAN, "--static", "-q", "--junit", str(full))
    assert done.returncode == 2
    assert b"No space left on device" in done.stderr
    assert stat.S_ISCHR(os.lstat(full).st_mode)


def test_fifo_report_without_reader_is_refused_at_once_and_with_a_reader_written(tmp_path):
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    done = _cli("scan", CLEAN, "--static", "-q", "--junit", str(fifo), timeout=60)
    assert done.returncode == 2 and b"a FIFO with no reader" in done.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    try:
        time.sleep(0.3)
        done = _cli("scan", CLEAN, "--static", "-q", "--junit", str(fifo), timeout=60)
        out, _ = reader.communicate(timeout=30)
    finally:
        reader.kill()
        reader.wait()
    assert done.returncode == 0, done.stderr
    assert b"<testsuite" in out


@pytest.mark.parametrize("option", ["--policy", "--images-from"])
def test_fifo_and_device_inputs_are_refused_at_once(tmp_path, option):
    fifo = tmp_path / "input.fifo"
    os.mkfifo(fifo)
    for path in (str(fifo), "/dev/zero"):
        started = time.monotonic()
        done = _cli("scan", CLEAN, option, path, timeout=30)
        assert done.returncode == 2
        assert b"not a regular file" in done.stderr, done.stderr
        assert time.monotonic() - started < 10


def test_stdout_on_a_full_device_is_exit_2():
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "smtpgate", "scan", CLEAN, "--static", "-q", "--json",
                               "/dev/stdout"], stdout=full, stderr=subprocess.PIPE, timeout=60,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=ROOT)
    assert done.returncode == 2
    assert b"cannot write report to /dev/stdout: No space left on device" in done.stderr
