"""Command line: ``smtpgate scan IMAGE... [--junit FILE] [--policy FILE]``.

The only module that talks to the process: argv in, exit code out (main()
returns it; run() exits with it). Exit codes: 0 pass, 1 unapproved SMTP
found, 2 could not decide (bad input, engine unreachable, target would not
start, inspection failed, interrupted, or any unexpected error).
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from smtpgate import __version__
from smtpgate.errors import Interrupted, SmtpgateError
from smtpgate.model import EXIT_ERROR

EPILOG = "Exit codes: 0 pass, 1 unapproved SMTP service found, 2 could not decide."


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds")
    return value


def _positive(text: str) -> float:
    value = _seconds(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0")
    return value


def _non_negative(text: str) -> float:
    value = _seconds(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="smtpgate", description="Fail the build when an image runs an SMTP service nobody approved.",
        epilog=EPILOG,
    )
    top.add_argument("--version", action="version", version=f"smtpgate {__version__}")
    sub = top.add_subparsers(dest="command", metavar="COMMAND")
    scan = sub.add_parser("scan", help="launch images, find SMTP services, judge them", epilog=EPILOG)
    scan.add_argument("images", nargs="*", metavar="IMAGE", help="image reference(s) to scan")
    scan.add_argument("--images-from", metavar="FILE", help="read image references from FILE, one per line")
    scan.add_argument("--jobs", "-j", type=int, default=1, metavar="N",
                      help="scan up to N images at once (default 1)")
    scan.add_argument("--shard", metavar="K/N",
                      help="scan only the K-th of N deterministic slices of the image list (CI matrix); auto: "
                      "K/N from GitLab's CI_NODE_INDEX/CI_NODE_TOTAL; auto/N: K from a Kubernetes Indexed "
                      "Job's JOB_COMPLETION_INDEX")
    scan.add_argument("--policy", metavar="FILE", help="policy YAML (default: loopback-only SMTP approved)")
    out = scan.add_argument_group("reports (all written on every exit code)")
    out.add_argument("--junit", metavar="FILE", help="write JUnit XML")
    out.add_argument("--json", metavar="FILE", help="write the JSON report")
    out.add_argument("--sarif", metavar="FILE", help="write SARIF 2.1.0 (GitHub code scanning)")
    out.add_argument("--sarif-anchor", "--anchor", dest="anchor", metavar="PATH",
                     help="repository file that SARIF, code-quality and annotation results point at "
                     "when no finding names one (e.g. the Dockerfile that built the image)")
    out.add_argument("--codequality", metavar="FILE", help="write GitLab code-quality JSON")
    out.add_argument("--markdown", metavar="FILE", help="write the Markdown summary (the GitHub job summary)")
    out.add_argument("--github", dest="github", action="store_true", default=None,
                     help="GitHub mode: annotations on stdout, job summary appended to $GITHUB_STEP_SUMMARY "
                     "(default: on when GITHUB_ACTIONS=true)")
    out.add_argument("--no-github", dest="github", action="store_false")
    out.add_argument("--format", choices=("text", "json"), default="text",
                     help="stdout format: text prints nothing on stdout (the summary goes to stderr); "
                     "json prints the JSON report")
    out.add_argument("-q", "--quiet", action="store_true", help="no human summary on stderr")
    run = scan.add_argument_group("launching and settling")
    run.add_argument("--pull", choices=("missing", "never", "always"), default="missing",
                     help="pull the image when it is not on the engine (default: missing)")
    run.add_argument("--network", choices=("none", "internal"), default="none",
                     help="none: loopback only, reaches nothing (default); internal: a fresh internal bridge "
                     "network, for images that need an interface (see README: it can reach the host)")
    run.add_argument("--method", choices=("auto", "host", "helper"), default="auto",
                     help="how to collect and probe: host = this host's /proc + setns (root, local engine); "
                     "helper = a helper container sharing the target's network and pid namespaces (remote "
                     "engines, Docker-in-Docker, non-root); auto = host when it works, else helper (default)")
    run.add_argument("--helper-image", default=os.environ.get("SMTPGATE_HELPER_IMAGE") or None, metavar="IMAGE",
                     help="image with python3 for the helper container (env SMTPGATE_HELPER_IMAGE; default: the "
                     "smtpgate tool image smtpgate:VERSION when the engine has it, never pulled; none: no helper)")
    run.add_argument("--memory", default="1g", help="memory limit of the container under test (default 1g)")
    run.add_argument("--pids", type=int, default=1024, help="process-count limit (default 1024)")
    run.add_argument("--settle-window", type=_positive, default=1.0, metavar="S",
                     help="listeners unchanged this long means settled (default 1 s; 2 s while none listens)")
    run.add_argument("--settle-fast", type=_non_negative, default=0.3, metavar="S",
                     help="settled after only this long when every thread of the image is parked, waiting for "
                          "connections, a child or a long timer (default 0.3 s; 0: always the full window)")
    run.add_argument("--settle-timeout", type=_positive, default=30.0, metavar="S",
                     help="upper bound of the wait for the target to settle (default 30 s)")
    run.add_argument("--greeting-timeout", type=_positive, default=8.0, metavar="S",
                     help="patience for a delayed SMTP greeting (default 8 s; ports are probed concurrently)")
    init = run.add_mutually_exclusive_group()
    init.add_argument("--boots-init", dest="boots_init", action="store_true", default=None,
                      help="judge as if the image boots an init system (default: decided from PID 1)")
    init.add_argument("--no-boots-init", dest="boots_init", action="store_false")
    _vm_arguments(scan)
    scan.add_argument("-v", "--verbose", action="store_true", help="tracebacks for unexpected errors")
    clean = sub.add_parser("cleanup", help="remove containers and networks that crashed runs left (label smtpgate)")
    clean.add_argument("--force", action="store_true", help="also remove objects of scans still running")
    clean.add_argument("--older-than", type=_positive, default=3600.0, metavar="S",
                       help="objects made by another host (remote engine) are removed only after S s (3600)")
    clean.add_argument("-v", "--verbose", action="store_true")
    return top


def _terminate(signum: int, frame: Any) -> None:
    raise Interrupted(f"interrupted by {signal.Signals(signum).name}")


def _images(args: argparse.Namespace) -> list[str]:
    from smtpgate.runner import shard

    images = list(args.images)
    if args.images_from:
        try:
            with open(args.images_from, encoding="utf-8") as fh:
                images += [ln.strip() for ln in fh if ln.strip() and not ln.lstrip().startswith("#")]
        except OSError as exc:
            raise SmtpgateError(f"cannot read --images-from {args.images_from}: {exc.strerror}") from exc
    if not images and not args.vm:
        raise SmtpgateError("no image to scan: name one or more, or use --images-from FILE (or --vm DISK)")
    if args.jobs < 1:
        raise SmtpgateError(f"--jobs {args.jobs}: must be at least 1")
    try:
        chosen = shard(images, args.shard)
    except ValueError as exc:
        raise SmtpgateError(str(exc)) from None
    if images and not chosen:
        raise SmtpgateError(f"--shard {args.shard} selects none of the {len(images)} image(s): use fewer shards")
    return chosen


def _scan_command(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from smtpgate import gate
    from smtpgate.model import ScanResult, TargetInfo, exit_code
    from smtpgate.report import ReportMeta, run_exit_code
    from smtpgate.runner import run_many

    started = dt.datetime.now(dt.timezone.utc)
    results: list[ScanResult] = []
    run_errors: list[str] = []
    policy_source = args.policy or "default policy"
    images: list[str] = []
    try:
        images = _images(args)
        policy = _policy(args.policy)
        opts = gate.ScanOptions(
            settle_window=args.settle_window, settle_quiet=max(2.0, args.settle_window),
            settle_fast=args.settle_fast, settle_timeout=args.settle_timeout,
            greeting_timeout=args.greeting_timeout, boots_init=args.boots_init,
        )
        if args.static and images:  # images judged from their filesystem and config only: nothing runs
            from smtpgate.staticgate import scan_static

            results = [scan_static(ref, policy, opts, pull=args.pull) for ref in images]
        else:
            results = run_many(images, lambda ref: _target(ref, args), policy, opts, jobs=args.jobs) if images else []
        _scan_vms(args, policy, opts, results)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - reports on every path, then exit 2
        message = _run_error(exc, args)
        run_errors.append(message)
        done = {r.target.ref for r in results}
        for ref in [i for i in (images or args.images) if i not in done]:
            results.append(ScanResult(target=TargetInfo(kind="image", ref=ref), errors=(message,)))
    code = EXIT_ERROR if run_errors else exit_code(results)
    meta = ReportMeta(started_at=started, command_line=tuple(argv), policy_source=policy_source,
                      errors=tuple(run_errors), exit_code=code)
    return _report(args, results, meta, run_exit_code(results, meta))


def _run_error(exc: BaseException, args: argparse.Namespace) -> str:
    """The one-line message of what stopped the run."""
    if isinstance(exc, KeyboardInterrupt):
        return str(exc) or "interrupted by SIGINT"
    if isinstance(exc, SmtpgateError):
        return str(exc)
    _internal_error(exc, args)
    return f"internal error: {type(exc).__name__}: {exc}"


def _policy(path: str | None) -> Any:
    from smtpgate.policy import default_policy, load_policy

    return load_policy(path) if path else default_policy()


def _target(ref: str, args: argparse.Namespace) -> Any:
    from smtpgate.targets.docker import DockerImageTarget

    if ref.startswith("ssh://"):  # a live host, inspected in place over SSH
        from smtpgate.targets.ssh import SshHostTarget, parse_ssh_url

        endpoint = replace(parse_ssh_url(ref), identity=args.ssh_key, known_hosts=args.ssh_known_hosts)
        return SshHostTarget(endpoint)

    return DockerImageTarget(ref, pull=args.pull, memory=args.memory, pids=args.pids, network=args.network,
                             method=args.method, helper_image=args.helper_image)


def _vm_arguments(scan: argparse.ArgumentParser) -> None:
    vm = scan.add_argument_group("VM disk images (qcow2, raw, ...) and live hosts (IMAGE may be ssh://user@host[:port])")
    vm.add_argument("--vm", action="append", default=[], metavar="DISK",
                    help="boot this disk image with qemu (snapshot mode: never modified) and inspect it over SSH")
    vm.add_argument("--static", action="store_true",
                    help="judge from static evidence only: images are read from the engine, never started "
                    "(what the entrypoint, init and supervisors would start, installed packages, configured "
                    "listen addresses); VM disks are read offline (no boot): partitions, ext4/xfs")
    vm.add_argument("--no-static-fallback", dest="static_fallback", action="store_false",
                    help="when a VM cannot boot or be entered, exit 2 instead of reading its disk offline")
    vm.add_argument("--ssh-user", metavar="USER", help="log into the VM as USER (images without cloud-init)")
    vm.add_argument("--ssh-key", metavar="FILE",
                    help="private key for --ssh-user and ssh:// hosts (VMs default: an ephemeral key)")
    vm.add_argument("--ssh-known-hosts", metavar="FILE",
                    help="ssh:// hosts: accept only the host keys in FILE (default: your ssh config and known_hosts)")
    vm.add_argument("--vm-memory", type=int, default=1024, metavar="MIB", help="VM memory in MiB (default 1024)")
    vm.add_argument("--vm-cpus", type=int, default=2, metavar="N", help="virtual CPUs (default 2)")
    vm.add_argument("--vm-accel", choices=("auto", "kvm", "tcg"), default="auto",
                    help="auto: KVM when it works, else TCG (default)")
    vm.add_argument("--boot-timeout", type=_positive, default=300.0, metavar="S",
                    help="from qemu start to an SSH login (default 300 s; TCG boots take 1-2 minutes)")


def _scan_vms(args: argparse.Namespace, policy: Any, opts: Any, results: list) -> None:
    from smtpgate.targets.vm import VmOptions
    from smtpgate.vmgate import scan_vm

    vm = VmOptions(memory_mb=args.vm_memory, cpus=args.vm_cpus, boot_timeout=args.boot_timeout,
                   ssh_user=args.ssh_user, ssh_key=args.ssh_key, accel=args.vm_accel, static=args.static,
                   static_fallback=args.static_fallback)
    for disk in args.vm:
        results.append(scan_vm(disk, policy, opts, vm))


def _report(args: argparse.Namespace, results: list, meta: Any, code: int) -> int:
    """Write every requested report; a report that cannot be written is exit 2."""
    from smtpgate.report import append_report, get_report, write_report

    meta = replace(meta, anchor=args.anchor)
    wanted = [("junit", args.junit, False), ("json", args.json, False), ("sarif", args.sarif, False),
              ("codequality", args.codequality, False), ("markdown", args.markdown, False)]
    if args.format == "json":
        wanted.append(("json", "-", False))
    github = args.github if args.github is not None else os.environ.get("GITHUB_ACTIONS") == "true"
    if github:  # annotations on stdout; the job summary is appended: other steps write that file too
        wanted += [("github", "-", False), ("markdown", os.environ.get("GITHUB_STEP_SUMMARY"), True)]
    failed = False
    for name, path, append in wanted:
        if not path:
            continue
        try:
            (append_report if append else write_report)(name, results, meta, path)
        except SmtpgateError as exc:
            print(f"smtpgate: {exc}", file=sys.stderr)
            failed = True
    if not args.quiet:
        sys.stderr.write(get_report("text").render(results, meta))
        sys.stderr.flush()
    return EXIT_ERROR if failed else code


def _cleanup_command(args: argparse.Namespace) -> int:
    from smtpgate.targets.docker import cleanup

    removed, spared = cleanup(older_than=args.older_than, force=args.force)
    for line in removed:
        print(f"removed {line}")
    for line in spared:
        print(f"spared {line} (its scan is still running; --force removes it)")
    print(f"smtpgate cleanup: {len(removed)} object(s) removed, {len(spared)} spared", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse argv, run the command, return the exit code (never raises)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:  # argparse: --help/--version (0) or a usage error (2)
        return 0 if exc.code in (0, None) else EXIT_ERROR
    if args.command is None:
        parser().print_help(sys.stderr)
        return EXIT_ERROR
    old = signal.signal(signal.SIGTERM, _terminate)
    try:
        if args.command == "cleanup":
            return _cleanup_command(args)
        return _scan_command(args, argv)
    except SmtpgateError as exc:
        print(f"smtpgate: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("smtpgate: interrupted", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - an unexpected error is never a pass, never exit 1
        _internal_error(exc, args)
        return EXIT_ERROR
    finally:
        signal.signal(signal.SIGTERM, old)


def _internal_error(exc: BaseException, args: argparse.Namespace) -> None:
    verbose = getattr(args, "verbose", False)
    print(f"smtpgate: internal error: {type(exc).__name__}: {exc}"
          + ("" if verbose else " (run with -v for the traceback)"), file=sys.stderr)
    if verbose:
        traceback.print_exception(type(exc), exc, exc.__traceback__)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
