"""Benchmark smtpgate against plain docker and nmap on the fixture images.

    ./dev bench [--repeat N] [--images IMG ...] [--against DIR]    (as root; installs nmap)

For each image, N times:
  (a) plain   `docker run -d --network none IMAGE` + `docker rm -f`
  (b) scan    `smtpgate scan IMAGE` (the real CLI, a fresh process each time)
  (c) nmap    `nmap -sT -sV -p- -T4 127.0.0.1` run inside the container's network
              namespace (nsenter), so it sees the same ports smtpgate sees,
              loopback-only ones included; container start/stop not counted
  (d) static  `smtpgate scan IMAGE --static`, when the CLI supports it
Then the VM fixture disks (fixtures/vm/build.sh, when built): `smtpgate scan
--vm DISK --static` (offline) for each, and `smtpgate scan --vm DISK` (booted
under qemu, 1.5-2 min each without KVM) for the first --vm-boot of them.
Prints a table per image with the median and worst of each, the ratios b/a
and c/b, the median settle time smtpgate reported, smtpgate's peak RSS, and
which ports each tool called SMTP. Not a
test: the numbers depend on the machine; the closing notes quote them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LABEL = "smtpgate=bench"


def sh(*cmd: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, capture_output=True, text=True, **kw)


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


AGAINST: Path | None = None  # --against DIR: another checkout of smtpgate, timed beside this one


def smtpgate_cmd(src: Path | None = None) -> list[str]:
    if src is not None:  # another checkout's code, run by this interpreter (its dependencies are the same)
        return ["env", f"PYTHONPATH={src}", sys.executable, "-m", "smtpgate"]
    venv = ROOT / ".venv" / "bin" / "smtpgate"
    return [str(venv)] if venv.exists() else [sys.executable, "-m", "smtpgate"]


def plain(image: str) -> None:
    cid = sh("docker", "run", "-d", "--network", "none", "--label", LABEL, image).stdout.strip()
    sh("docker", "rm", "-f", cid)


def scan(*args: str, src: Path | None = None) -> tuple[int, dict, int]:
    """Exit code, JSON report, peak RSS in KiB (GNU time), of `smtpgate scan ARGS`."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "r.json"
        rss = Path(tmp) / "rss"
        done = subprocess.run(
            ["/usr/bin/time", "-o", str(rss), "-f", "%M", *smtpgate_cmd(src), "scan", *args, "--json", str(report),
             "-q"],
            capture_output=True, text=True,
        )
        data = json.loads(report.read_text()) if report.exists() else {}
        return done.returncode, data, int(rss.read_text().split()[-1])


def smtp_ports(report: dict) -> set[int]:
    return {p for t in report.get("targets", []) for f in t.get("findings", []) if f.get("state") == "listening"
            for p in f.get("ports", [])}


def nmap(image: str) -> tuple[float, set[int], set[int]]:
    """Seconds, ports nmap called SMTP, all open ports (container start excluded)."""
    cid = sh("docker", "run", "-d", "--network", "none", "--label", LABEL, image).stdout.strip()
    try:
        time.sleep(3)  # let it start; not counted
        pid = sh("docker", "inspect", "-f", "{{.State.Pid}}", cid).stdout.strip()
        seconds, done = timed(lambda: sh("nsenter", "-t", pid, "-n", "nmap", "-sT", "-sV", "-p-", "-T4", "-oG", "-",
                                         "127.0.0.1", check=False))
        ports = re.findall(r"(\d+)/open/tcp//([^/]*)/", done.stdout)
        return seconds, {int(p) for p, svc in ports if "smtp" in svc}, {int(p) for p, _ in ports}
    finally:
        sh("docker", "rm", "-f", cid, check=False)


def vm_disks() -> list[Path]:
    """The VM fixture disks of the current build inputs, if built."""
    done = sh("bash", str(ROOT / "fixtures" / "vm" / "build.sh"), "--print-dir", check=False)
    folder = Path(done.stdout.strip()) if done.returncode == 0 and done.stdout.strip() else None
    return sorted(folder.glob("*.qcow2")) if folder and folder.is_dir() else []


def bench_vms(disks: list[Path], boot: int) -> None:
    print(f"\n{'VM disk':24} {'offline':>8} {'booted':>8}  exit offline/booted")
    preferred = sorted(disks, key=lambda d: (d.stem != "postfix-all", d.stem))
    booted = {d for d in preferred if d.stem != "unbootable"}
    booted = set(sorted(booted, key=preferred.index)[:boot])
    for disk in preferred:
        off, (code_off, _, _) = timed(lambda d=disk: scan("--vm", str(d), "--static"))
        on, code_on = float("nan"), "-"
        if disk in booted:
            on, (code_on, _, _) = timed(lambda d=disk: scan("--vm", str(d)))
        print(f"{disk.stem:24} {off:8.1f} {on:8.1f}  {code_off}/{code_on}", flush=True)


def supports_static() -> bool:
    return "--static" in sh(*smtpgate_cmd(), "scan", "--help", check=False).stdout


def stats(values: list[float]) -> tuple[float, float]:
    return statistics.median(values), max(values)


def bench_image(image: str, repeat: int, with_nmap: bool, static: bool) -> dict:
    row: dict = {"image": image, "plain": [], "scan": [], "nmap": [], "static": [], "settle": [], "rss": 0,
                 "against": []}
    for _ in range(repeat):
        row["plain"].append(timed(lambda: plain(image))[0])
        if AGAINST is not None:  # interleaved, so both see the same machine load
            row["against"].append(timed(lambda: scan(image, src=AGAINST))[0])
        seconds, (code, report, rss) = timed(lambda: scan(image))
        row["scan"].append(seconds)
        row["rss"] = max(row["rss"], rss)
        row["code"], row["smtpgate_smtp"] = code, smtp_ports(report)
        row["settle"] += [t["timings"]["settle"] for t in report.get("targets", []) if "settle" in t.get("timings", {})]
        if static:
            row["static"].append(timed(lambda: scan(image, "--static"))[0])
    if with_nmap:
        for _ in range(max(1, repeat // 2)):
            seconds, smtp, open_ports = nmap(image)
            row["nmap"].append(seconds)
            row["nmap_smtp"], row["open"] = smtp, open_ports
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--images", nargs="*")
    ap.add_argument("--no-nmap", action="store_true")
    ap.add_argument("--vm-boot", type=int, default=1, metavar="N",
                    help="boot this many VM fixture disks (default 1: postfix-all); 0 = offline VM scans only")
    ap.add_argument("--no-vm", action="store_true", help="no VM scans at all")
    ap.add_argument("--against", type=Path, metavar="DIR",
                    help="also time the scan of another checkout (e.g. /work/main), interleaved: column 'vs'")
    args = ap.parse_args(argv)
    global AGAINST
    AGAINST = args.against
    if os.geteuid() != 0:
        print("bench: run as root (./dev bench)", file=sys.stderr)
        return 2
    with_nmap = not args.no_nmap and shutil.which("nmap") is not None
    expected = __import__("yaml").safe_load((ROOT / "fixtures" / "expected.yaml").read_text())["fixtures"]
    images = args.images or [v["image"] for v in expected.values()]
    static = supports_static()
    rows = []
    print(f"{'image':40} {'plain a':>9} {'scan b':>9} {'b-a':>6} {'b/a':>5} {'nmap c':>8} {'c/b':>5} "
          f"{'static':>7} {'settle':>6} {'vs':>6} {'rss MiB':>7}  smtp: smtpgate / nmap")
    for image in images:
        row = bench_image(image, args.repeat, with_nmap, static)
        rows.append(row)
        a, a_max = stats(row["plain"])
        b, b_max = stats(row["scan"])
        c = stats(row["nmap"])[0] if row["nmap"] else float("nan")
        st = stats(row["static"])[0] if row["static"] else float("nan")
        settle = stats(row["settle"])[0] if row["settle"] else float("nan")
        vs = stats(row["against"])[0] if row["against"] else float("nan")
        print(f"{image.split('/')[-1]:40} {a:6.2f}/{a_max:<4.1f} {b:5.2f}/{b_max:<4.1f} {b - a:5.2f} {b / a:5.1f} "
              f"{c:8.2f} {c / b:5.1f} {st:7.2f} {settle:6.2f} {vs:6.2f} {row['rss'] / 1024:7.1f}  "
              f"{sorted(row['smtpgate_smtp'])} / {sorted(row.get('nmap_smtp', []))}", flush=True)
    total_b = sum(statistics.median(r["scan"]) for r in rows)
    total_a = sum(statistics.median(r["plain"]) for r in rows)
    print(f"\nfixture set: plain {total_a:.1f} s, smtpgate {total_b:.1f} s (median per image, summed)")
    if with_nmap:
        total_c = sum(statistics.median(r["nmap"]) for r in rows)
        print(f"nmap {total_c:.1f} s; smtpgate/nmap = {total_b / total_c:.2f}")
    over = [statistics.median(r["scan"]) - statistics.median(r["plain"]) for r in rows]
    print(f"scan minus plain: median {statistics.median(over):.2f} s, worst {max(over):.2f} s")
    if AGAINST is not None:
        diff = [statistics.median(r["scan"]) - statistics.median(r["against"]) for r in rows]
        print(f"scan minus {AGAINST}'s scan: median {statistics.median(diff):+.2f} s, per image "
              + ", ".join(f"{r['image'].split('/')[-1]} {d:+.2f}" for r, d in zip(rows, diff)))
    sh("docker", "rm", "-f", *sh("docker", "ps", "-aq", "--filter", f"label={LABEL}").stdout.split(), check=False)
    disks = [] if args.no_vm else vm_disks()
    if disks:
        bench_vms(disks, args.vm_boot)
    elif not args.no_vm:
        print("\nno VM fixture disks built (fixtures/vm/build.sh): VM scans not timed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
