"""The Docker Engine API through the docker SDK: Docker itself and Podman's
Docker-compatible service (``podman system service``).

The only module of smtpgate that imports the docker SDK. The API version is
never pinned: the client negotiates (Docker 29 refuses clients below 1.44,
Debian bookworm's 20.10 speaks 1.41). Errors are translated by status code
(`translate`), never by message text.

Where Podman differs, measured with Podman 5.8: force-remove sends SIGTERM and
waits 10 s for a PID 1 that ignores it, so containers are killed first
(`remove`); its GraphDriver is ``overlay`` (not ``overlay2``) with real
LowerDir/UpperDir, read in place like Docker's (`Engine.image_layers`).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from smtpgate.engines.base import ContainerSpec, Engine, Image, Listed
from smtpgate.errors import Conflict, EngineError, EngineGone, ObjectNotFound

# Storage drivers that honour --storage-opt size on any backing filesystem;
# overlay2/overlay honour it only on xfs mounted with pquota (tried, see DockerImageTarget)
QUOTA_DRIVERS = {"btrfs", "zfs", "devicemapper", "windowsfilter"}
EXEC_POLL = 0.5  # seconds between looks at the container while an exec runs


_ENV_LOCK = threading.Lock()
CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def connect(timeout: float = 60.0) -> DockerEngine:
    """The engine DOCKER_HOST names (or the local socket), asked for its version.

    With DOCKER_TLS_VERIFY/DOCKER_CERT_PATH the engine's certificate is checked
    against DOCKER_CERT_PATH's ca.pem, as the docker CLI does. requests lets
    REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE (set on many CI machines) replace a
    session's CA on every request (psf/requests#3829), which fails every call to
    a dind engine with a private CA; so for such an engine the client ignores
    those variables (and, with them, proxy variables: a dind engine is reached
    directly)."""
    import docker
    from docker.utils import kwargs_from_env

    try:
        params = kwargs_from_env()
        tls = params.get("tls")
        if tls is None or not getattr(tls, "ca_cert", None):
            return DockerEngine(docker.DockerClient(**params, timeout=int(timeout), version="auto"))
        with _ENV_LOCK:  # the version is asked for while the client is made
            saved = {k: os.environ.pop(k) for k in CA_BUNDLE_VARIABLES if k in os.environ}
            try:
                client = docker.DockerClient(**params, timeout=int(timeout), version="auto")
            finally:
                os.environ.update(saved)
        client.api.trust_env = False
        return DockerEngine(client)
    except Exception as exc:  # the SDK raises DockerException or the transport's errors
        raise translate("Docker engine not reachable", exc) from exc


def as_engine(client: Any) -> Engine:
    """An Engine from an Engine or a docker SDK client (tests and scripts hold the latter)."""
    return client if isinstance(client, Engine) else DockerEngine(client)


def translate(what: str, exc: BaseException) -> EngineError:
    """An SDK or transport error as an EngineError subclass, by status code:
    404 ObjectNotFound, 409 Conflict, no answer at all EngineGone."""
    from docker.errors import APIError

    if isinstance(exc, APIError):
        status = exc.status_code
        text = f"{what}: {exc.explanation or exc}"
        if status == 404:
            return ObjectNotFound(text, status)
        if status == 409:
            return Conflict(text, status)
        return EngineError(text, status) if status is not None else EngineGone(text)
    cause = root_oserror(exc)
    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if isinstance(cause, PermissionError):
        return EngineError(f"{what}: permission denied on {where} (run as root, or join the 'docker' group)")
    if cause is not None or _transport_error(exc):
        reason = f"{type(cause).__name__}: {cause.strerror or cause}" if cause is not None else type(exc).__name__
        return EngineGone(f"{what}: nothing answers at {where} ({reason}; is the engine running? is DOCKER_HOST "
                          "right?)")
    return EngineError(f"{what}: {_first_line(exc)}")


def _transport_error(exc: BaseException) -> bool:
    import requests

    return isinstance(exc, (requests.exceptions.RequestException, OSError))


def root_oserror(exc: BaseException, depth: int = 0) -> OSError | None:
    """The socket-level OSError under an SDK error: requests and urllib3 wrap it
    in their own errors (in ``args`` as well as in ``__cause__``)."""
    import requests

    if depth > 8:
        return None
    if isinstance(exc, OSError) and not isinstance(exc, requests.exceptions.RequestException) and exc.errno:
        return exc
    nested = [exc.__cause__, exc.__context__, *(a for a in exc.args if isinstance(a, BaseException))]
    for inner in nested:
        if isinstance(inner, BaseException) and inner is not exc:
            found = root_oserror(inner, depth + 1)
            if found is not None:
                return found
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextlib.contextmanager
def _calling(what: str) -> Iterator[None]:
    from docker.errors import DockerException
    from requests.exceptions import RequestException

    try:
        yield
    except (DockerException, RequestException, OSError) as exc:
        raise translate(what, exc) from exc


class DockerEngine(Engine):
    """An engine through the docker SDK (Docker, or Podman's compatible API)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._info: dict[str, Any] | None = None
        with _calling("Docker engine not reachable"):
            version = client.version()
        components = [str(c.get("Name", "")) for c in version.get("Components") or ()]
        self.flavor = "podman" if any("podman" in c.lower() for c in components) else "docker"
        self.version = str(version.get("Version") or "")

    @property
    def local(self) -> bool:
        base = str(getattr(self.client.api, "base_url", "") or "")
        return base.startswith(("http+unix://", "unix://")) or \
            os.environ.get("DOCKER_HOST", "unix://").split("://", 1)[0] in ("unix", "")

    # -- images ------------------------------------------------------------------
    def image(self, ref: str) -> Image:
        with _calling(f"image {ref!r}"):
            attrs = self.client.api.inspect_image(ref)
        return Image(str(attrs["Id"]), attrs)

    def pull(self, ref: str) -> Image:
        with _calling(f"pull {ref!r}"):
            image = self.client.images.pull(ref)
        return Image(str(image.id), image.attrs)

    # -- containers ----------------------------------------------------------------
    def create(self, spec: ContainerSpec) -> str:
        kwargs: dict[str, Any] = {
            "name": spec.name, "labels": dict(spec.labels), "detach": True, "privileged": False,
        }
        optional = {
            "entrypoint": list(spec.entrypoint) if spec.entrypoint is not None else None,
            "command": list(spec.command) if spec.command is not None else None,
            "user": spec.user, "network_mode": spec.network_mode, "network": spec.network,
            "pid_mode": spec.pid_mode, "mem_limit": spec.memory, "pids_limit": spec.pids,
            "nano_cpus": int(spec.cpus * 1e9) if spec.cpus else None,
            "cap_add": list(spec.cap_add) or None, "sysctls": dict(spec.sysctls) or None,
            "tmpfs": dict(spec.tmpfs) or None,
            "storage_opt": {"size": str(spec.storage_size)} if spec.storage_size else None,
        }
        kwargs.update({k: v for k, v in optional.items() if v is not None})
        kwargs.update(spec.sdk_options)
        if spec.network_disabled:
            kwargs["network_disabled"] = True
        if spec.read_only:
            kwargs["read_only"] = True
        with _calling(f"could not create container {spec.name}"):
            return str(self.client.containers.create(spec.image, **kwargs).id)

    def build(self, context: str, tag: str, *, dockerfile: str | None = None, target: str | None = None,
              buildargs: dict[str, str] | None = None, labels: dict[str, str] | None = None) -> str:
        from docker.errors import BuildError

        try:
            with _calling(f"build {tag}"):
                image, _ = self.client.images.build(path=context, tag=tag, dockerfile=dockerfile, target=target,
                                                    buildargs=buildargs or None, labels=labels or {}, rm=True,
                                                    forcerm=True)
        except (BuildError, TypeError) as exc:  # the Dockerfile failed, or the SDK refused the arguments
            raise EngineError(f"build {tag}: {_first_line(exc)}") from exc
        return str(image.id)

    def start(self, cid: str) -> None:
        with _calling(f"could not start container {cid[:12]}"):
            self.client.api.start(cid)

    def inspect(self, cid: str, size: bool = False) -> dict[str, Any]:
        api = self.client.api
        with _calling(f"container {cid[:12]}"):
            if not size:
                return dict(api.inspect_container(cid))
            return dict(api._result(api._get(api._url("/containers/{0}/json", cid), params={"size": 1}), True))

    def kill(self, cid: str) -> None:
        try:
            with _calling(f"could not kill container {cid[:12]}"):
                self.client.api.kill(cid, signal="SIGKILL")
        except (ObjectNotFound, Conflict):
            return  # gone, or not running (409): nothing to kill
        except EngineError as exc:
            if exc.status is None or exc.status < 500:
                raise
            # Podman answers 500 for a container that stopped meanwhile; the removal decides

    def remove(self, cid: str, *, kill: bool = True) -> None:
        if kill:
            self.kill(cid)
        try:
            with _calling(f"could not remove container {cid[:12]}"):
                self.client.api.remove_container(cid, force=True, v=True)  # v: its anonymous volumes too
        except ObjectNotFound:
            return

    def logs(self, cid: str, tail: int) -> bytes:
        with _calling(f"logs of container {cid[:12]}"):
            return bytes(self.client.api.logs(cid, tail=tail))

    def export(self, cid: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        with _calling(f"could not export container {cid[:12]}"):
            stream = self.client.api.export(cid, chunk_size=chunk_size)
        return _translated(stream, f"export of container {cid[:12]} broke off")

    def exec(self, cid: str, argv: list[str], user: str = "0", timeout: float = 120.0) -> tuple[int, bytes, bytes]:
        """The SDK reads an exec's output with the socket timeout switched off,
        and Docker 20.10 can leave that stream open for ever when the container's
        PID 1 dies meanwhile (the exec'd process is killed with its pid
        namespace): so the exec runs in a thread, and the wait ends when the
        container stops or after ``timeout``."""
        api = self.client.api
        with _calling(f"exec in container {cid[:12]}"):
            exec_id = api.exec_create(cid, argv, user=user, stdout=True, stderr=True)["Id"]
        answer: list[Any] = []

        def run() -> None:
            try:
                answer.append(api.exec_start(exec_id, demux=True))
            except Exception as exc:  # noqa: BLE001 - handed to the caller's thread, translated there
                answer.append(exc)

        worker = threading.Thread(target=run, name="smtpgate-exec", daemon=True)
        worker.start()
        deadline = time.monotonic() + timeout
        while not answer:
            worker.join(EXEC_POLL)
            if answer:
                break
            if time.monotonic() > deadline:
                raise EngineError(f"exec in container {cid[:12]}: no answer within {timeout:g} s")
            if not self.inspect(cid)["State"].get("Running"):
                raise ObjectNotFound(f"exec in container {cid[:12]}: the container stopped meanwhile")
        if isinstance(answer[0], BaseException):
            raise translate(f"exec in container {cid[:12]}", answer[0]) from answer[0]
        out, err = answer[0]
        with _calling(f"exec in container {cid[:12]}"):
            code = api.exec_inspect(exec_id).get("ExitCode")
        return (code if isinstance(code, int) else -1), out or b"", err or b""

    def containers(self, label: str, name: str | None = None) -> list[Listed]:
        filters = {"name": name} if name else {"label": label}
        with _calling("could not list containers"):
            # sparse: no inspect per container, which fails (404) when another scan
            # removes its container between the list and the inspect
            found = self.client.containers.list(all=True, sparse=True, filters=filters)
        out = []
        for c in found:
            attrs = c.attrs
            names = attrs.get("Names") or [attrs.get("Name") or str(attrs.get("Id", ""))[:12]]
            out.append(Listed(str(attrs.get("Id", c.id)), str(names[0]).lstrip("/"), dict(attrs.get("Labels") or {}),
                              attrs.get("Created", ""), str(attrs.get("State", "")).lower() == "running"))
        return [c for c in out if name is None or c.name == name]

    # -- networks ------------------------------------------------------------------
    def create_network(self, name: str, labels: dict[str, str]) -> str:
        with _calling(f"could not create network {name}"):
            return str(self.client.api.create_network(name, driver="bridge", internal=True, labels=labels,
                                                      check_duplicate=True)["Id"])

    def remove_network(self, nid: str) -> None:
        try:
            with _calling(f"could not remove network {nid[:12]}"):
                self.client.api.remove_network(nid)
        except ObjectNotFound:
            return

    def networks(self, label: str, name: str | None = None) -> list[Listed]:
        filters = {"name": name} if name else {"label": label}
        with _calling("could not list networks"):
            found = self.client.api.networks(filters=filters)
        out = [Listed(str(n.get("Id", "")), str(n.get("Name", "")), dict(n.get("Labels") or {}), n.get("Created", ""))
               for n in found]
        return [n for n in out if name is None or n.name == name]

    # -- storage -------------------------------------------------------------------
    def storage_quota(self) -> bool:
        """Might --storage-opt size work? Its drivers, or overlay on xfs (which also
        needs the pquota mount option, only known by trying)."""
        if self._info is None:
            with _calling("engine info"):
                self._info = dict(self.client.info())
        driver = str(self._info.get("Driver") or "")
        status = dict((str(k), str(v)) for k, v in (self._info.get("DriverStatus") or ()) if isinstance(k, str))
        return driver in QUOTA_DRIVERS or (driver.startswith("overlay") and status.get("Backing Filesystem") == "xfs")


def _translated(stream: Iterator[bytes], what: str) -> Iterator[bytes]:
    with _calling(what):
        yield from stream
