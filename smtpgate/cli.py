"""Command line: ``smtpgate scan IMAGE... [--junit FILE] [--policy FILE]``.

The only module that talks to the process: argv in, exit code out (main()
returns it; run() exits with it). Exit codes: 0 pass, 1 unapproved SMTP
found, 2 could not decide (bad input, engine unreachable, target would not
start, inspection failed, interrupted, or any unexpected error).
"""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from smtpgate import __version__
from smtpgate.errors import Interrupted, SmtpgateError
from smtpgate.model import EXIT_ERROR

EPILOG = "Exit codes: 0 pass, 1 unapproved SMTP service found, 2 could not decide."


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0")
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
    scan.add_argument("--policy", metavar="FILE", help="policy YAML (default: loopback-only SMTP approved)")
    out = scan.add_argument_group("reports (all written on every exit code)")
    out.add_argument("--junit", metavar="FILE", help="write JUnit XML")
    out.add_argument("--json", metavar="FILE", help="write the JSON report")
    out.add_argument("--format", choices=("text", "json"), default="text",
                     help="stdout format: text prints nothing on stdout (the summary goes to stderr); "
                     "json prints the JSON report")
    out.add_argument("-q", "--quiet", action="store_true", help="no human summary on stderr")
    run = scan.add_argument_group("launching and settling")
    run.add_argument("--pull", choices=("missing", "never", "always"), default="missing",
                     help="pull the image when it is not on the engine (default: missing)")
    run.add_argument("--memory", default="1g", help="memory limit of the container under test (default 1g)")
    run.add_argument("--pids", type=int, default=1024, help="process-count limit (default 1024)")
    run.add_argument("--settle-window", type=_positive, default=1.0, metavar="S",
                     help="listeners unchanged this long means settled (default 1 s; 2 s while none listens)")
    run.add_argument("--settle-timeout", type=_positive, default=30.0, metavar="S",
                     help="upper bound of the wait for the target to settle (default 30 s)")
    run.add_argument("--greeting-timeout", type=_positive, default=8.0, metavar="S",
                     help="patience for a delayed SMTP greeting (default 8 s; ports are probed concurrently)")
    init = run.add_mutually_exclusive_group()
    init.add_argument("--boots-init", dest="boots_init", action="store_true", default=None,
                      help="judge as if the image boots an init system (default: decided from PID 1)")
    init.add_argument("--no-boots-init", dest="boots_init", action="store_false")
    scan.add_argument("-v", "--verbose", action="store_true", help="tracebacks for unexpected errors")
    clean = sub.add_parser("cleanup", help="remove containers and networks left by crashed runs (label smtpgate)")
    clean.add_argument("-v", "--verbose", action="store_true")
    return top


def _terminate(signum: int, frame: Any) -> None:
    raise Interrupted(f"interrupted by {signal.Signals(signum).name}")


def _images(args: argparse.Namespace) -> list[str]:
    images = list(args.images)
    if args.images_from:
        try:
            with open(args.images_from, encoding="utf-8") as fh:
                images += [ln.strip() for ln in fh if ln.strip() and not ln.lstrip().startswith("#")]
        except OSError as exc:
            raise SmtpgateError(f"cannot read --images-from {args.images_from}: {exc.strerror}") from exc
    if not images:
        raise SmtpgateError("no image to scan: name one or more, or use --images-from FILE")
    return images


def _scan_command(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from smtpgate import gate
    from smtpgate.model import ScanResult, TargetInfo, exit_code
    from smtpgate.report import ReportMeta, run_exit_code

    started = dt.datetime.now(dt.timezone.utc)
    results: list[ScanResult] = []
    run_errors: list[str] = []
    policy_source = args.policy or "default policy"
    try:
        images = _images(args)
        policy = _policy(args.policy)
        opts = gate.ScanOptions(
            settle_window=args.settle_window, settle_quiet=max(2.0, args.settle_window),
            settle_timeout=args.settle_timeout, greeting_timeout=args.greeting_timeout, boots_init=args.boots_init,
        )
        for ref in images:
            results.append(gate.scan(_target(ref, args), policy, opts))
    except (SmtpgateError, KeyboardInterrupt) as exc:
        message = str(exc) if isinstance(exc, SmtpgateError) else "interrupted by SIGINT"
        run_errors.append(message)
        done = {r.target.ref for r in results}
        for ref in [i for i in args.images if i not in done][:1]:
            results.append(ScanResult(target=TargetInfo(kind="image", ref=ref), errors=(message,)))
    code = EXIT_ERROR if run_errors else exit_code(results)
    meta = ReportMeta(started_at=started, command_line=tuple(argv), policy_source=policy_source,
                      errors=tuple(run_errors), exit_code=code)
    return _report(args, results, meta, run_exit_code(results, meta))


def _policy(path: str | None) -> Any:
    from smtpgate.policy import default_policy, load_policy

    return load_policy(path) if path else default_policy()


def _target(ref: str, args: argparse.Namespace) -> Any:
    from smtpgate.targets.docker import DockerImageTarget

    return DockerImageTarget(ref, pull=args.pull, memory=args.memory, pids=args.pids)


def _report(args: argparse.Namespace, results: list, meta: Any, code: int) -> int:
    """Write every requested report; a report that cannot be written is exit 2."""
    from smtpgate.report import get_report, write_report

    wanted = [("junit", args.junit), ("json", args.json)]
    if args.format == "json":
        wanted.append(("json", "-"))
    failed = False
    for name, path in wanted:
        if not path:
            continue
        try:
            write_report(name, results, meta, path)
        except SmtpgateError as exc:
            print(f"smtpgate: {exc}", file=sys.stderr)
            failed = True
    if not args.quiet:
        sys.stderr.write(get_report("text").render(results, meta))
        sys.stderr.flush()
    return EXIT_ERROR if failed else code


def _cleanup_command(args: argparse.Namespace) -> int:
    from smtpgate.targets.docker import cleanup

    removed = cleanup()
    for line in removed:
        print(f"removed {line}")
    print(f"smtpgate cleanup: {len(removed)} object(s) removed", file=sys.stderr)
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
        print(f"smtpgate: internal error: {type(exc).__name__}: {exc}"
              + ("" if getattr(args, "verbose", False) else " (run with -v for the traceback)"), file=sys.stderr)
        if getattr(args, "verbose", False):
            traceback.print_exc()
        return EXIT_ERROR
    finally:
        signal.signal(signal.SIGTERM, old)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
