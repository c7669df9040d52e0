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
import re
import signal
import sys
import traceback
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from smtpgate import __version__
from smtpgate.errors import Interrupted, SmtpgateError
from smtpgate.model import EXIT_ERROR
from smtpgate.report.sanitize import escape, for_log, inert

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


_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def _size(text: str) -> int:
    """Bytes from a size the way docker writes them: 1g, 512m, 64k, 1073741824 (more than 0)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", text.lower())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (e.g. 512m, 1g)")
    value = int(float(match.group(1)) * _UNITS[match.group(2)])
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 (there is no 'unlimited')")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1 (there is no 'unlimited')")
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
    run.add_argument("--memory", type=_size, default="1g", help="memory limit of the container under test (default 1g)")
    run.add_argument("--pids", type=_count, default=1024, help="process-count limit (default 1024)")
    run.add_argument("--cpus", type=_positive, default=1.0, metavar="N",
                     help="CPU quota of the container under test, in CPUs (default 1)")
    run.add_argument("--disk-limit", type=_size, default="2g", metavar="SIZE",
                     help="most the container may write to its writable layer: beyond it the container is killed "
                     "and the scan is exit 2 (default 2g; also a size-limited layer where the engine's storage "
                     "supports --storage-opt size)")
    run.add_argument("--read-only", action="store_true",
                     help="run the image with a read-only root filesystem and small tmpfs mounts on /tmp, "
                     "/var/tmp and /run (images that write elsewhere at start may then fail)")
    run.add_argument("--settle-window", type=_positive, default=1.0, metavar="S",
                     help="listeners unchanged this long means settled (default 1 s; 2 s while none listens)")
    run.add_argument("--settle-fast", type=_non_negative, default=0.3, metavar="S",
                     help="settled after only this long when every thread of the image is parked, waiting for "
                          "connections, a child or a long timer (default 0.3 s; 0: always the full window)")
    run.add_argument("--settle-timeout", type=_positive, default=30.0, metavar="S",
                     help="upper bound of the wait for the target to settle (default 30 s)")
    run.add_argument("--greeting-timeout", type=_positive, default=8.0, metavar="S",
                     help="patience for a delayed SMTP greeting (default 8 s; ports are probed concurrently)")
    run.add_argument("--scan-timeout", type=_non_negative, default=120.0, metavar="S",
                     help="bound of each whole target: start, settle, probe and static read (default 120 s; 0: "
                          "none); past it the scan is exit 2 with what was decided until then")
    init = run.add_mutually_exclusive_group()
    init.add_argument("--boots-init", dest="boots_init", action="store_true", default=None,
                      help="judge as if the image boots an init system (default: decided from PID 1)")
    init.add_argument("--no-boots-init", dest="boots_init", action="store_false")
    _deploy_arguments(scan)
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
    images = list(args.images)
    if args.images_from:
        images += _images_from(args.images_from)
    if not images and not args.vm and not args.compose and not args.k8s:
        raise SmtpgateError("no image to scan: name one or more, or use --images-from FILE (or --vm DISK, "
                            "--compose FILE, --k8s FILE)")
    if args.jobs < 1:
        raise SmtpgateError(f"--jobs {args.jobs}: must be at least 1")
    return images


def _specs(args: argparse.Namespace) -> list[Any]:
    """Every workload container to scan: the images named (with the run options), the
    Compose services and the Kubernetes containers; sharded as one list."""
    from smtpgate.scan.runner import shard
    from smtpgate.workload.deploy import cli_specs, compose_specs, k8s_specs

    specs = cli_specs(_images(args), args, os.environ)
    specs += compose_specs(args, os.environ)
    specs += k8s_specs(args)
    try:
        chosen = shard(specs, args.shard)
    except ValueError as exc:
        raise SmtpgateError(str(exc)) from None
    if specs and not chosen:
        raise SmtpgateError(f"--shard {args.shard} selects none of the {len(specs)} target(s): use fewer shards")
    return chosen


IMAGES_FROM_LIMIT = 4 << 20  # bytes of --images-from: some 50,000 references


def _images_from(path: str) -> list[str]:
    """The references in an --images-from file (or standard input for "-"):
    one a line, blank lines and # comments skipped; a regular file only (a
    FIFO would block, /dev/zero never ends) and at most IMAGES_FROM_LIMIT."""
    from smtpgate.inputs import read_bounded

    data = read_bounded(path, IMAGES_FROM_LIMIT, f"cannot read --images-from {path}: ",
                        f"cannot read --images-from {path}: larger than {IMAGES_FROM_LIMIT >> 20} MiB, the most "
                        "smtpgate reads", SmtpgateError, stdin=True)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SmtpgateError(f"cannot read --images-from {path}:{line}: not UTF-8 text") from None
    return [ln.strip() for ln in text.split("\n") if ln.strip() and not ln.lstrip().startswith("#")]


def _scan_command(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from smtpgate import gate
    from smtpgate.model import ScanResult, TargetInfo, exit_code
    from smtpgate.report import ReportMeta, run_exit_code
    from smtpgate.workload.deploy import public_argv, scan_specs
    from smtpgate.workload.results import scrubbed

    started = dt.datetime.now(dt.timezone.utc)
    results: list[ScanResult] = []
    run_errors: list[str] = []
    policy_source = args.policy or "default policy"
    specs: list[Any] = []
    try:
        specs = _specs(args)
        policy = _policy(args.policy)
        opts = gate.ScanOptions(
            settle_window=args.settle_window, settle_quiet=max(2.0, args.settle_window),
            settle_fast=args.settle_fast, settle_timeout=args.settle_timeout,
            greeting_timeout=args.greeting_timeout, boots_init=args.boots_init, scan_timeout=args.scan_timeout,
        )
        if specs:  # with --static, judged from their filesystem and config only: nothing runs
            results = scan_specs(specs, lambda spec: _target(spec, args),
                                 lambda spec: _scan_static(spec, policy, opts, args), policy, opts, args)
        _scan_vms(args, policy, opts, results)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - reports on every path, then exit 2
        message = _run_error(exc, args)
        run_errors.append(message)
        done = {r.target.ref for r in results}
        for spec in [s for s in specs if s.label not in done]:
            results.append(ScanResult(target=spec.target_info(), errors=(message,)))
        if not specs:
            results += [ScanResult(target=TargetInfo(kind="image", ref=ref), errors=(message,))
                        for ref in args.images if ref not in done]
    secrets = sorted({v for s in specs for v in s.secrets()}, key=len, reverse=True)
    results, run_errors = scrubbed(results, secrets), scrubbed(run_errors, secrets)
    code = EXIT_ERROR if run_errors else exit_code(results)
    meta = ReportMeta(started_at=started, command_line=public_argv(argv, secrets, args.show_env),
                      policy_source=policy_source, errors=tuple(run_errors), exit_code=code)
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
    """The policy; its software ids must be ones smtpgate knows (a typo would approve nothing)."""
    from smtpgate import software
    from smtpgate.policy import default_policy, load_policy

    known = {m.id for m in software.all_mtas()} | {"unknown"}  # "unknown": an SMTP server no entry names
    return load_policy(path, known_software=known) if path else default_policy()


def _target(spec: Any, args: argparse.Namespace) -> Any:
    from smtpgate.targets import TargetOptions, make_target

    options = TargetOptions(pull=args.pull, memory=args.memory, pids=args.pids, cpus=args.cpus,
                            disk_limit=args.disk_limit, read_only=args.read_only, network=args.network,
                            method=args.method, helper_image=args.helper_image, ssh_key=args.ssh_key,
                            ssh_known_hosts=args.ssh_known_hosts, spec=spec)
    return make_target(spec.image, options)


def _scan_static(spec: Any, policy: Any, opts: Any, args: argparse.Namespace) -> Any:
    """--static for one reference, by its kind: images are read from the engine; a live
    ssh:// host has no image to read (it is inspected in place without --static)."""
    from smtpgate.model import ScanResult, TargetInfo
    from smtpgate.staticgate import scan_static
    from smtpgate.targets import kind_of

    ref = spec.image
    try:
        kind = kind_of(ref)
    except SmtpgateError as exc:
        return ScanResult(target=TargetInfo(kind="unknown", ref=ref), errors=(str(exc),), method="static")
    if kind != "image":
        return ScanResult(target=TargetInfo(kind="host", ref=ref), method="static", errors=(
            f"--static reads image filesystems and VM disks; {ref} is a live host, inspected in place: "
            "scan it without --static",))
    return scan_static(ref, policy, opts, pull=args.pull, spec=spec)


def _deploy_arguments(scan: argparse.ArgumentParser) -> None:
    run = scan.add_argument_group(
        "scan what you deploy (values of --env, --env-file and manifest env are shown as KEY=*** in every report)")
    run.add_argument("--env", "-e", action="append", default=[], metavar="KEY=VALUE",
                     help="set a variable, like docker run -e (KEY alone: its value from this environment)")
    run.add_argument("--env-file", action="append", default=[], metavar="FILE", help="variables from FILE "
                     "(Docker's format: KEY=VALUE lines, taken literally)")
    run.add_argument("--entrypoint", metavar="CMD", help="override the image's ENTRYPOINT (and drop its CMD), "
                     "like docker run --entrypoint; '' resets it")
    run.add_argument("--user", "-u", metavar="USER[:GROUP]", help="run as this user")
    run.add_argument("--workdir", "-w", metavar="DIR", help="working directory inside the container")
    run.add_argument("--mount", action="append", default=[], metavar="SRC:DST",
                     help="bind a host file or directory read-only (nothing else is accepted)")
    run.add_argument("--show-env", action="store_true", help="show variable values in reports (not secrets!)")
    run.add_argument("--compose", action="append", default=[], metavar="FILE",
                     help="scan the services of a Compose file (each service with an image:)")
    run.add_argument("--service", action="append", default=[], metavar="NAME",
                     help="with --compose: only this service (repeatable)")
    run.add_argument("--profile", action="append", default=[], metavar="NAME",
                     help="with --compose: enable this profile (also COMPOSE_PROFILES)")
    run.add_argument("--compose-build", action="store_true",
                     help="with --compose: build services that have only build: with the engine")
    run.add_argument("--k8s", action="append", default=[], metavar="FILE|DIR|-",
                     help="scan every container of the Kubernetes manifests (multi-document YAML; '-': stdin, "
                     "e.g. helm template ... | smtpgate scan --k8s -)")


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
            _say(f"smtpgate: {exc}")
            failed = True
    if not args.quiet:
        sys.stderr.write(get_report("text").render(results, meta))
        sys.stderr.flush()
    return EXIT_ERROR if failed else code


def _cleanup_command(args: argparse.Namespace) -> int:
    from smtpgate.targets.docker import cleanup

    removed, spared = cleanup(older_than=args.older_than, force=args.force)
    for line in removed:
        print(for_log(f"removed {line}"))
    for line in spared:
        print(for_log(f"spared {line} (its scan is still running; --force removes it)"))
    print(f"smtpgate cleanup: {len(removed)} object(s) removed, {len(spared)} spared", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse argv, run the command, return the exit code (never raises)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    given, command = _split_command(argv)
    try:
        args = parser().parse_args(given)
    except SystemExit as exc:  # argparse: --help/--version (0) or a usage error (2)
        return 0 if exc.code in (0, None) else EXIT_ERROR
    if args.command is None:
        parser().print_help(sys.stderr)
        return EXIT_ERROR
    if args.command == "scan":
        args.run_command = command
    old = signal.signal(signal.SIGTERM, _terminate)
    try:
        if args.command == "cleanup":
            return _cleanup_command(args)
        return _scan_command(args, argv)
    except SmtpgateError as exc:
        _say(f"smtpgate: {exc}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("smtpgate: interrupted", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - an unexpected error is never a pass, never exit 1
        _internal_error(exc, args)
        return EXIT_ERROR
    finally:
        signal.signal(signal.SIGTERM, old)


def _split_command(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """`scan IMAGE -- postfix start-fg`: what follows `--` is the command the image runs."""
    if "--" not in argv or argv[:1] != ["scan"]:
        return argv, None
    at = argv.index("--")
    return argv[:at], argv[at + 1:]


def _internal_error(exc: BaseException, args: argparse.Namespace) -> None:
    verbose = getattr(args, "verbose", False)
    _say(f"smtpgate: internal error: {type(exc).__name__}: {exc}"
         + ("" if verbose else " (run with -v for the traceback)"))
    if verbose:
        trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        sys.stderr.write(inert(escape(trace, multiline=True)))


def _say(message: str) -> None:
    """One line on stderr; engine and image text in it is escaped and made
    inert (no CI workflow command, no line break of any kind)."""
    print(for_log(message), file=sys.stderr)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
