"""A helper container that observes a target container from inside its namespaces.

For engines whose containers are not visible in this host's /proc (a remote
engine such as GitLab's Docker-in-Docker service, a rootless engine) or when
smtpgate is not root (no setns): the helper is started with
``network_mode=container:<target>`` and ``pid_mode=container:<target>`` (and
CAP_SYS_PTRACE, to read the socket links in other users' /proc/<pid>/fd), from
an image that has python3 (``--helper-image``; by default the smtpgate tool
image of this version, ``smtpgate:<version>``, built from the top-level
Dockerfile by ``./dev setup``, used only when it is already on the engine:
it is never pulled, because nobody publishes it under that name for us). Each snapshot
and the probe run are one ``docker exec`` of the stdlib agent
(smtpgate.collect.agent, shipped as source with ``python3 -c``), which answers
with JSON on stdout. Nothing is installed in the target, and nothing needs a
route to it: a target with no shell and ``--network none`` works the same.

The helper carries the scan's ``smtpgate`` label and is removed before the
target, on every path (``smtpgate cleanup`` finds it after a crash). It shares
the target's pid namespace, so the kernel also kills it when the target's PID 1
exits.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
from collections.abc import Iterable
from typing import Any

from smtpgate import __version__
from smtpgate.collect import observe, procfs
from smtpgate.collect.agent import MARKER, bootstrap
from smtpgate.collect.observe import Snapshot
from smtpgate.errors import CollectError, TargetError
from smtpgate.model import Listener, Protocol, SmtpProbe

DEFAULT_IMAGE = f"smtpgate:{__version__}"
NO_HELPER = "none"  # --helper-image none: never start a helper
SLEEP = "import time\nwhile True:\n    time.sleep(3600)\n"
STDERR_SHOWN = 600
EXEC_TIMEOUT = 120.0  # seconds for one agent command (a probe takes the greeting patience plus a little)


def default_image(client: Any) -> str | None:
    """The tool image of this smtpgate version when the engine has it, else None
    (no pull: a name on a public registry is not ours to trust)."""
    from docker.errors import DockerException

    try:
        client.images.get(DEFAULT_IMAGE)
    except DockerException:
        return None
    return DEFAULT_IMAGE


class HelperAgent:
    """One helper container beside one target container."""

    def __init__(self, client: Any, image: str, *, pull: str = "missing"):
        self.client, self.image_ref, self.pull = client, image, pull
        self.container: Any = None
        self._source = bootstrap()

    def start(self, target: Any, name: str, labels: dict[str, str]) -> None:
        from docker.errors import DockerException

        image = self._image()
        try:
            self.container = self.client.containers.run(
                image.id, entrypoint=["python3"], command=["-c", SLEEP, MARKER, "sleep"],
                name=name, labels={**labels, "smtpgate.role": "helper"}, detach=True, user="0",
                network_mode=f"container:{target.id}", pid_mode=f"container:{target.id}",
                cap_add=["SYS_PTRACE"], mem_limit="256m", pids_limit=256, privileged=False,
            )
            self.container.reload()
        except DockerException as exc:
            raise TargetError(f"could not start the helper container from {self.image_ref!r}: "
                              f"{getattr(exc, 'explanation', None) or exc}") from exc
        if self.container.attrs["State"].get("Running") is not True:
            logs = self.container.logs(tail=5).decode("utf-8", "replace").strip()
            raise TargetError(f"the helper image {self.image_ref!r} cannot run python3 "
                              f"(exit code {self.container.attrs['State'].get('ExitCode')}): {logs[-300:]!r}")

    def _image(self) -> Any:
        from docker.errors import DockerException, ImageNotFound

        try:
            return self.client.images.get(self.image_ref)
        except ImageNotFound:
            if self.pull == "never":
                raise TargetError(f"helper image {self.image_ref!r} not found on the engine (and --pull never)") \
                    from None
        except DockerException as exc:
            raise TargetError(f"could not look up helper image {self.image_ref!r}: {exc}") from exc
        try:
            return self.client.images.pull(self.image_ref)
        except DockerException as exc:
            raise TargetError(f"helper image {self.image_ref!r} is not on the engine and could not be pulled: "
                              f"{getattr(exc, 'explanation', None) or exc}") from exc

    def remove(self) -> None:
        if self.container is not None:
            try:
                self.container.remove(force=True)
            except Exception as exc:  # noqa: BLE001
                if "No such" not in str(exc) and "404" not in str(exc):
                    raise TargetError(f"could not remove helper container {self.container.name}: {exc}") from exc
            finally:
                self.container = None

    def _run(self, *args: str, timeout: float = EXEC_TIMEOUT) -> Any:
        """One agent command; its JSON answer. Bounded in time: docker 20.10 can leave an
        exec's attached stream open for ever when the target dies under it (seen with a
        crashing vsftpd), so the exec runs in a thread and the helper is removed (which
        closes the stream) when it has not answered within ``timeout`` seconds."""
        from docker.errors import DockerException

        container = self.container
        if container is None:
            raise CollectError("the helper container is gone")
        pool = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="smtpgate-helper-exec")
        future = pool.submit(container.exec_run, ["python3", "-c", self._source, MARKER, *args],
                             user="0", demux=True)
        pool.shutdown(wait=False)
        try:
            code, (out, err) = future.result(timeout=timeout)
        except cf.TimeoutError:
            self.remove()
            raise CollectError(f"the helper agent did not answer within {timeout:g} s (the helper was removed)") \
                from None
        except DockerException as exc:
            raise CollectError(f"helper exec failed: {getattr(exc, 'explanation', None) or exc}") from exc
        if code != 0:
            tail = (err or b"").decode("utf-8", "replace").strip()[-STDERR_SHOWN:]
            raise CollectError(f"the helper agent failed (exit code {code}): {tail}")
        try:
            return json.loads(out or b"")
        except ValueError as exc:
            raise CollectError(f"the helper agent answered no JSON: {(out or b'')[:200]!r}") from exc

    def snapshot(self) -> Snapshot:
        answer = self._run("snapshot")
        sockets = [procfs.RawSocket(**s) for s in answer["sockets"]]
        processes = [procfs.RawProcess(**{**p, "cmdline": tuple(p["cmdline"]),
                                          "socket_inodes": None if p["socket_inodes"] is None
                                          else tuple(p["socket_inodes"])})
                     for p in answer["processes"]]
        return observe.build_snapshot(sockets, processes, answer["problems"])

    def probe(self, listeners: Iterable[Listener], patience: float) -> list[SmtpProbe]:
        ports = [[li.address, li.port, observe.dial_address(li)] for li in listeners]
        answer = self._run("probe", json.dumps({"patience": patience, "ports": ports}),
                           timeout=EXEC_TIMEOUT + 4 * patience)
        return [_smtp_probe(p) for p in answer["probes"]]


def _smtp_probe(raw: dict[str, Any]) -> SmtpProbe:
    verdict = raw["verdict"]
    return SmtpProbe(address=raw["address"], port=int(raw["port"]), protocol=Protocol(verdict["protocol"]),
                     tls=bool(verdict["tls"]), greeting="\n".join(verdict["greeting"]),
                     ehlo=tuple(verdict["ehlo"]), detail=verdict["detail"], connected_to=raw["host"],
                     seconds=float(raw["seconds"]))
