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
from smtpgate.static import StaticFacts, analyse, image_config, image_filesystem, static_findings

BLIND_SPOT = ("static analysis only: SMTP servers that are not known software (custom code, a binary smtpgate "
              "does not know) are found only by a normal scan")


def image_facts(engine: Any, image: Image, boots_init: bool | None = None,
                layers: list[str] | None = None) -> StaticFacts:
    """Analyse an image's filesystem and config, never running it (``layers``: a
    running container's layer directories, when the engine's inspect names none)."""
    config = image_config(image.attrs)
    with image_filesystem(engine, image.id, config=config, layers=layers) as fs:
        return analyse(fs, image_config=config, boots_init=boots_init)


def problem_notes(facts: StaticFacts) -> list[str]:
    return [f"static: {p}" for p in facts.problems[:50]] + (
        [f"static: {len(facts.problems) - 50} more problem(s) not shown"] if len(facts.problems) > 50 else [])


def incomplete_error(facts: StaticFacts) -> list[str]:
    if facts.complete:
        return []
    return [f"the filesystem of {facts.source} could not be read completely (a size or entry limit was hit), "
            "so what is enabled or installed may be missing"]


def scan_static(ref: str, policy: Any, opts: Any, *, pull: str = "missing", client: Any = None) -> ScanResult:
    """Judge an image from static evidence only; every failure is an error in the result."""
    from smtpgate.engines import as_engine, connect
    from smtpgate.policy import evaluate

    started = time.monotonic()
    info = TargetInfo(kind="image", ref=ref)
    try:
        engine = as_engine(client) if client is not None else connect()
        image = engine.get_or_pull(ref, pull)
        config = image_config(image.attrs)
        info = TargetInfo(kind="image", ref=ref, image_id=image.id, digests=image.digests,
                          entrypoint=config.entrypoint, cmd=config.cmd, user=config.user or "root")
        facts = image_facts(engine, image, opts.boots_init)
    except Interrupted:
        raise
    except SmtpgateError as exc:
        return ScanResult(target=info, errors=(str(exc),), method="static",
                          timings={"total": time.monotonic() - started})
    init = facts.boots_init
    judged = tuple(evaluate(policy, f, boots_init=init, today=opts.today) for f in static_findings(facts))
    why = "as told (--boots-init/--no-boots-init)" if opts.boots_init is not None else (
        f"PID 1 would be {facts.init or 'unknown'}")
    notes = [f"--static: judged from the image's filesystem and config ({facts.source}); no container was started",
             *exported_note(facts),
             f"boots an init system: {'yes' if init else 'no'} ({why})", BLIND_SPOT, *problem_notes(facts)]
    return ScanResult(target=replace(info, boots_init=init), judged=judged, errors=tuple(incomplete_error(facts)),
                      notes=tuple(notes), method="static", timings={"total": time.monotonic() - started})


def exported_note(facts: StaticFacts) -> list[str]:
    """Say so when the layers could not be read in place (a remote engine, not
    root, the containerd image store): the export costs seconds per image."""
    if "(exported)" not in facts.source:
        return []
    return ["the engine does not expose the image's layer directories here (a remote engine, not root, or the "
            "containerd image store), so the image was exported through the engine: slower than reading in place"]


class StaticEvidence:
    """Static analysis of a started image target, in a thread beside settling."""

    def __init__(self, target: Any) -> None:
        self.facts: StaticFacts | None = None
        self.error: str | None = None
        self.seconds = 0.0
        engine, image = getattr(target, "engine", None), getattr(target, "image", None)
        self._thread: threading.Thread | None = None
        if engine is None or image is None or getattr(target.info, "kind", "") != "image":
            return
        running = getattr(target, "running_layers", None)
        self._thread = threading.Thread(target=self._run, args=(engine, image, running), name="smtpgate-static",
                                        daemon=True)
        self._thread.start()

    def _run(self, engine: Any, image: Image, running: Any) -> None:
        started = time.monotonic()
        try:
            self.facts = image_facts(engine, image, layers=running() if running else None)
        except Exception as exc:  # noqa: BLE001 - static evidence is extra: its failure is a note
            self.error = f"static analysis of the image failed: {exc}"
        self.seconds = time.monotonic() - started

    def result(self, timeout: float = 120.0) -> tuple[StaticFacts | None, list[str]]:
        """The facts (None when unavailable) and notes; waits for the thread."""
        if self._thread is None:
            return None, []
        self._thread.join(timeout)
        if self._thread.is_alive():
            return None, [f"static analysis of the image did not finish within {timeout:g} s; not used"]
        if self.facts is None:
            return None, [self.error or "static analysis of the image gave nothing"]
        notes = problem_notes(self.facts)
        if not self.facts.complete:
            notes += [f"static: {e}" for e in incomplete_error(self.facts)]
        return self.facts, notes
