"""VM disk images (qcow2, raw, vmdk, ...): booted with qemu, inspected over SSH.

- **Never modified**: the disk is attached with ``snapshot=on``; qemu keeps
  every write in a temporary overlay inside our own temporary directory
  (``TMPDIR``), deleted with it.
- **KVM when it works, TCG otherwise**: a 4-second probe boots SeaBIOS under
  KVM with ``-cpu host``; a KVM that is present but aborts (e.g. "failed to set
  MSR") or stays silent sends the scan to TCG, and the report says why.
- **Isolated**: QEMU user networking with ``restrict=on`` (the guest reaches
  nothing), one host forward for SSH on 127.0.0.1, an emulated NIC with no
  option ROM (no network boot).
- **Getting in**: an ephemeral ed25519 key pair is made per scan and handed to
  cloud-init through a NoCloud seed (an ISO 9660 volume labelled ``cidata``,
  built without root by genisoimage/mkisofs/xorriso) that also carries the
  host key; images without cloud-init take ``--ssh-user``/``--ssh-key``.
- **Serial console** in ``console.log``; its last lines go into the error when
  the boot fails or times out. Obvious dead ends (no bootable device, kernel
  panic, qemu exiting) end the wait at once.
- **Always stopped**: qemu runs in its own process group with
  PR_SET_PDEATHSIG, so it dies even if smtpgate is killed; stop() kills it and
  removes the temporary directory on every path.
"""

from __future__ import annotations

import ctypes
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, replace
from typing import Any

from smtpgate.errors import CollectError, TargetError
from smtpgate.model import TargetInfo
from smtpgate.targets.disk import DiskError, image_format
from smtpgate.targets.interface import RunState
from smtpgate.targets.ssh import RemoteSystem, RemoteSystemTarget, SshEndpoint, SshSession

QEMU = "qemu-system-x86_64"
SEED_USER = "smtpgate"
CONSOLE_TAIL_LINES = 40
# Console lines after which waiting longer cannot help.
FATAL_CONSOLE = (
    re.compile(r"No bootable device"),
    re.compile(r"Kernel panic - not syncing"),
    re.compile(r"Boot failed: not a bootable disk.*\n(?:.*\n)*?.*No bootable device", re.M),
    re.compile(r"Gave up waiting for root (?:file system )?device"),
    re.compile(r"ALERT! .* does not exist\.\s+Dropping to a shell!"),
)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1bc")


class VmBootError(TargetError):
    """The VM did not boot, or booted but could not be entered, in time."""

    def __init__(self, message: str, console: str = "", entered: bool = False):
        super().__init__(message + (f"; last serial console lines:\n{console}" if console else ""))
        self.reason = message
        self.console = console
        self.booted = entered


@dataclass(frozen=True)
class VmOptions:
    """How to boot and enter a VM image."""

    memory_mb: int = 1024
    cpus: int = 2
    boot_timeout: float = 300.0  # from qemu start to an SSH login
    ssh_user: str | None = None  # for images without cloud-init
    ssh_key: str | None = None
    accel: str = "auto"  # auto, kvm, tcg
    static: bool = False  # read the disk offline, never boot
    static_fallback: bool = True  # read it offline when it cannot boot or be entered
    seed: bool = True  # attach a NoCloud seed (harmless to images without cloud-init)


# -- KVM or TCG -------------------------------------------------------------

_kvm_verdict: tuple[bool, str] | None = None


def kvm_usable(timeout: float = 4.0) -> tuple[bool, str]:
    """(usable, why): /dev/kvm opens and qemu boots firmware under it with -cpu host."""
    global _kvm_verdict
    if _kvm_verdict is not None:
        return _kvm_verdict
    if not os.path.exists("/dev/kvm"):
        _kvm_verdict = (False, "no /dev/kvm")
        return _kvm_verdict
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC))
    except OSError as exc:
        _kvm_verdict = (False, f"/dev/kvm cannot be opened ({exc.strerror})")
        return _kvm_verdict
    cmd = [QEMU, "-accel", "kvm", "-cpu", "host", "-machine", "pc,graphics=off", "-m", "64", "-nodefaults",
           "-display", "none", "-no-reboot", "-no-user-config", "-serial", "stdio"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            preexec_fn=_die_with_parent, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        text = out.decode("utf-8", "replace")
        why = next((ln for ln in text.splitlines() if "error" in ln.lower()), text.strip()[-200:])
        _kvm_verdict = (False, f"qemu under KVM exited with {proc.returncode}: {why or 'no output'}")
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out = proc.stdout.read() if proc.stdout else b""
        ok = b"SeaBIOS" in out or b"Booting" in out
        _kvm_verdict = (True, "KVM works") if ok else (False, f"qemu under KVM printed nothing in {timeout:g} s")
    except BaseException:  # interrupted: the probe must not outlive the scan
        _kill_group(proc)
        raise
    return _kvm_verdict


PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL when smtpgate dies, whatever killed it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # no libc or no prctl: best effort, stop() kills it anyway
        pass


def _unblocked_and_die_with_parent() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    _die_with_parent()


def _kill_group(proc: subprocess.Popen | None, grace: float = 3.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except OSError:
            pass
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- NoCloud seed -----------------------------------------------------------


def user_data(public_key: str, host_private: str, host_public: str) -> str:
    """cloud-config: an ephemeral sudo user with our key, and a host key we chose."""
    indented = "\n".join("    " + line for line in host_private.strip().splitlines())
    return (
        "#cloud-config\n"
        "users:\n"
        f"  - name: {SEED_USER}\n"
        "    gecos: smtpgate inspection (ephemeral)\n"
        "    shell: /bin/sh\n"
        "    lock_passwd: true\n"
        "    sudo: \"ALL=(ALL) NOPASSWD:ALL\"\n"
        f"    ssh_authorized_keys: [\"{public_key.strip()}\"]\n"
        "ssh_keys:\n"
        "  ed25519_private: |\n"
        f"{indented}\n"
        f"  ed25519_public: \"{host_public.strip()}\"\n"
    )


def build_seed(directory: str, public_key: str, host_private: str, host_public: str) -> str:
    """A NoCloud seed ISO labelled cidata in ``directory``; returns its path."""
    tool = next((t for t in ("genisoimage", "mkisofs", "xorrisofs") if shutil.which(t)), None)
    if tool is None:
        raise TargetError("no ISO 9660 tool to build the cloud-init seed (apt-get install genisoimage)")
    src = os.path.join(directory, "seed")
    os.makedirs(src)
    with open(os.path.join(src, "user-data"), "w", encoding="utf-8") as fh:
        fh.write(user_data(public_key, host_private, host_public))
    with open(os.path.join(src, "meta-data"), "w", encoding="utf-8") as fh:
        fh.write(f"instance-id: smtpgate-{secrets.token_hex(6)}\n")
    iso = os.path.join(directory, "seed.iso")
    proc = subprocess.run([tool, "-quiet", "-output", iso, "-volid", "cidata", "-joliet", "-rock", src],
                          capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise TargetError(f"{tool} could not build the cloud-init seed: {proc.stderr.strip()}")
    return iso


def keypair(path: str) -> tuple[str, str]:
    """An ed25519 key pair without passphrase: (private text, public text)."""
    proc = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "smtpgate-ephemeral", "-f", path],
                          capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise TargetError(f"ssh-keygen failed: {proc.stderr.strip()}")
    with open(path, encoding="ascii") as priv, open(path + ".pub", encoding="ascii") as pub:
        return priv.read(), pub.read()


# -- console ----------------------------------------------------------------


def console_text(path: str, limit: int = 1 << 20) -> str:
    """The serial console log without terminal escapes (the last ``limit`` bytes)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, os.path.getsize(path) - limit))
            raw = fh.read()
    except OSError:
        return ""
    text = _ANSI.sub("", raw.decode("utf-8", "replace")).replace("\r\n", "\n").replace("\r", "\n")
    return "".join(ch for ch in text if ch in "\n\t" or ch.isprintable())


def console_tail(path: str, lines: int = CONSOLE_TAIL_LINES) -> str:
    kept = [ln.rstrip() for ln in console_text(path).split("\n") if ln.strip()]  # the guest writes it: LF only
    return "\n".join(kept[-lines:])


def fatal_console(text: str) -> str | None:
    for pattern in FATAL_CONSOLE:
        found = pattern.search(text)
        if found:
            return found.group(0).splitlines()[-1].strip()
    return None


# -- the target ---------------------------------------------------------------


class VmTarget(RemoteSystemTarget):
    """A disk image booted with qemu in snapshot mode and entered over SSH."""

    not_ready = "the VM is not running"

    @classmethod
    def from_ref(cls, ref: str, options: Any) -> VmTarget:
        return cls(ref, options.vm)

    def __init__(self, image: str, options: VmOptions | None = None):
        self.image = os.path.abspath(image)
        self.opts = options or VmOptions()
        self.info = TargetInfo(kind="vm", ref=image, boots_init=True)
        self.notes: list[str] = []
        self.method = "qemu+ssh"
        self.dir: str | None = None
        self.qemu: subprocess.Popen | None = None
        self.session: SshSession | None = None
        self.system: RemoteSystem | None = None
        self.accel = ""
        self.timings: dict[str, float] = {}

    # -- life cycle ---------------------------------------------------------------
    def start(self) -> None:
        if not os.path.isfile(self.image):
            raise TargetError(f"VM image {self.image} does not exist or is not a file")
        if shutil.which(QEMU) is None:
            raise TargetError(f"{QEMU} is not installed (apt-get install qemu-system-x86)")
        try:
            fmt, vsize = image_format(self.image)
        except DiskError as exc:
            raise TargetError(str(exc)) from exc
        self.notes.append(f"{os.path.basename(self.image)}: {fmt}, {vsize >> 20} MiB virtual size")
        self.dir = tempfile.mkdtemp(prefix="smtpgate-vm.")
        started = time.monotonic()
        endpoint = self._credentials()
        self.accel = self._choose_accel()
        self._launch(fmt, endpoint.port)
        if self.accel == "kvm" and not self._console_speaks(20.0):
            self.notes.append("qemu under KVM printed nothing on the console in 20 s: restarted with TCG")
            _kill_group(self.qemu)
            self.accel = "tcg"
            self._launch(fmt, endpoint.port)
        self.session = SshSession(endpoint, workdir=self.dir, connect_timeout=10.0)
        self._wait_for_login(started)
        self.timings["boot_to_ssh"] = time.monotonic() - started
        self._wait_for_boot(started)
        self.timings["boot"] = time.monotonic() - started
        self.system = RemoteSystem(self.session, self.info.ref)
        self.notes.append(f"booted under {self.accel.upper()} in {self.timings['boot']:.0f} s "
                          f"(SSH after {self.timings['boot_to_ssh']:.0f} s) with {self.opts.memory_mb} MiB, "
                          f"{self.opts.cpus} vCPU(s); disk in snapshot mode (the image is never written)")

    def _credentials(self) -> SshEndpoint:
        assert self.dir is not None
        port = free_port()
        key = os.path.join(self.dir, "id_ed25519")
        _, public = keypair(key)
        host_private, host_public = keypair(os.path.join(self.dir, "host_ed25519"))
        self.seed = build_seed(self.dir, public, host_private, host_public) if self.opts.seed else None
        if self.opts.ssh_user or self.opts.ssh_key:
            user = self.opts.ssh_user or "root"
            identity = os.path.abspath(self.opts.ssh_key) if self.opts.ssh_key else key
            self.notes.append(f"logging in as {user} with " + (self.opts.ssh_key or "the ephemeral key"))
        else:
            user, identity = SEED_USER, key
            self.notes.append(f"logging in as {SEED_USER} with an ephemeral key passed by a NoCloud seed (cidata)")
        return SshEndpoint(user=user, host="127.0.0.1", port=port, identity=identity, use_config=False)

    def _choose_accel(self) -> str:
        if self.opts.accel == "tcg":
            self.notes.append("TCG (software emulation) as requested")
            return "tcg"
        ok, why = kvm_usable()
        if ok:
            return "kvm"
        if self.opts.accel == "kvm":
            raise TargetError(f"--vm-accel kvm, but KVM is not usable: {why}")
        self.notes.append(f"KVM not usable ({why}): falling back to TCG (software emulation, slower)")
        return "tcg"

    def qemu_command(self, fmt: str, ssh_port: int) -> list[str]:
        assert self.dir is not None
        cpu = "host" if self.accel == "kvm" else "max"
        cmd = [
            QEMU, "-name", "smtpgate-scan", "-machine", f"pc,accel={self.accel},graphics=off", "-cpu", cpu,
            "-m", str(self.opts.memory_mb), "-smp", str(self.opts.cpus),
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-serial", f"file:{os.path.join(self.dir, 'console.log')}",
            "-pidfile", os.path.join(self.dir, "qemu.pid"),
            "-drive", f"file={self.image},format={fmt},if=none,id=disk0,snapshot=on,cache=unsafe",
            "-device", "virtio-blk-pci,drive=disk0,bootindex=0",
            "-netdev", f"user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:{ssh_port}-:22",
            "-device", "virtio-net-pci,netdev=net0,romfile=",
            "-device", "virtio-rng-pci",
        ]
        if self.seed:
            cmd += ["-drive", f"file={self.seed},format=raw,if=none,id=seed,readonly=on",
                    "-device", "virtio-blk-pci,drive=seed"]
        return cmd

    def _launch(self, fmt: str, ssh_port: int) -> None:
        assert self.dir is not None
        self.console = os.path.join(self.dir, "console.log")
        with open(self.console, "wb"):
            pass
        env = dict(os.environ, TMPDIR=self.dir)  # the snapshot overlay lives (and dies) here
        self.qemu_log = os.path.join(self.dir, "qemu.log")
        # No SIGTERM/SIGINT between fork and remembering the child: stop() must know it to kill it.
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            with open(self.qemu_log, "wb") as log:
                self.qemu = subprocess.Popen(self.qemu_command(fmt, ssh_port), stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                             preexec_fn=_unblocked_and_die_with_parent)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)

    def _console_speaks(self, within: float) -> bool:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.qemu is None or self.qemu.poll() is not None:
                return False
            if os.path.getsize(self.console) > 0:
                return True
            time.sleep(0.2)
        return False

    def _qemu_said(self) -> str:
        try:
            with open(self.qemu_log, encoding="utf-8", errors="replace") as fh:
                return " ".join(fh.read().split())[-400:]
        except OSError:
            return ""

    def _wait_for_login(self, started: float) -> None:
        assert self.session is not None and self.qemu is not None
        deadline = started + self.opts.boot_timeout
        last = "no SSH attempt yet"
        answered = False
        while True:
            if self.qemu.poll() is not None:
                said = self._qemu_said()
                raise VmBootError(f"qemu exited with code {self.qemu.returncode} before SSH answered"
                                  + (f" ({said})" if said else ""), console_tail(self.console))
            fatal = fatal_console(console_text(self.console))
            if fatal:
                raise VmBootError(f"the VM did not boot: {fatal!r} on the serial console",
                                  console_tail(self.console))
            try:
                self.session.connect()
                return
            except TargetError as exc:
                last = str(exc)
                answered = answered or "Permission denied" in last or "Host key" in last
            if time.monotonic() >= deadline:
                what = ("the VM booted and sshd answered, but the login was refused"
                        if answered else "no SSH login")
                hint = ("; give --ssh-user/--ssh-key for images without cloud-init, or raise --boot-timeout"
                        if answered or not self.opts.ssh_user else "; raise --boot-timeout")
                raise VmBootError(f"{what} within --boot-timeout {self.opts.boot_timeout:g} s "
                                  f"(last attempt: {last}){hint}", console_tail(self.console), entered=answered)
            time.sleep(2.0)

    def _wait_for_boot(self, started: float) -> None:
        """Logged in; let systemd finish starting what is enabled (bounded by the boot timeout)."""
        assert self.session is not None
        left = max(10.0, started + self.opts.boot_timeout - time.monotonic())
        try:
            proc = self.session.run(
                f"command -v systemctl >/dev/null 2>&1 && timeout {int(left)} systemctl is-system-running --wait",
                timeout=left + 15)
        except CollectError:
            self.notes.append("systemd was still starting units after --boot-timeout; inspected as it was")
            return
        state = proc.stdout.decode("utf-8", "replace").strip()
        if state:
            self.notes.append(f"systemd says the system is {state!r}")

    def stop(self) -> None:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            if self.session is not None:
                self.session.close()
                self.session = None
            _kill_group(self.qemu)
            self.qemu = None
            if self.dir is not None:
                shutil.rmtree(self.dir, ignore_errors=True)
                self.dir = None
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    # -- observation ------------------------------------------------------------------
    def state(self) -> RunState:
        if self.qemu is not None and self.qemu.poll() is None:
            return RunState(running=True)
        code = self.qemu.returncode if self.qemu is not None else None
        return RunState(running=False, exit_code=code, detail=console_tail(self.console) if self.dir else "")


    def describe(self) -> TargetInfo:
        return replace(self.info, boots_init=True)
