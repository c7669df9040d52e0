"""Listing caps per directory and the time budget: each cut is reported where it
bites, reaches the merged view, and makes the static evidence incomplete
(issue 16 item 2: a million empty files in a *.wants must not flood the scan)."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import time

import pytest

from smtpgate.static import DirFS, FsLimits, TarFS, analyse
from smtpgate.static.overlay import OverlayFS

WANTS = "/etc/systemd/system/multi-user.target.wants"
SMALL = FsLimits(dir_entries=20)


def _flood(root, n: int, *, unit: str | None = None) -> None:
    wants = root / WANTS.lstrip("/")
    wants.mkdir(parents=True)
    for i in range(n):
        (wants / f"flood-{i:05d}.service").touch()
    if unit:
        (wants / unit).touch()


def test_a_flooded_directory_is_listed_up_to_the_cap_and_the_cut_is_reported(tmp_path):
    _flood(tmp_path, 50)
    with DirFS(tmp_path, SMALL) as fs:
        names = fs.listdir(WANTS)
        assert len(names) == 20
        assert fs.complete is False
        assert fs.cuts == [f"{WANTS}: more than 20 entries, only 20 listed; the file listing is incomplete"]
        assert fs.cuts[0] in fs.problems
        facts = analyse(fs)
    assert facts.complete is False and facts.cuts == tuple(fs.cuts)


def test_a_directory_at_the_cap_is_complete(tmp_path):
    _flood(tmp_path, 20)
    with DirFS(tmp_path, SMALL) as fs:
        assert len(fs.listdir(WANTS)) == 20
        assert fs.complete is True and fs.cuts == []


def test_the_cap_is_per_directory_not_per_filesystem(tmp_path):
    for d in ("etc/a", "etc/b", "etc/c"):
        (tmp_path / d).mkdir(parents=True)
        for i in range(15):
            (tmp_path / d / f"f{i}").touch()
    with DirFS(tmp_path, SMALL) as fs:
        assert [len(fs.listdir(f"/etc/{d}")) for d in "abc"] == [15, 15, 15]
        assert fs.complete is True


def test_a_backend_reads_at_most_one_name_past_the_cap(tmp_path):
    """DirFS stops its scandir at cap + 1 names (enough for listdir to see the cut), so
    a million-entry directory costs no more than one just over the cap."""
    _flood(tmp_path, 3000)
    with DirFS(tmp_path, FsLimits(dir_entries=10)) as fs:
        assert len(fs._children(WANTS)) == 11


def _whiteout(path) -> None:
    os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(0, 0))


@pytest.mark.skipif(os.geteuid() != 0, reason="whiteouts are character devices: mknod needs root")
def test_the_cap_reaches_the_merged_overlay_view_even_behind_whiteouts(tmp_path):
    """An upper layer of whiteouts over a flooded lower layer: the merged listing may look short,
    but a layer was cut, and the merged view says so."""
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    _flood(lower, 40)
    wants = upper / WANTS.lstrip("/")
    wants.mkdir(parents=True)
    for i in range(30):
        _whiteout(wants / f"gone-{i:03d}")
    with OverlayFS([str(upper), str(lower)], SMALL) as fs:
        names = fs.listdir(WANTS)
        assert len(names) <= 20
        assert fs.complete is False
        assert any(WANTS in c and "more than 20 entries" in c for c in fs.cuts), fs.cuts
        assert analyse(fs).complete is False


def test_a_layer_problem_reaches_the_merged_view(tmp_path):
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "etc" / "postfix").mkdir(parents=True)
    (lower / "etc" / "postfix" / "main.cf").write_text("inet_interfaces = all\n")
    upper.mkdir()
    with OverlayFS([str(upper), str(lower)], FsLimits(file_bytes=4, total_bytes=1 << 20)) as fs:
        assert fs.read("/etc/postfix/main.cf") is None
        assert any("main.cf" in p for p in fs.problems), fs.problems


def _tar(names: list[str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in names:
            tar.addfile(tarfile.TarInfo(name), io.BytesIO(b""))
    return buf.getvalue()


def test_tarfs_caps_names_per_directory_while_indexing():
    names = [f"etc/systemd/system/multi-user.target.wants/flood-{i:03d}.service" for i in range(60)]
    names += ["etc/postfix/main.cf", "etc/systemd/system/multi-user.target.wants/deep/er/x.service"]
    fs = TarFS.from_stream(io.BytesIO(_tar(names)), SMALL, name="t")
    assert len(fs.listdir(WANTS)) == 20
    assert not fs.lexists(f"{WANTS}/deep"), "a new subdirectory of a full directory is not indexed either"
    assert fs.isfile("/etc/postfix/main.cf"), "other directories are still indexed"
    assert fs.complete is False
    assert fs.cuts == [f"t: {WANTS}: more than 20 entries, only 20 indexed; the file listing is incomplete"]


def test_tarfs_counts_names_again_after_a_whiteout_deletes_them():
    first = [f"d/f{i}" for i in range(20)]
    fs = TarFS.from_stream(io.BytesIO(_tar(first)), SMALL)
    fs.add_layer(io.BytesIO(_tar([f"d/.wh.f{i}" for i in range(10)] + [f"d/g{i}" for i in range(10)])))
    assert len(fs.listdir("/d")) == 20 and fs.complete is True


def test_the_time_budget_stops_all_reading_and_is_reported(tmp_path):
    _flood(tmp_path, 3)
    (tmp_path / "etc" / "postfix").mkdir()
    (tmp_path / "etc" / "postfix" / "main.cf").write_text("x\n")
    with DirFS(tmp_path, FsLimits(seconds=0.0)) as fs:
        time.sleep(0.01)
        assert fs.listdir(WANTS) == []
        assert fs.read("/etc/postfix/main.cf") is None
        assert fs.complete is False
        assert len(fs.cuts) == 1 and "time budget" in fs.cuts[0]
        assert analyse(fs).complete is False
