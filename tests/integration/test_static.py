"""Static evidence on the real engine: merged into normal scans, --static alone,
and the symlink and large-file fixtures read in a separate process (confinement, memory)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.integration.conftest import EXPECTED, ROOT, labelled

MARKER = "/tmp/smtpgate-host-marker"


def _finding(run, software):
    (target,) = run.report["targets"]
    return next(f for f in target["findings"] if f["software"]["id"] == software)


def test_normal_scan_merges_runtime_and_static_evidence(scan_image):
    run = scan_image(EXPECTED["postfix-all"]["image"])
    finding = _finding(run, "postfix")
    kinds = {e["kind"] for e in finding["evidence"]}
    assert {"listening", "greeting", "command", "unit", "config", "package"} <= kinds
    config = [e for e in finding["evidence"] if e["kind"] == "config"]
    assert all(e["path"] == "/etc/postfix/main.cf" and isinstance(e["line"], int) for e in config)
    assert f"(/etc/postfix/main.cf:{config[0]['line']})" in run.junit_text  # file:line in JUnit
    assert finding["software"]["version"]  # from the package when the banner has none
    assert "static" in run.report["targets"][0]["timings"]


def test_last_inet_interfaces_line_is_the_evidence(scan_image):
    run = scan_image(EXPECTED["postfix-last-inet"]["image"])
    config = next(e for e in _finding(run, "postfix")["evidence"] if e["kind"] == "config")
    assert "loopback-only (the last of 2 occurrences)" in config["text"] and config["line"] > 46


def test_delayed_start_fails_on_static_evidence(scan_image):
    run = scan_image(EXPECTED["delayed-mta"]["image"])
    (target,) = run.report["targets"]
    assert not target["listeners"]
    finding = _finding(run, "postfix")
    assert finding["state"] == "enabled" and finding["decision"]["outcome"] == "fail"
    assert "sleeping 60 s" in " ".join(e["text"] for e in finding["evidence"])


@pytest.mark.parametrize("extra", [(), ("--static",)], ids=["normal", "static"])
def test_a_flooded_wants_directory_is_cut_reported_and_bounded(scan_image, extra):
    """A million empty files in a *.wants (issue 16): the listing is cut per directory, the cut is
    an error of the scan naming the directory (never a note on a pass), and the time stays bounded;
    the image's command (`sleep 40; exec postfix start-fg`) still fails it."""
    run = scan_image(EXPECTED["hostile-flood"]["image"], *extra)
    (target,) = run.report["targets"]
    assert run.code in (1, 2), target
    cut = [e for e in target["errors"] if "multi-user.target.wants: more than 10000 entries" in e]
    assert cut and "could not be read completely" in cut[0], target["errors"]
    assert target["timings"]["total"] < 90, target["timings"]
    finding = _finding(run, "postfix")
    assert finding["state"] == "enabled" and finding["decision"]["outcome"] == "fail"


def test_static_is_much_faster_than_a_normal_scan(scan_image):
    for name in ("postfix-all", "exim-all", "supervisord-aiosmtpd"):
        normal = scan_image(EXPECTED[name]["image"]).report["targets"][0]["timings"]["total"]
        static = scan_image(EXPECTED[name]["image"], "--static").report["targets"][0]["timings"]["total"]
        print(f"{name}: normal scan {normal:.2f} s, --static {static:.2f} s")
        assert static < normal / 3


def _probe(ref: str, method: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "tests.integration.static_probe", ref, method], env=env,
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def host_marker():
    """Files on the HOST where the image's escaping links point: they must never be read."""
    os.makedirs(f"{MARKER}/run/smtp", exist_ok=True)
    for path, text in (("main.cf", "inet_interfaces = HOST-MARKER\n"),
                       ("sendmail.cf", "O DaemonPortOptions=HOST-MARKER\n"),
                       ("run/smtp/run", "#!/bin/sh\nexec postfix start-fg # HOST-MARKER\n")):
        with open(f"{MARKER}/{path}", "w") as fh:
            fh.write(text)
    yield MARKER
    subprocess.run(["rm", "-rf", MARKER], check=False)


@pytest.mark.parametrize("method", ["auto", "export"])
def test_symlink_escape_reads_nothing_outside_the_image(images, docker_client, host_marker, method):
    out = _probe(EXPECTED["symlink-escape"]["image"], method)
    print(f"symlink-escape ({out['source']}): {out['seconds']:.2f} s, peak RSS {out['peak_rss_kib']} KiB")
    assert "HOST-MARKER" not in json.dumps(out["evidence"])
    assert not [p for p in out["opened"] if p.startswith(MARKER)]
    # every absolute open is a layer directory of the image (overlay2) or nothing at all (export stream)
    assert all(p.startswith("/var/lib/docker/") for p in out["opened"]), out["opened"]
    assert out["findings"] == [["postfix", "enabled"]]
    assert any("too many levels of symbolic links" in p for p in out["problems"])
    mine = labelled(docker_client, os.getpid())[0]  # ours only: other runs may share the engine
    assert not [c for c in mine if (c.attrs.get("Labels") or {}).get("smtpgate.purpose") == "static-export"]


@pytest.mark.parametrize("method", ["auto", "export"])
def test_large_file_keeps_memory_bounded(images, method):
    out = _probe(EXPECTED["large-file"]["image"], method)
    grown = out["peak_rss_kib"] - out["rss_before_kib"]
    print(f"large-file ({out['source']}): {out['seconds']:.2f} s, peak RSS {out['peak_rss_kib']} KiB "
          f"(+{grown} KiB while reading)")
    assert out["peak_rss_kib"] < 150 * 1024 and grown < 64 * 1024
    assert out["findings"] == [["postfix", "enabled"]]
    if method == "export":  # streamed past, reported, never kept
        assert any("/etc/postfix/huge.cf" in p and "limit" in p for p in out["problems"])


@pytest.mark.parametrize("extra", [(), ("--static",)], ids=["normal", "static"])
def test_a_crashing_static_reader_is_exit_2_never_a_note(images, tmp_path, monkeypatch, extra):
    """A reader that raises what it does not expect (here: the systemd reader) leaves the static
    evidence incomplete: exit 2 naming the reader, on an image that otherwise passes."""
    from smtpgate.cli import main
    from smtpgate.static import services

    def crash(*_args):
        raise KeyError("unit")

    monkeypatch.setattr(services, "systemd", crash)
    out = tmp_path / "r.json"
    code = main(["scan", EXPECTED["clean"]["image"], *extra, "--json", str(out), "-q"])
    (target,) = json.loads(out.read_text())["targets"]
    assert code == 2, target
    assert any("the systemd units reader failed (KeyError" in e for e in target["errors"]), target["errors"]
