"""A testinfra ``host`` as a target: whatever backend it uses (``docker://``,
``podman://``, ``kubectl://``, ``ansible://``, ``ssh://``, ``local://``).

testinfra runs every command through a shell in the target, so inspection
needs ``/bin/sh`` there (a shell-less image cannot be inspected this way; scan
the image with ``smtpgate scan`` instead). The live-system scripts of the SSH
target read /proc (listening sockets, the processes holding them), the init
system's units and the packages, all with the shell's own ``cat``/``ls``, so no
``ss`` or ``netstat`` is needed. Probing speaks SMTP from inside the target:
smtpgate's stdlib agent, run with the target's ``python3`` when it has one
(3.9 or later). Without it nothing can be dialled (testinfra gives no channel
into the target's network), so a listener is judged by the process that holds
it (a known MTA is still found, its evidence says "identified by process"),
and a listener nobody can identify is reported as not inspected: never a pass.
The report's notes say which of the two was used.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from smtpgate.collect.observe import Snapshot
from smtpgate.collect.smtp import Dialler
from smtpgate.errors import CollectError
from smtpgate.model import Listener, SmtpProbe, TargetInfo
from smtpgate.targets.helper import HelperAgent
from smtpgate.targets.interface import RunState
from smtpgate.targets.ssh import RemoteSystem, RemoteSystemTarget

UNOWNED = ("the processes holding some listening sockets could not be read through this backend although the "
           "commands run as root (docker exec and kubectl exec start without CAP_SYS_PTRACE, and a process that "
           "changed its user, such as Postfix's master, hides its /proc/PID/fd from them)")
COMMAND_LIMIT = 120_000  # bytes: the agent's source is one argument (Linux allows 128 KiB per argument)


@dataclass(frozen=True)
class _Who:
    user: str


class TestinfraSession:
    """What RemoteSystem needs of a session (script, privileged, endpoint), over host.run."""

    def __init__(self, host: Any):
        self.host = host
        self.privileged = False
        self.endpoint = _Who("the testinfra user")

    def start(self) -> None:
        out = self._run("id -u; id -un")
        if out.rc != 0:
            raise CollectError(f"testinfra cannot run a shell command in {self.host.backend.get_hostname()!r} "
                               f"(exit {out.rc}: {out.stderr.strip()[:200]}): inspection through testinfra needs "
                               "/bin/sh in the target; scan the image with `smtpgate scan` instead")
        uid, _, user = out.stdout.partition("\n")
        self.privileged = uid.strip() == "0"
        self.endpoint = _Who(user.strip() or uid.strip())

    def _run(self, command: str) -> Any:
        return self.host.run(command)

    def script(self, text: str, timeout: float = 0) -> str:
        """A POSIX shell script as one `sh -c` (testinfra has no stdin)."""
        out = self._run(f"sh -c {shlex.quote(text)}")
        if out.rc not in (0, 1) and not out.stdout:
            raise CollectError(f"inspection script failed in the testinfra host (exit {out.rc}): "
                               f"{out.stderr.strip()[:300]}")
        return str(out.stdout)

    def dialler(self, translate: dict[str, str] | None = None) -> Dialler | None:
        return None  # testinfra gives no channel into the target's network


class TestinfraAgent(HelperAgent):
    """The helper agent's probe, run with the target's own python3 through host.run."""

    def __init__(self, session: TestinfraSession, python: str):
        super().__init__(None, "testinfra")  # type: ignore[arg-type]  # no engine: commands go through host.run
        self.session, self.python = session, python

    def _run(self, *args: str, timeout: float = 0) -> Any:  # testinfra's backend bounds its own commands
        import json

        from smtpgate.collect.agent import MARKER

        command = " ".join(shlex.quote(a) for a in (self.python, "-c", self._source, MARKER, *args))
        if len(command) > COMMAND_LIMIT:
            raise CollectError("the agent's command line is too long for this target")
        out = self.session._run(command)
        if out.rc != 0:
            raise CollectError(f"the agent failed in the testinfra host (exit {out.rc}): {out.stderr.strip()[-300:]}")
        try:
            return json.loads(out.stdout)
        except ValueError as exc:
            raise CollectError(f"the agent answered no JSON: {out.stdout[:200]!r}") from exc


class TestinfraTarget(RemoteSystemTarget):
    """A running system reached through a testinfra host; never started or stopped by us."""

    not_ready = "not started"

    def __init__(self, host: Any):
        backend = host.backend
        self.host = host
        self.info = TargetInfo(kind="host", ref=f"{backend.NAME}://{backend.get_hostname()}")
        self.notes: list[str] = []
        self.method = f"testinfra-{backend.NAME}"
        self.session = TestinfraSession(host)
        self.system: RemoteSystem | None = None
        self.agent: TestinfraAgent | None = None

    def start(self) -> None:
        self.session.start()
        self.system = RemoteSystem(self.session, self.info.ref)  # type: ignore[arg-type]
        python = self._python()
        if python:
            self.agent = TestinfraAgent(self.session, python)
            self.notes.append(f"inspected through testinfra ({self.info.ref}) as {self.session.endpoint.user}; "
                              f"listeners probed from inside the target by smtpgate's agent ({python})")
        else:
            self.notes.append(f"inspected through testinfra ({self.info.ref}) as {self.session.endpoint.user}; "
                              "no python3 >= 3.9 in the target: listeners are not probed, only judged by the "
                              "process that holds them (/proc), the units and the packages")

    def _python(self) -> str | None:
        out = self.session._run("command -v python3 && python3 -c 'import sys; print(sys.version_info >= (3, 9))'")
        lines = out.stdout.split()
        return lines[0] if out.rc == 0 and lines[-1:] == ["True"] else None

    def snapshot(self) -> Snapshot:
        snap = super().snapshot()
        unowned = [li for li in snap.listeners if li.process is None]
        if unowned and self.session.privileged and UNOWNED not in self.notes:
            self.notes.append(UNOWNED)
        return snap

    def stop(self) -> None:
        self.system = None

    def state(self) -> RunState:
        return RunState(running=True)

    def dialler(self) -> Dialler | None:
        return None

    def probe(self, listeners: tuple[Listener, ...], patience: float,
              deadline: float | None = None) -> list[SmtpProbe] | None:
        if self.agent is None:
            return None
        return self.agent.probe(listeners, patience, deadline)
