"""Capture /proc/<pid>/mountinfo of a running container's PID 1, which
tests/unit/test_engines.py parses for the image's layer directories. Run as
root with the fixtures built:

    .venv/bin/python tests/unit/data/mountinfo/capture.py NAME

NAME names the engine it was captured on (docker-overlay2, docker-containerd,
...); DOCKER_HOST picks the engine (a nested one for the containerd store).
"""

import sys
import time
from pathlib import Path

from smtpgate.targets.docker import DockerImageTarget

HERE = Path(__file__).parent


def main(name: str) -> None:
    target = DockerImageTarget("smtpgate-fixture/postfix-all:latest")
    with target:
        time.sleep(1.0)
        text = Path(f"/proc/{target.pid}/mountinfo").read_text()
        layers = target.engine.image_layers(target.image) if target.engine and target.image else None
    (HERE / f"{name}.mountinfo").write_text(text)
    (HERE / f"{name}.graphdriver-layers").write_text("\n".join(layers or []) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
