"""Every fixture on every engine users run: `./dev test-engines`.

    ./dev test-engines [--engines NAME ...] [--repeat N] [--images NAME ...] [--markdown FILE]

For each engine (tests/machines.py: docker-28, docker-28-containerd, podman-5,
docker-26, docker-28-tls; the host's own engine as `host`), a nested machine
is started, the fixture images are copied into it, and every fixture of
fixtures/expected.yaml is scanned N times normally and N times with
`--static`; `docker-28-tls` is reached over TCP with --tlsverify, the way a
GitLab job reaches its docker:dind service, and scanned through the helper
container. Prints one table (verdicts as expected / all, median normal scan,
median `--static`, the method used) and, with --markdown, writes it as a
Markdown table (docs/engines.md holds the last one measured). Exit 1 when any
verdict differs from expected.yaml. Needs root.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from smtpgate.targets.helper import DEFAULT_IMAGE as DEFAULT_HELPER_IMAGE  # noqa: E402
from tests import machines  # noqa: E402

EXPECTED = yaml.safe_load((ROOT / "fixtures" / "expected.yaml").read_text())["fixtures"]
DEFAULT_ENGINES = ("host", "docker-28", "docker-28-containerd", "podman-5", "docker-26", "docker-28-tls")


def smtpgate_cmd() -> list[str]:
    venv = ROOT / ".venv" / "bin" / "python"
    return [str(venv) if venv.exists() else sys.executable, "-m", "smtpgate"]


def scan(env: dict[str, str], *args: str) -> tuple[int, float, str]:
    """Exit code, seconds and the report's method of one `smtpgate scan`."""
    import json

    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "r.json"
        start = time.perf_counter()
        done = subprocess.run([*smtpgate_cmd(), "scan", *args, "--json", str(report), "-q", "--pull", "never"],
                              env=env, capture_output=True, text=True, cwd=ROOT, timeout=600)
        secs = time.perf_counter() - start
        method = ""
        if report.exists():
            targets = json.loads(report.read_text()).get("targets") or [{}]
            method = targets[0].get("method", "")
        if done.returncode not in (0, 1, 2):
            print(done.stderr[-2000:], file=sys.stderr)
        return done.returncode, secs, method


def run_engine(name: str, env: dict[str, str], fixtures: list[str], repeat: int, extra: tuple[str, ...]) -> dict:
    ok = total = 0
    normal: list[float] = []
    static: list[float] = []
    methods: set[str] = set()
    wrong: list[str] = []
    for fixture in fixtures:
        want = EXPECTED[fixture]
        for _ in range(repeat):
            code, secs, method = scan(env, want["image"], *extra)
            normal.append(secs)
            methods.add(method)
            total += 1
            ok += code == want["exit"]
            if code != want["exit"]:
                wrong.append(f"{fixture}: exit {code}, expected {want['exit']}")
            if "static_exit" in want:
                code, secs, _ = scan(env, want["image"], "--static")
                static.append(secs)
                total += 1
                ok += code == want["static_exit"]
                if code != want["static_exit"]:
                    wrong.append(f"{fixture} --static: exit {code}, expected {want['static_exit']}")
        print(f"  {name}: {fixture} done", file=sys.stderr)
    return {"engine": name, "ok": ok, "total": total, "normal": statistics.median(normal) if normal else 0.0,
            "static": statistics.median(static) if static else 0.0, "method": ",".join(sorted(m for m in methods if m)),
            "wrong": wrong}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--engines", nargs="+", default=list(DEFAULT_ENGINES),
                    choices=("host", *machines.KINDS), metavar="NAME")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--images", nargs="+", default=sorted(n for n in EXPECTED if EXPECTED[n].get("machines", True)),
                    metavar="FIXTURE")
    ap.add_argument("--markdown", metavar="FILE")
    args = ap.parse_args(argv)
    base = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    base["PYTHONPATH"] = str(ROOT)
    refs = [EXPECTED[f]["image"] for f in args.images]
    rows = []
    for name in args.engines:
        print(f"== {name}", file=sys.stderr)
        if name == "host":
            rows.append(run_engine(name, base, args.images, args.repeat, ()))
            continue
        kind = machines.KINDS[name]
        start = time.perf_counter()
        with machines.machine(name, refs) as m:
            print(f"  machine up and filled in {time.perf_counter() - start:.0f} s", file=sys.stderr)
            extra: tuple[str, ...] = ("--method", "helper") if kind.env.get("TLS") == "1" else ()
            if extra:  # a remote engine starts empty: the helper image (the tool image) has to be there too
                m.load([os.environ.get("SMTPGATE_HELPER_IMAGE") or DEFAULT_HELPER_IMAGE])
            rows.append(run_engine(name, {**base, **m.env()}, args.images, args.repeat, extra))
    lines = ["| engine | verdicts as expected | median scan | median `--static` | method |",
             "| --- | --- | --- | --- | --- |"]
    descriptions = {"host": "host engine (docker.io 20.10, overlay2)",
                    **{k: v.description for k, v in machines.KINDS.items()}}
    for row in rows:
        lines.append(f"| {descriptions[row['engine']]} | {row['ok']}/{row['total']} | {row['normal']:.2f} s | "
                     f"{row['static']:.2f} s | {row['method']} |")
    table = "\n".join(lines)
    print(table)
    for row in rows:
        for line in row["wrong"]:
            print(f"WRONG {row['engine']}: {line}")
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
    return 1 if any(row["wrong"] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
