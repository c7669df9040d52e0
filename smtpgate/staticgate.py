"""Static evidence for image scans: `--static` (nothing runs), and the extra
evidence every normal scan gathers while its container settles.

`scan_static(ref, ...)` judges an image from its filesystem and config alone:
no container is started (on a local overlay2 engine, nothing is created at
all; elsewhere a never-started container is exported and removed). What PID 1
would be decides `boots_init` unless `--boots-init`/`--no-boots-init` say.
`StaticEvidence(target)` runs the same analysis in a thread beside a normal
scan; its result is merged into the runtime findings (`smtpgate.static.merge`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

from smtpgate.errors import Interrupted, SmtpgateError, TargetError
from smtpgate.model import ScanResult, TargetInfo
from smtpgate.static import StaticFacts, analyse, image_config, image_filesystem, static_findings

BLIND_SPOT = ("static analysis only: SMTP servers that are not known software (custom code, a binary smtpgate "
              "does not know) are found only by a normal scan")


def image_facts(client: Any, image: Any, boots_init: bool | None = None) -> StaticFacts:
    """Analyse an SDK image object's filesystem and config, never running it."""
    config = image_config(image.attrs)
    with image_filesystem(client, image.id, config=config) as fs:
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
    from smtpgate.policy import evaluate
    from smtpgate.targets.docker import engine

    started = time.monotonic()
    info = TargetInfo(kind="image", ref=ref)
    try:
        client = client or engine()
        image = _image(client, ref, pull)
        config = image_config(image.attrs)
        info = TargetInfo(kind="image", ref=ref, image_id=image.id,
                          digests=tuple(image.attrs.get("RepoDigests") or ()),
                          entrypoint=config.entrypoint, cmd=config.cmd, user=config.user or "root")
        facts = image_facts(client, image, opts.boots_init)
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
             f"boots an init system: {'yes' if init else 'no'} ({why})", BLIND_SPOT, *problem_notes(facts)]
    return ScanResult(target=replace(info, boots_init=init), judged=judged, errors=tuple(incomplete_error(facts)),
                      notes=tuple(notes), method="static", timings={"total": time.monotonic() - started})


def _image(client: Any, ref: str, pull: str) -> Any:
    from docker.errors import DockerException, ImageNotFound

    try:
        image = client.images.get(ref)
        if pull != "always":
            return image
    except ImageNotFound:
        if pull == "never":
            raise TargetError(f"image {ref!r} not found on the engine (and --pull never)") from None
    except DockerException as exc:
        raise TargetError(f"could not look up image {ref!r}: {getattr(exc, 'explanation', None) or exc}") from exc
    try:
        return client.images.pull(ref)
    except DockerException as exc:
        raise TargetError(f"image {ref!r} is not on the engine and could not be pulled: "
                          f"{getattr(exc, 'explanation', None) or exc}") from exc


class StaticEvidence:
    """Static analysis of a started image target, in a thread beside settling."""

    def __init__(self, target: Any, boots_init: bool | None = None) -> None:
        self.facts: StaticFacts | None = None
        self._boots_init = boots_init  # --boots-init: links count as read by a booted init
        self.error: str | None = None
        self.seconds = 0.0
        client = getattr(target, "_client", None)
        image_id = getattr(getattr(target, "info", None), "image_id", None)
        self._thread: threading.Thread | None = None
        if client is None or not image_id or getattr(target.info, "kind", "") != "image":
            return
        self._thread = threading.Thread(target=self._run, args=(client, image_id), name="smtpgate-static",
                                        daemon=True)
        self._thread.start()

    def _run(self, client: Any, image_id: str) -> None:
        started = time.monotonic()
        try:
            self.facts = image_facts(client, client.images.get(image_id), self._boots_init)
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
