"""Container images on a Docker engine: run as deployed, isolated, always removed.

Every object created carries the label ``smtpgate`` (value: the scan id), so
``smtpgate cleanup`` finds what a crashed run left. Nothing from the docker SDK
leaks past this module: engine errors become TargetError.
"""

from __future__ import annotations

import os
import secrets
import signal
from dataclasses import replace
from typing import Any

from smtpgate.collect import observe
from smtpgate.collect.netns import NetnsDialler
from smtpgate.collect.observe import Snapshot
from smtpgate.collect.smtp import Dialler
from smtpgate.errors import TargetError
from smtpgate.model import TargetInfo
from smtpgate.targets.interface import RunState, Target

LABEL = "smtpgate"


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


class DockerImageTarget(Target):
    """Start an image exactly as deployed (its entrypoint, command, env, user)
    on a fresh ``internal`` network, with resource limits."""

    def __init__(
        self,
        ref: str,
        *,
        client: Any = None,
        pull: str = "missing",
        memory: str = "1g",
        pids: int = 1024,
        internal: bool = True,
    ):
        self.ref, self._client, self.pull = ref, client, pull
        self.memory, self.pids, self.internal = memory, pids, internal
        self.scan_id = f"smtpgate-{secrets.token_hex(6)}"
        self.info = TargetInfo(kind="image", ref=ref)
        self.notes: list[str] = []
        self.container: Any = None
        self.network: Any = None
        self.pid: int | None = None
        self._dialler: NetnsDialler | None = None
        self._healthcheck = False
        self.exposed_tcp_ports: tuple[int, ...] = ()
        self.method = ""

    # -- life cycle ---------------------------------------------------------
    def start(self) -> None:
        from docker.errors import DockerException

        self._client = self._client or engine()
        image = self._image()
        labels = {LABEL: self.scan_id, f"{LABEL}.image": self.ref[:200], f"{LABEL}.owner-pid": str(os.getpid())}
        try:
            self.network = self._client.networks.create(
                self.scan_id, driver="bridge", internal=self.internal, labels=labels, check_duplicate=True
            )
            self.container = self._client.containers.create(
                image.id,
                name=self.scan_id,
                labels=labels,
                network=self.scan_id,
                detach=True,
                mem_limit=self.memory,
                pids_limit=self.pids,
                privileged=False,
            )
            self.container.start()
            self.container.reload()
        except DockerException as exc:
            raise _wrap(f"could not start {self.ref}", exc) from exc
        self.pid = self.container.attrs["State"].get("Pid") or None
        self._choose_method()

    def stop(self) -> None:
        with _SignalsHeld():
            if self._dialler is not None:
                self._dialler.close()
                self._dialler = None
            problems = []
            for obj, kind in ((self.container, "container"), (self.network, "network")):
                if obj is None:
                    continue
                try:
                    obj.remove(force=True) if kind == "container" else obj.remove()
                except Exception as exc:  # noqa: BLE001 - reported, cleanup goes on
                    if "No such" not in str(exc) and "404" not in str(exc):
                        problems.append(f"could not remove {kind} {self.scan_id}: {exc}")
            self.container = self.network = None
        if problems:
            raise TargetError("; ".join(problems) + " (run `smtpgate cleanup`)")

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
        if self.pid and self._proc_is_ours():
            self.method = "host-proc"
            if os.geteuid() == 0:
                self.method = "host-proc+netns"
            else:
                self.notes.append("not root: listeners are probed only where a helper can reach them")
        else:
            self.method = "unavailable"
            self.notes.append(
                "the container's processes are not visible in this host's /proc (remote or rootless engine)"
            )

    def _proc_is_ours(self) -> bool:
        try:
            with open(f"/proc/{self.pid}/cgroup", "rb") as fh:
                text = fh.read()
        except OSError:
            return False
        return self.container.id.encode() in text or (os.geteuid() == 0 and os.path.exists(f"/proc/{self.pid}/ns/net"))

    def state(self) -> RunState:
        if self.pid and not self._healthcheck and os.path.exists(f"/proc/{self.pid}"):
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
            return without_engine_dns(observe.read_snapshot("/proc", self.pid, marker=self.container.id))
        raise TargetError(f"no way to observe {self.ref}: {'; '.join(self.notes)}")

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


def cleanup(client: Any = None) -> list[str]:
    """Remove every container and network labelled smtpgate; returns what was removed."""
    from docker.errors import DockerException

    client = client or engine()
    removed = []
    try:
        for container in client.containers.list(all=True, filters={"label": LABEL}):
            container.remove(force=True)
            removed.append(f"container {container.name}")
        for network in client.networks.list(filters={"label": LABEL}):
            network.remove()
            removed.append(f"network {network.name}")
    except DockerException as exc:
        raise _wrap("cleanup failed", exc) from exc
    return removed
