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
from smtpgate.errors import CollectError, TargetError
from smtpgate.labels import LABEL, owner_labels
from smtpgate.model import Listener, Protocol, SmtpProbe, TargetInfo
from smtpgate.targets.helper import DEFAULT_IMAGE as DEFAULT_HELPER_IMAGE
from smtpgate.targets.helper import NO_HELPER, HelperAgent
from smtpgate.targets.helper import default_image as default_helper_image
from smtpgate.targets.interface import RunState, Target


def engine(timeout: float = 60.0) -> Any:
    """A docker client for the engine DOCKER_HOST names (or the local socket), pinged."""
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=int(timeout))
        client.ping()
    except DockerException as exc:
        raise TargetError(f"Docker engine not reachable: {_engine_reason(exc)}") from exc
    return client


def _engine_reason(exc: Exception) -> str:
    text = str(exc)
    if "Permission denied" in text or "PermissionError" in text:
        where = os.environ.get("DOCKER_HOST", "/var/run/docker.sock")
        return f"permission denied on {where} (run as root, or join the 'docker' group)"
    if "FileNotFoundError" in text or "No such file" in text or "Connection refused" in text:
        where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        return f"nothing answers at {where} (is the Docker daemon running? is DOCKER_HOST right?)"
    return text.splitlines()[0] if text else type(exc).__name__


def _wrap(what: str, exc: Exception) -> TargetError:
    explanation = getattr(exc, "explanation", None) or str(exc)
    return TargetError(f"{what}: {explanation}")


class _SignalsHeld:
    """Defer SIGINT/SIGTERM while cleaning up, so a second Ctrl-C cannot leave
    half-removed objects; they are delivered when the block ends."""

    def __enter__(self) -> None:
        self.old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})

    def __exit__(self, *exc: object) -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, self.old)


NETWORK_MODES = ("none", "internal")


REMOVE_WAIT = 15.0  # seconds to wait for someone else's removal of our container to end


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
        memory: str = "1g",
        pids: int = 1024,
        network: str = "none",
        method: str = "auto",
        helper_image: str | None = None,
    ):
        if network not in NETWORK_MODES:
            raise TargetError(f"network {network!r}: choose one of {', '.join(NETWORK_MODES)}")
        self.ref, self._client, self.pull = ref, client, pull
        self.memory, self.pids, self.network_mode = memory, pids, network
        self.scan_id = f"smtpgate-{secrets.token_hex(6)}"
        self.info = TargetInfo(kind="image", ref=ref)
        self.notes: list[str] = []
        self.container: Any = None
        self.network: Any = None
        self.pid: int | None = None
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
        self._stop_lock = threading.Lock()
        self._started = False

    # -- life cycle ---------------------------------------------------------
    def start(self) -> None:
        from docker.errors import DockerException

        self._client = self._client or engine()
        image = self._image()
        labels = {LABEL: self.scan_id, f"{LABEL}.image": self.ref[:200], **owner_labels()}
        self._started = True  # from here on, stop() looks for what the engine may have made
        try:
            if self.network_mode == "internal":
                self.network = self._client.networks.create(
                    self.scan_id, driver="bridge", internal=True, labels=labels, check_duplicate=True
                )
            self.container = self._client.containers.create(
                image.id,
                name=self.scan_id,
                labels=labels,
                network_mode="none" if self.network_mode == "none" else None,
                network=self.scan_id if self.network_mode == "internal" else None,
                detach=True,
                mem_limit=self.memory,
                pids_limit=self.pids,
                privileged=False,
                # IPv6 on loopback as most hosts have it: servers that bind [::1] or a v6-only [::]
                # (nginx, Go's tcp6) then start and can be probed. Docker switches it off by default.
                sysctls={"net.ipv6.conf.all.disable_ipv6": "0", "net.ipv6.conf.lo.disable_ipv6": "0"},
            )
            self.container.start()
            self.container.reload()
        except DockerException as exc:
            raise _wrap(f"could not start {self.ref}", exc) from exc
        self.pid = self.container.attrs["State"].get("Pid") or None
        self._choose_method()

    def stop(self) -> None:
        """Remove what start() made; safe to call twice and from two threads
        (an interrupt under --jobs). Objects whose creation was interrupted
        mid-call are found by name."""
        with self._stop_lock, _SignalsHeld():
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
            self.container = self.network = None
        if problems:
            raise TargetError("; ".join(problems) + " (run `smtpgate cleanup`)")

    def _remove(self, kind: str) -> str | None:
        obj = self.container if kind == "container" else self.network
        if obj is None and self._client is not None and self._started:
            obj = self._lookup(kind)
        if obj is None:
            return None
        # Someone else removing the container at the same moment (`docker rm -f`,
        # a cleanup) makes ours a 409 "already in progress", and the network then
        # keeps its endpoint until that removal ends: wait for it, briefly.
        deadline = time.monotonic() + REMOVE_WAIT
        while True:
            try:
                obj.remove(force=True) if kind == "container" else obj.remove()
                return None
            except Exception as exc:  # noqa: BLE001 - reported, cleanup goes on
                text = str(exc)
                if "No such" in text or "404" in text or "not found" in text:
                    return None
                busy = "already in progress" in text or "active endpoints" in text
                if not busy or time.monotonic() >= deadline:
                    return f"could not remove {kind} {self.scan_id}: {exc}"
            time.sleep(0.2)

    def _lookup(self, kind: str) -> Any:
        """An object named after this scan, if the engine made it after all."""
        try:
            if kind == "container":
                found = self._client.containers.list(all=True, sparse=True, filters={"name": self.scan_id})
                return next((c for c in found if _sparse_name(c) == self.scan_id), None)
            found = self._client.networks.list(filters={"name": self.scan_id})
        except Exception:  # noqa: BLE001 - nothing to find, or no engine
            return None
        return next((o for o in found if o.name == self.scan_id), None)

    def _image(self) -> Any:
        from docker.errors import DockerException, ImageNotFound

        try:
            image = self._client.images.get(self.ref)
        except ImageNotFound:
            if self.pull == "never":
                raise TargetError(f"image {self.ref!r} not found on the engine (and --pull never)") from None
            image = self._pull()
        except DockerException as exc:
            raise _wrap(f"could not look up image {self.ref!r}", exc) from exc
        else:
            if self.pull == "always":
                image = self._pull()
        self._describe(image)
        return image

    def _pull(self) -> Any:
        from docker.errors import DockerException

        try:
            return self._client.images.pull(self.ref)
        except DockerException as exc:
            raise _wrap(f"image {self.ref!r} is not on the engine and could not be pulled", exc) from exc

    def _describe(self, image: Any) -> None:
        config = image.attrs.get("Config") or {}
        self._healthcheck = bool((config.get("Healthcheck") or {}).get("Test")) and (
            config["Healthcheck"]["Test"][:1] != ["NONE"]
        )
        self.exposed_tcp_ports = tuple(
            sorted(int(k.split("/")[0]) for k in (config.get("ExposedPorts") or {}) if k.endswith("/tcp"))
        )
        self.info = replace(
            self.info,
            image_id=image.id,
            digests=tuple(image.attrs.get("RepoDigests") or ()),
            entrypoint=tuple(config.get("Entrypoint") or ()),
            cmd=tuple(config.get("Cmd") or ()),
            user=config.get("User") or "root",
        )

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
        self.helper_image = default_helper_image(self._client)
        if self.helper_image is None:
            self.notes.append(f"the default helper image {DEFAULT_HELPER_IMAGE} is not on the engine (it is never "
                              "pulled): build it from smtpgate's Dockerfile (./dev setup does) or name an image "
                              "with python3 (--helper-image)")

    def _start_helper(self, visible: bool) -> None:
        if not self.helper_image:
            raise TargetError("--method helper needs an image with python3 for the helper container: "
                              f"--helper-image IMAGE (or SMTPGATE_HELPER_IMAGE; default {DEFAULT_HELPER_IMAGE} "
                              "when the engine has it)")
        labels = dict(self.container.labels or {})
        self.helper = HelperAgent(self._client, self.helper_image, pull=self.pull)
        self.helper.start(self.container, f"{self.scan_id}-helper", labels)
        self.method = "helper"
        why = "asked for (--method helper)" if self.want_method == "helper" else (
            "not root" if visible else "the container's processes are not visible in this host's /proc")
        self.notes.append(f"collected and probed from a helper container ({self.helper_image}) sharing the "
                          f"target's network and pid namespaces: {why}")

    def _already_exited(self) -> bool:
        """The container ended before we looked (its /proc entry is gone with it)."""
        try:
            self.container.reload()
        except Exception:  # noqa: BLE001 - judged by state() later
            return False
        return not self.container.attrs["State"].get("Running", False)

    def _proc_is_ours(self) -> bool:
        try:
            with open(f"/proc/{self.pid}/cgroup", "rb") as fh:
                text = fh.read()
        except OSError:
            return False
        if self.container.id.encode() in text:
            return True
        local = os.environ.get("DOCKER_HOST", "unix://").startswith("unix://")  # a remote pid means nothing here
        return local and os.geteuid() == 0 and _is_namespace_init(self.pid)

    def state(self) -> RunState:
        host = self.method.startswith("host-proc")
        if host and self.pid and not self._healthcheck and _alive(self.pid):
            return RunState(running=True)  # no engine round trip while PID 1 lives
        try:
            self.container.reload()
        except Exception as exc:  # noqa: BLE001
            raise _wrap("lost the container", exc) from exc
        st = self.container.attrs["State"]
        health = (st.get("Health") or {}).get("Status")
        if st.get("Running"):
            return RunState(running=True, health=health)
        return RunState(running=False, exit_code=st.get("ExitCode"), health=health, detail=self._logs_tail())

    def _logs_tail(self, lines: int = 15) -> str:
        try:
            raw = self.container.logs(tail=lines)
        except Exception:  # noqa: BLE001
            return ""
        return raw.decode("utf-8", "backslashreplace").strip()

    def snapshot(self) -> Snapshot:
        if self.method.startswith("host-proc") and self.pid:
            return without_engine_dns(
                observe.read_snapshot("/proc", self.pid, marker=self.container.id, listening=self._listening())
            )
        if self.method == "helper" and self.helper is not None:
            try:
                return without_engine_dns(self.helper.snapshot())
            except CollectError as exc:  # the target (and with it the helper) may just have exited
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
            dialler = self.dialler() if self.method == "host-proc+netns" else None
            if dialler is not None:
                with contextlib.suppress(OSError):
                    self._diag = dialler.sock_diag()
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
        if self.method != "host-proc+netns" or not snap.host_pids:
            return None  # reading other users' blocked system calls needs root on the engine's host
        return parked.read_threads("/proc", snap.host_pids)

    def timerfds(self, snap: Snapshot, horizon: float) -> dict[tuple[int, int], int] | None:
        if self.method != "host-proc+netns" or not snap.host_pids:
            return None
        return parked.armed_timerfds("/proc", snap.host_pids, horizon)

    def probe(self, listeners: tuple[Listener, ...], patience: float) -> list[SmtpProbe] | None:
        """Through the helper's agent when there is one; else None (use dialler())."""
        if self.method != "helper" or self.helper is None:
            return None
        try:
            return self.helper.probe(listeners, patience)
        except CollectError as exc:
            return [SmtpProbe(li.address, li.port, Protocol.NOT_PROBED, detail=str(exc)) for li in listeners]

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


def _alive(pid: int) -> bool:
    """PID 1 of the container is there and not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read(4096).rpartition(b")")[2].split()[:1]
    except OSError:
        return False
    return state not in ([b"Z"], [b"X"])


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


def _sparse_name(container: Any) -> str:
    names = container.attrs.get("Names") or [container.attrs.get("Name") or container.id[:12]]
    return str(names[0]).lstrip("/")


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
    unless ``force``."""
    from docker.errors import DockerException, NotFound

    client = client or engine()
    removed: list[str] = []
    spared: list[str] = []
    try:
        # sparse: no inspect per container, which fails (404) when another scan
        # removes its container between the list and the inspect
        for container in client.containers.list(all=True, sparse=True, filters={"label": LABEL}):
            name = f"container {_sparse_name(container)}"
            if force or _leftover(container.attrs.get("Labels") or {}, container.attrs.get("Created", ""), older_than):
                with contextlib.suppress(NotFound):
                    container.remove(force=True)
                removed.append(name)
            else:
                spared.append(name)
        for network in client.networks.list(filters={"label": LABEL}):
            name = f"network {network.name}"
            if force or _leftover(network.attrs.get("Labels") or {}, network.attrs.get("Created", ""), older_than):
                with contextlib.suppress(NotFound):
                    network.remove()
                removed.append(name)
            else:
                spared.append(name)
    except DockerException as exc:
        raise _wrap("cleanup failed", exc) from exc
    return removed, spared
