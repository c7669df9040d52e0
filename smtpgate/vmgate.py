"""Scans of VM disk images: boot, inspect, judge; or read the disk offline.
Every result says which mode was used and why.

- ``scan_vm``: boot with qemu and inspect over SSH (``method`` "qemu+ssh");
  ``--static`` reads the disk offline instead ("offline"); when the image
  cannot boot or cannot be entered, the disk is read offline as a fallback
  ("offline-fallback") with the boot failure and the serial console tail in
  the notes, unless the fallback is switched off (then exit 2 with them).

Live ``ssh://`` hosts are targets like images (smtpgate.targets.TARGETS) and go
through ``gate.scan``.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from smtpgate import gate
from smtpgate.errors import Interrupted, SmtpgateError
from smtpgate.model import ScanResult, TargetInfo
from smtpgate.scan import Evidence, judge
from smtpgate.static import DirFS, StaticFacts, analyse
from smtpgate.targets.disk import mounted_root
from smtpgate.targets.vm import VmBootError, VmOptions, VmTarget


def _vm_opts(opts: gate.ScanOptions) -> gate.ScanOptions:
    # A VM boots its init system: enabled-but-not-running is judged as such.
    return opts if opts.boots_init is not None else replace(opts, boots_init=True)


def scan_vm(image: str, policy: Any, opts: gate.ScanOptions, vm: VmOptions | None = None) -> ScanResult:
    vm = vm or VmOptions()
    opts = _vm_opts(opts)
    started = time.monotonic()
    if vm.static:
        result = scan_offline(image, policy, opts, why="--static: the disk was read offline, nothing was booted")
    else:
        result = _boot_and_inspect(image, policy, opts, vm)
    result.timings["total"] = time.monotonic() - started
    return result


def _boot_and_inspect(image: str, policy: Any, opts: gate.ScanOptions, vm: VmOptions) -> ScanResult:
    target = VmTarget(image, vm)
    result: ScanResult | None = None
    try:
        with target:
            result = gate.inspect(target, policy, opts)
            result.timings.update(target.timings)
    except Interrupted:
        raise
    except VmBootError as exc:
        if not vm.static_fallback:
            return ScanResult(target=target.info, errors=(str(exc),), notes=tuple(target.notes), method="qemu+ssh")
        why = f"offline fallback: {exc.reason}"
        notes = (*target.notes, f"serial console (last lines):\n{exc.console}" if exc.console else "no console output")
        return scan_offline(image, policy, opts, why=why, method="offline-fallback", extra_notes=notes)
    except SmtpgateError as exc:
        if result is None:
            return ScanResult(target=target.info, errors=(str(exc),), notes=tuple(target.notes), method="qemu+ssh")
        result = replace(result, errors=result.errors + (str(exc),))
    assert result is not None
    return replace(result, notes=(f"booted {image} with qemu and inspected it over SSH",) + result.notes)


def scan_offline(image: str, policy: Any, opts: gate.ScanOptions, *, why: str, method: str = "offline",
                 extra_notes: tuple[str, ...] = ()) -> ScanResult:
    """Read the disk's root filesystem without booting; judge what is enabled/installed."""
    info = TargetInfo(kind="vm", ref=image, boots_init=True)
    started = time.monotonic()
    notes = [why, *extra_notes]
    try:
        with mounted_root(image) as root:
            notes.extend(root.notes)
            facts = disk_facts(root.path)
    except Interrupted:
        raise
    except SmtpgateError as exc:
        failed = Evidence(errors=(f"offline reading failed: {exc}",), notes=tuple(notes), method=method,
                          timings={"offline": time.monotonic() - started})
        return judge(info, failed, policy, today=opts.today)
    evidence = Evidence(static=facts, notes=tuple(notes), method=method,
                        timings={"offline": time.monotonic() - started})
    return judge(info, evidence, policy, today=opts.today)


def disk_facts(root: str) -> StaticFacts:
    """The static readers on a mounted root (a VM boots its init: enabled means started)."""
    with DirFS(root) as fs:
        return analyse(fs, boots_init=True)
