"""Live systems over SSH: a booted VM or an ``ssh://user@host[:port]`` host.

One OpenSSH control master per target (``ssh -M``, a child process we own and
kill); every command and every probe connection is multiplexed over it, so
there is one handshake per scan. What runs in the target is plain POSIX shell
reading /proc (no agent, no Python needed there); the text comes back and is
parsed by the same code as for containers (collect/procfs.py, observe.py).

Probing: each connection is an SSH ``direct-tcpip`` channel (``ssh -W
host:port`` over the master, bridged to a local socketpair), opened *from the
target itself*, so listeners bound to the target's loopback are reached and
judged by protocol like any other. The target's own firewall does not stand in
between; nothing is exposed on the host's network.

Enabled and installed MTAs come from the target's own tools:
``systemctl list-unit-files`` (services and sockets) and the package database
(dpkg, rpm or apk), matched against the software registry.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import unquote, urlsplit

from smtpgate.collect import observe, procfs
from smtpgate.collect.observe import Snapshot
from smtpgate.collect.smtp import Dialler
from smtpgate.errors import CollectError, TargetError
from smtpgate.model import TargetInfo
from smtpgate.static.facts import StaticFacts
from smtpgate.static.live import facts_from_listings, listing_script
from smtpgate.targets.interface import RunState, Target

COMMAND_TIMEOUT = 60.0
MARK = "@@smtpgate "


@dataclass(frozen=True)
class SshEndpoint:
    """Where and as whom to log in."""

    user: str
    host: str
    port: int = 22
    identity: str | None = None  # private key file
    known_hosts: str | None = None  # pinned host keys; None: accept the key first seen
    use_config: bool = True  # read ~/.ssh/config (live hosts); VMs use none

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ssh://{self.user}@{host}" + (f":{self.port}" if self.port != 22 else "")


def parse_ssh_url(url: str) -> SshEndpoint:
    """``ssh://user@host[:port]`` -> SshEndpoint (user defaults to $USER)."""
    parts = urlsplit(url)
    if parts.scheme != "ssh" or not parts.hostname:
        raise TargetError(f"{url!r} is not an ssh://[user@]host[:port] URL")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.password:
        raise TargetError(f"{url!r}: only ssh://[user@]host[:port] is accepted (no path, query or password)")
    try:
        port = parts.port or 22
    except ValueError as exc:
        raise TargetError(f"{url!r}: bad port ({exc})") from None
    user = unquote(parts.username) if parts.username else os.environ.get("USER", "root")
    return SshEndpoint(user=user, host=parts.hostname, port=port)


def _kill(proc: subprocess.Popen | None, wait: float = 5.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.terminate()
        proc.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=wait)
    except OSError:
        pass


class SshSession:
    """An OpenSSH control master and the commands and channels multiplexed over it."""

    def __init__(self, endpoint: SshEndpoint, workdir: str | None = None, connect_timeout: float = 15.0):
        if shutil.which("ssh") is None:
            raise TargetError("the OpenSSH client (ssh) is not installed (apt-get install openssh-client)")
        self.endpoint = endpoint
        self.connect_timeout = connect_timeout
        self._own_dir = workdir is None
        self.dir = workdir or tempfile.mkdtemp(prefix="smtpgate-ssh.")
        self.control = os.path.join(self.dir, "ctl")
        self.master: subprocess.Popen | None = None
        self.channels: list[subprocess.Popen] = []
        self.privileged = False  # commands run as root (user root, or sudo -n works)
        self.sudo = ""

    # -- connection -----------------------------------------------------------
    def options(self) -> list[str]:
        ep = self.endpoint
        opts = [
            "-o", "BatchMode=yes",
            "-o", f"ConnectTimeout={max(1, int(self.connect_timeout))}",
            "-o", "ServerAliveInterval=10", "-o", "ServerAliveCountMax=6",
            "-o", "LogLevel=ERROR",
            "-o", f"ControlPath={self.control}",
            "-p", str(ep.port), "-l", ep.user,
        ]
        if not ep.use_config:
            opts = ["-F", "/dev/null", *opts]
        if ep.identity:
            opts += ["-i", ep.identity, "-o", "IdentitiesOnly=yes"]
        if ep.known_hosts:
            opts += ["-o", f"UserKnownHostsFile={ep.known_hosts}", "-o", "StrictHostKeyChecking=yes"]
        elif not ep.use_config:
            opts += ["-o", f"UserKnownHostsFile={os.path.join(self.dir, 'known_hosts')}",
                     "-o", "StrictHostKeyChecking=accept-new"]
        return opts

    def connect(self) -> None:
        """Start the master; raises TargetError with ssh's own words on failure."""
        self.close_master()
        errlog = open(os.path.join(self.dir, "master.err"), "w+b")
        try:
            self.master = subprocess.Popen(
                ["ssh", *self.options(), "-M", "-N", "-o", "ControlMaster=yes", "-o", "ControlPersist=no",
                 self.endpoint.host],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errlog, start_new_session=True,
            )
            deadline = time.monotonic() + self.connect_timeout + 5
            while time.monotonic() < deadline:
                if self.master.poll() is not None:
                    errlog.seek(0)
                    why = errlog.read().decode("utf-8", "replace").strip() or f"ssh exited {self.master.returncode}"
                    self.master = None
                    last = why.split("\n")[-1]  # LF only: the far side's text may hold other separators
                    raise TargetError(f"ssh to {self.endpoint.url} failed: {last}")
                if os.path.exists(self.control) and self._check():
                    break
                time.sleep(0.2)
            else:
                self.close_master()
                raise TargetError(f"ssh to {self.endpoint.url}: no session within {self.connect_timeout:g} s")
        finally:
            errlog.close()
        self._privilege()

    def _check(self) -> bool:
        proc = subprocess.run(["ssh", *self.options(), "-O", "check", self.endpoint.host],
                              capture_output=True, timeout=10)
        return proc.returncode == 0

    def _privilege(self) -> None:
        uid = self.run("id -u", timeout=30).stdout.strip()
        if uid == b"0":
            self.privileged = True
        elif self.run("sudo -n true", timeout=30).returncode == 0:
            self.privileged, self.sudo = True, "sudo -n "

    def run(self, command: str, *, stdin: bytes | None = None, timeout: float = COMMAND_TIMEOUT,
            privileged: bool = False) -> subprocess.CompletedProcess:
        """Run a shell command in the target (as root with ``privileged`` when possible)."""
        if self.master is None:
            raise CollectError(f"no SSH session to {self.endpoint.url}")
        remote = (self.sudo + command) if privileged else command
        try:
            return subprocess.run(
                ["ssh", *self.options(), "-o", "ControlMaster=no", self.endpoint.host, remote],
                input=stdin if stdin is not None else b"", capture_output=True, timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise CollectError(f"command on {self.endpoint.url} timed out after {timeout:g} s: {command[:60]}") \
                from exc

    def script(self, text: str, timeout: float = COMMAND_TIMEOUT) -> str:
        """Run a POSIX shell script (fed on stdin), as root when possible; its stdout."""
        proc = self.run("sh -s", stdin=text.encode(), timeout=timeout, privileged=self.privileged)
        if proc.returncode not in (0, 1) and not proc.stdout:
            err = proc.stderr.decode("utf-8", "replace").strip()
            raise CollectError(f"inspection script failed on {self.endpoint.url} (exit {proc.returncode}): {err}")
        return proc.stdout.decode("utf-8", "replace")

    @property
    def alive(self) -> bool:
        return self.master is not None and self.master.poll() is None

    # -- probe channels ---------------------------------------------------------
    def dialler(self, translate: dict[str, str] | None = None) -> Dialler:
        """A Dialler whose connections are direct-tcpip channels opened by the target."""
        table = dict(translate or {})

        async def dial(host: str, port: int) -> socket.socket:
            host = table.get(host, host)
            ours, theirs = socket.socketpair()
            try:
                target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
                proc = subprocess.Popen(
                    ["ssh", *self.options(), "-o", "ControlMaster=no", "-W", target, self.endpoint.host],
                    stdin=theirs.fileno(), stdout=theirs.fileno(), stderr=subprocess.DEVNULL, start_new_session=True,
                )
            except BaseException:
                ours.close()
                raise
            finally:
                theirs.close()
            self.channels.append(proc)
            ours.setblocking(False)
            await asyncio.sleep(0)
            return ours

        return dial

    # -- teardown -----------------------------------------------------------------
    def close_master(self) -> None:
        for proc in self.channels:
            _kill(proc, wait=2)
        self.channels.clear()
        if self.master is not None:
            if self.master.poll() is None:
                try:
                    os.killpg(self.master.pid, signal.SIGTERM)
                except OSError:
                    pass
            _kill(self.master)
            self.master = None
        with _suppress():
            os.unlink(self.control)

    def close(self) -> None:
        self.close_master()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is not None and issubclass(exc[0], OSError)  # type: ignore[arg-type]


# -- what runs in the target --------------------------------------------------

SOCKETS_SCRIPT = f"""LC_ALL=C; export LC_ALL
echo "{MARK}tcp"; cat /proc/net/tcp 2>/dev/null
echo "{MARK}tcp6"; cat /proc/net/tcp6 2>/dev/null
echo "{MARK}if_inet6"; cat /proc/net/if_inet6 2>/dev/null
echo "{MARK}uid"; id -u
echo "{MARK}fd"; ls -l /proc/[0-9]*/fd 2>/dev/null
echo "{MARK}stat"; cat /proc/[0-9]*/stat 2>/dev/null
"""

DETAILS_SCRIPT = """LC_ALL=C; export LC_ALL
for p in {pids}; do
  [ -r /proc/$p/status ] || continue
  echo "{mark}proc $p"; cat /proc/$p/status 2>/dev/null
  printf 'Exe:\\t%s\\n' "$(readlink /proc/$p/exe 2>/dev/null)"
  printf 'Cmdline:\\t'; head -c 4096 /proc/$p/cmdline 2>/dev/null | od -An -v -tx1 | tr -d ' \\n'; echo
done
"""


def sections(text: str) -> dict[str, str]:
    """Split script output at ``@@smtpgate NAME`` lines."""
    out: dict[str, list[str]] = {}
    current = None
    for line in text.split("\n"):
        if line.startswith(MARK):
            current = line[len(MARK):].strip()
            out[current] = []
        elif current is not None:
            out[current].append(line)
    return {k: "\n".join(v) for k, v in out.items()}


_FD_HEADER = re.compile(r"^/proc/(\d+)/fd:$")
_FD_SOCKET = re.compile(r" -> socket:\[(\d+)\]$")


def parse_fd_listing(text: str) -> dict[int, list[int]]:
    """``ls -l /proc/[0-9]*/fd`` -> {pid: [socket inodes]} (pids listed, even with none)."""
    out: dict[int, list[int]] = {}
    pid = None
    for line in text.split("\n"):
        header = _FD_HEADER.match(line)
        if header:
            pid = int(header.group(1))
            out[pid] = []
            continue
        found = _FD_SOCKET.search(line)
        if found and pid is not None:
            out[pid].append(int(found.group(1)))
    return out


def parse_stat_lines(text: str) -> dict[int, tuple[str, int | None, int]]:
    """``cat /proc/[0-9]*/stat`` -> {pid: (comm, ppid, utime+stime ticks)}."""
    out: dict[int, tuple[str, int | None, int]] = {}
    for line in text.split("\n"):
        head, sep, rest = line.rpartition(")")
        pid_text, _, comm = head.partition(" (")
        fields = rest.split()
        if not sep or not pid_text.strip().isdigit() or len(fields) < 13:
            continue
        try:
            out[int(pid_text)] = (comm, int(fields[1]), int(fields[11]) + int(fields[12]))
        except ValueError:
            continue
    return out


def parse_details(text: str) -> dict[int, dict[str, str]]:
    """DETAILS_SCRIPT output -> {pid: status fields + Exe + Cmdline (hex)}."""
    out: dict[int, dict[str, str]] = {}
    fields: dict[str, str] | None = None
    for line in text.split("\n"):
        if line.startswith(MARK + "proc "):
            pid = int(line.split()[-1])
            fields = out.setdefault(pid, {})
            continue
        key, sep, value = line.partition(":")
        if sep and fields is not None:
            fields[key] = value.strip()
    return out


def _cmdline(hexed: str) -> tuple[str, ...]:
    try:
        raw = bytes.fromhex(hexed)
    except ValueError:
        return ()
    return tuple(a.decode("utf-8", "replace") for a in raw.rstrip(b"\0").split(b"\0") if a)


def has_ipv6_loopback(if_inet6: str) -> bool:
    return any(line.split()[:1] == ["00000000000000000000000000000001"] for line in if_inet6.split("\n"))


def snapshot_from_text(sockets_text: str, details_text: str) -> tuple[Snapshot, bool]:
    """Build a Snapshot from the two scripts' output; also says whether ::1 exists."""
    parts = sections(sockets_text)
    problems: list[str] = []
    raw_sockets: list[procfs.RawSocket] = []
    for family, name in ((4, "tcp"), (6, "tcp6")):
        body = parts.get(name, "")
        if not body.strip():
            if family == 4:
                problems.append(f"/proc/net/{name} could not be read")
            continue
        found, bad = procfs.parse_proc_net_tcp(body, family)
        raw_sockets.extend(found)
        if bad:
            problems.append(f"/proc/net/{name}: {bad} malformed line(s) skipped")
    root = parts.get("uid", "").strip() == "0"
    fds = parse_fd_listing(parts.get("fd", ""))
    stats = parse_stat_lines(parts.get("stat", ""))
    details = parse_details(details_text)
    raws = []
    for pid, (comm, ppid, ticks) in sorted(stats.items()):
        info = details.get(pid, {})
        inodes = fds.get(pid)
        raws.append(procfs.RawProcess(
            pid=pid, host_pid=pid, name=info.get("Name", comm), cmdline=_cmdline(info.get("Cmdline", "")),
            exe=info.get("Exe") or None, uid=procfs._first_int(info.get("Uid")), ppid=ppid,
            socket_inodes=tuple(inodes or ()) if (inodes or root) else None, cpu_ticks=ticks,
        ))
    return observe.build_snapshot(raw_sockets, raws, problems), has_ipv6_loopback(parts.get("if_inet6", ""))


def owner_pids(sockets_text: str) -> list[int]:
    """PIDs holding a LISTEN socket (and PID 1), from the sockets script's output."""
    parts = sections(sockets_text)
    inodes: set[int] = set()
    for family, name in ((4, "tcp"), (6, "tcp6")):
        found, _ = procfs.parse_proc_net_tcp(parts.get(name, ""), family)
        inodes.update(s.inode for s in found)
    pids = {1}
    for pid, held in parse_fd_listing(parts.get("fd", "")).items():
        if inodes.intersection(held):
            pids.add(pid)
    return sorted(pids)


SERVICES_SCRIPT = listing_script(MARK)  # the service manager's and package databases' listings


class RemoteSystem:
    """Observations of a live Linux system through an SshSession."""

    def __init__(self, session: SshSession, where: str):
        self.session = session
        self.where = where  # what the system is, for the facts' source (an ssh:// URL, a VM disk, ...)
        self.ipv6_loopback = True

    def snapshot(self) -> Snapshot:
        sockets_text = self.session.script(SOCKETS_SCRIPT)
        pids = " ".join(str(p) for p in owner_pids(sockets_text))
        details = self.session.script(DETAILS_SCRIPT.format(pids=pids, mark=MARK))
        snap, self.ipv6_loopback = snapshot_from_text(sockets_text, details)
        if not self.session.privileged:
            snap = replace(snap, problems=snap.problems + (
                f"{self.session.endpoint.user} is not root and sudo -n is refused: owners of other users' "
                "sockets cannot be read",))
        return snap

    def dialler(self) -> Dialler:
        # A dual-stack [::] listener is still reached over IPv4 where the target has no ::1.
        return self.session.dialler({} if self.ipv6_loopback else {"::1": "127.0.0.1"})

    def system_facts(self) -> StaticFacts:
        """What the system's service manager would start at boot and its MTA packages
        (smtpgate.static.live), as static facts."""
        return facts_from_listings(sections(self.session.script(SERVICES_SCRIPT)),
                                   f"{self.where}: its service manager's and package databases' listings")


class RemoteSystemTarget(Target):
    """A target inspected through a RemoteSystem over SSH (live hosts, booted VMs)."""

    system: RemoteSystem | None
    not_ready = "not connected"

    def snapshot(self) -> Snapshot:
        if self.system is None:
            raise CollectError(self.not_ready)
        return self.system.snapshot()

    def dialler(self) -> Dialler | None:
        return self.system.dialler() if self.system else None

    def system_facts(self) -> StaticFacts | None:
        return self.system.system_facts() if self.system else None


class SshHostTarget(RemoteSystemTarget):
    """A live host inspected in place (never stopped or changed)."""

    def __init__(self, endpoint: SshEndpoint, *, connect_timeout: float = 15.0):
        self.endpoint = endpoint
        self.info = TargetInfo(kind="host", ref=endpoint.url)
        self.notes: list[str] = []
        self.method = "ssh"
        self.session: SshSession | None = None
        self.system: RemoteSystem | None = None
        self.connect_timeout = connect_timeout

    @classmethod
    def from_ref(cls, ref: str, options: Any) -> SshHostTarget:
        endpoint = replace(parse_ssh_url(ref), identity=options.ssh_key, known_hosts=options.ssh_known_hosts)
        return cls(endpoint)

    def start(self) -> None:
        self.session = SshSession(self.endpoint, connect_timeout=self.connect_timeout)
        self.session.connect()
        self.system = RemoteSystem(self.session, self.endpoint.url)
        self.notes.append(f"inspected in place over SSH as {self.endpoint.user}"
                          + ("" if self.session.privileged else " (not root, no sudo)"))

    def stop(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None

    def state(self) -> RunState:
        alive = self.session is not None and self.session.alive
        return RunState(running=alive, detail="" if alive else "the SSH session ended")

