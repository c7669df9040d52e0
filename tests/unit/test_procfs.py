"""/proc/net/tcp{,6} parsing and address normalisation, on captured real data."""

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smtpgate.collect import procfs
from smtpgate.collect.observe import build_snapshot, dial_address
from smtpgate.model import BindScope, Listener, bind_scope

DATA = Path(__file__).parent / "data" / "proc"


def parse(name: str, family: int):
    return procfs.parse_proc_net_tcp((DATA / name).read_text(), family)


def test_postfix_all_listens_on_all_interfaces_both_families():
    v4, bad4 = parse("postfix-all.tcp", 4)
    v6, bad6 = parse("postfix-all.tcp6", 6)
    assert (bad4, bad6) == (0, 0)
    assert {(s.address, s.port) for s in v4} == {("0.0.0.0", 25), ("0.0.0.0", 587)}
    assert {(s.address, s.port) for s in v6} == {("::", 25), ("::", 587)}
    assert all(s.inode > 0 for s in v4 + v6)


def test_postfix_loopback_and_a_web_server():
    v4, _ = parse("postfix-loopback.tcp", 4)
    v6, _ = parse("postfix-loopback.tcp6", 6)
    assert {(s.address, s.port) for s in v4} == {("127.0.0.1", 25), ("0.0.0.0", 8080)}
    assert v6 == []


def test_ipv6_forms_and_established_connections_are_skipped():
    v6, bad = parse("mixed.tcp6", 6)
    assert bad == 0
    assert {(s.address, s.port) for s in v6} == {("::ffff:127.0.0.1", 8092), ("::", 25), ("::1", 8091)}
    v4, _ = parse("mixed.tcp", 4)
    assert [(s.address, s.port) for s in v4] == [("127.0.0.53", 53)]


@pytest.mark.parametrize(
    ("address", "scope"),
    [
        ("0.0.0.0", BindScope.ALL),
        ("::", BindScope.ALL),
        ("127.0.0.1", BindScope.LOOPBACK),
        ("127.0.0.53", BindScope.LOOPBACK),
        ("::1", BindScope.LOOPBACK),
        ("::ffff:127.0.0.1", BindScope.LOOPBACK),
        ("::ffff:0.0.0.0", BindScope.ALL),
        ("172.18.0.2", BindScope.SPECIFIC),
        ("fe80::1", BindScope.SPECIFIC),
        ("::ffff:10.0.0.1", BindScope.SPECIFIC),
    ],
)
def test_bind_scope(address, scope):
    assert bind_scope(address) is scope


@pytest.mark.parametrize(
    ("address", "dialled"),
    [("0.0.0.0", "127.0.0.1"), ("::", "::1"), ("::ffff:127.0.0.1", "127.0.0.1"), ("172.18.0.2", "172.18.0.2")],
)
def test_dial_address(address, dialled):
    assert dial_address(Listener(address, 25, 6 if ":" in address else 4)) == dialled


def test_malformed_lines_are_counted_not_fatal():
    text = (DATA / "postfix-all.tcp").read_text()
    broken = text + "   9: ZZZZ:0019 00000000:0000 0A 0 0 0 0 0 1 1\n   10: short line\n"
    sockets, bad = procfs.parse_proc_net_tcp(broken, 4)
    assert len(sockets) == 2
    assert bad == 2


def test_socket_owner_is_the_lowest_pid_sharing_it():
    v4, _ = parse("postfix-all.tcp", 4)
    inode = v4[0].inode
    master = procfs.RawProcess(1, 900, "master", ("/usr/lib/postfix/sbin/master", "-i"), None, 0, 0, (inode,))
    child = procfs.RawProcess(7, 907, "smtpd", ("smtpd", "-n", "smtp"), None, 100, 1, (inode,))
    snap = build_snapshot(v4, [child, master])
    owner = next(li for li in snap.listeners if li.inode == inode).process
    assert owner is not None and owner.name == "master"
    assert snap.owners_readable


def test_unreadable_fds_are_reported():
    v4, _ = parse("postfix-all.tcp", 4)
    hidden = procfs.RawProcess(1, 900, "master", (), None, 0, 0, None)
    snap = build_snapshot(v4, [hidden])
    assert not snap.owners_readable
    assert all(li.process is None for li in snap.listeners)


def test_reads_a_live_proc_tree_of_this_process():
    """The real /proc of this very test process: its own listener shows up."""
    import os
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        sockets, problems = procfs.read_listening(f"/proc/{os.getpid()}")
        mine = procfs.read_process("/proc", os.getpid())
    assert ("127.0.0.1", port) in {(x.address, x.port) for x in sockets}
    assert mine is not None and mine.cpu_ticks >= 0
    assert problems == [] or all("malformed" not in p for p in problems)


@given(st.text())
def test_parser_never_raises_on_arbitrary_text(text):
    for family in (4, 6):
        sockets, bad = procfs.parse_proc_net_tcp(text, family)
        assert bad >= 0 and all(0 <= s.port <= 0xFFFF for s in sockets)
