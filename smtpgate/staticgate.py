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
from smtpgate.scan import Evidence, judge
from smtpgate.static import FsLimits, StaticFacts, analyse, image_config, image_filesystem
from smtpgate.targets.sdk import engine_errors

BLIND_SPOT = ("static analysis only: SMTP servers that are not known software (custom code, a binary smtpgate "
              "does not know) are found only by a normal scan")


def image_facts(client: Any, image: Any, boots_init: bool | None = None, limits: FsLimits | None = None) -> StaticFacts:
    """Analyse an SDK image object's filesystem and config, never running it."""
    config = image_config(image.attrs)
    with image_filesystem(client, image.id, limits, config=config) as fs:
        return analyse(fs, image_config=config, boots_init=boots_init)


def scan_static(ref: str, policy: Any, opts: Any, *, pull: str = "missing", client: Any = None) -> ScanResult:
    """Judge an image from static evidence only; every failure is an error in the result."""
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
        return judge(info, Evidence(errors=(str(exc),), method="static",
                                    timings={"total": time.monotonic() - started}), policy, today=opts.today)
    init = facts.boots_init
    why = "as told (--boots-init/--no-boots-init)" if opts.boots_init is not None else (
        f"PID 1 would be {facts.init or 'unknown'}")
    notes = (f"--static: judged from the image's filesystem and config ({facts.source}); no container was started",
             f"boots an init system: {'yes' if init else 'no'} ({why})", BLIND_SPOT)
    evidence = Evidence(static=facts, notes=notes, method="static", timings={"total": time.monotonic() - started})
    return judge(replace(info, boots_init=init), evidence, policy, today=opts.today)


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
    """Static analysis of a started image target, in a thread beside settling.

    Its outcome is evidence like any other: facts, or an error of the scan
    (the read failed, or did not end within its time budget). Never dropped
    with a note: an image could otherwise flood its filesystem to hide what
    its command starts after a long sleep."""

    def __init__(self, target: Any, limits: FsLimits | None = None) -> None:
        self.facts: StaticFacts | None = None
        self.error: str | None = None
        self.crash: BaseException | None = None  # an unexpected exception, raised again by result()
        self.seconds = 0.0
        self.limits = limits or FsLimits()
        client = target.image_engine()
        image_id = target.info.image_id
        self._thread: threading.Thread | None = None
        if client is None or not image_id or target.info.kind != "image":
            return
        self._thread = threading.Thread(target=self._run, args=(client, image_id), name="smtpgate-static",
                                        daemon=True)
        self._started = time.monotonic()
        self._thread.start()

    def _run(self, client: Any, image_id: str) -> None:
        started = time.monotonic()
        try:
            self.facts = image_facts(client, client.images.get(image_id), limits=self.limits)
        except SmtpgateError as exc:
            self.error = f"static analysis of the image failed: {exc}"
        except engine_errors() as exc:
            self.error = f"static analysis of the image failed: {getattr(exc, 'explanation', None) or exc}"
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
