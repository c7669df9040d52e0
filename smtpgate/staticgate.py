"""Static evidence for image scans: `--static` (nothing runs), and the extra
evidence every normal scan gathers while its container settles.

`scan_static(ref, ...)` judges an image from its filesystem and config alone:
no container is started (on a local overlay2/overlay engine, nothing is created
at all; elsewhere a never-started container is exported and removed, and the
report says so). Beside a normal scan, the running container's mount table
gives the layers in place where the image inspect names none (containerd store). What PID 1
would be decides `boots_init` unless `--boots-init`/`--no-boots-init` say.
`StaticEvidence(target)` runs the same analysis in a thread beside a normal
scan; its result is merged into the runtime findings (`smtpgate.static.merge`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

from smtpgate.engines import Image
from smtpgate.errors import Interrupted, SmtpgateError
from smtpgate.model import ScanResult, TargetInfo
from smtpgate.scan import Evidence, judge
from smtpgate.static import FsLimits, StaticFacts, analyse, image_config, image_filesystem

BLIND_SPOT = ("static analysis only: SMTP servers that are not known software (custom code, a binary smtpgate "
              "does not know) are found only by a normal scan")


def image_facts(engine: Any, image: Image, boots_init: bool | None = None, limits: FsLimits | None = None,
                spec: Any = None, layers: list[str] | None = None) -> StaticFacts:
    """Analyse an image's filesystem and config, never running it; with a `RunSpec`,
    the config is the one the deployment runs (its entrypoint, command, env);
    ``layers``: a running container's layer directories, for engines whose image
    inspect names none."""
    config = image_config(image.attrs)
    if spec is not None:
        config = spec.effective(config)
    with image_filesystem(engine, image.id, limits, config=config, layers=layers) as fs:
        return analyse(fs, image_config=config, boots_init=boots_init)


def scan_static(ref: str, policy: Any, opts: Any, *, pull: str = "missing", client: Any = None,
                spec: Any = None) -> ScanResult:
    """Judge an image from static evidence only; every failure is an error in the result.
    With a `RunSpec` (smtpgate.workload), as that deployment runs it."""
    from smtpgate.engines import as_engine, connect

    started = time.monotonic()
    info = spec.target_info() if spec is not None else TargetInfo(kind="image", ref=ref)
    try:
        engine = as_engine(client) if client is not None else connect()
        image = engine.get_or_pull(ref, pull)
        config = image_config(image.attrs)
        if spec is not None:
            config = spec.effective(config)
        info = replace(info, image_id=image.id, digests=image.digests,
                       entrypoint=config.entrypoint, cmd=config.cmd, user=config.user or "root")
        facts = image_facts(engine, image, opts.boots_init, spec=spec)
    except Interrupted:
        raise
    except SmtpgateError as exc:
        return judge(info, Evidence(errors=(str(exc),), method="static",
                                    timings={"total": time.monotonic() - started}), policy, today=opts.today)
    init = facts.boots_init
    why = "as told (--boots-init/--no-boots-init)" if opts.boots_init is not None else (
        f"PID 1 would be {facts.init or 'unknown'}")
    notes = (f"--static: judged from the image's filesystem and config ({facts.source}); no container was started",
             *exported_note(facts), f"boots an init system: {'yes' if init else 'no'} ({why})", BLIND_SPOT)
    evidence = Evidence(static=facts, notes=notes, method="static", timings={"total": time.monotonic() - started})
    return judge(replace(info, boots_init=init), evidence, policy, today=opts.today)


def exported_note(facts: StaticFacts) -> list[str]:
    """Say so when the layers could not be read in place (a remote engine, not
    root, the containerd image store): the export costs seconds per image."""
    if "(exported)" not in facts.source:
        return []
    return ["the engine does not expose the image's layer directories here (a remote engine, not root, or the "
            "containerd image store), so the image was exported through the engine: slower than reading in place"]


class StaticEvidence:
    """Static analysis of a started image target, in a thread beside settling.

    Its outcome is evidence like any other: facts, or an error of the scan
    (the read failed, or did not end within its time budget). Never dropped
    with a note: an image could otherwise flood its filesystem to hide what
    its command starts after a long sleep."""

    def __init__(self, target: Any, limits: FsLimits | None = None, boots_init: bool | None = None,
                 ) -> None:
        self.facts: StaticFacts | None = None
        self._boots_init = boots_init  # --boots-init: links count as read by a booted init
        self.error: str | None = None
        self.crash: BaseException | None = None  # an unexpected exception, raised again by result()
        self.seconds = 0.0
        self.limits = limits or FsLimits()
        engine = target.image_engine()
        image_id = target.info.image_id
        self._thread: threading.Thread | None = None
        self._spec = getattr(target, "spec", None)  # the deployment's command and env (smtpgate.workload)
        if engine is None or not image_id or target.info.kind != "image":
            return
        running = getattr(target, "running_layers", None)  # layers in place where the inspect names none
        self._thread = threading.Thread(target=self._run, args=(engine, image_id, running), name="smtpgate-static",
                                        daemon=True)
        self._started = time.monotonic()
        self._thread.start()

    def _run(self, engine: Any, image_id: str, running: Any) -> None:
        started = time.monotonic()
        try:
            self.facts = image_facts(engine, engine.image(image_id), self._boots_init, limits=self.limits,
                                     spec=self._spec, layers=running() if running else None)
        except SmtpgateError as exc:
            self.error = f"static analysis of the image failed: {exc}"
        except BaseException as exc:  # noqa: BLE001 - handed over: result() raises it
            self.crash = exc
        self.seconds = time.monotonic() - started

    def result(self, timeout: float | None = None) -> tuple[StaticFacts | None, list[str]]:
        """The facts (None when there are none) and the errors; waits for the thread
        until `timeout` seconds after it started (default: the read's own time budget
        and a margin: the engine's export stream may stall between two checks)."""
        if self._thread is None:
            return None, []
        limit = self.limits.seconds + 15.0 if timeout is None else timeout
        self._thread.join(max(0.0, self._started + limit - time.monotonic()))
        if self._thread.is_alive():
            return None, [f"static analysis of the image did not finish within {limit:g} s, so what its "
                          "command or services start is unknown"]
        if self.crash is not None:
            raise self.crash
        if self.facts is None:
            return None, [self.error or "static analysis of the image gave nothing"]
        return self.facts, []
