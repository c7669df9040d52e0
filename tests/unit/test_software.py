"""The SMTP software registry against greetings, EHLO replies and processes of real servers.

Data: tests/unit/data/software/servers.yaml (captured from real servers or taken from
the projects' sources; each entry says which).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from smtpgate.model import Process, Software
from smtpgate.software import all_mtas, get, identify, identify_process

SERVERS = yaml.safe_load((Path(__file__).parent / "data/software/servers.yaml").read_text())
BY_ID = {server["id"]: server for server in SERVERS}
UNKNOWN = Software("unknown", "unknown SMTP server", None, "none")
GENERIC = ("220 mail.example.com ESMTP", ["250-mail.example.com", "250 8BITMIME"])


def _process(spec: dict, pid: int = 100) -> Process:
    return Process(pid=pid, name=spec["name"], cmdline=tuple(spec.get("cmdline", ())))


def _cases(key: str = "") -> list:
    return [pytest.param(s, id=s["id"]) for s in SERVERS if not key or s.get(key)]


@pytest.mark.parametrize("server", _cases())
def test_identified_with_version_from_greeting_and_ehlo(server):
    got = identify(server["greeting"], server.get("ehlo", ()))
    want = server["expect"]
    assert (got.id, got.version, got.how) == (want["id"], want["version"], want["how"])
    assert got.name == get(want["id"]).name


@pytest.mark.parametrize("server", _cases("processes"))
def test_each_process_of_a_server_is_recognised(server):
    for spec in server["processes"]:
        mta = identify_process(_process(spec))
        assert mta is not None and mta.id == server["id"], spec


@pytest.mark.parametrize("server", _cases("processes"))
def test_greeting_and_process_together(server):
    got = identify(server["greeting"], server.get("ehlo", ()), _process(server["processes"][0]))
    how = server["expect"]["how"]
    assert got.id == server["id"]
    assert got.how == ("process" if how == "none" else f"{how}+process")


def test_greeting_codes_are_stripped_and_lines_joined():
    greeting = "220-mail.example.org ESMTP Exim 4.97.1 Tue, 02 Jan 2024\r\n220 no UCE\r\n"
    assert identify(greeting) == Software("exim", "Exim", "4.97.1", "greeting")
    assert identify("ESMTP Sendmail 8.18.1/8.18.1; Mon").version == "8.18.1"


def test_postfix_shows_a_version_only_when_the_admin_added_it():
    assert identify("220 mx ESMTP Postfix (Ubuntu)").version is None
    assert identify("220 mx ESMTP Postfix (3.7.11)").version == "3.7.11"


@pytest.mark.parametrize(
    ("server", "process"),
    [
        ("postfix", {"name": "master", "cmdline": ["/usr/lib/postfix/sbin/master", "-w"]}),
        ("postfix", {"name": "master", "cmdline": ["/usr/libexec/postfix/master", "-i"]}),
        ("exim", {"name": "exim", "cmdline": ["/usr/sbin/exim", "-bd", "-q1h", "-oX", "25"]}),
        ("courier", BY_ID["courier"]["processes"][0]),
        ("opensmtpd", {"name": "smtpd", "cmdline": ["smtpd", "-d", "-f", "/etc/smtpd.conf"]}),
        ("aiosmtpd", {"name": "python3", "cmdline": ["python3", "-m", "aiosmtpd", "-n"]}),
        ("mailhog", {"name": "MailHog", "cmdline": ["MailHog"]}),
        ("maddy", {"name": "maddy", "cmdline": ["/bin/maddy", "run"]}),
        ("qmail", {"name": "tcpserver", "cmdline": "tcpserver -v 0 smtp qmail-smtpd".split()}),
        ("maildev", {"name": "node", "cmdline": ["node", "bin/maildev"]}),
        ("maildev", {"name": "node", "cmdline": ["node", "/usr/local/lib/node_modules/maildev/bin/maildev"]}),
        ("fake-smtp-server", {"name": "node", "cmdline": ["node", "/usr/local/bin/fake-smtp-server", "-s", "25"]}),
        ("twisted-mail", {"name": "twistd", "cmdline": ["/usr/bin/python3", "/usr/local/bin/twistd", "-n", "mail"]}),
        ("salmon", {"name": "salmon", "cmdline": ["/venv/bin/python", "/venv/bin/salmon", "start", "--pid", "x"]}),
        ("smtpdev", {"name": "smtpdev", "cmdline": ["/usr/local/bin/python", "/usr/local/bin/smtpdev"]}),
        ("mailcatcher", {"name": "ruby", "cmdline": ["ruby", "/usr/local/bundle/bin/mailcatcher", "--foreground"]}),
        ("qpsmtpd", {"name": "qpsmtpd-forkser", "cmdline": ["/usr/bin/perl", "-T", "/usr/bin/qpsmtpd-forkserver"]}),
        ("msmtpd", {"name": "msmtpd", "cmdline": ["msmtpd", "--interface=0.0.0.0"]}),
        ("citadel", {"name": "citserver", "cmdline": ["/usr/local/citadel/citserver", "-x3"]}),
        ("greenmail", {"name": "java", "cmdline": ["java", "-jar", "/opt/greenmail-standalone-2.1.2.jar"]}),
        ("subethasmtp", {"name": "java", "cmdline": ["java", "-cp", "/app/subethasmtp-3.1.7.jar", "Main"]}),
    ],
)
def test_generic_greeting_falls_back_to_the_process(server, process):
    got = identify(*GENERIC, _process(process))
    assert (got.id, got.version, got.how) == (server, None, "process")


def test_nginx_is_known_by_its_process_only():
    nginx = BY_ID["nginx"]
    assert identify(nginx["greeting"], nginx["ehlo"]).id == "unknown"
    got = identify(nginx["greeting"], nginx["ehlo"], _process(nginx["processes"][1]))
    assert got == Software("nginx", "nginx mail proxy", None, "process")


def test_postfix_smtpd_and_opensmtpd_smtpd_are_told_apart():
    postfix_smtpd = _process(BY_ID["postfix"]["processes"][1])
    opensmtpd_parent = _process(BY_ID["opensmtpd"]["processes"][0])
    assert postfix_smtpd.name == opensmtpd_parent.name == "smtpd"
    assert identify_process(postfix_smtpd).id == "postfix"
    assert identify_process(opensmtpd_parent).id == "opensmtpd"
    by_exe = Process(7, "smtpd", ("smtpd",), exe="/usr/lib/postfix/sbin/smtpd")
    assert identify_process(by_exe).id == "postfix"
    assert identify_process(Process(8, "smtpd")) is None  # comm alone: ambiguous


@pytest.mark.parametrize(
    "cmdline",
    [
        ["python3", "-m", "smtpd_exporter"],
        ["/usr/bin/sendmail", "-t", "-i"],
        ["/bin/sh", "-c", "x"],
        ["smtpd", "-n", "smtp", "-t", "inet"],
        ["/usr/sbin/exim4-config"],
    ],
)
def test_lookalike_processes_are_not_misnamed(cmdline):
    got = identify_process(Process(9, cmdline[0].rsplit("/", 1)[-1], tuple(cmdline)))
    assert got is None or (got.id == "postfix" and cmdline[0] == "smtpd")


def test_greeting_beats_a_disagreeing_process():
    exim = BY_ID["exim"]
    got = identify(exim["greeting"], exim["ehlo"], _process(BY_ID["postfix"]["processes"][0]))
    assert (got.id, got.how) == ("exim", "greeting")


def test_ehlo_decides_when_the_greeting_is_generic():
    got = identify("220 relay.example ESMTP", ["250-relay.example Hello x", "250 PIPECONNECT"])
    assert (got.id, got.how) == ("exim", "ehlo")


@pytest.mark.parametrize(
    "greeting",
    [
        "220 mx.example.net ESMTP Service Ready",
        "220 smtp.example.com ESMTP",
        "220 ready",
        "220 mail.example.com Microsoft ESMTP MAIL Service ready",
    ],
)
def test_unknown_server(greeting):
    socat = Process(3, "socat", ("socat", "TCP-LISTEN:25,fork", "TCP:backend:25"))
    for process in (None, socat):
        assert identify(greeting, ["250 OK"], process) == UNKNOWN


@pytest.mark.parametrize(
    "greeting",
    [
        "",
        "\x00\x01\x02\x1b[31m220\x7f",
        "220",
        "220-",
        "\r\n\r\n",
        "220 \ud800",
        "220 ESMTP Exim " + "9" * 100_000,
        "220 " + "a" * 1_000_000,
        "220 Python SMTP 1" + ".1" * 50_000,
    ],
)
def test_hostile_greetings_never_crash(greeting):
    hostile = Process(1, "\x00", ("\n" * 3, "x" * 1_000_000), exe="")
    got = identify(greeting, [greeting, "", "250-\x00"], hostile)
    assert isinstance(got, Software) and got.id in {m.id for m in all_mtas()}


@settings(max_examples=300, deadline=None)
@given(
    greeting=st.text(),
    ehlo=st.lists(st.text(), max_size=5),
    name=st.text(max_size=20),
    cmdline=st.lists(st.text(max_size=40), max_size=4),
    with_process=st.booleans(),
)
def test_identify_always_returns_software(greeting, ehlo, name, cmdline, with_process):
    process = Process(1, name, tuple(cmdline)) if with_process else None
    got = identify(greeting, ehlo, process)
    assert isinstance(got, Software)
    assert got.id == get(got.id).id and got.name == get(got.id).name
    assert got.how in {"greeting", "ehlo", "process", "greeting+process", "ehlo+process", "none"}


def test_registry_ids_are_unique_and_get_falls_back_to_unknown():
    ids = [mta.id for mta in all_mtas()]
    assert len(ids) == len(set(ids))
    assert all_mtas()[-1].id == "unknown"
    assert get("no-such-mta") is get("unknown")
    assert {s["id"] for s in SERVERS} <= set(ids)


@pytest.mark.parametrize("mta", [pytest.param(m, id=m.id) for m in all_mtas()])
def test_every_entry_can_be_recognised_and_fixed(mta):
    assert mta.fix and mta.verify and mta.listen_setting
    assert all(isinstance(p, re.Pattern) for p in mta.banners + mta.ehlo + mta.processes)
    assert mta.id == "unknown" or mta.banners or mta.ehlo or mta.processes


@pytest.mark.parametrize(
    ("mta_id", "setting"),
    [
        ("postfix", "inet_interfaces = loopback-only"),
        ("postfix", "postfix stop; postfix start"),
        ("exim", "dc_local_interfaces='127.0.0.1 ; ::1'"),
        ("exim", "local_interfaces = <; 127.0.0.1 ; ::1"),
        ("exim", "update-exim4.conf"),
        ("sendmail", "DAEMON_OPTIONS(`Port=smtp,Addr=127.0.0.1, Name=MTA')"),
        ("opensmtpd", "listen on localhost"),
        ("courier", "ADDRESS=127.0.0.1"),
        ("dovecot", "address = 127.0.0.1, ::1"),
        ("nginx", "listen 127.0.0.1:25;"),
        ("haraka", "listen=127.0.0.1:25"),
        ("aiosmtpd", "-l 127.0.0.1:8025"),
        ("mailpit", "MP_SMTP_BIND_ADDR=127.0.0.1:1025"),
        ("mailhog", "-smtp-bind-addr 127.0.0.1:1025"),
        ("unknown", "ss -ltnp"),
    ],
)
def test_fix_names_the_exact_setting(mta_id, setting):
    assert any(setting in step for step in get(mta_id).fix)
