"""Container images on a Docker engine: run as deployed, isolated, always removed.

Every object created carries the label ``smtpgate`` (value: the scan id), so
``smtpgate cleanup`` finds what a crashed run left. Nothing from the docker SDK
leaks past this module: engine errors become TargetError.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import threading
import time
from dataclasses import replace
from typing import Any

from smtpgate.collect import observe, parked
from smtpgate.collect.netns import NetnsDialler
from smtpgate.collect.observe import Snapshot
from smtpgate.collect.parked import ThreadWait
from smtpgate.collect.smtp import Dialler
from smtpgate.engines import ContainerSpec, Engine, Image, as_engine, connect, mountinfo
from smtpgate.errors import CollectError, Conflict, EngineError, EngineGone, ObjectNotFound, TargetError
from smtpgate.labels import LABEL, owner_labels
from smtpgate.model import Listener, Protocol, SmtpProbe
from smtpgate.static.image import image_config
from smtpgate.targets.helper import DEFAULT_IMAGE as DEFAULT_HELPER_IMAGE
from smtpgate.targets.helper import NO_HELPER, HelperAgent
from smtpgate.targets.helper import default_image as default_helper_image
from smtpgate.targets.interface import RunState, Target
from smtpgate.workload.spec import RunSpec


def engine(timeout: float = 60.0) -> Engine:
    """The engine DOCKER_HOST names (or the local socket), asked for its version."""
    return connect(timeout)


class _SignalsHeld:
    """Defer SIGINT/SIGTERM while cleaning up, so a second Ctrl-C cannot leave
    half-removed objects; they are delivered when the block ends."""

    def __enter__(self) -> None:
        self.old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})

    def __exit__(self, *exc: object) -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, self.old)


NETWORK_MODES = ("none", "internal")
DISK_LIMIT = 2 << 30  # bytes the container may write to its writable layer and volumes (--disk-limit)
VOLUME_BUDGET = 0.25  # seconds one measurement may spend walking the container's anonymous volumes
# --read-only: small tmpfs mounts where programs usually write at start (pid files, sockets, temp files)
READ_ONLY_TMPFS = {"/tmp": "rw,nosuid,nodev,size=64m", "/var/tmp": "rw,nosuid,nodev,size=64m",
                   "/run": "rw,nosuid,nodev,size=16m"}


REMOVE_WAIT = 15.0  # seconds to wait for someone else's removal of our container to end
EXIT_GRACE = 3.0  # seconds the engine is given to see an exit that explains a failed helper step


class DockerImageTarget(Target):
    """Start an image exactly as deployed (its entrypoint, command, env, user),
    isolated, with resource limits.

    Network ``none`` (the default): only a loopback interface, so the image
    reaches nothing at all, not even this host, and DNS fails at once. Network
    ``internal``: a fresh internal bridge network for images that need a
    non-loopback interface; measured on docker 20.10, a container there can
    still connect to services of the host itself through the bridge gateway
    address, and the engine's embedded DNS makes every lookup hang for 10 s
    (and forwards queries upstream on engines before 26.0 when the host
    resolver is on loopback: CVE-2024-29018). Probing never needs a route
    either way: it runs inside the container's network namespace."""

    def __init__(
        self,
        ref: str,
        *,
        client: Any = None,
        pull: str = "missing",
        memory: str | int = "1g",
        pids: int = 1024,
        cpus: float = 1.0,
        disk_limit: int = DISK_LIMIT,
        read_only: bool = False,
        network: str = "none",
        method: str = "auto",
        helper_image: str | None = None,
        spec: RunSpec | None = None,
    ):
        if network not in NETWORK_MODES:
            raise TargetError(f"network {network!r}: choose one of {', '.join(NETWORK_MODES)}")
        self.ref, self.pull = ref, pull
        self.engine: Engine | None = as_engine(client) if client is not None else None
        self.memory, self.pids, self.cpus, self.network_mode = memory, pids, cpus, network
        self.disk_limit, self.read_only = disk_limit, read_only
        self.scan_id = f"smtpgate-{secrets.token_hex(6)}"
        self.spec = spec or RunSpec(image=ref)  # how the deployment runs it (smtpgate.workload)
        self.info = self.spec.target_info()
        self.notes: list[str] = []
        self.image: Image | None = None
        self.cid: str | None = None  # the container's id
        self.nid: str | None = None  # the internal network's id
        self.pid: int | None = None
        self._pid_start: bytes | None = None  # PID 1's start time (/proc/<pid>/stat): a reused pid differs
        self._dialler: NetnsDialler | None = None
        self._diag: Any = None  # sock_diag of the container's namespace; False: not available
        self._healthcheck = False
        self.exposed_tcp_ports: tuple[int, ...] = ()
        self.method = ""
        self.want_method = method
        # None: the default tool image, looked up on the engine when a helper is needed; "none": no helper
        self.helper_image = None if helper_image == NO_HELPER else helper_image
        self._default_helper = helper_image is None
        self.helper: HelperAgent | None = None
        self.disk: DiskWatch | None = None
        self._stop_lock = threading.Lock()
        self._started = False
        self._reported: set[str] = set()  # bound violations already raised by state()
        self._gone = False  # the engine stopped answering

    # -- life cycle ---------------------------------------------------------
    def start(self) -> None:
        self.engine = self.engine or engine()
        self.image = self.engine.get_or_pull(self.ref, self.pull)
        self._describe(self.image)
        labels = {LABEL: self.scan_id, f"{LABEL}.image": self.ref[:200], **owner_labels()}
        self._started = True  # from here on, stop() looks for what the engine may have made
        try:
            if self.network_mode == "internal":
                self.nid = self.engine.create_network(self.scan_id, labels)
            self.cid = self._create(labels)
            self.engine.start(self.cid)
            attrs = self.engine.inspect(self.cid)
        except TargetError as exc:
            raise type(exc)(f"could not start {self.ref}: {exc}") from exc
        self.pid = attrs["State"].get("Pid") or None
        self._pid_start = _start_time(self.pid) if self.pid else None  # with the pid, names PID 1 for good
        self.disk = DiskWatch(self.engine, self.cid, self.disk_limit)
        self._choose_method()

    def _create(self, labels: dict[str, str]) -> str:
        """The container, its writable layer size-limited where the engine's storage allows it."""
        assert self.engine is not None and self.image is not None
        spec = ContainerSpec(
            image=self.image.id, name=self.scan_id, labels=labels,
            network_mode="none" if self.network_mode == "none" else None,
            network=self.scan_id if self.network_mode == "internal" else None,
            memory=self.memory, pids=self.pids, cpus=self.cpus or None,
            read_only=self.read_only, tmpfs=dict(READ_ONLY_TMPFS) if self.read_only else {},
            # IPv6 on loopback as most hosts have it: servers that bind [::1] or a v6-only [::]
            # (nginx, Go's tcp6) then start and can be probed. Docker switches it off by default.
            sysctls={"net.ipv6.conf.all.disable_ipv6": "0", "net.ipv6.conf.lo.disable_ipv6": "0"},
            sdk_options=self.spec.create_kwargs(),  # entrypoint, command, env, user, workdir, read-only binds
        )
        if not self.engine.storage_quota():
            return self.engine.create(spec)
        try:
            return self.engine.create(replace(spec, storage_size=self.disk_limit))
        except (EngineGone, ObjectNotFound, Conflict):
            raise
        except EngineError as exc:  # overlay on xfs without pquota: known only by trying
            self.notes.append(f"the engine refused a size-limited writable layer ({exc}); "
                              "--disk-limit is enforced by the watchdog alone")
            return self.engine.create(spec)

    def stop(self) -> None:
        """Remove what start() made; safe to call twice and from two threads
        (an interrupt under --jobs). Objects whose creation was interrupted
        mid-call are found by name. An engine that stopped answering leaves
        them behind: the message says to run `smtpgate cleanup` (and on the
        host path the container's processes are killed from here)."""
        with self._stop_lock, _SignalsHeld():
            if self.disk is not None:
                self.disk.stop()
                for note in (self.disk.note, self.disk.partial):
                    if note and note not in self.notes:
                        self.notes.append(note)
            dialler, self._dialler = self._dialler, None
            if dialler is not None:
                dialler.close()
            self._close_diag()
            problems = []
            if self.helper is not None:
                try:
                    self.helper.remove()
                except TargetError as exc:
                    problems.append(str(exc))
                self.helper = None
            for kind in ("container", "network"):
                problem = self._remove(kind)
                if problem:
                    problems.append(problem)
                    if self._gone:
                        break  # nothing more to ask an engine that does not answer
            if problems:
                self._kill_from_host()
            self.cid = self.nid = None
        violation = self._violation()
        if problems:
            raise TargetError("run `smtpgate cleanup`: " + "; ".join(([violation] if violation else []) + problems))
        if violation and violation not in self._reported:
            raise TargetError(violation)

    def _violation(self) -> str | None:
        return self.disk.violation if self.disk is not None else None

    def _remove(self, kind: str) -> str | None:
        oid = self.cid if kind == "container" else self.nid
        if self.engine is None:
            return None
        if oid is None and self._started:
            try:
                oid = self._lookup(kind)
            except EngineGone as exc:
                self._gone = True
                return f"could not look for {kind} {self.scan_id}: {exc}"
        if oid is None:
            return None
        # Someone else removing the container at the same moment (`docker rm -f`,
        # a cleanup) makes ours a 409 "already in progress", and the network then
        # keeps its endpoint until that removal ends (403 or 409): wait for it, briefly.
        deadline = time.monotonic() + REMOVE_WAIT
        while True:
            try:
                self.engine.remove(oid) if kind == "container" else self.engine.remove_network(oid)
                return None
            except EngineGone as exc:
                self._gone = True
                return f"could not remove {kind} {self.scan_id}: {exc}"
            except EngineError as exc:
                if exc.status not in (403, 409) or time.monotonic() >= deadline:
                    return f"could not remove {kind} {self.scan_id}: {exc}"
            time.sleep(0.2)

    def _lookup(self, kind: str) -> str | None:
        """An object named after this scan, if the engine made it after all."""
        assert self.engine is not None
        try:
            found = (self.engine.containers if kind == "container" else self.engine.networks)(LABEL, self.scan_id)
        except EngineGone:
            raise
        except TargetError:
            return None
        return found[0].id if found else None

    def _kill_from_host(self) -> None:
        """The engine could not remove the container: on the host path its PID 1
        is ours to kill (checked by its cgroup), so the image does not run on."""
        if self.pid and self.cid and self.method.startswith("host-proc") and self._proc_is_ours() \
                and _alive(self.pid, self._pid_start):
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)

    def _describe(self, image: Image) -> None:
        config = image.attrs.get("Config") or {}
        health = list(self.spec.healthcheck.test if self.spec.healthcheck else
                      (config.get("Healthcheck") or {}).get("Test") or ())
        self._healthcheck = bool(health) and health[:1] != ["NONE"]
        self.exposed_tcp_ports = tuple(
            sorted(int(k.split("/")[0]) for k in (config.get("ExposedPorts") or {}) if k.endswith("/tcp"))
        )
        self.info = replace(
            self.info,
            image_id=image.id,
            digests=image.digests,
        )
        effective = self.spec.effective(image_config(image.attrs))
        self.info = replace(self.info, entrypoint=effective.entrypoint, cmd=effective.cmd,
                            user=effective.user or "root")

    def running_layers(self) -> list[str] | None:
        """The running container's image layer directories, read in place from its
        mount table when the engine's image inspect does not name them (the
        containerd image store); None when they cannot be read from here."""
        if not self.pid or self.engine is None or not self.engine.local or not self._proc_is_ours():
            return None
        return mountinfo.root_lowerdirs(f"/proc/{self.pid}/mountinfo")

    # -- observation ----------------------------------------------------------
    def _choose_method(self) -> None:
        """host: this host's /proc and setns (root, local engine); helper: a helper
        container in the target's namespaces (--helper-image); auto: host when it
        fully works, else the helper when an image is named, else what is left."""
        visible = bool(self.pid) and self._proc_is_ours()
        root = os.geteuid() == 0
        if not visible and self._already_exited():
            self.method = "exited"  # nothing left to observe: state() reports the exit and its logs
            return None
        if self.want_method == "host" and not visible:
            raise TargetError("--method host: the container's processes are not visible in this host's /proc "
                              "(remote or rootless engine); use --method helper --helper-image IMAGE")
        if self._default_helper and (self.want_method == "helper"
                                     or (self.want_method == "auto" and not (visible and root))):
            self._use_default_helper()
        if self.want_method == "helper" or (self.want_method == "auto" and not (visible and root)
                                            and self.helper_image):
            return self._start_helper(visible)
        if visible:
            self.method = "host-proc+netns" if root else "host-proc"
            if not root:
                self.notes.append("not root: listeners cannot be probed from this host (no setns); "
                                  "name a helper image (--helper-image) to probe them")
            return None
        self.method = "unavailable"
        self.notes.append("the container's processes are not visible in this host's /proc (remote or rootless "
                          "engine): name an image with python3 for a helper container (--helper-image)")
        return None

    def _use_default_helper(self) -> None:
        """The tool image as helper when the engine has it; a note says how to get it otherwise."""
        self._default_helper = False
        assert self.engine is not None
        self.helper_image = default_helper_image(self.engine)
        if self.helper_image is None:
            self.notes.append(f"the default helper image {DEFAULT_HELPER_IMAGE} is not on the engine (it is never "
                              "pulled): build it from smtpgate's Dockerfile (./dev setup does) or name an image "
                              "with python3 (--helper-image)")

    def _start_helper(self, visible: bool) -> None:
        if not self.helper_image:
            raise TargetError("--method helper needs an image with python3 for the helper container: "
                              f"--helper-image IMAGE (or SMTPGATE_HELPER_IMAGE; default {DEFAULT_HELPER_IMAGE} "
                              "when the engine has it)")
        assert self.engine is not None and self.cid is not None
        labels = {LABEL: self.scan_id, f"{LABEL}.image": self.ref[:200], **owner_labels()}
        self.helper = HelperAgent(self.engine, self.helper_image, pull=self.pull)
        try:
            self.helper.start(self.cid, f"{self.scan_id}-helper", labels)
        except EngineGone:
            raise
        except TargetError:
            # The engine cannot join the namespaces of a container that has ended (seen under load with
            # an image that exits at once), and a helper in the pid namespace of a PID 1 that dies is
            # killed with it, often before the engine marks the target stopped: that is the target's
            # exit, which state() reports with its logs.
            if not self._already_exited(grace=EXIT_GRACE):
                raise
            self.method = "exited"
            return None
        self.method = "helper"
        why = "asked for (--method helper)" if self.want_method == "helper" else (
            "not root" if visible else "the container's processes are not visible in this host's /proc")
        self.notes.append(f"collected and probed from a helper container ({self.helper_image}) sharing the "
                          f"target's network and pid namespaces: {why}")

    def _already_exited(self, grace: float = 0.0) -> bool:
        """The container ended before we looked (its /proc entry is gone with it). With ``grace``
        (after something failed that an exit explains), the engine is given that long to notice."""
        assert self.engine is not None and self.cid is not None
        until = time.monotonic() + grace
        while True:
            try:
                attrs = self.engine.inspect(self.cid)
            except EngineGone:
                raise
            except TargetError:
                return False  # judged by state() later
            if not attrs["State"].get("Running", False):
                return True
            if time.monotonic() >= until:
                return False
            time.sleep(0.1)

    def _proc_is_ours(self) -> bool:
        try:
            with open(f"/proc/{self.pid}/cgroup", "rb") as fh:
                text = fh.read()
        except OSError:
            return False
        if self.cid is not None and self.cid.encode() in text:
            return True
        local = os.environ.get("DOCKER_HOST", "unix://").startswith("unix://")  # a remote pid means nothing here
        return local and os.geteuid() == 0 and _is_namespace_init(self.pid)

    def state(self) -> RunState:
        violation = self._violation()
        if violation:
            self._reported.add(violation)
            raise TargetError(violation)
        host = self.method.startswith("host-proc")
        if host and self.pid and not self._healthcheck and _alive(self.pid, self._pid_start):
            return RunState(running=True)  # no engine round trip while PID 1 lives
        assert self.engine is not None and self.cid is not None
        try:
            st = self.engine.inspect(self.cid)["State"]
        except TargetError as exc:
            raise type(exc)(f"lost the container: {exc}") from exc
        health = (st.get("Health") or {}).get("Status")
        if st.get("Running"):
            return RunState(running=True, health=health)
        return RunState(running=False, exit_code=st.get("ExitCode"), health=health, detail=self._logs_tail())

    def _logs_tail(self, lines: int = 15) -> str:
        assert self.engine is not None and self.cid is not None
        try:
            raw = self.engine.logs(self.cid, lines)
        except TargetError:
            return ""
        return raw.decode("utf-8", "backslashreplace").strip()

    def snapshot(self) -> Snapshot:
        if self.method.startswith("host-proc") and self.pid:
            return without_engine_dns(
                observe.read_snapshot("/proc", self.pid, marker=self.cid or "", listening=self._listening())
            )
        if self.method == "helper" and self.helper is not None:
            try:
                return without_engine_dns(self.helper.snapshot())
            except CollectError as exc:  # the target (and with it the helper) may just have exited:
                self._already_exited(grace=EXIT_GRACE)  # then the next state() says so
                return Snapshot((), (), problems=(str(exc),), owners_readable=False)
        if self.method == "exited":
            return Snapshot((), ())
        raise TargetError(f"no way to observe {self.ref}: {'; '.join(self.notes)}")

    def _listening(self) -> tuple[list, list[str]] | None:
        """Listening sockets through sock_diag inside the container's namespace
        when it works (root), else None: /proc/<pid>/net/tcp{,6}, which costs the
        kernel far more per look."""
        if self._diag is None:
            self._diag = False
            if self.method == "host-proc+netns" and self.dialler() is not None and self._dialler is not None:
                with contextlib.suppress(OSError):
                    self._diag = self._dialler.sock_diag()
        if not self._diag:
            return None
        try:
            return self._diag.listening()
        except OSError:  # never seen; /proc still knows, from now on
            self._close_diag()
            return None

    def _close_diag(self) -> None:
        diag, self._diag = self._diag, False
        if diag:
            diag.close()

    def threads(self, snap: Snapshot) -> tuple[ThreadWait, ...] | None:
        if self.method == "helper" and self.helper is not None:
            return self.helper.threads()  # read by the agent with the snapshot
        if self.method != "host-proc+netns" or not snap.host_pids:
            return None  # reading other users' blocked system calls needs root on the engine's host
        return parked.read_threads("/proc", snap.host_pids)

    def timerfds(self, snap: Snapshot, horizon: float) -> dict[tuple[int, int], int] | None:
        if self.method == "helper" and self.helper is not None:
            return self.helper.timerfds(horizon)
        if self.method != "host-proc+netns" or not snap.host_pids:
            return None
        return parked.armed_timerfds("/proc", snap.host_pids, horizon)

    def probe(self, listeners: tuple[Listener, ...], patience: float,
              deadline: float | None = None) -> list[SmtpProbe] | None:
        """Through the helper's agent when there is one; else None (use dialler())."""
        if self.method != "helper" or self.helper is None:
            return None
        try:
            return self.helper.probe(listeners, patience, deadline)
        except CollectError as exc:
            self._already_exited(grace=EXIT_GRACE)  # an exit explains it: the gate's state() then says so
            return [SmtpProbe(li.address, li.port, Protocol.NOT_PROBED, detail=str(exc)) for li in listeners]

    @classmethod
    def from_ref(cls, ref: str, options: Any) -> DockerImageTarget:
        return cls(ref, pull=options.pull, memory=options.memory, pids=options.pids, cpus=options.cpus,
                   disk_limit=options.disk_limit, read_only=options.read_only, network=options.network,
                   method=options.method, helper_image=options.helper_image, spec=options.spec)

    def image_engine(self) -> Engine | None:
        return self.engine

    def dialler(self) -> Dialler | None:
        if self.method != "host-proc+netns" or not self.pid:
            return None
        if self._dialler is None:
            try:
                self._dialler = NetnsDialler(f"/proc/{self.pid}/ns/net")
            except OSError as exc:
                self.notes.append(f"cannot enter the container's network namespace: {exc}")
                return None
        return self._dialler


def _stat(pid: int) -> list[bytes]:
    """The fields of /proc/<pid>/stat after the command name (state first); [] when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read(4096).rpartition(b")")[2].split()
    except OSError:
        return []


def _start_time(pid: int) -> bytes | None:
    """When the process started (field 22, clock ticks after boot): a pid and its start time name
    one process for good, while the pid alone is reused once it is reaped."""
    fields = _stat(pid)
    return fields[19] if len(fields) > 19 else None


def _alive(pid: int, started: bytes | None) -> bool:
    """PID 1 of the container is there, still the process that started then (not a later one that
    was given its pid), and not a zombie waiting to be reaped."""
    fields = _stat(pid)
    return started is not None and len(fields) > 19 and fields[19] == started and fields[0] not in (b"Z", b"X")


def _is_namespace_init(pid: int | None) -> bool:
    """Is /proc/<pid> here PID 1 of a nested pid namespace (NSpid: <pid> ... 1)?
    Guards against an unrelated local process that happens to carry the
    engine's pid number (smtpgate in a CI container with the engine's socket)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("NSpid:"):
                    ids = line.split()[1:]
                    return len(ids) >= 2 and ids[-1] == "1"
    except OSError:
        return False
    return False


ENGINE_DNS = "127.0.0.11"


def without_engine_dns(snap: Snapshot) -> Snapshot:
    """Drop Docker's embedded DNS resolver: on user-defined networks dockerd
    itself listens on 127.0.0.11:<random> inside the container's namespace.
    It is not part of the image; only dropped when we can see that no process
    of the container holds it."""
    if not snap.owners_readable:
        return snap
    keep = tuple(li for li in snap.listeners if not (li.address == ENGINE_DNS and li.process is None))
    return snap if len(keep) == len(snap.listeners) else replace(snap, listeners=keep)


def _owner_alive(labels: dict[str, str]) -> bool:
    if labels.get(f"{LABEL}.owner-host") != socket.gethostname():
        return False
    try:
        os.kill(int(labels.get(f"{LABEL}.owner-pid", "")), 0)
    except PermissionError:
        return True
    except (OSError, ValueError):
        return False
    return True


def _age(created: str | int | float) -> float:
    """Seconds since an engine timestamp like 2026-11-27T21:30:00.123456789Z
    (inspect) or 1795815000 (a container list)."""
    import datetime as dt
    import time as _time

    if isinstance(created, (int, float)):
        return _time.time() - created
    stamp = created.rstrip("Z").split(".")[0]
    try:
        then = dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return float("inf")
    return (dt.datetime.now(dt.timezone.utc) - then).total_seconds()


def _leftover(labels: dict[str, str], created: str | int | float, older_than: float) -> bool:
    """Left by a crashed run: its owner process is gone (same host), or, when
    the owner ran elsewhere (a remote engine), it is older than ``older_than``."""
    if _owner_alive(labels):
        return False
    if labels.get(f"{LABEL}.owner-host") in (None, socket.gethostname()):
        return True
    return _age(created) >= older_than


def cleanup(client: Any = None, *, older_than: float = 3600.0, force: bool = False) -> tuple[list[str], list[str]]:
    """Remove containers and networks labelled smtpgate that crashed runs left;
    returns (removed, spared). Objects of scans still running are spared
    unless ``force``. Containers are killed before they are removed (Podman's
    force-remove waits 10 s for a PID 1 that ignores SIGTERM)."""
    eng = as_engine(client) if client is not None else engine()
    removed: list[str] = []
    spared: list[str] = []
    try:
        for container in eng.containers(LABEL):
            name = f"container {container.name}"
            if force or _leftover(container.labels, container.created, older_than):
                eng.remove(container.id)
                removed.append(name)
            else:
                spared.append(name)
        for network in eng.networks(LABEL):
            name = f"network {network.name}"
            if force or _leftover(network.labels, network.created, older_than):
                eng.remove_network(network.id)
                removed.append(name)
            else:
                spared.append(name)
    except TargetError as exc:
        raise type(exc)(f"cleanup failed: {exc}") from exc
    return removed, spared


class DiskWatch:
    """A watchdog on the container's writable layer: every ``interval`` seconds
    the engine measures it (inspect with size: SizeRw), plus its anonymous
    volumes on a local engine; beyond ``limit`` bytes the container is killed
    and ``violation`` says why (the scan is then exit 2).
    Engines that do not report the size get a note, not a bound."""

    def __init__(self, eng: Engine, cid: str, limit: int, interval: float = 1.0) -> None:
        self.engine, self.cid, self.limit, self.interval = eng, cid, limit, interval
        self.violation: str | None = None
        self.note: str | None = None
        self.partial: str | None = None
        self.largest = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="smtpgate-disk", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        """Measure every ``interval``, or twice as long as a measurement takes
        (the engine walks the layer: millions of small files cost it seconds)."""
        pause = self.interval
        while not self._stop.wait(pause):
            started = time.monotonic()
            if not self.check():
                return
            pause = max(self.interval, 2 * (time.monotonic() - started))

    def check(self) -> bool:
        """One measurement; False when there is no point in measuring again."""
        if self.violation or self.note:
            return False
        try:
            attrs = self.engine.inspect(self.cid, size=True)
        except TargetError:
            return False  # gone, or the engine is: the scan finds out by itself
        size = attrs.get("SizeRw")
        if not isinstance(size, int):
            self.note = "the engine does not report the writable layer's size: --disk-limit is not enforced"
            return False
        size += self._volumes(attrs.get("Mounts") or ())
        self.largest = max(self.largest, size)
        if size <= self.limit:
            return True
        self.violation = (f"the container wrote {_mib(size)} to its writable layer and volumes, more "
                          f"than --disk-limit {_mib(self.limit)}; it was killed")
        with contextlib.suppress(TargetError):
            self.engine.kill(self.cid)
        return False

    def _volumes(self, mounts: Any) -> int:
        """Bytes in the anonymous volumes the image's VOLUME lines made (outside
        the writable layer, so outside SizeRw), walked here when the engine is
        local; a walk longer than VOLUME_BUDGET counts what it saw and says so."""
        if not self.engine.local:
            return 0
        total, deadline = 0, time.monotonic() + VOLUME_BUDGET
        for mount in mounts:
            source = mount.get("Source") if isinstance(mount, dict) and mount.get("Type") == "volume" else None
            if isinstance(source, str) and os.path.isabs(source):
                seen, complete = _du(source, deadline)
                total += seen
                if not complete and not self.partial:
                    self.partial = f"the container's volumes hold too many files to measure within {VOLUME_BUDGET} s"
        return total

    def stop(self) -> None:
        """End the watch with one last measurement: a scan shorter than the
        interval is bounded too."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(2.0)
        if not self._thread.is_alive():  # a measurement still under way would only make removal wait
            self.check()


def _du(root: str, deadline: float) -> tuple[int, bool]:
    """Bytes allocated under root (no symlinks followed, no other filesystem
    entered), and whether the walk finished before ``deadline``."""
    total, stack = 0, [root]
    try:
        dev = os.lstat(root).st_dev
    except OSError:
        return 0, True
    while stack:
        if time.monotonic() > deadline:
            return total, False
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            total += st.st_blocks * 512
            if entry.is_dir(follow_symlinks=False) and st.st_dev == dev:
                stack.append(entry.path)
    return total, True


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.0f} MiB"


def build_image(context: str, tag: str, *, dockerfile: str | None = None, target: str | None = None,
                buildargs: dict[str, str] | None = None, client: Any = None) -> str:
    """Build a Compose service's `build:` with the engine (--compose-build); the image id."""
    eng = as_engine(client) if client is not None else engine(timeout=600)
    try:
        return eng.build(context, tag, dockerfile=dockerfile, target=target, buildargs=buildargs,
                         labels={f"{LABEL}.built": tag})
    except TargetError as exc:
        raise type(exc)(f"could not build {tag} from {context}: {exc}") from exc
