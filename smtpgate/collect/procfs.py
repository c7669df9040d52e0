"""Read listening sockets and their owning processes from a /proc tree.

Works from the host side on a container's processes (``/proc/<pid>/net/tcp``
shows the sockets of that process's network namespace), from a helper that
shares the target's namespaces, and inside a VM or host. Pure stdlib: the same
file runs as the in-target agent.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass

TCP_LISTEN = "0A"


@dataclass(frozen=True)
class RawSocket:
    """A LISTEN socket as /proc/net/tcp{,6} states it."""

    address: str
    port: int
    family: int
    inode: int
    uid: int


def _ipv4(hexaddr: str) -> str:
    raw = bytes.fromhex(hexaddr)
    if len(raw) != 4:
        raise ValueError(f"IPv4 address of {len(raw)} bytes")
    if sys.byteorder == "little":
        raw = raw[::-1]
    return ".".join(str(b) for b in raw)


def _ipv6(hexaddr: str) -> str:
    import ipaddress

    raw = bytes.fromhex(hexaddr)
    if len(raw) != 16:
        raise ValueError(f"IPv6 address of {len(raw)} bytes")
    if sys.byteorder == "little":  # four 32-bit words, each in host order
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    ip = ipaddress.IPv6Address(raw)
    return f"::ffff:{ip.ipv4_mapped}" if ip.ipv4_mapped is not None else str(ip)


def parse_proc_net_tcp(text: str, family: int) -> tuple[list[RawSocket], int]:
    """Parse /proc/net/tcp (family 4) or tcp6 (6): the LISTEN sockets and the
    number of malformed lines skipped."""
    decode = _ipv4 if family == 4 else _ipv6
    sockets: list[RawSocket] = []
    bad = 0
    for line in text.splitlines()[1:]:
        fields = line.split()
        if not fields:
            continue
        try:
            if len(fields) < 10 or fields[3].upper() != TCP_LISTEN:
                bad += len(fields) < 10
                continue
            host, _, port_hex = fields[1].partition(":")
            port = int(port_hex, 16)
            if not 0 <= port <= 0xFFFF:
                raise ValueError(f"port {port}")
            sockets.append(RawSocket(decode(host), port, family, int(fields[9]), int(fields[7])))
        except ValueError:
            bad += 1
    return sockets, bad


def read_listening(proc_pid_dir: str) -> tuple[list[RawSocket], list[str]]:
    """LISTEN sockets of the network namespace of the process at
    ``proc_pid_dir`` (e.g. ``/proc/1234`` or ``/proc/self``), and problems met."""
    sockets: list[RawSocket] = []
    problems: list[str] = []
    for family, name in ((4, "tcp"), (6, "tcp6")):
        path = os.path.join(proc_pid_dir, "net", name)
        try:
            with open(path, encoding="ascii", errors="replace") as fh:
                found, bad = parse_proc_net_tcp(fh.read(), family)
        except FileNotFoundError:
            if family == 4:
                problems.append(f"{path} does not exist")
            continue  # no IPv6 in this namespace is normal
        except OSError as exc:
            problems.append(f"cannot read {path}: {exc.strerror or exc}")
            continue
        if bad:
            problems.append(f"{path}: {bad} malformed line(s) skipped")
        sockets.extend(found)
    return sockets, problems


@dataclass(frozen=True)
class RawProcess:
    """A process as /proc states it; pid is the one in the target's namespace
    when /proc/<pid>/status has NSpid, else the pid seen here."""

    pid: int
    host_pid: int
    name: str
    cmdline: tuple[str, ...]
    exe: str | None
    uid: int | None
    ppid: int | None
    socket_inodes: tuple[int, ...] | None  # None: fds not readable
    cpu_ticks: int = 0  # utime + stime (+ reaped children's), in clock ticks
    state: str = "?"  # R running/runnable, S sleeping, D, Z, ...


_SOCKET_LINK = re.compile(r"^socket:\[(\d+)\]$")


def _read(path: str, limit: int = 65536) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read(limit)
    except OSError:
        return None


def _status_fields(raw: bytes | None) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in (raw or b"").decode("utf-8", "replace").split("\n"):  # not splitlines(): comm may hold \x1c
        key, sep, value = line.partition(":")
        if sep:
            fields[key] = value.strip()
    return fields


def _socket_inodes(fd_dir: str) -> tuple[int, ...] | None:
    """Socket inodes among a process's fds; None when permission is lacking
    (a process that vanished meanwhile simply holds nothing)."""
    try:
        names = os.listdir(fd_dir)
    except (FileNotFoundError, ProcessLookupError):
        return ()
    except OSError:
        return None
    inodes = []
    for name in names:
        try:
            match = _SOCKET_LINK.match(os.readlink(os.path.join(fd_dir, name)))
        except OSError:
            continue
        if match:
            inodes.append(int(match.group(1)))
    return tuple(inodes)


def _first_int(text: str | None) -> int | None:
    try:
        return int((text or "").split()[0])
    except (IndexError, ValueError):
        return None


def read_process(proc_root: str, host_pid: int) -> RawProcess | None:
    """One process's facts, or None when it vanished meanwhile."""
    base = os.path.join(proc_root, str(host_pid))
    status = _status_fields(_read(os.path.join(base, "status")))
    if not status:
        return None
    cmd = _read(os.path.join(base, "cmdline")) or b""
    cmdline = tuple(a.decode("utf-8", "replace") for a in cmd.rstrip(b"\0").split(b"\0") if a)
    nspid = (status.get("NSpid") or "").split()
    stat = _read(os.path.join(base, "stat"))
    try:
        exe: str | None = os.readlink(os.path.join(base, "exe"))
    except OSError:
        exe = None
    return RawProcess(
        pid=int(nspid[-1]) if nspid and nspid[-1].isdigit() else host_pid,
        host_pid=host_pid,
        name=status.get("Name", "?"),
        cmdline=cmdline,
        exe=exe,
        uid=_first_int(status.get("Uid")),
        ppid=_first_int(status.get("PPid")),
        socket_inodes=_socket_inodes(os.path.join(base, "fd")),
        cpu_ticks=_cpu_ticks(stat),
        state=_state(stat),
    )


def _state(stat: bytes | None) -> str:
    fields = (stat or b"").rpartition(b")")[2].split()
    return fields[0].decode("ascii", "replace") if fields else "?"


def _cpu_ticks(stat: bytes | None) -> int:
    """utime + stime + cutime + cstime from /proc/<pid>/stat (fields 14-17):
    the children's share keeps the CPU of exited start-up scripts counted once
    their parent (often PID 1) has reaped them."""
    fields = (stat or b"").rpartition(b")")[2].split()
    try:
        return sum(int(f) for f in fields[11:15])
    except ValueError:
        return 0


def _ns_id(proc_root: str, pid: int | str, kind: str) -> str | None:
    try:
        return os.readlink(os.path.join(proc_root, str(pid), "ns", kind))
    except OSError:
        return None


def _pids(proc_root: str) -> list[int]:
    try:
        return sorted(int(n) for n in os.listdir(proc_root) if n.isdigit())
    except OSError:
        return []


def processes_like(proc_root: str, anchor_pid: int, marker: str | None = None) -> list[RawProcess]:
    """The processes that share ``anchor_pid``'s pid or network namespace.

    Namespace links need privilege; without it, fall back to processes whose
    /proc/<pid>/cgroup mentions ``marker`` (a container id), which anyone may
    read.
    """
    pid_ns = _ns_id(proc_root, anchor_pid, "pid")
    net_ns = _ns_id(proc_root, anchor_pid, "net")
    chosen = []
    for pid in _pids(proc_root):
        if pid_ns or net_ns:
            same = pid == anchor_pid or (
                (pid_ns and _ns_id(proc_root, pid, "pid") == pid_ns)
                or (net_ns and _ns_id(proc_root, pid, "net") == net_ns)
            )
        else:
            cgroup = _read(os.path.join(proc_root, str(pid), "cgroup")) or b""
            same = pid == anchor_pid or bool(marker and marker.encode() in cgroup)
        if same:
            process = read_process(proc_root, pid)
            if process is not None:
                chosen.append(process)
    return chosen
