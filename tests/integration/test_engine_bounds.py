"""The engine seam on the real engine: resource bounds reach the container
(--cpus, --memory, --pids, --read-only, --disk-limit), an engine that goes away
mid-scan is exit 2 (never a pass), --static says when it had to export, and
the helper path settles early like the host path (issue 13, issue 16 items 8-10)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from smtpgate.cli import main
from smtpgate.engines import ContainerSpec, connect
from smtpgate.errors import EngineError, ObjectNotFound
from smtpgate.labels import owner_labels
from smtpgate.static import analyse, image_config, overlay, static_findings
from smtpgate.static.overlay import OverlayFS
from smtpgate.targets.docker import DockerImageTarget
from tests.integration.conftest import labelled, scan_process

HELPER = "smtpgate-fixture/python:latest"
SOCKET = "/var/run/docker.sock"


def _scan(tmp_path, *args: str) -> tuple[int, dict]:
    out = tmp_path / "r.json"
    code = main(["scan", *args, "--json", str(out), "-q", "--pull", "never"])
    return code, json.loads(out.read_text())


@contextlib.contextmanager
def forwarder(kind: str, tmp_path):
    """DOCKER_HOST for a socat forwarder to the local engine (unix socket or TCP
    on loopback), and a function that makes the engine vanish: every socat
    process killed (established connections too) and, for unix, the socket file gone."""
    socat = shutil.which("socat")
    if not socat:
        pytest.fail("socat is not installed (./dev setup installs it)", pytrace=False)
    if kind == "unix":
        path = str(tmp_path / "engine.sock")
        listen, host, reach = f"UNIX-LISTEN:{path},fork", f"unix://{path}", path
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        listen, host, reach = f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr", f"tcp://127.0.0.1:{port}", port
    proc = subprocess.Popen([socat, listen, f"UNIX-CONNECT:{SOCKET}"], stderr=subprocess.DEVNULL,
                            start_new_session=True)

    def vanish() -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        if kind == "unix":
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                family = socket.AF_UNIX if kind == "unix" else socket.AF_INET
                with socket.socket(family) as s:
                    s.settimeout(1)
                    s.connect(reach if kind == "unix" else ("127.0.0.1", reach))
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("socat did not start listening", pytrace=False)
                time.sleep(0.05)
        yield host, vanish
    finally:
        vanish()


def test_limits_reach_the_container(tmp_path, docker_client, images):
    """--cpus, --memory, --pids and --read-only as the engine applies them; a
    read-only image that writes nothing still runs and passes."""
    with scan_process(docker_client, images["clean"], "--cpus", "0.5", "--memory", "256m", "--pids", "99",
                      "--read-only", "-q") as proc:
        (container,) = [c for c in labelled(docker_client, proc.pid)[0] if c.status == "running"]
        host = docker_client.api.inspect_container(container.id)["HostConfig"]
        _, stderr = proc.communicate(timeout=60)
    assert host["NanoCpus"] == 500_000_000 and host["Memory"] == 256 << 20 and host["PidsLimit"] == 99
    assert host["ReadonlyRootfs"] is True and set(host["Tmpfs"]) == {"/tmp", "/var/tmp", "/run"}
    assert proc.returncode == 0, stderr
    assert labelled(docker_client, proc.pid) == ([], [])


def test_default_cpu_quota_is_one_cpu(tmp_path, docker_client, images):
    with scan_process(docker_client, images["clean"], "-q") as proc:
        (container,) = [c for c in labelled(docker_client, proc.pid)[0] if c.status == "running"]
        host = docker_client.api.inspect_container(container.id)["HostConfig"]
        proc.communicate(timeout=60)
    assert host["NanoCpus"] == 1_000_000_000 and host["ReadonlyRootfs"] is False


@pytest.mark.parametrize("args", [["--memory", "0"], ["--pids", "0"], ["--pids", "-5"], ["--cpus", "0"],
                                  ["--disk-limit", "0"], ["--memory", "lots"]])
def test_unbounded_limits_are_refused(tmp_path, docker_client, images, args, capsys):
    assert main(["scan", images["clean"], "-q", *args]) == 2
    assert args[0] in capsys.readouterr().err
    assert labelled(docker_client, os.getpid()) == ([], [])


def test_a_container_that_writes_past_the_disk_limit_is_killed_and_exit_2(tmp_path, docker_client, images):
    started = time.monotonic()
    code, report = _scan(tmp_path, images["hostile-disk"], "--disk-limit", "64m")
    (target,) = report["targets"]
    assert code == 2, target
    assert any("--disk-limit 64 MiB" in e and "killed" in e for e in target["errors"]), target
    assert time.monotonic() - started < 30
    assert labelled(docker_client, os.getpid()) == ([], [])


@pytest.mark.parametrize("kind", ["unix", "tcp"])
def test_engine_gone_mid_scan_is_exit_2_and_the_image_stops_running(tmp_path, docker_client, images, kind):
    """The engine's socket vanishes while the container runs: never a pass (the
    old text match read the unix socket's "No such file" as "already removed").
    The message says to run `smtpgate cleanup`; on the host path the container's
    processes are killed, so the image does not run on."""
    left = []
    try:
        with forwarder(kind, tmp_path) as (host, vanish):
            env = {"DOCKER_HOST": host}
            with _env(env), scan_process(docker_client, images["clean"]) as proc:
                vanish()
                _, stderr = proc.communicate(timeout=90)
            left = labelled(docker_client, proc.pid)[0]
        assert proc.returncode == 2, stderr
        assert "smtpgate cleanup" in stderr and "nothing answers" in stderr, stderr
        assert left and all(docker_client.api.inspect_container(c.id)["State"]["Running"] is False for c in left)
    finally:
        for c in left:
            with contextlib.suppress(Exception):
                docker_client.api.remove_container(c.id, force=True)


@contextlib.contextmanager
def _env(values: dict[str, str]):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_static_says_when_it_had_to_export(tmp_path, docker_client, images, monkeypatch):
    with forwarder("tcp", tmp_path) as (host, _):
        monkeypatch.setenv("DOCKER_HOST", host)
        code, report = _scan(tmp_path, images["postfix-all"], "--static")
    (target,) = report["targets"]
    assert code == 1
    assert any("exported through the engine" in n for n in target["notes"]), target["notes"]
    monkeypatch.delenv("DOCKER_HOST")
    code, report = _scan(tmp_path, images["postfix-all"], "--static")
    assert code == 1 and not any("exported" in n for n in report["targets"][0]["notes"])
    assert labelled(docker_client, os.getpid()) == ([], [])


def test_the_helper_path_settles_early_when_every_thread_is_parked(tmp_path, docker_client, images):
    code, report = _scan(tmp_path, images["postfix-all"], "--method", "helper", "--helper-image", HELPER)
    (target,) = report["targets"]
    assert code == 1 and target["method"] == "helper"
    assert any(n.startswith("settled after") and "every thread waiting" in n for n in target["notes"]), target
    assert labelled(docker_client, os.getpid()) == ([], [])


def test_missing_image_is_object_not_found_by_status():
    with pytest.raises(ObjectNotFound) as caught:
        connect().image("smtpgate-test/absent:never")
    assert caught.value.status == 404


def test_an_exec_that_does_not_end_is_bounded(docker_client, images):
    """The SDK reads exec output with no socket timeout (seen hanging for ever on
    docker 20.10 when the helper's target died mid-probe): Engine.exec ends it."""
    engine = connect()
    cid = engine.create(ContainerSpec(image=engine.image(images["clean"]).id, name=f"smtpgate-exec-{os.getpid()}",
                                      labels={"smtpgate": "exec-test", **owner_labels()}, network_mode="none"))
    try:
        engine.start(cid)
        started = time.monotonic()
        with pytest.raises(EngineError, match="no answer within 1 s"):
            engine.exec(cid, ["sleep", "30"], timeout=1.0)
        assert time.monotonic() - started < 5
        code, out, _ = engine.exec(cid, ["echo", "hi"])
        assert (code, out) == (0, b"hi\n")
    finally:
        engine.remove(cid)
    assert labelled(docker_client, os.getpid()) == ([], [])


def test_the_api_version_is_negotiated_not_pinned(docker_client):
    """Docker 29 refuses clients below 1.44, docker 20.10 anything above 1.41: only negotiation serves both."""
    assert connect().client.api._version == docker_client.version()["ApiVersion"]


def test_sigint_landing_in_the_static_layer_walk_is_exit_2_interrupted(tmp_path, images, monkeypatch):
    """An interrupt right after any close() inside the overlay layer walk (issue
    16 item 11: one between a close and the reassignment made the walk close the
    same descriptor twice, EBADF replaced the interrupt, the scan exited 1 with
    evidence lost): always exit 2 "interrupted"."""
    real_close = os.close
    for nth in range(1, 13):  # the n-th close made by the layer walk
        seen = []

        def close_then_interrupt(fd: int, nth: int = nth, seen: list = seen) -> None:
            real_close(fd)
            if sys._getframe(1).f_code.co_name == "probe":  # inside OverlayFS's layer walk
                seen.append(fd)
                if len(seen) == nth:
                    raise KeyboardInterrupt

        monkeypatch.setattr(overlay.os, "close", close_then_interrupt)
        try:
            code, report = _scan(tmp_path, images["postfix-enabled-idle"], "--static")
        finally:
            monkeypatch.setattr(overlay.os, "close", real_close)
        assert len(seen) >= nth
        assert code == 2, (nth, report["targets"][0])
        assert "interrupted by SIGINT" in report["errors"], (nth, report)


def test_a_running_containers_layers_read_in_place_give_the_same_facts(docker_client, images):
    """The containerd image store names no layers in the image inspect; the running
    container's mount table does. On this engine both exist: they must agree."""
    target = DockerImageTarget(images["postfix-all"])
    with target:
        running = target.running_layers()
        assert target.engine is not None and target.image is not None
        named = target.engine.image_layers(target.image)
        assert running and named and len(running) == len(named) + 1  # the engine's init layer on top
        facts = []
        for layers in (running, named):
            with OverlayFS(layers) as fs:
                facts.append(sorted((f.software.id, f.state.value, tuple(e.text for e in f.evidence))
                                    for f in static_findings(analyse(fs, image_config=image_config(
                                        target.image.attrs)))))
    assert facts[0] == facts[1] and facts[0]
    assert labelled(docker_client, os.getpid()) == ([], [])


VOLUME_WRITER = """FROM smtpgate-fixture/python:latest
VOLUME /data
CMD ["/bin/sh", "-c", "python3 -m http.server 8080 & dd if=/dev/zero of=/data/fill bs=1M count=200 2>/dev/null; wait"]
"""


def test_writes_to_an_image_volume_count_against_the_disk_limit_and_the_volume_goes(tmp_path, docker_client):
    """A VOLUME line gives the container an anonymous volume outside its writable
    layer: it is measured too, and removed with the container (it was left behind)."""
    tag = "smtpgate-test/volume-writer:latest"
    docker_client.images.build(fileobj=io.BytesIO(VOLUME_WRITER.encode()), tag=tag, labels={"smtpgate.test": "1"},
                               rm=True, forcerm=True)
    with scan_process(docker_client, tag, "--disk-limit", "64m", "--json", str(tmp_path / "r.json"), "-q") as proc:
        (container,) = labelled(docker_client, proc.pid)[0]
        mounts = docker_client.api.inspect_container(container.id)["Mounts"]
        proc.communicate(timeout=60)
    (target,) = json.loads((tmp_path / "r.json").read_text())["targets"]
    assert proc.returncode == 2 and any("writable layer and volumes" in e for e in target["errors"]), target
    (volume,) = [m["Name"] for m in mounts if m["Type"] == "volume" and m["Destination"] == "/data"]
    assert volume not in {v.name for v in docker_client.volumes.list()}, "the scan left its anonymous volume behind"
    assert labelled(docker_client, proc.pid) == ([], [])
