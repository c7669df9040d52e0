"""Compose files read as `docker compose` reads them (tests/unit/data/workload)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from smtpgate.cli import main
from smtpgate.errors import WorkloadError
from smtpgate.workload.compose import ComposeOptions, interpolate, load_compose
from smtpgate.workload.spec import DeclaredPort, Healthcheck, Mount

DATA = Path(__file__).parent / "data" / "workload"
MAIL = DATA / "mailserver" / "compose.yaml"


def _load(path: Path = MAIL, environ: dict | None = None, **opts):
    specs, notes = load_compose(str(path), ComposeOptions(**opts), environ or {})
    return {s.name.rsplit("#", 1)[1]: s for s in specs}, notes


def _line(path: Path, text: str) -> int:
    return next(i for i, ln in enumerate(path.read_text().splitlines(), 1) if text in ln)


def test_services_as_compose_reads_them():
    specs, notes = _load()
    assert list(specs) == ["mailserver", "webmail"]  # fetch and tools are behind profiles
    assert [n for n in notes if "profiles" in n] == [
        f"{MAIL}#fetchmail: not scanned, its profiles (fetch) are not enabled (--profile)",
        f"{MAIL}#tools: not scanned, its profiles (tools) are not enabled (--profile)"]
    mail = specs["mailserver"]
    assert mail.image == "ghcr.io/docker-mailserver/docker-mailserver:14.0"  # default, then .env
    assert (mail.source, mail.line) == (str(MAIL), _line(MAIL, "image: ${REGISTRY"))
    env = dict(mail.env)
    # env_file first, environment over it; merge keys; ${VAR} from .env ($DOMAIN), $$ a literal $
    assert env["TZ"] == "UTC" and env["LOG_LEVEL"] == "info" and env["ENABLE_RSPAMD"] == "1"
    assert env["OVERRIDE_HOSTNAME"] == "" and env["POSTMASTER_ADDRESS"] == "postmaster@example.com"
    assert env["PRICE"] == "$10" and env["SMTP_ONLY"] == "1"
    assert env["RELAY_PASSWORD"] == "quoted value # not a comment" and env["PERMIT_DOCKER"] == "none"
    assert mail.healthcheck == Healthcheck(
        ("CMD-SHELL", "ss --listening --tcp | grep -P 'LISTEN.+:smtp' || exit 1"),
        interval=90 * 10**9, timeout=3 * 10**9)
    assert (mail.entrypoint, mail.cmd, mail.user) == (None, None, None)


def test_the_environment_wins_over_dotenv_and_defaults():
    specs, _ = _load(environ={"DMS_TAG": "15.0", "REGISTRY": "reg.example", "ROUNDCUBEMAIL_DB_PASSWORD": "pw-1"})
    assert specs["mailserver"].image == "reg.example/docker-mailserver/docker-mailserver:15.0"
    assert dict(specs["webmail"].env)["ROUNDCUBEMAIL_DB_PASSWORD"] == "pw-1"


def test_list_environment_and_command_forms():
    specs, _ = _load()
    web = specs["webmail"]
    # a bare KEY with nothing in the environment is not set at all; KEY= is set to ""
    assert dict(web.env) == {"ROUNDCUBEMAIL_DEFAULT_HOST": "ssl://mail.example.com",
                             "ROUNDCUBEMAIL_SMTP_SERVER": "tls://mail.example.com", "EMPTY": ""}
    assert web.entrypoint == ("/docker-entrypoint.sh",)
    assert web.cmd == ("apache2-foreground", "-DFOREGROUND")
    assert (web.user, web.workdir) == ("33:33", "/var/www/html")
    fetch = _load(profiles=("fetch",))[0]["fetchmail"]
    assert fetch.entrypoint == ("/bin/sh", "-c")
    assert fetch.cmd == ("fetchmail", "--daemon", "300", "--nodetach", "-f", "/etc/fetchmail rc")


def test_profiles_from_the_environment_and_named_services():
    assert "fetchmail" in _load(environ={"COMPOSE_PROFILES": "fetch,other"})[0]
    specs, _ = _load(services=("fetchmail",))
    assert list(specs) == ["fetchmail"]  # naming a service activates it, as compose does


def test_declared_ports():
    ports = _load()[0]["mailserver"].ports
    published = [(p.port, p.text) for p in ports if p.published]
    assert published == [(25, "ports: 25:25"), (143, "ports: 143:143"), (465, "ports: 127.0.0.1:465:465"),
                         (587, "ports: 587:587/tcp"),
                         (993, 'ports: {"target": 993, "published": "993", "protocol": "tcp"}')]
    assert [p.port for p in ports if not p.published] == [10025, 8000, 8001, 8002]
    assert DeclaredPort(10025, False, "expose: 10025") in ports


def test_volumes_only_read_only_binds():
    mail = _load()[0]["mailserver"]
    base = MAIL.parent
    assert mail.mounts == (Mount(str(base / "config"), "/tmp/docker-mailserver/"),
                           Mount(str(base / "dms.cf"), "/etc/dms.cf"))
    assert any("/etc/localtime: /etc/localtime is outside the project directory" in n for n in mail.notes)
    assert any("/tmp/docker-mailserver/: mounted read-only" in n for n in mail.notes)
    assert any("/var/mail/: a volume is not reproduced" in n for n in mail.notes)
    assert any("/srv/missing: ./missing-dir does not exist" in n for n in mail.notes)
    assert "Compose 'networks' is not reproduced (the scan stays isolated and unprivileged)" in mail.notes
    assert "Compose 'cap_add' is not reproduced (the scan stays isolated and unprivileged)" in mail.notes
    assert mail.create_kwargs()["volumes"][str(base / "dms.cf")] == {"bind": "/etc/dms.cf", "mode": "ro"}


def test_binds_never_reach_outside_the_project_or_sockets(tmp_path):
    import socket

    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "main.cf").write_text("x")
    (tmp_path / "escape").symlink_to("/etc")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "engine.sock"))
        (tmp_path / "c.yaml").write_text(
            "services:\n  s:\n    image: i\n    volumes:\n      - ./conf/main.cf:/etc/postfix/main.cf:ro\n"
            "      - ./escape:/x:ro\n      - ../:/up:ro\n      - ./engine.sock:/var/run/docker.sock:ro\n"
            "      - /var/run/docker.sock:/var/run/docker.sock\n")
        spec = _load(tmp_path / "c.yaml")[0]["s"]
    assert spec.mounts == (Mount(str(tmp_path / "conf" / "main.cf"), "/etc/postfix/main.cf"),)
    assert [n.split(":")[0] for n in spec.notes] == ["volume /x", "volume /up", "volume /var/run/docker.sock",
                                                     "volume /var/run/docker.sock"]
    assert "not a regular file or directory (sockets and devices are never mounted)" in spec.notes[2]


def test_build_only_services_are_refused_by_name():
    with pytest.raises(WorkloadError, match=r"service\(s\) api, worker have no `image:` \(only `build:`\)"):
        _load(DATA / "build-only.yaml")
    assert list(_load(DATA / "build-only.yaml", services=("cache",))[0]) == ["cache"]
    specs = _load(DATA / "build-only.yaml", build=True)[0]
    assert specs["worker"].build == {"context": ".", "dockerfile": "worker.Dockerfile", "base": str(DATA)}


@pytest.mark.parametrize(("name", "message"), [
    ("bad-schema.yaml", "bad-schema.yaml:5: services.web.ports: 80 is not of type 'array'"),
    ("bad-schema.yaml", "bad-schema.yaml:8: services.db: unknown key(s) 'environmnet' (did you mean 'environment'?)"),
    ("bad-required.yaml", "bad-required.yaml:5: services.web.environment.API_KEY: required variable API_KEY is "
                          "missing a value: set API_KEY in .env"),
    ("bad-yaml.yaml", "bad-yaml.yaml:4:4: invalid YAML:"),
    ("laughs.yaml", "laughs.yaml: more than 200000 values once aliases are expanded; refused"),
])
def test_malformed_files_name_file_and_line(name, message):
    with pytest.raises(WorkloadError) as err:
        _load(DATA / name)
    assert message in str(err.value)
    assert main(["scan", "--compose", str(DATA / name), "-q"]) == 2


@pytest.mark.parametrize(("text", "env", "out"), [
    ("${A}", {"A": "1"}, "1"),
    ("${A:-dflt}", {"A": ""}, "dflt"),
    ("${A-dflt}", {"A": ""}, ""),
    ("${A-dflt}", {}, "dflt"),
    ("${A:+alt}", {"A": "x"}, "alt"),
    ("${A+alt}", {"A": ""}, "alt"),
    ("${A:+alt}", {"A": ""}, ""),
    ("$A/$B", {"A": "a"}, "a/"),
    ("$$A $${A}", {"A": "a"}, "$A ${A}"),
    ("${A:-${B:-deep}}", {}, "deep"),
    ("pre-${A:-x}-post", {}, "pre-x-post"),
])
def test_interpolation(text, env, out):
    assert interpolate(text, env) == out


@pytest.mark.parametrize("text", ["${A", "${}", "${A!x}", "$ 1", "${A:?}"])
def test_bad_interpolation(text):
    with pytest.raises(WorkloadError):
        interpolate(text, {}, "f:1: x")


def test_schema_is_vendored_with_its_licence():
    here = Path(__file__).resolve().parents[2] / "smtpgate" / "workload" / "schema"
    assert {"compose-spec.json", "LICENSE-compose-spec", "README.md"} <= set(os.listdir(here))
    assert "Apache License" in (here / "LICENSE-compose-spec").read_text()


def test_extends_in_the_same_file_and_another():
    path = DATA / "extends" / "compose.yaml"
    specs, notes = _load(path, services=("api", "relay"))
    api, relay = specs["api"], specs["relay"]
    assert (api.image, api.user, api.cmd) == ("example/app:1", "1000", ("serve", "--api"))
    assert dict(api.env) == {"LOG_LEVEL": "info", "API_MODE": "on"}
    assert relay.image == "example/postfix:3.8"
    assert dict(relay.env) == {"TZ": "UTC", "RELAY_HOST": "relay.internal"}
    assert [p.port for p in relay.ports] == [25, 587]
    assert any("#relay: extends" in n for n in notes)
    with pytest.raises(WorkloadError, match="a cycle"):
        _load(path, services=("loop",))


def test_file_secrets_are_bound_read_only_and_hidden():
    path = DATA / "secrets" / "compose.yaml"
    db = _load(path)[0]["db"]
    assert db.mounts == (Mount(str(path.parent / "db_password.txt"), "/run/secrets/db_password"),)
    assert "pg-secret-from-file-31337" in db.secrets()
    assert "secret api_key: not file-backed, not reproduced (the container starts without it)" in db.notes
    assert any(n.startswith("secret outside: /etc/hostname is outside the project directory") for n in db.notes)
