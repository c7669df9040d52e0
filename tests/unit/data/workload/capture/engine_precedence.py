"""Capture how the engine combines an image's config with a RunSpec's create arguments.

Creates (never starts) one container per case from smtpgate-fixture/app-needs-env
(ENTRYPOINT /usr/local/bin/app, CMD python3 -m http.server 8000, ENV PATH...,
WORKDIR /srv/app), records the image's Config and each container's Config
(Entrypoint, Cmd, Env, User, WorkingDir), removes the containers, and writes
engine-precedence.json beside this script. Run from the repository root:

    .venv/bin/python tests/unit/data/workload/capture/engine_precedence.py
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import docker

from smtpgate.workload.spec import RunSpec

IMAGE = "smtpgate-fixture/app-needs-env:latest"
CASES = {
    "nothing": RunSpec(IMAGE),
    "cmd": RunSpec(IMAGE, cmd=("sleep", "9")),
    "entrypoint": RunSpec(IMAGE, entrypoint=("/bin/sh",)),
    "entrypoint-and-cmd": RunSpec(IMAGE, entrypoint=("/bin/sh",), cmd=("-c", "exit 0")),
    "entrypoint-reset": RunSpec(IMAGE, entrypoint=(), cmd=("python3", "-V")),
    "env-user-workdir": RunSpec(IMAGE, env=(("DATABASE_URL", "postgres://x@db/x"), ("PATH", "/usr/bin")),
                                user="1000:1000", workdir="/tmp"),
}


def main() -> None:
    client = docker.from_env()
    image = client.images.get(IMAGE)
    keep = ("Entrypoint", "Cmd", "Env", "User", "WorkingDir")
    out = {"engine": client.version().get("Version"),
           "image": {k: image.attrs["Config"].get(k) for k in keep}, "cases": {}}
    for name, spec in CASES.items():
        container = client.containers.create(image.id, name=f"smtpgate-capture-{secrets.token_hex(4)}",
                                             labels={"smtpgate": "capture"}, network_disabled=True,
                                             **spec.create_kwargs())
        try:
            out["cases"][name] = {"create": spec.create_kwargs(),
                                  "config": {k: container.attrs["Config"].get(k) for k in keep}}
        finally:
            container.remove(force=True)
    path = Path(__file__).with_name("engine-precedence.json")
    path.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
