"""Root filesystems: confinement to the root, bounded reads, tar streams and layers."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtpgate.static import DirFS, FsLimits, StaticError, TarFS, analyse, static_findings

ROOTS = Path(__file__).parent / "data" / "static" / "roots"


@pytest.fixture
def escape_root(tmp_path):
    """A root whose links point at a host file outside it, absolutely and with ../"""
    host = tmp_path / "host-secret"
    host.mkdir()
    (host / "main.cf").write_text("inet_interfaces = HOST-SECRET\n")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "postfix").symlink_to(host)  # absolute, outside
    (root / "etc" / "mail").symlink_to("../../../../../../" + str(host).lstrip("/"))
    (root / "etc" / "loop-a").symlink_to("loop-b")
    (root / "etc" / "loop-b").symlink_to("loop-a")
    (root / "etc" / "self").symlink_to("/")
    (root / "srv").mkdir()
    (root / "srv" / "in-root.txt").write_text("inside\n")
    (root / "etc" / "rel").symlink_to("../srv/in-root.txt")
    (root / "etc" / "abs").symlink_to("/srv/in-root.txt")
    return root, host


def test_links_never_leave_the_root(escape_root):
    root, host = escape_root
    with DirFS(root) as fs:
        assert fs.read("/etc/postfix/main.cf") is None  # /etc/postfix -> <host path>, re-rooted: missing
        assert fs.read("/etc/mail/main.cf") is None  # ../ climbs stop at the root
        assert fs.resolve("/etc/mail") is None  # <root>/<host path> does not exist in the root
        assert fs.read("/etc/rel") == b"inside\n" and fs.read("/etc/abs") == b"inside\n"
        assert fs.read("/etc/self/etc/self/srv/in-root.txt") == b"inside\n"
        assert fs.read("/../../../../etc/rel") == b"inside\n"
        assert fs.read("/etc/loop-a") is None
        assert any("too many levels" in p for p in fs.problems)


def test_a_link_swapped_in_as_a_directory_is_not_followed(tmp_path):
    """openat(O_NOFOLLOW) per component: even a resolved path is never handed to the host."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f").write_text("host")
    root = tmp_path / "root"
    root.mkdir()
    (root / "d").symlink_to(outside)
    fs = DirFS(root)
    assert fs._read("/d/f", 100) is None  # the primitive refuses the link
    fs.close()


def test_reads_are_bounded(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    with open(root / "etc" / "huge.cf", "wb") as fh:
        fh.truncate(1 << 30)  # sparse 1 GiB
    (root / "etc" / "small.cf").write_text("x = 1\n")
    os.mkfifo(root / "etc" / "fifo.cf")
    with DirFS(root, FsLimits(file_bytes=1 << 20, total_bytes=1 << 22)) as fs:
        assert fs.read("/etc/huge.cf") is None
        assert any("over the" in p for p in fs.problems)
        assert fs.read("/etc/small.cf") == b"x = 1\n"
        assert fs.read("/etc/fifo.cf") is None  # never opened for reading: no hang


def test_missing_root_is_a_static_error(tmp_path):
    with pytest.raises(StaticError, match="cannot open root filesystem"):
        DirFS(tmp_path / "nope")


def _tar(entries: list[tuple[str, str, bytes | str]]) -> bytes:
    """(name, kind, data/target) -> an uncompressed tar."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, kind, data in entries:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, str(data)
                tar.addfile(info)
            elif kind == "hard":
                info.type, info.linkname = tarfile.LNKTYPE, str(data)
                tar.addfile(info)
            else:
                raw = data if isinstance(data, bytes) else str(data).encode()
                info.size, info.mode = len(raw), 0o755 if kind == "exe" else 0o644
                tar.addfile(info, io.BytesIO(raw))
    return buf.getvalue()


def test_tar_links_are_confined_and_hardlinks_share_content():
    data = _tar([
        ("etc/postfix", "sym", "/host/secret"), ("etc/mail", "sym", "../../../../host"),
        ("etc/real.cf", "file", "a = 1\n"), ("etc/hard.cf", "hard", "etc/real.cf"),
        ("../evil", "file", "x"), ("etc/../../evil2", "file", "y"),
    ])
    fs = TarFS.from_stream(io.BytesIO(data))
    assert fs.read("/etc/postfix/main.cf") is None and fs.read("/etc/mail/x") is None
    assert fs.read("/etc/hard.cf") == b"a = 1\n"
    assert not fs.lexists("/evil") and any("escapes the root" in p for p in fs.problems)


def test_tar_whiteouts_and_opaque_directories_across_layers():
    fs = TarFS()
    fs.add_layer(io.BytesIO(_tar([("etc/postfix/main.cf", "file", "old"), ("etc/postfix/master.cf", "file", "m"),
                                  ("etc/exim4/x.conf", "file", "e")])))
    fs.add_layer(io.BytesIO(_tar([("etc/postfix/.wh.master.cf", "file", ""), ("etc/exim4/.wh..wh..opq", "file", ""),
                                  ("etc/exim4/y.conf", "file", "new"), ("etc/postfix/main.cf", "file", "new")])))
    assert fs.read("/etc/postfix/main.cf") == b"new"
    assert not fs.exists("/etc/postfix/master.cf")
    assert fs.listdir("/etc/exim4") == ["y.conf"]


def test_tar_bomb_of_entries_stops_at_the_limit():
    data = _tar([(f"etc/f{i}", "file", "") for i in range(500)])
    fs = TarFS.from_stream(io.BytesIO(data), FsLimits(entries=100))
    assert not fs.complete and any("incomplete" in p for p in fs.problems)


def test_a_large_member_is_streamed_past_not_kept():
    big = b"\0" * (3 << 20)
    fs = TarFS.from_stream(iter([_tar([("etc/big.cf", "file", big), ("etc/ok.cf", "file", "ok")])]),
                           FsLimits(file_bytes=1 << 20))
    assert fs.read("/etc/big.cf") is None and fs.read("/etc/ok.cf") == b"ok"
    assert fs.isfile("/etc/big.cf") and fs.stat("/etc/big.cf").size == 3 << 20


def test_not_a_tar_is_a_static_error():
    with pytest.raises(StaticError, match="not a readable tar"):
        TarFS.from_stream(io.BytesIO(b"\x01" * 4096))


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=4096))
def test_random_bytes_never_crash_the_tar_reader(data):
    try:
        TarFS.from_stream(io.BytesIO(data))
    except StaticError:
        pass


def _tar_of_dir(root: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(root, arcname=".")
    return buf.getvalue()


@pytest.mark.parametrize("name", sorted(p.name for p in ROOTS.iterdir()))
def test_tarfs_and_dirfs_agree(name, tmp_path):
    """The same captured root as a directory and as a gzip tarball gives the same facts."""
    path = tmp_path / "root.tar.gz"
    path.write_bytes(_tar_of_dir(ROOTS / name))
    with DirFS(ROOTS / name) as dfs, TarFS.open(path) as tfs:
        a, b = analyse(dfs, boots_init=True), analyse(tfs, boots_init=True)
    assert static_findings(a) == static_findings(b)
    assert a.listens == b.listens
