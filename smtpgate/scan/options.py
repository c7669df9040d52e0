"""The knobs of one scan, and the deadline they set.

Here, not in smtpgate.gate, because both the pipeline (smtpgate.gate) and
settling (smtpgate.scan.settle) read them, and the pipeline imports settling:
each imports this module, neither the other.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class ScanOptions:
    """Knobs of one scan, with defaults that suit a CI step."""

    settle_window: float = 1.0  # listeners unchanged and CPU quiet this long
    settle_quiet: float = 2.0  # the same, while nothing listens yet
    settle_timeout: float = 30.0  # upper bound of the wait
    busy_after: float = 20.0  # after this, busy (CPU, runnable) processes no longer delay settling
    wait_after: float = 8.0  # after this, a sleep/wait-for-it process or unopened EXPOSEd ports no longer do
    churn_window: float = 2.0  # a process came, went or exec'd this recently: start-up is still going on
    settle_fast: float = 0.3  # settled this soon when every thread is parked (0: never early)
    long_wait: float = 5.0  # a thread's timer this long is a periodic tick, not a start-up step
    poll: float = 0.1
    greeting_timeout: float = 8.0  # patience for a delayed greeting
    boots_init: bool | None = None  # None: decide from PID 1
    today: dt.date | None = None
    static_evidence: bool = True  # read the image's filesystem beside the run (smtpgate.staticgate)
    scan_timeout: float = 120.0  # bound of one whole target: start, settle, probe, static (0: none)
    deadline: float | None = None  # time.monotonic() by which the target must be done; set by scan()


def past_deadline(opts: ScanOptions, phase: str) -> list[str]:
    """The error of a scan whose --scan-timeout ran out during ``phase``."""
    if opts.deadline is None or time.monotonic() < opts.deadline:
        return []
    return [f"--scan-timeout {opts.scan_timeout:g} s ran out during {phase}; the results are what was "
            "decided until then"]
