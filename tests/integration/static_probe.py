"""Run static analysis of one image in a fresh process and report what it cost.

    python -m tests.integration.static_probe IMAGE auto|export

Prints JSON: seconds, peak RSS (KiB, resource.getrusage), every absolute path
opened while the image was read (an audit hook on "open"; relative opens are
the openat() walks inside layer directories), the facts' evidence texts and
problems. Used by test_static.py for the symlink and large-file fixtures.
"""

from __future__ import annotations

import json
import resource
import sys
import time


def _peak_rss_kib() -> int:
    """VmHWM: this program's own peak since exec. Not getrusage's ru_maxrss, which
    Linux carries over fork and exec from the parent (a pytest process that has
    grown to hundreds of MiB would be counted)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main(ref: str, method: str) -> None:
    import docker

    from smtpgate.static import analyse, image_config, image_filesystem, static_findings

    client = docker.from_env()
    image = client.images.get(ref)
    config = image_config(image.attrs)
    opened: list[str] = []
    recording = [True]  # off before the probe reads its own /proc/self/status

    def hook(event: str, args: tuple) -> None:
        if recording[0] and event == "open" and isinstance(args[0], str) and args[0].startswith("/"):
            opened.append(args[0])

    before = _peak_rss_kib()
    started = time.monotonic()
    sys.addaudithook(hook)
    with image_filesystem(client, image.id, config=config, method=method) as fs:
        facts = analyse(fs, image_config=config)
        name = fs.name
    seconds = time.monotonic() - started
    recording[0] = False
    texts = [e.text for f in static_findings(facts) for e in f.evidence]
    print(json.dumps({
        "seconds": seconds, "rss_before_kib": before,
        "peak_rss_kib": _peak_rss_kib(),
        "opened": sorted(set(opened)), "evidence": texts, "problems": list(facts.problems), "source": name,
        "findings": [(f.software.id, f.state.value) for f in static_findings(facts)],
    }))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
