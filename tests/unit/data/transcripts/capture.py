"""Capture a fixture's SMTP transcript for test_smtp_probe.py (run as root, on the machine's engine).

    python3 tests/unit/data/transcripts/capture.py FIXTURE PORT

Starts smtpgate-fixture/FIXTURE with --network none (labelled smtpgate, removed after),
waits for PORT to answer inside the container's network namespace (entered with
nsenter), and writes FIXTURE.json beside this file: the greeting as received and the
reply to each of EHLO, LHLO and HELO on a fresh connection, base64.
"""

import base64
import datetime
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

CLIENT = r"""
import socket, sys, time, base64, json
port, verb = int(sys.argv[1]), sys.argv[2]
def reply(s):
    data = b""
    s.settimeout(10)
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk
        lines = data.split(b"\r\n")
        if any(len(l) >= 4 and l[3:4] == b" " for l in lines[:-1]):
            return data
s = socket.create_connection(("127.0.0.1", port), timeout=10)
greeting = reply(s)
out = {"greeting": base64.b64encode(greeting).decode()}
if verb:
    s.sendall(verb.encode() + b" probe.invalid\r\n")
    out["reply"] = base64.b64encode(reply(s)).decode()
s.sendall(b"QUIT\r\n")
print(json.dumps(out))
"""


def main(fixture: str, port: int) -> None:
    image = f"smtpgate-fixture/{fixture}:latest"
    labels = ["--label", "smtpgate=capture", "--label", f"smtpgate.owner-pid={os.getpid()}",
              "--label", f"smtpgate.owner-host={socket.gethostname()}"]  # `smtpgate cleanup` spares it
    cid = subprocess.run(["docker", "run", "-d", "--rm", "--network", "none", *labels, image],
                         check=True, capture_output=True, text=True).stdout.strip()
    try:
        pid = subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", cid], check=True, capture_output=True,
                             text=True).stdout.strip()

        def talk(verb: str) -> dict:
            for _ in range(60):
                run = subprocess.run(["nsenter", "-t", pid, "-n", sys.executable, "-c", CLIENT, str(port), verb],
                                     capture_output=True, text=True)
                if run.returncode == 0:
                    return json.loads(run.stdout)
                time.sleep(0.5)
            raise SystemExit(f"{fixture}: port {port} never answered: {run.stderr}")

        first = talk("")
        replies = {verb: talk(verb)["reply"] for verb in ("EHLO", "LHLO", "HELO")}
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True)
    record = {
        "source": f"fixture image {image}, port {port}, captured {datetime.date.today().isoformat()}",
        "tls": False,
        "greet_delay": 0,
        "greeting": first["greeting"],
        "replies": replies,
    }
    out = Path(__file__).with_name(f"{fixture}.json")
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(out, base64.b64decode(first["greeting"]))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
