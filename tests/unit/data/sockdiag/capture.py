"""Capture the NETLINK_SOCK_DIAG replies tests/unit/test_sockdiag.py parses,
with /proc/<pid>/net/tcp{,6} of the same moment. Run as root with the fixtures:

    .venv/bin/python tests/unit/data/sockdiag/capture.py
"""

import socket
import time
from pathlib import Path

from smtpgate.collect import sockdiag
from smtpgate.targets.docker import DockerImageTarget, engine

HERE = Path(__file__).parent


def main() -> None:
    for name in ("postfix-all", "postfix-loopback"):
        target = DockerImageTarget(f"smtpgate-fixture/{name}", client=engine())
        with target:
            time.sleep(1.5)
            diag = target.dialler().sock_diag()
            try:
                for family, suffix in ((socket.AF_INET, "4"), (socket.AF_INET6, "6")):
                    diag.sock.send(sockdiag.request(family, 1))
                    reply = b""
                    while True:
                        chunk = diag.sock.recv(65536)
                        reply += chunk
                        if sockdiag.parse(chunk, 1)[1]:
                            break
                    (HERE / f"{name}.{suffix}.bin").write_bytes(reply)
            finally:
                diag.close()
            for file in ("tcp", "tcp6"):
                (HERE / f"{name}.{file}").write_text(Path(f"/proc/{target.pid}/net/{file}").read_text())


if __name__ == "__main__":
    main()
