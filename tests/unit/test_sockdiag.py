"""NETLINK_SOCK_DIAG replies, captured from fixture containers beside their
/proc/net/tcp{,6} of the same moment (data/sockdiag/capture.py)."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import pytest

from smtpgate.collect import procfs, sockdiag

DATA = Path(__file__).parent / "data" / "sockdiag"


def from_diag(name: str) -> set[tuple]:
    out = set()
    for suffix in ("4", "6"):
        found, done = sockdiag.parse((DATA / f"{name}.{suffix}.bin").read_bytes(), 1)
        assert done
        out |= {(s.address, s.port, s.family, s.inode, s.uid) for s in found}
    return out


def from_proc(name: str) -> set[tuple]:
    v4, _ = procfs.parse_proc_net_tcp((DATA / f"{name}.tcp").read_text(), 4)
    v6, _ = procfs.parse_proc_net_tcp((DATA / f"{name}.tcp6").read_text(), 6)
    return {(s.address, s.port, s.family, s.inode, s.uid) for s in v4 + v6}


@pytest.mark.parametrize("name", ["postfix-all", "postfix-loopback"])
def test_the_same_listeners_as_proc_net_tcp(name):
    assert from_diag(name) == from_proc(name)
    assert from_diag(name)


def test_postfix_loopback_is_loopback_in_both_families():
    assert {(a, p) for a, p, *_ in from_diag("postfix-loopback")} == {("127.0.0.1", 25), ("::1", 25), ("0.0.0.0", 8080)}


def test_a_reply_for_another_request_is_skipped():
    assert sockdiag.parse((DATA / "postfix-all.4.bin").read_bytes(), 2) == ([], False)


def test_an_ipv4_mapped_listener_reads_as_procfs_writes_it():
    raw = bytearray((DATA / "postfix-all.6.bin").read_bytes())
    mapped = bytes(10) + b"\xff\xff" + bytes([127, 0, 0, 1])
    raw[16 + 8: 16 + 24] = mapped  # the first message's source address
    found, _ = sockdiag.parse(bytes(raw), 1)
    assert found[0].address == "::ffff:127.0.0.1"


def test_errors_and_truncation():
    error = struct.pack("=IHHII", 20, sockdiag.NLMSG_ERROR, 0, 1, 0) + struct.pack("=i", -13)
    with pytest.raises(sockdiag.DiagError) as info:
        sockdiag.parse(error, 1)
    assert info.value.errno == 13
    truncated = (DATA / "postfix-all.4.bin").read_bytes()[:50]
    with pytest.raises(sockdiag.DiagError):
        sockdiag.parse(truncated, 1)


def test_request_is_a_listen_dump_of_one_family():
    req = sockdiag.request(socket.AF_INET6, 7)
    length, kind, flags, seq, _ = struct.unpack_from("=IHHII", req)
    family, proto, _, _, states = struct.unpack_from("=BBBBI", req, 16)
    assert (length, kind, seq) == (len(req), 20, 7)
    assert flags & 0x300 == 0x300 and flags & 1
    assert (family, proto, states) == (socket.AF_INET6, socket.IPPROTO_TCP, 1 << 10)
