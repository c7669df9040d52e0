"""Static readers on captured Debian files (tests/unit/data/static/README.md), odd input, and properties."""

from __future__ import annotations

import sqlite3
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtpgate import software
from smtpgate.model import BindScope
from smtpgate.software import dovecot, exim, nginx, opensmtpd, postfix, sendmail
from smtpgate.software.listen import address_scope
from smtpgate.static import DirFS, ImageConfig, analyse, shell, static_findings
from smtpgate.static.command import analyse_command
from smtpgate.static.packages import parse_apk_installed, parse_dpkg_status, parse_rpm_sqlite, rpm_header_strings
from smtpgate.static.supervisor import ini_sections

ROOTS = Path(__file__).parent / "data" / "static" / "roots"
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=800)


def tree(tmp_path: Path, files: dict[str, str]) -> DirFS:
    for path, text in files.items():
        target = tmp_path / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return DirFS(tmp_path)


# -- packages ----------------------------------------------------------------------------


def test_dpkg_status_captured():
    text = (ROOTS / "postfix-all/var/lib/dpkg/status").read_text()
    pkgs = {name: (version, line) for name, version, line in parse_dpkg_status(text, "status", [])}
    assert pkgs["postfix"][0] == "3.7.11-0+deb12u1"
    assert text.splitlines()[pkgs["postfix"][1] - 1] == "Package: postfix"


def test_dpkg_only_install_ok_installed_counts():
    text = ("Package: postfix\nStatus: deinstall ok config-files\nVersion: 1\n\n"
            "Package: exim4-daemon-light\nStatus: install ok installed\nVersion: 4.96\n"
            "Description: x\n more text: with colon\n\ngarbage line\n\nStatus: install ok installed\n")
    problems: list[str] = []
    assert list(parse_dpkg_status(text, "/var/lib/dpkg/status", problems)) == [("exim4-daemon-light", "4.96", 5)]
    assert problems and "malformed" in problems[0]


def test_apk_installed():
    text = "C:Q1abc=\nP:postfix\nV:3.8.4-r0\nA:x86_64\n\nP:busybox\nV:1.36\n\nbroken\n"
    problems: list[str] = []
    assert list(parse_apk_installed(text, "installed", problems)) == [
        ("postfix", "3.8.4-r0", 2), ("busybox", "1.36", 6)]
    assert problems


def _rpm_blob(tags: dict[int, str]) -> bytes:
    data, entries = b"", b""
    for tag, value in tags.items():
        entries += struct.pack(">IIII", tag, 6, len(data), 1)
        data += value.encode() + b"\0"
    return struct.pack(">II", len(tags), len(data)) + entries + data


def test_rpm_sqlite(tmp_path):
    db = tmp_path / "rpmdb.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB NOT NULL)")
    blob = _rpm_blob({1000: "postfix", 1001: "3.5.9", 1002: "24.el9"})
    con.execute("INSERT INTO Packages (blob) VALUES (?)", (blob,))
    con.execute("INSERT INTO Packages (blob) VALUES (?)", (b"\x00\x00",))
    con.commit()
    con.close()
    problems: list[str] = []
    assert list(parse_rpm_sqlite(db.read_bytes(), "rpmdb.sqlite", problems)) == [("postfix", "3.5.9-24.el9")]
    assert problems
    bad: list[str] = []
    assert list(parse_rpm_sqlite(b"not sqlite", "x", bad)) == [] and bad


@settings(max_examples=150, deadline=None)
@given(TEXT)
def test_package_parsers_never_crash(text):
    list(parse_dpkg_status(text, "s", []))
    list(parse_apk_installed(text, "s", []))


@given(st.binary(max_size=600))
def test_rpm_header_never_crashes(blob):
    rpm_header_strings(blob)


# -- postfix -----------------------------------------------------------------------------


def test_postfix_captured_all(tmp_path):
    with DirFS(ROOTS / "postfix-all") as fs:
        listens = postfix.read(fs, [])
    assert [(c.scope, c.port, c.path, c.line) for c in listens] == [
        (BindScope.ALL, "smtp", "/etc/postfix/main.cf", 46), (BindScope.ALL, "submission", "/etc/postfix/main.cf", 46)]


def test_postfix_last_inet_interfaces_wins():
    with DirFS(ROOTS / "postfix-last-inet") as fs:
        (listen,) = postfix.read(fs, [])
    assert listen.scope is BindScope.LOOPBACK and listen.line == 50
    assert "the last of 2 occurrences" in listen.text


def test_postfix_master_cf_quirks(tmp_path):
    fs = tree(tmp_path, {
        "/etc/postfix/main.cf": "inet_interfaces =\n    127.0.0.1,\n    192.0.2.7\n# inet_interfaces = all\n",
        "/etc/postfix/master.cf": (
            "#smtp      inet  n       -       y       -       -       smtpd\n"
            "127.0.0.1:10025 inet n  -       n       -       -       smtpd\n"
            "smtps     inet  n       -       n       -       -       smtpd\n"
            "  -o smtpd_tls_wrappermode=yes\n"
            "qmqp      inet  n       -       n       -       -       qmqpd\n"
            "broken line\n"),
    })
    problems: list[str] = []
    listens = postfix.read(fs, problems)
    assert [(c.scope, c.port, c.tls, c.line) for c in listens] == [
        (BindScope.LOOPBACK, "10025", False, 2), (BindScope.SPECIFIC, "smtps", True, 1)]
    assert problems and "fields" in problems[0]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["all", "loopback-only", "localhost", "192.0.2.1", "127.0.0.1, ::1"]), min_size=1,
                max_size=6), st.lists(st.sampled_from(["# comment", "", "myhostname = x", "   continued"]), max_size=4))
def test_postfix_last_occurrence_property(values, noise):
    lines = []
    for i, value in enumerate(values):
        lines.append(f"inet_interfaces = {value}")
        lines.append(noise[i % len(noise)] if noise else "")
    setting = postfix.main_cf("\n".join(lines))["inet_interfaces"]
    assert setting.value.startswith(values[-1]) and setting.occurrences == len(values)


@settings(max_examples=150, deadline=None)
@given(TEXT)
def test_postfix_parsers_never_crash(text):
    postfix.main_cf(text)
    for svc in postfix.master_cf(text, [], "m"):
        svc.host, svc.port, svc.option("x")


# -- exim --------------------------------------------------------------------------------


def test_exim_captured_empty_dc_local_interfaces_means_all():
    with DirFS(ROOTS / "exim-all") as fs:
        listens = exim.read(fs, [])
    assert {c.scope for c in listens} == {BindScope.ALL}
    debian = next(c for c in listens if c.path == exim.DEBIAN_CONF)
    assert debian.line == 5 and "empty" in debian.text


@pytest.mark.parametrize("value, scope", [
    ("127.0.0.1 ; ::1", BindScope.LOOPBACK), ("", BindScope.ALL), ("0.0.0.0", BindScope.ALL),
    ("192.0.2.5", BindScope.SPECIFIC), ("127.0.0.1.587 ; ::1.587", BindScope.LOOPBACK)])
def test_exim_dc_local_interfaces(tmp_path, value, scope):
    fs = tree(tmp_path, {exim.DEBIAN_CONF: f"dc_eximconfig_configtype='internet'\ndc_local_interfaces='{value}'\n"})
    (listen,) = exim.read(fs, [])
    assert listen.scope is scope and listen.line == 2


def test_exim_generated_and_source_disagree(tmp_path):
    fs = tree(tmp_path, {exim.DEBIAN_CONF: "dc_local_interfaces='127.0.0.1 ; ::1'\n",
                         exim.GENERATED: "# no local_interfaces\nbegin acl\n"})
    problems: list[str] = []
    listens = exim.read(fs, problems)
    assert {c.scope for c in listens} == {BindScope.ALL, BindScope.LOOPBACK}
    assert any("update-exim4.conf was not re-run" in p for p in problems)


def test_exim_local_interfaces_and_ox():
    opts = exim.main_section(
        "MAIN = <; ::1 ; 127.0.0.1\nlocal_interfaces = MAIN\nbegin acl\nlocal_interfaces = 0.0.0.0\n")
    assert opts["local_interfaces"][0] == "<; ::1 ; 127.0.0.1"
    assert exim.ox_listens("25:587", None, None).scope is BindScope.ALL
    assert exim.ox_listens("<; 127.0.0.1.25 ; ::1.25", None, None).scope is BindScope.LOOPBACK
    assert exim.ox_listens("192.0.2.1", None, None).scope is BindScope.SPECIFIC


@settings(max_examples=150, deadline=None)
@given(TEXT)
def test_exim_parsers_never_crash(text):
    exim.main_section(text)
    for item in exim.split_list(text):
        exim.interface_scope(item)
    exim.ox_listens(text, None, None)


# -- sendmail, opensmtpd, dovecot, nginx ---------------------------------------------------


def test_sendmail_captured_loopback():
    with DirFS(ROOTS / "mixed") as fs:
        listens = sendmail.read(fs, [])
    assert [(c.scope, c.port) for c in listens] == [(BindScope.LOOPBACK, "smtp"), (BindScope.LOOPBACK, "submission")]
    assert all(c.path == "/etc/mail/sendmail.cf" and c.line for c in listens)


def test_sendmail_no_addr_means_all():
    (opts, line), = sendmail.daemon_options("O DaemonPortOptions=Port=smtps, Name=TLSMTA, M=s\n")
    assert opts == {"port": "smtps", "name": "TLSMTA", "m": "s"} and line == 1


def test_opensmtpd_captured_and_variants(tmp_path):
    with DirFS(ROOTS / "mixed") as fs:
        (listen,) = opensmtpd.read(fs, [])
    assert listen.scope is BindScope.LOOPBACK and listen.line == 10
    fs = tree(tmp_path, {"/etc/smtpd.conf": 'ext = "eth0"\nlisten on socket\nlisten on $ext port 587\n'
                                            "listen on all smtps # x\nlisten on\n"})
    problems: list[str] = []
    listens = opensmtpd.read(fs, problems)
    assert [(c.scope, c.port, c.tls) for c in listens] == [(BindScope.SPECIFIC, "587", False),
                                                           (BindScope.ALL, "25", True)]
    assert problems


def test_dovecot_captured_submission_on_all():
    with DirFS(ROOTS / "mixed") as fs:
        (listen,) = dovecot.read(fs, [])
    assert listen.scope is BindScope.ALL and listen.port == "587"


def test_dovecot_listener_address_and_port_zero(tmp_path):
    fs = tree(tmp_path, {"/etc/dovecot/dovecot.conf": (
        "protocols = imap\n!include conf.d/*.conf\n"),
        "/etc/dovecot/conf.d/20-sub.conf": (
            "protocols = $protocols submission\nservice submission-login {\n"
            "  inet_listener submission {\n    address = 127.0.0.1, ::1\n  }\n"
            "  inet_listener submissions {\n    port = 0\n  }\n}\n")})
    (listen,) = dovecot.read(fs, [])
    assert listen.scope is BindScope.LOOPBACK and listen.path.endswith("20-sub.conf") and listen.line == 4
    no_sub = tree(tmp_path / "b", {"/etc/dovecot/dovecot.conf": "protocols = imap pop3\n"})
    assert dovecot.read(no_sub, []) == []


def test_nginx_mail_servers_with_include(tmp_path):
    fs = tree(tmp_path, {
        "/etc/nginx/nginx.conf": "events {}\ninclude /etc/nginx/mail.d/*.conf;\nhttp { server { listen 25; } }\n",
        "/etc/nginx/mail.d/m.conf": ('mail {\n  server_name "mx";\n  server {\n    listen 127.0.0.1:25;\n'
                                     '    protocol smtp;\n  }\n  server { listen 587 ssl; }\n'
                                     "  server { listen 143; }\n}\n")})
    listens = nginx.read(fs, [])
    assert [(c.scope, c.port, c.line, c.tls) for c in listens] == [(BindScope.LOOPBACK, "25", 4, False),
                                                                   (BindScope.ALL, "587", 7, True)]
    assert all(c.path == "/etc/nginx/mail.d/m.conf" for c in listens)


def test_nginx_captured_debian_has_no_mail_server():
    with DirFS(ROOTS / "mixed") as fs:
        assert nginx.read(fs, []) == []


@settings(max_examples=150, deadline=None)
@given(TEXT)
def test_block_config_parsers_never_crash(text):
    nginx.tokens(text)
    sendmail.daemon_options(text)
    ini_sections(text)
    address_scope(text)


def test_file_based_readers_never_crash_on_junk(tmp_path):
    junk = "}}}{{{ listen on\n\x00\xff [program:\ncommand=\n  inet_interfaces\nservice {\n" * 50
    paths = ["/etc/postfix/main.cf", "/etc/postfix/master.cf", "/etc/exim4/update-exim4.conf.conf",
             "/etc/mail/sendmail.cf", "/etc/smtpd.conf", "/etc/dovecot/dovecot.conf", "/etc/nginx/nginx.conf",
             "/etc/supervisor/supervisord.conf", "/etc/inetd.conf", "/etc/xinetd.d/smtp", "/var/lib/dpkg/status"]
    fs = tree(tmp_path, dict.fromkeys(paths, junk))
    facts = analyse(fs, image_config=ImageConfig(cmd=("sh", "-c", junk)))
    assert isinstance(facts.problems, tuple)


# -- enabled: command, supervisord, init systems ------------------------------------------


def test_shell_commands_and_wrappers():
    script = ("#!/bin/sh\nset -e\npython3 -m http.server 8080 >/dev/null 2>&1 &\n"
              "cat > /x <<EOF\npostfix start\nEOF\n(sleep 20; exec postfix start-fg) &\n"
              "FOO=1 exec gosu mail tini -- /usr/sbin/exim4 -bd \\\n  -q30m\n")
    cmds = [c.text for c in shell.commands(script)]
    assert "postfix start" not in cmds  # heredoc body
    assert "postfix start-fg" in cmds and "/usr/sbin/exim4 -bd -q30m" in cmds
    assert shell.shell_string(["/bin/bash", "-lc", "exim -bd"]) == "exim -bd"
    assert shell.sleep_seconds(("sleep", "1m", "30")) == 90


@settings(max_examples=200, deadline=None)
@given(TEXT)
def test_shell_never_crashes(text):
    for cmd in shell.commands(text, []):
        shell.unwrap(list(cmd.argv))


def test_entrypoint_script_delayed_start(tmp_path):
    fs = tree(tmp_path, {"/usr/local/bin/start.sh": "#!/bin/sh\nsleep 30\nexec su -s /bin/sh mail -c 'exim4 -bd'\n"})
    (tmp_path / "usr/local/bin/start.sh").chmod(0o755)
    out = analyse_command(fs, ImageConfig(entrypoint=("start.sh",)), [])
    (enabled,) = out.enabled
    assert enabled.software == "exim" and enabled.by_command and enabled.line == 3
    assert "after sleeping 30 s" in enabled.text and out.init not in ("", "systemd")


def test_service_start_and_init_commands(tmp_path):
    fs = tree(tmp_path, {})
    out = analyse_command(fs, ImageConfig(cmd=("sh", "-c", "service postfix start && tail -f /dev/null")), [])
    assert [e.software for e in out.enabled] == ["postfix"]
    out = analyse_command(fs, ImageConfig(entrypoint=("/lib/systemd/systemd",)), [])
    assert out.init == "systemd" and "systemd" in out.launched


def argv_listen(mta_id: str, argv: tuple[str, ...]) -> tuple[str, str] | None:
    """(address, port) the registry entry's command-line reader finds in argv."""
    found = software.get(mta_id).command_listen(argv, "test")
    return (found.address, found.port) if found is not None else None


def test_argv_listen_defaults_and_flags():
    assert argv_listen("aiosmtpd", ("python3", "-m", "aiosmtpd", "-n")) == ("localhost", "8025")
    assert argv_listen("aiosmtpd", ("aiosmtpd", "--listen=0.0.0.0:25")) == ("0.0.0.0", "25")
    argv = ("python3", "-m", "smtpd", "-n", "-c", "DebuggingServer", ":25")
    assert argv_listen("python-smtpd", argv) == ("all", "25")


def test_supervisord_captured_autostart():
    with DirFS(ROOTS / "supervisord") as fs:
        facts = analyse(fs, image_config=ImageConfig(cmd=("/usr/bin/supervisord", "-n")))
    (finding,) = static_findings(facts)
    assert finding.software.id == "aiosmtpd" and finding.configured_scope is BindScope.ALL
    assert facts.boots_init and any("autostart=false" in p for p in facts.problems)


def test_systemd_masked_unit_is_not_enabled(tmp_path):
    fs_root = tmp_path
    wants = fs_root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True)
    (wants / "postfix.service").symlink_to("/lib/systemd/system/postfix.service")
    (fs_root / "etc/systemd/system/postfix.service").symlink_to("/dev/null")
    with DirFS(fs_root) as fs:
        facts = analyse(fs)
    assert facts.enabled == () and any("masked" in p for p in facts.problems)


def test_unit_under_another_name_found_by_execstart(tmp_path):
    wants = tmp_path / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True)
    (wants / "mail.service").write_text("[Service]\nExecStart=/usr/sbin/exim -bd -q30m\n")
    with DirFS(tmp_path) as fs:
        (enabled,) = analyse(fs).enabled
    assert enabled.software == "exim" and enabled.mechanism == "systemd"


def test_inetd_xinetd_runit_openrc(tmp_path):
    fs = tree(tmp_path, {
        "/etc/inetd.conf": "#smtp stream tcp nowait mail /usr/sbin/exim4 exim4 -bs\n"
                           "127.0.0.1:smtp stream tcp nowait mail /usr/sbin/tcpd /usr/sbin/exim4 -bs\n",
        "/etc/xinetd.d/smtp": "service smtp\n{\n  disable = no\n  server = /usr/sbin/exim4\n  server_args = -bs\n}\n",
        "/etc/service/mta/run": "#!/bin/sh\nexec 2>&1\nexec /usr/sbin/postfix start-fg\n",
        "/etc/runlevels/default/opensmtpd": "",
    })
    facts = analyse(fs)
    mech = sorted((e.software, e.mechanism) for e in facts.enabled)
    assert mech == [("exim", "inetd"), ("exim", "inetd"), ("opensmtpd", "openrc"), ("postfix", "runit")]
    inetd = [c for c in facts.listens if c.path == "/etc/inetd.conf"]
    assert inetd[0].scope is BindScope.LOOPBACK and inetd[0].line == 2


def test_captured_roots_findings():
    got = {}
    for name in ("postfix-all", "exim-all", "mixed"):
        with DirFS(ROOTS / name) as fs:
            got[name] = sorted((f.software.id, f.state.value) for f in static_findings(analyse(fs)))
    assert got == {"postfix-all": [("postfix", "enabled")], "exim-all": [("exim", "enabled")],
                   "mixed": [("dovecot", "enabled"), ("opensmtpd", "enabled")]}
