"""Many targets at once: bounded concurrency, input order kept, one interrupt
stops everything.

Scans run in worker threads (each probe phase has its own event loop).
Signals reach only the main thread, so on SIGINT/SIGTERM the main thread stops
every started target itself (removing a container ends the worker's scan
quickly) and re-raises once the workers are done.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from smtpgate import gate
from smtpgate.errors import SmtpgateError
from smtpgate.model import ScanResult
from smtpgate.targets.interface import Target

T = TypeVar("T")

def auto_shard(spec: str, environ: Mapping[str, str]) -> str:
    """``auto`` / ``auto/N`` as ``K/N`` from the CI's own parallel index: GitLab's
    ``parallel:`` sets CI_NODE_INDEX (1-based) and CI_NODE_TOTAL (CI_NODE_TOTAL=1
    and no index without it); a Kubernetes Indexed Job sets JOB_COMPLETION_INDEX
    (0-based) but not the total, which ``auto/N`` gives (the Job's completions)."""
    _, _, given = spec.partition("/")
    index, total = environ.get("CI_NODE_INDEX"), environ.get("CI_NODE_TOTAL")
    if total is not None:
        if given and given != total:
            raise ValueError(f"--shard {spec}: CI_NODE_TOTAL is {total}")
        return f"{index or 1}/{total}"
    if environ.get("JOB_COMPLETION_INDEX") is not None:
        if not given:
            raise ValueError(f"--shard {spec}: JOB_COMPLETION_INDEX is set but not the total: "
                             "use --shard auto/N with N the Job's completions")
        try:
            return f"{int(environ['JOB_COMPLETION_INDEX']) + 1}/{given}"
        except ValueError:
            raise ValueError(f"--shard {spec}: JOB_COMPLETION_INDEX "
                             f"{environ['JOB_COMPLETION_INDEX']!r} is not a number") from None
    raise ValueError(f"--shard {spec}: no parallel index in the environment (GitLab parallel: sets "
                     "CI_NODE_INDEX/CI_NODE_TOTAL; a Kubernetes Indexed Job sets JOB_COMPLETION_INDEX)")


def shard(items: Sequence[T], spec: str | None, environ: Mapping[str, str] | None = None) -> list[T]:
    """``K/N``: every N-th item starting at the K-th (1-based), in input order;
    the same list and spec always give the same slice, and the N slices
    partition the list. ``auto``/``auto/N``: K (and N) from the CI (auto_shard)."""
    if not spec:
        return list(items)
    if spec == "auto" or spec.startswith("auto/"):
        spec = auto_shard(spec, os.environ if environ is None else environ)
    k, _, n = spec.partition("/")
    try:
        index, count = int(k), int(n)
    except ValueError:
        raise ValueError(f"--shard {spec!r}: expected K/N, e.g. 2/4") from None
    if not 1 <= index <= count:
        raise ValueError(f"--shard {spec!r}: K must be between 1 and N")
    return [item for i, item in enumerate(items) if i % count == index - 1]


class _Active:
    """Targets started and not yet finished, so an interrupt can stop them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.targets: set[Target] = set()
        self.cancelled = threading.Event()

    def run(self, target: Target, policy: Any, opts: gate.ScanOptions) -> ScanResult | None:
        if self.cancelled.is_set():
            return None
        with self.lock:
            self.targets.add(target)
        try:
            return gate.scan(target, policy, opts)
        finally:
            with self.lock:
                self.targets.discard(target)

    def stop_all(self) -> None:
        self.cancelled.set()
        with self.lock:
            targets = list(self.targets)
        for target in targets:
            try:
                target.stop()
            except SmtpgateError:  # best effort; the worker stops it again and reports it
                pass


def run_many(
    refs: Sequence[T], make_target: Callable[[T], Target], policy: Any, opts: gate.ScanOptions, jobs: int = 1
) -> list[ScanResult]:
    """Scan every ref with at most ``jobs`` at a time; results in input order."""
    if jobs <= 1 or len(refs) <= 1:
        return [gate.scan(make_target(ref), policy, opts) for ref in refs]
    active = _Active()
    pool = cf.ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="smtpgate-scan")
    futures = [pool.submit(active.run, make_target(ref), policy, opts) for ref in refs]
    try:
        results = []
        for future in futures:
            while True:
                try:  # a timeout keeps the main thread responsive to signals
                    result = future.result(timeout=0.2)
                    break
                except cf.TimeoutError:
                    continue
            if result is not None:
                results.append(result)
        return results
    except BaseException:
        active.stop_all()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
