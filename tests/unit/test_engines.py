"""The engine seam without an engine: errors by status code, never by text;
layer directories from captured mount tables; limits refused at the command
line; an interrupt in the middle of an overlay lookup."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import docker.errors
import pytest
import requests
import urllib3

from smtpgate.cli import parser
from smtpgate.engines import base, mountinfo
from smtpgate.engines.docker import translate
from smtpgate.errors import Conflict, EngineError, EngineGone, ObjectNotFound
from smtpgate.static import overlay
from smtpgate.static.overlay import OverlayFS

DATA = Path(__file__).parent / "data" / "mountinfo"


def api_error(status: int, text: str) -> docker.errors.APIError:
    """The SDK's own error for an engine answer (as docker.errors.create_api_error_from_http_exception makes it)."""
    response = requests.Response()
    response.status_code = status
    response._content = text.encode()
    return docker.errors.APIError(f"{status} Server Error", response=response, explanation=text)


@pytest.mark.parametrize(("status", "kind"), [(404, ObjectNotFound), (409, Conflict), (500, EngineError),
                                              (403, EngineError)])
def test_engine_answers_are_told_apart_by_status(status, kind):
    err = translate("could not remove container x", api_error(status, "No such container: x"))
    assert type(err) is kind and err.status == status
    assert "No such container: x" in str(err)


def test_no_such_in_an_engine_500_is_not_not_found():
    """Engine error text repeats image metadata (a WORKDIR, a name): "No such" in it means nothing."""
    err = translate("start", api_error(500, "OCI runtime: chdir to `/No such container 404`: no such file"))
    assert not isinstance(err, ObjectNotFound) and err.status == 500


def test_a_vanished_unix_socket_is_engine_gone():
    """What the SDK raises when the socket file is gone: FileNotFoundError inside
    urllib3's ProtocolError inside requests' ConnectionError."""
    inner = FileNotFoundError(2, "No such file or directory")
    wrapped = requests.exceptions.ConnectionError(urllib3.exceptions.ProtocolError("Connection aborted.", inner))
    err = translate("could not remove container x", wrapped)
    assert isinstance(err, EngineGone) and err.status is None
    assert "nothing answers" in str(err)


def test_a_real_refused_connection_is_engine_gone():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    try:
        requests.get(f"http://127.0.0.1:{port}/version", timeout=2)
    except requests.exceptions.RequestException as exc:
        err = translate("ping", exc)
    assert isinstance(err, EngineGone) and "ConnectionRefusedError" in str(err)


def test_permission_denied_says_what_to_do():
    wrapped = requests.exceptions.ConnectionError(PermissionError(13, "Permission denied"))
    err = translate("ping", wrapped)
    assert type(err) is EngineError and "docker' group" in str(err)


def test_root_lowerdirs_of_a_docker_overlay2_container():
    text = (DATA / "docker-overlay2.mountinfo").read_text()
    layers = mountinfo.parse_root_lowerdirs(text)
    image = (DATA / "docker-overlay2.graphdriver-layers").read_text().split()
    assert layers is not None and len(layers) == len(image) + 1  # the engine's init layer on top
    assert all(p.startswith("/var/lib/docker/overlay2/l/") for p in layers)


def test_mountinfo_escapes_and_data_only_layers():
    line = ("99 1 0:40 / / rw - overlay overlay rw,lowerdir=/s/a\\054b:/s/c\\:d::/s/data,"
            "upperdir=/s/u,workdir=/s/w\n")
    assert mountinfo.parse_root_lowerdirs(line) == ["/s/a,b", "/s/c:d"]


def test_mountinfo_relative_or_other_roots_give_none():
    assert mountinfo.parse_root_lowerdirs("9 1 0:4 / / rw - overlay overlay rw,lowerdir=1/fs:2/fs\n") is None
    assert mountinfo.parse_root_lowerdirs("9 1 8:1 / / rw - ext4 /dev/sda1 rw\n") is None
    assert mountinfo.parse_root_lowerdirs("") is None
    stacked = "9 1 0:4 / / rw - overlay overlay rw,lowerdir=/a:/b\n10 9 8:1 / / rw - ext4 /dev/sda1 rw\n"
    assert mountinfo.parse_root_lowerdirs(stacked) is None  # the later mount on / is the one in use


def test_overlay_graphdriver_names(tmp_path):
    upper, lower = tmp_path / "u", tmp_path / "l"
    upper.mkdir()
    lower.mkdir()
    data = {"UpperDir": str(upper), "LowerDir": str(lower)}
    for name in ("overlay2", "overlay"):  # Docker's, Podman's
        assert base.overlay_dirs({"Name": name, "Data": data}) == [str(upper), str(lower)]
    assert base.overlay_dirs({"Name": "overlayfs", "Data": None}) is None  # the containerd image store


@pytest.mark.parametrize("args", [["--memory", "0"], ["--pids", "0"], ["--pids", "-5"], ["--cpus", "0"],
                                  ["--disk-limit", "0"], ["--memory", "-1g"], ["--cpus", "nan"]])
def test_limits_without_a_bound_are_refused(args):
    with pytest.raises(SystemExit) as caught:
        parser().parse_args(["scan", "img", *args])
    assert caught.value.code == 2


def test_sizes_read_like_docker_writes_them():
    args = parser().parse_args(["scan", "img", "--memory", "512m", "--disk-limit", "1.5g"])
    assert args.memory == 512 << 20 and args.disk_limit == 3 << 29 and args.cpus == 1.0


def test_an_interrupt_right_after_a_close_in_an_overlay_lookup_stays_an_interrupt(tmp_path, monkeypatch):
    """SIGINT landing just after close(fd) inside the layer walk: the descriptor
    must not be closed again (EBADF would replace the interrupt, and a --static
    scan then lost its systemd evidence and exited 1)."""
    (tmp_path / "layer" / "etc" / "systemd" / "system").mkdir(parents=True)
    fs = OverlayFS([str(tmp_path / "layer")])
    real_close, closed = os.close, []

    def close_then_interrupt(fd: int) -> None:
        real_close(fd)
        closed.append(fd)
        if len(closed) == 1:
            raise KeyboardInterrupt  # the signal handler runs at the next bytecode

    monkeypatch.setattr(overlay.os, "close", close_then_interrupt)
    try:
        with pytest.raises(KeyboardInterrupt):
            fs.isdir("/etc/systemd/system")
    finally:
        monkeypatch.setattr(overlay.os, "close", real_close)
        fs.close()
    assert len(closed) == len(set(closed)), f"a descriptor was closed twice: {closed}"


def test_root_lowerdirs_of_a_containerd_store_container():
    """Docker 28.5 with the containerd image store: the image inspect names no
    layers, the running container's mount table does (snapshot directories)."""
    text = (DATA / "docker-containerd.mountinfo").read_text()
    assert (DATA / "docker-containerd.graphdriver-layers").read_text().split() == []
    layers = mountinfo.parse_root_lowerdirs(text)
    assert layers is not None and len(layers) >= 2
    assert all("/io.containerd.snapshotter.v1.overlayfs/snapshots/" in p and p.endswith("/fs") for p in layers)
