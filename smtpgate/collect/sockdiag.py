"""Listening TCP sockets of a network namespace through NETLINK_SOCK_DIAG.

Reading /proc/<pid>/net/tcp{,6} makes the kernel walk the whole established
hash of the host (sized by its memory, shared by every namespace), about 4 ms
a file on a 24 GiB machine, more on a busy runner; and settling reads it ten
times a second per scan. An inet_diag dump asking for LISTEN only walks the
listening hash of the namespace the netlink socket was created in: well under
a millisecond. The netlink socket is made once per scan inside the target's
namespace (smtpgate.collect.netns) and reused. Same results as procfs.parse_proc_net_tcp
(tests/integration/test_settle.py compares them on a live container).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct

from smtpgate.collect.procfs import RawSocket

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
TCP_LISTEN = 10
_HEADER = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
_MSG = struct.Struct("=BBBB2s2s16s16sI8sIIIII")  # inet_diag_msg
MAX_REPLY = 16 << 20  # bytes read per dump at most: a namespace with very many listeners is cut off, and says so


class DiagError(OSError):
    pass


def request(family: int, seq: int) -> bytes:
    """An inet_diag_req_v2 dump of TCP sockets in state LISTEN of one family."""
    body = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, 1 << TCP_LISTEN) + bytes(48)
    return _HEADER.pack(_HEADER.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body


def parse(data: bytes, seq: int) -> tuple[list[RawSocket], bool]:
    """The sockets in a chunk of a dump's reply, and whether the dump is done."""
    found: list[RawSocket] = []
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, kind, _flags, got_seq, _pid = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size or offset + length > len(data):
            raise DiagError(f"sock_diag: malformed reply ({length} bytes at {offset})")
        body = data[offset + _HEADER.size: offset + length]
        offset += (length + 3) & ~3
        if got_seq != seq:
            continue
        if kind == NLMSG_DONE:
            return found, True
        if kind == NLMSG_ERROR:
            errno = -struct.unpack_from("=i", body)[0] if len(body) >= 4 else -1
            if errno == 0:
                continue  # an acknowledgement
            raise DiagError(errno, f"sock_diag: {os.strerror(errno) if errno > 0 else 'malformed error'}")
        if kind != SOCK_DIAG_BY_FAMILY or len(body) < _MSG.size:
            continue
        family, state, _t, _r, sport, _dport, src, _dst, _if, _cookie, _exp, _rq, _wq, uid, inode = \
            _MSG.unpack_from(body)
        if state != TCP_LISTEN:
            continue
        if family == socket.AF_INET:
            address, fam = socket.inet_ntop(socket.AF_INET, src[:4]), 4
        elif family == socket.AF_INET6:
            ip = ipaddress.IPv6Address(src)
            address, fam = (f"::ffff:{ip.ipv4_mapped}" if ip.ipv4_mapped is not None else str(ip)), 6
        else:
            continue
        found.append(RawSocket(address, int.from_bytes(sport, "big"), fam, inode, uid))
    return found, False


class SockDiag:
    """LISTEN sockets of the namespace ``sock`` (a NETLINK_SOCK_DIAG socket) was made in."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.sock.settimeout(2.0)
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def listening(self) -> tuple[list[RawSocket], list[str]]:
        sockets: list[RawSocket] = []
        problems: list[str] = []
        for family in (socket.AF_INET, socket.AF_INET6):
            self.seq += 1
            self.sock.send(request(family, self.seq))
            total, done = 0, False
            while not done:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise DiagError("sock_diag: the socket closed")
                total += len(chunk)
                found, done = parse(chunk, self.seq)
                sockets.extend(found)
                if total > MAX_REPLY and not done:
                    problems.append(f"sock_diag: more than {MAX_REPLY >> 20} MiB of listening sockets; cut off")
                    self._drain()
                    break
        return sockets, problems

    def _drain(self) -> None:
        """Read what is left of a dump that was cut off, so the next starts clean."""
        try:
            while True:
                _, done = parse(self.sock.recv(65536), self.seq)
                if done:
                    return
        except (OSError, DiagError):
            return
