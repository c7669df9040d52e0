"""Nested engines ("machines") for testing smtpgate on engines other than the host's.

A machine is a container on the host's engine that runs an engine of its own:
docker.io 28.5 (Debian sid) with overlay2 or with the containerd image store,
docker.io 26.1 (trixie), Podman 5.8 (sid) through its Docker-compatible API, or
docker 28.5 behind `--tlsverify` on TCP 2376 like GitLab's `docker:dind`.
The image comes from ``fixtures/machines/Dockerfile`` (engine packages from
another suite of the mirror the local Debian base uses; no registry).

What makes it behave like an engine on a real host (DESIGN.md, "Engines"):

- ``--pid host``: the engine reports host pids, so smtpgate's host path
  (/proc, setns) works as it does on a GitHub runner;
- its storage lives in ``/var/lib/smtpgate-machines/<name>`` bind-mounted at the
  *same* path inside, so the layer and snapshot paths the engine reports
  (GraphDriver, mountinfo ``lowerdir=``) can be read in place from the host;
  the host's own ``/var/lib/docker`` is never touched. The directory is kept
  between runs as a cache of the loaded images (like the fixture images);
- every capability the host's bounding set has except CAP_SYS_RESOURCE
  (``--privileged`` fails on this host), seccomp and AppArmor unconfined, the
  host's cgroup tree;
- its API socket in ``/run/smtpgate-machines/<name>/`` on the host.

The machine carries the ``smtpgate`` label and the owner labels of the process
that starts it, so ``smtpgate cleanup`` spares it while that process lives and
removes it after a crash; ``Machine`` removes it on every path.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE_DIR = ROOT / "fixtures" / "machines"
DATA_ROOT = Path(os.environ.get("SMTPGATE_MACHINES_DATA", "/var/lib/smtpgate-machines"))  # storage of each engine
RUN_ROOT = Path("/run/smtpgate-machines")
HOST_ENGINE = "unix:///var/run/docker.sock"
LABEL = "smtpgate"

# Capabilities docker 20.10 knows (it refuses BPF, PERFMON, CHECKPOINT_RESTORE),
# less SYS_RESOURCE, which this host's bounding set lacks.
CAPS = (
    "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE "
    "NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT "
    "SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE "
    "AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ"
).split()


@dataclass(frozen=True)
class Kind:
    """One engine to test: how to build its machine image and start it."""

    name: str
    suite: str  # Debian suite the engine packages come from
    packages: str
    env: dict[str, str] = field(default_factory=dict)
    description: str = ""

    @property
    def image(self) -> str:
        return f"smtpgate-machine/{self.suite}-{self.packages.split()[0]}:latest"

    @property
    def engine(self) -> str:
        return self.env.get("ENGINE", "docker")


DOCKER_SID = ("sid", "docker.io containerd runc")
KINDS = {
    k.name: k
    for k in (
        Kind("docker-28", *DOCKER_SID, {"ENGINE": "docker", "STORE": "overlay2"},
             "docker.io 28.5 (Debian sid), overlay2"),
        Kind("docker-28-containerd", *DOCKER_SID,
             {"ENGINE": "docker", "STORE": "containerd", "DOCKER_MIN_API_VERSION": "1.44"},
             "docker.io 28.5 (Debian sid), containerd image store and API >= 1.44 (Docker 29's defaults)"),
        Kind("podman-5", "sid", "podman runc conmon netavark catatonit", {"ENGINE": "podman"},
             "podman 5.8 (Debian sid), Docker-compatible API"),
        Kind("docker-26", "trixie", "docker.io containerd runc", {"ENGINE": "docker", "STORE": "overlay2"},
             "docker.io 26.1 (Debian trixie), overlay2"),
        Kind("docker-28-tls", *DOCKER_SID, {"ENGINE": "docker", "STORE": "overlay2", "TLS": "1"},
             "docker.io 28.5 with --tlsverify on tcp 2376 (GitLab docker:dind), through the helper"),
    )
}


def _host_env(host: str = HOST_ENGINE) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["DOCKER_HOST"] = host
    return env


def _docker(*args: str, input: bytes | None = None, timeout: float = 600, check: bool = True,
            host: str = HOST_ENGINE) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], input=input, capture_output=True, timeout=timeout,
                          check=check, env=_host_env(host))


def build(kind: Kind) -> None:
    """Build (or take from the build cache) the machine image of ``kind``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env.update(DOCKER_HOST=HOST_ENGINE, DOCKER_BUILDKIT="0")
    done = subprocess.run(
        ["docker", "build", "-q", "--label", f"smtpgate.fixture-base=machine-{kind.suite}",
         "--build-arg", f"SUITE={kind.suite}", "--build-arg", f"PACKAGES={kind.packages}",
         "-t", kind.image, str(DOCKERFILE_DIR)],
        capture_output=True, text=True, env=env, timeout=1200)
    if done.returncode:
        raise RuntimeError(f"building {kind.image} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")


def _owner_labels() -> list[str]:
    return ["--label", LABEL, "--label", f"{LABEL}.owner-pid={os.getpid()}",
            "--label", f"{LABEL}.owner-host={socket.gethostname()}", "--label", f"{LABEL}.machine=1"]


class Machine:
    """A running machine; use as a context manager (removed on every path)."""

    def __init__(self, kind: Kind):
        self.kind = kind
        self.name = f"smtpgate-machine-{kind.name}-{os.getpid()}"
        self.data = DATA_ROOT / kind.name
        self.run = RUN_ROOT / f"{kind.name}-{os.getpid()}"
        self.tls_dir: Path | None = None
        self.address = ""

    # -- life cycle ---------------------------------------------------------
    def __enter__(self) -> Machine:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 90) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        self.run.mkdir(parents=True, exist_ok=True)
        args = ["run", "-d", "--name", self.name, *_owner_labels(), "--pid", "host",
                "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
                "-v", f"{self.data}:{self.data}", "-v", f"{self.run}:/run/smtpgate-machine",
                "-v", "/sys/fs/cgroup:/sys/fs/cgroup", "--tmpfs", "/run:exec", "--tmpfs", "/tmp",
                "-e", f"DATA={self.data}"]
        for cap in CAPS:
            args += ["--cap-add", cap]
        for key, value in self.kind.env.items():
            args += ["-e", f"{key}={value}"]
        if self.kind.env.get("TLS") == "1":  # reached on loopback, as a dind service is reached by name
            args += ["-p", "127.0.0.1::2376"]
        _docker(*args, self.kind.image)
        if self.kind.env.get("TLS") == "1":  # the engine waits for its certificate
            port = _docker("port", self.name, "2376/tcp").stdout.decode().split(":")[-1].strip()
            self.address = f"127.0.0.1:{port}"
            self.tls_dir = self.run / "tls"
            _make_certs(self.tls_dir)
        deadline = time.monotonic() + timeout
        while not self._answers():
            state = _docker("inspect", "-f", "{{.State.Running}}", self.name, check=False).stdout.decode().strip()
            if state != "true" or time.monotonic() > deadline:
                logs = _docker("logs", "--tail", "30", self.name, check=False)
                raise RuntimeError(f"machine {self.kind.name} did not come up:\n"
                                   f"{logs.stdout.decode(errors='replace')}{logs.stderr.decode(errors='replace')}")
            time.sleep(0.2)

    def stop(self) -> None:
        _docker("rm", "-f", "-v", self.name, check=False, timeout=120)
        shutil.rmtree(self.run, ignore_errors=True)

    def _answers(self) -> bool:
        if self.kind.env.get("TLS") == "1" and self.tls_dir is None:
            return False
        try:
            return bool(self.client().ping())
        except Exception:  # noqa: BLE001 - not up yet, whatever the client says
            return False

    # -- how a client reaches it -------------------------------------------
    @property
    def docker_host(self) -> str:
        if self.tls_dir is not None:
            return f"tcp://{self.address}"
        sock = "podman.sock" if self.kind.engine == "podman" else "docker.sock"
        return f"unix://{self.run}/{sock}"

    def env(self) -> dict[str, str]:
        """The environment a docker client (smtpgate) needs to reach this engine."""
        env = {"DOCKER_HOST": self.docker_host}
        if self.tls_dir is not None:
            env.update(DOCKER_TLS_VERIFY="1", DOCKER_CERT_PATH=str(self.tls_dir / "client"))
        return env

    def docker(self, *args: str, **kw) -> subprocess.CompletedProcess:
        """The host's docker CLI against this machine's engine (only where the CLI's API version is
        one the engine accepts: Debian bookworm's docker.io 20.10 speaks 1.41, which the containerd
        machine, like Docker 29, refuses; the harness itself uses client())."""
        return _docker(*self._tls_args(), *args, host=self.docker_host, **kw)

    def client(self) -> Any:
        """A Docker SDK client of this machine's engine, the API version negotiated (what smtpgate
        does), so the harness works whatever the host's docker CLI version is."""
        import docker
        from docker.tls import TLSConfig

        tls = None
        if self.tls_dir is not None:
            client_dir = self.tls_dir / "client"
            tls = TLSConfig(client_cert=(str(client_dir / "cert.pem"), str(client_dir / "key.pem")),
                                       ca_cert=str(client_dir / "ca.pem"), verify=True)
        if tls is None:
            return docker.DockerClient(base_url=self.docker_host, version="auto", timeout=600)
        # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE replace the machine's CA (psf/requests#3829)
        from smtpgate.engines.docker import CA_BUNDLE_VARIABLES  # the variables smtpgate's own client ignores

        saved = {k: os.environ.pop(k) for k in CA_BUNDLE_VARIABLES if k in os.environ}
        try:
            client = docker.DockerClient(base_url=self.docker_host, version="auto", tls=tls, timeout=600)
        finally:
            os.environ.update(saved)
        client.api.trust_env = False
        return client

    # -- images -------------------------------------------------------------
    def load(self, refs: Sequence[str]) -> list[str]:
        """Copy the host's images ``refs`` into this engine (docker save | load),
        skipping those loaded before from the same host image id (the machine's
        storage is kept between runs). Returns the refs copied now."""
        ids = {ref: _docker("image", "inspect", "-f", "{{.Id}}", ref).stdout.decode().strip() for ref in refs}
        record = self.data / "loaded.json"
        try:
            loaded = json.loads(record.read_text())
        except (OSError, ValueError):
            loaded = {}
        client = self.client()
        todo = [ref for ref in refs if loaded.get(ref) != ids[ref] or not self._has_image(client, ref)]
        if todo:
            saved = subprocess.Popen(["docker", "-H", HOST_ENGINE, "save", *todo], stdout=subprocess.PIPE,
                                     env=_host_env())
            error = ""
            try:
                for line in client.api.load_image(saved.stdout, quiet=True):  # the stream, never in memory
                    error = error or line.get("error", "")
            except Exception as exc:  # noqa: BLE001 - said below with the save's status
                error = str(exc)
            finally:
                saved.stdout.close()  # type: ignore[union-attr]
                saved.wait(60)
            if error or saved.returncode:
                raise RuntimeError(f"loading images into {self.kind.name} failed (save exit {saved.returncode}): "
                                   f"{error[-2000:]}")
            loaded.update({ref: ids[ref] for ref in todo})
            record.write_text(json.dumps(loaded, indent=1, sort_keys=True))
        return todo

    @staticmethod
    def _has_image(client: Any, ref: str) -> bool:
        import docker

        try:
            client.images.get(ref)
        except docker.errors.ImageNotFound:
            return False
        return True

    def _tls_args(self) -> list[str]:
        if self.tls_dir is None:
            return []
        return ["--tlsverify", "--tlscacert", str(self.tls_dir / "client/ca.pem"),
                "--tlscert", str(self.tls_dir / "client/cert.pem"), "--tlskey", str(self.tls_dir / "client/key.pem")]


def _make_certs(tls: Path) -> None:
    """A CA, a server certificate for the machine and a client certificate, as
    the docker:dind image makes them (openssl on the host)."""
    (tls / "client").mkdir(parents=True, exist_ok=True)

    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=tls, check=True, capture_output=True, timeout=60)

    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=smtpgate test CA",
        "-keyout", "ca-key.pem", "-out", "ca.pem")
    for who, ext in (("server", "subjectAltName=IP:127.0.0.1,DNS:docker\nextendedKeyUsage=serverAuth"),
                     ("client", "extendedKeyUsage=clientAuth")):
        ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={who}", "-keyout", f"{who}-key.pem",
            "-out", f"{who}.csr")
        (tls / f"{who}.ext").write_text(ext + "\n")
        ssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
            "-days", "2", "-extfile", f"{who}.ext", "-out", f"{who}-cert.pem")
    for src, dst in (("ca.pem", "ca.pem"), ("client-cert.pem", "cert.pem"), ("client-key.pem", "key.pem")):
        shutil.copy(tls / src, tls / "client" / dst)


def labelled_on(m: Machine, owner_pid: int) -> list[str]:
    """Containers on the machine's engine labelled as made by ``owner_pid``."""
    listed = m.client().containers.list(all=True, filters={"label": f"{LABEL}.owner-pid={owner_pid}"})
    return [c.short_id for c in listed]


@contextlib.contextmanager
def machine(name: str, images: Sequence[str] = ()) -> Iterator[Machine]:
    """Build, start and fill the machine ``name``; removed on the way out."""
    kind = KINDS[name]
    build(kind)
    with Machine(kind) as m:
        if images:
            m.load(images)
        yield m
