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
The same exec reads what each thread waits for (smtpgate.collect.parked), so
settling takes its early way out on this path too.

The helper carries the scan's ``smtpgate`` label and is removed before the
target, on every path (``smtpgate cleanup`` finds it after a crash). It shares
the target's pid namespace, so the kernel also kills it when the target's PID 1
exits.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable
from typing import Any

from smtpgate import __version__
from smtpgate.collect import agent, observe, parked, procfs
from smtpgate.collect.agent import MARKER, bootstrap
from smtpgate.collect.observe import Snapshot
from smtpgate.collect.parked import ThreadWait
from smtpgate.engines import ContainerSpec, Engine
from smtpgate.errors import CollectError, EngineGone, ObjectNotFound, TargetError
from smtpgate.model import Listener, Protocol, SmtpProbe

DEFAULT_IMAGE = f"smtpgate:{__version__}"
NO_HELPER = "none"  # --helper-image none: never start a helper
SLEEP = "import time\nwhile True:\n    time.sleep(3600)\n"
STDERR_SHOWN = 600
PROBE_BOUND = 30.0  # seconds a probe takes beyond its greeting patience, at most (connect, TLS, dialogue)
EXEC_TIMEOUT = 120.0  # seconds for one agent command other than a probe


def default_image(eng: Engine) -> str | None:
    """The tool image of this smtpgate version when the engine has it, else None
    (no pull: a name on a public registry is not ours to trust)."""
    try:
        eng.image(DEFAULT_IMAGE)
    except ObjectNotFound:
        return None
    return DEFAULT_IMAGE


class HelperAgent:
    """One helper container beside one target container."""

    def __init__(self, eng: Engine, image: str, *, pull: str = "missing"):
        self.engine, self.image_ref, self.pull = eng, image, pull
        self.cid: str | None = None
        self.name = ""
        self._source = bootstrap()
        self._threads: tuple[ThreadWait, ...] | None = None
        self._timerfds: dict[tuple[int, int], tuple[float, int]] | None = None

    def start(self, target: str, name: str, labels: dict[str, str]) -> None:
        """Beside the target container (its id)."""
        image = self.engine.get_or_pull(self.image_ref, self.pull, what="helper image")
        self.name = name
        spec = ContainerSpec(
            image=image.id, name=name, labels={**labels, "smtpgate.role": "helper"},
            entrypoint=("python3",), command=("-c", SLEEP, MARKER, "sleep"), user="0",
            network_mode=f"container:{target}", pid_mode=f"container:{target}",
            cap_add=("SYS_PTRACE",), memory="256m", pids=256, cpus=1.0,
        )
        try:
            self.cid = self.engine.create(spec)
            self.engine.start(self.cid)
            attrs = self.engine.inspect(self.cid)
        except TargetError as exc:
            raise type(exc)(f"could not start the helper container from {self.image_ref!r}: {exc}") from exc
        if attrs["State"].get("Running") is not True:
            logs = self.engine.logs(self.cid, 5).decode("utf-8", "replace").strip()
            raise TargetError(f"the helper image {self.image_ref!r} cannot run python3 "
                              f"(exit code {attrs['State'].get('ExitCode')}): {logs[-300:]!r}")

    def remove(self) -> None:
        """Killed, then removed (see Engine.remove); gone already is fine."""
        if self.cid is not None:
            try:
                self.engine.remove(self.cid)
            except TargetError as exc:
                raise type(exc)(f"could not remove helper container {self.name}: {exc}") from exc
            finally:
                self.cid = None

    def _run(self, *args: str, timeout: float = EXEC_TIMEOUT) -> Any:
        """One agent command; its JSON answer (CollectError when the helper stopped meanwhile).
        Bounded in time (Engine.exec): docker 20.10 can leave an exec's stream open for ever
        when the target dies under it (seen with a crashing vsftpd)."""
        if self.cid is None:
            raise CollectError("the helper container is gone")
        started = time.monotonic()
        try:
            argv = ["python3", "-I", "-S", "-c", self._source, MARKER, *args]
            code, out, err = self.engine.exec(self.cid, argv, user="0", timeout=timeout)
        except EngineGone:
            raise
        except TargetError as exc:
            if time.monotonic() - started >= timeout:  # removing the helper closes the stuck stream
                self.remove()
                raise CollectError(f"the helper agent did not answer within {timeout:g} s "
                                   "(the helper was removed)") from exc
            raise CollectError(f"helper exec failed: {exc}") from exc
        if code != 0:
            tail = err.decode("utf-8", "replace").strip()[-STDERR_SHOWN:]
            raise CollectError(f"the helper agent failed (exit code {code}): {tail}")
        try:
            return json.loads(out or b"")
        except ValueError as exc:
            raise CollectError(f"the helper agent answered no JSON: {out[:200]!r}") from exc

    def snapshot(self) -> Snapshot:
        self._threads = self._timerfds = None
        answer = self._run("snapshot")
        sockets = [procfs.RawSocket(**s) for s in answer["sockets"]]
        processes = [procfs.RawProcess(**{**p, "cmdline": tuple(p["cmdline"]),
                                          "socket_inodes": None if p["socket_inodes"] is None
                                          else tuple(p["socket_inodes"])})
                     for p in answer["processes"]]
        threads = answer.get("threads")  # an older agent, or one that could not tell: None
        self._threads = None if threads is None else tuple(
            ThreadWait(int(tid), int(runs), math.inf if wait == -1 else wait, str(site))
            for tid, runs, wait, site in threads)
        self._timerfds = {(int(pid), int(fd)): (float(seconds), int(ticks))
                          for pid, fd, seconds, ticks in answer.get("timerfds") or ()}
        return observe.build_snapshot(sockets, processes, answer["problems"])

    def threads(self) -> tuple[ThreadWait, ...] | None:
        """What each thread waited for, read by the agent right after the last snapshot."""
        return self._threads

    def timerfds(self, horizon: float) -> dict[tuple[int, int], int] | None:
        """The armed timerfds seen with the last snapshot that fire within ``horizon`` s."""
        return None if self._timerfds is None else parked.within(self._timerfds, horizon)

    def probe(self, listeners: Iterable[Listener], patience: float, deadline: float | None = None) -> list[SmtpProbe]:
        ports = [[li.address, li.port, observe.dial_address(li)] for li in listeners]
        request: dict[str, Any] = {"patience": patience, "ports": ports}
        rounds = -(-len(ports) // agent.CONCURRENT_PROBES)  # the agent probes this many at a time at most
        timeout = 60.0 + rounds * (patience + PROBE_BOUND)
        if deadline is not None:  # the agent stops probing after this long (less the exec's own round trip)
            request["budget"] = max(0.0, deadline - time.monotonic() - 0.5)
            timeout = min(timeout, request["budget"] + 30.0)
        answer = self._run("probe", json.dumps(request), timeout=timeout)
        return [_smtp_probe(p) for p in answer["probes"]]


def _smtp_probe(raw: dict[str, Any]) -> SmtpProbe:
    verdict = raw["verdict"]
    return SmtpProbe(address=raw["address"], port=int(raw["port"]), protocol=Protocol(verdict["protocol"]),
                     tls=bool(verdict["tls"]), greeting="\n".join(verdict["greeting"]),
                     ehlo=tuple(verdict["ehlo"]), detail=verdict["detail"], connected_to=raw["host"],
                     seconds=float(raw["seconds"]))
