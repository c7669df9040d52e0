"""Report paths that are not regular files, as root (issue 16.6): written in
place, never replaced by a regular file; refused where that cannot work;
write errors are ReportError (exit 2). Real device nodes (made with mknod in a
temporary directory, the kernel's own /dev/full driver), FIFOs and symlinks."""

from __future__ import annotations

import os
import stat
import threading
import time

import pytest

from smtpgate.errors import ReportError
from smtpgate.report import get_report, write_report
from tests.unit.data.report import samples

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")


def _render() -> str:
    return get_report("junit").render([samples.clean()], samples.META)


@root_only
def test_full_device_is_enospc_and_stays_a_device(device_dir):
    full = device_dir / "full"
    os.mknod(full, stat.S_IFCHR | 0o666, os.makedev(1, 7))  # what /dev/full is
    with pytest.raises(ReportError, match=r"full: No space left on device$"):
        write_report("junit", [samples.clean()], samples.META, full)
    assert stat.S_ISCHR(os.lstat(full).st_mode)


@root_only
def test_null_device_is_written_and_stays_a_device(device_dir):
    null = device_dir / "null"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    write_report("junit", [samples.clean()], samples.META, null)
    assert stat.S_ISCHR(os.lstat(null).st_mode)


@root_only
def test_block_device_is_refused(tmp_path):
    block = tmp_path / "loop"
    os.mknod(block, stat.S_IFBLK | 0o600, os.makedev(7, 250))
    with pytest.raises(ReportError, match="block device"):
        write_report("junit", [samples.clean()], samples.META, block)
    assert stat.S_ISBLK(os.lstat(block).st_mode)


def test_fifo_without_reader_is_refused_at_once(tmp_path):
    fifo = tmp_path / "r.fifo"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(ReportError, match="a FIFO with no reader"):
        write_report("junit", [samples.clean()], samples.META, fifo)
    assert time.monotonic() - started < 2
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_fifo_with_reader_gets_the_report(tmp_path):
    fifo = tmp_path / "r.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    def read() -> None:
        with open(fifo, "rb") as handle:
            got.append(handle.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        for _ in range(100):  # until the reader has it open
            try:
                write_report("junit", [samples.clean()], samples.META, fifo)
                break
            except ReportError:
                time.sleep(0.02)
    finally:
        reader.join(10)
    assert got == [_render().encode()]


def test_symlink_to_a_file_is_rewritten_in_place(tmp_path):
    real = tmp_path / "real.xml"
    real.write_text("x" * 100_000)
    link = tmp_path / "link.xml"
    link.symlink_to(real)
    write_report("junit", [samples.clean()], samples.META, link)
    assert link.is_symlink() and real.read_text() == _render()


def test_directory_is_refused(tmp_path):
    with pytest.raises(ReportError, match="Is a directory"):
        write_report("junit", [samples.clean()], samples.META, tmp_path)
