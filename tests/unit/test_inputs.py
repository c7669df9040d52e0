"""Input files read as root (issue 16.7): a FIFO, a character device and a
directory are refused at once (never a hang, never unbounded memory), a
regular file is capped, "-" reads standard input (bounded too)."""

from __future__ import annotations

import io
import os
import sys
import time

import pytest

from smtpgate.cli import _images_from
from smtpgate.errors import PolicyError, SmtpgateError
from smtpgate.inputs import read_bounded
from smtpgate.policy import load_policy


def test_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(PolicyError, match=r"in\.fifo: cannot read policy file: it is a FIFO \(named pipe\)"):
        load_policy(fifo)
    with pytest.raises(SmtpgateError, match=r"it is a FIFO .* \(use - to read standard input\)"):
        _images_from(str(fifo))
    assert time.monotonic() - started < 2


def test_dev_zero_is_refused_not_read():
    with pytest.raises(SmtpgateError, match=r"/dev/zero: it is a character device, not a regular file"):
        _images_from("/dev/zero")
    with pytest.raises(PolicyError, match="character device"):
        load_policy("/dev/zero")


def test_size_caps(tmp_path):
    big = tmp_path / "images.txt"
    big.write_bytes(b"smtpgate-fixture/clean\n" * ((4 << 20) // 23 + 1))
    with pytest.raises(SmtpgateError, match=r"larger than 4 MiB"):
        _images_from(str(big))
    assert read_bounded(str(big), 5 << 20, "x", "y", SmtpgateError).startswith(b"smtpgate-fixture/clean\n")


def test_images_from_file_and_stdin(tmp_path, monkeypatch):
    listed = tmp_path / "images.txt"
    listed.write_text("# comment\n a:1 \n\nb:2\r\n")
    assert _images_from(str(listed)) == ["a:1", "b:2"]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"c:3\nd:4\n")))
    assert _images_from("-") == ["c:3", "d:4"]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"x" * ((4 << 20) + 1))))
    with pytest.raises(SmtpgateError, match="larger than 4 MiB"):
        _images_from("-")


def test_not_utf8_is_a_clear_error(tmp_path):
    listed = tmp_path / "images.txt"
    listed.write_bytes(b"a:1\n\xff\n")
    with pytest.raises(SmtpgateError, match=r"images\.txt:2: not UTF-8 text"):
        _images_from(str(listed))


@pytest.mark.parametrize("reader", ["k8s", "compose", "env-file"])
def test_workload_inputs_refuse_fifos_and_devices(tmp_path, reader):
    from smtpgate.errors import WorkloadError
    from smtpgate.workload.compose import ComposeOptions, load_compose
    from smtpgate.workload.k8s import load_k8s
    from smtpgate.workload.spec import read_env_file

    read = {"k8s": load_k8s, "compose": lambda p: load_compose(p, ComposeOptions(), {}),
            "env-file": lambda p: read_env_file(p, {})}[reader]
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    started = time.monotonic()
    for path in (str(fifo), "/dev/zero"):
        with pytest.raises(WorkloadError, match="not a regular file"):
            read(path)
    assert time.monotonic() - started < 2
