"""Capture the live-system listing (smtpgate.static.live.listing_script) of a booted VM fixture.

    .venv/bin/python tests/unit/data/vm/capture.py /var/cache/smtpgate-fixtures/vm/<hash>/postfix-all.qcow2

writes tests/unit/data/vm/postfix-all.services.txt: the booted guest's own output, as the
ssh:// and --vm scans read it. The disk is booted in qemu's snapshot mode (never changed).
"""

from __future__ import annotations

import sys
from pathlib import Path

from smtpgate.targets import ssh
from smtpgate.targets.vm import VmOptions, VmTarget


def main(disk: str) -> None:
    with VmTarget(disk, VmOptions()) as target:
        assert target.session is not None
        text = target.session.script(ssh.SERVICES_SCRIPT)
    name = Path(disk).name.removesuffix(".qcow2")
    out = Path(__file__).parent / f"{name}.services.txt"
    out.write_text(text)
    print(f"{out}: {len(text)} characters")


if __name__ == "__main__":
    main(sys.argv[1])
