"""Run the container fixture set many times and count verdicts that differ
from fixtures/expected.yaml (exit code per image), sequentially or with
several scans at once.

    python bench/stability.py --runs 20 --jobs 4       (as root; ./dev setup first)
    python bench/stability.py --runs 2 --jobs 1 --jobs 4 --images 20   # timing of --jobs

Each run is one `smtpgate scan IMG... --jobs N --json` over the whole set;
the per-image verdict is read from the JSON report.
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
VERDICT_OF_EXIT = {0: "pass", 1: "fail", 2: "error"}


def smtpgate_cmd() -> list[str]:
    venv = ROOT / ".venv" / "bin" / "smtpgate"
    return [str(venv)] if venv.exists() else [sys.executable, "-m", "smtpgate"]


def one_run(images: list[str], jobs: int) -> tuple[float, list[str]]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        start = time.perf_counter()
        subprocess.run([*smtpgate_cmd(), "scan", *images, "--jobs", str(jobs), "--json", str(out), "-q"],
                       capture_output=True, check=False)
        seconds = time.perf_counter() - start
        report = json.loads(out.read_text())
    return seconds, [t["verdict"] for t in report["targets"]]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--jobs", type=int, action="append", help="repeatable; default 4")
    ap.add_argument("--images", type=int, default=0, help="scan this many images (the set repeated); 0 = the set")
    args = ap.parse_args()
    expected = yaml.safe_load((ROOT / "fixtures" / "expected.yaml").read_text())["fixtures"]
    names = sorted(expected)
    if args.images:
        names = [names[i % len(names)] for i in range(args.images)]
    images = [expected[n]["image"] for n in names]
    want = [VERDICT_OF_EXIT[expected[n]["exit"]] for n in names]
    for jobs in args.jobs or [4]:
        wrong: collections.Counter[str] = collections.Counter()
        times = []
        for run in range(args.runs):
            seconds, got = one_run(images, jobs)
            times.append(seconds)
            for name, g, w in zip(names, got, want):
                if g != w:
                    wrong[f"{name}: {g} (expected {w})"] += 1
            print(f"jobs {jobs} run {run + 1}/{args.runs}: {seconds:.1f} s, "
                  f"{sum(g == w for g, w in zip(got, want))}/{len(want)} as expected", flush=True)
        total = args.runs * len(images)
        print(f"== jobs {jobs}: {args.runs} runs x {len(images)} images = {total} verdicts, "
              f"{sum(wrong.values())} unexpected; median run {sorted(times)[len(times) // 2]:.1f} s")
        for line, count in wrong.most_common():
            print(f"   {count} x {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
