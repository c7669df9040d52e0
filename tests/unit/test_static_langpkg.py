"""SMTP servers from language package managers (smtpgate.static.langpkg).

Real files: tests/unit/data/static/roots/npm-smtp-server and pip-smtp-server were
copied out of the fixture images of those names (README there). Gemspecs and jars
are made here in the shapes RubyGems and Maven write them.
"""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smtpgate.model import State
from smtpgate.software import get, identify
from smtpgate.static import DirFS, ImageConfig, analyse, static_findings
from smtpgate.static.langpkg import (
    command_server,
    gem_name_version,
    installed_lang_packages,
    jar_artifact,
    jar_contents,
    known,
    normal_pypi,
)

ROOTS = Path(__file__).parent / "data" / "static" / "roots"
SITE = "opt/mail/lib/python3.11/site-packages"


def tree(tmp_path: Path, files: dict[str, str | bytes], base: str | None = None) -> DirFS:
    if base is not None:
        shutil.copytree(ROOTS / base, tmp_path, dirs_exist_ok=True)
    for path, content in files.items():
        target = tmp_path / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    return DirFS(tmp_path)


def _found(fs: DirFS, workdir: str = "") -> dict[str, tuple[str, str, str]]:
    problems: list[str] = []
    return {p.name: (p.software, p.version, p.path) for p in installed_lang_packages(fs, problems, workdir)}


def _jar(entries: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in entries.items():
            zf.writestr(name, text)
    return buf.getvalue()


# -- installed ---------------------------------------------------------------------------


def test_npm_package_in_the_app_directory():
    with DirFS(ROOTS / "npm-smtp-server") as fs:
        found = _found(fs)
    assert found == {"smtp-server": ("smtp-server", "3.21.6", "/app/node_modules/smtp-server/package.json")}


def test_pypi_package_in_a_venv():
    with DirFS(ROOTS / "pip-smtp-server") as fs:
        found = _found(fs)
    assert found == {"aiosmtpd": ("aiosmtpd", "1.4.6", f"/{SITE}/aiosmtpd-1.4.6.dist-info/METADATA")}


def test_global_scoped_nested_and_pnpm_node_modules(tmp_path):
    fs = tree(tmp_path, {
        "/usr/local/lib/node_modules/maildev/package.json": '{"name": "maildev", "version": "2.1.0"}',
        "/usr/local/lib/node_modules/maildev/node_modules/smtp-server/package.json":
            '{"name": "smtp-server", "version": "3.13.0"}',
        "/srv/api/node_modules/.pnpm/fake-smtp-server@0.8.1/node_modules/fake-smtp-server/package.json":
            '{"name": "fake-smtp-server", "version": "0.8.1"}',
        "/home/dev/site/node_modules/Haraka/package.json": '{"name": "Haraka", "version": "3.0.3"}',
        # a directory named like a server whose package.json is another package's: not it
        "/srv/api/node_modules/maildev/package.json": '{"name": "maildev-fork", "version": "1.0.0"}',
        "/srv/api/node_modules/express/package.json": '{"name": "express", "version": "4.0.0"}',
    })
    found = _found(fs)
    assert found["maildev"] == ("maildev", "2.1.0", "/usr/local/lib/node_modules/maildev/package.json")
    assert found["smtp-server"][:2] == ("smtp-server", "3.13.0")
    assert found["fake-smtp-server"][:2] == ("fake-smtp-server", "0.8.1")
    assert found["haraka"][:2] == ("haraka", "3.0.3")
    assert set(found) == {"maildev", "smtp-server", "fake-smtp-server", "haraka"}


def test_python_dist_info_egg_info_dir_and_file_and_user_site(tmp_path):
    fs = tree(tmp_path, {
        "/usr/local/lib/python3.12/site-packages/salmon_mail-3.3.0.dist-info/METADATA":
            "Metadata-Version: 2.1\nName: salmon-mail\nVersion: 3.3.0\n\nName: not-this\n",
        "/usr/lib/python3/dist-packages/Twisted-22.4.0.egg-info/PKG-INFO":
            "Metadata-Version: 2.1\nName: Twisted\nVersion: 22.4.0\n",
        "/root/.local/lib/python3.11/site-packages/smtpdev-0.2.6.egg-info":
            "Metadata-Version: 1.1\nName: smtpdev\nVersion: 0.2.6\n",
        "/usr/local/lib/python3.12/site-packages/requests-2.31.0.dist-info/METADATA": "Name: requests\n",
    })
    found = _found(fs)
    assert found["salmon-mail"][:2] == ("salmon", "3.3.0")
    assert found["twisted"][:2] == ("twisted-mail", "22.4.0")
    assert found["smtpdev"] == ("smtpdev", "0.2.6", "/root/.local/lib/python3.11/site-packages/smtpdev-0.2.6.egg-info")
    assert "requests" not in found


def test_venv_found_by_pyvenv_cfg_deep_under_an_app_root(tmp_path):
    fs = tree(tmp_path, {
        "/srv/team/service/.venv/pyvenv.cfg": "home = /usr/bin\n",
        "/srv/team/service/.venv/lib/python3.11/site-packages/aiosmtpd-1.4.4.dist-info/METADATA":
            "Name: aiosmtpd\nVersion: 1.4.4\n",
    })
    assert _found(fs)["aiosmtpd"][:2] == ("aiosmtpd", "1.4.4")


def test_gems_by_specification_file(tmp_path):
    fs = tree(tmp_path, {
        "/usr/local/bundle/specifications/mailcatcher-0.10.0.gemspec":
            '# -*- encoding: utf-8 -*-\nGem::Specification.new do |s|\n  s.name = "mailcatcher".freeze\n'
            '  s.version = "0.10.0"\nend\n',
        "/usr/local/bundle/specifications/eventmachine-1.2.7.gemspec": 's.name = "eventmachine"\n',
        "/app/vendor/bundle/ruby/3.2.0/specifications/mailcatcher-0.9.0.gemspec": 's.name = "mailcatcher"\n',
        "/app/vendor/bundle/ruby/3.2.0/gems/.keep": "",
    })
    found = {(p.name, p.version, p.path) for p in installed_lang_packages(fs, [])}
    assert found == {
        ("mailcatcher", "0.10.0", "/usr/local/bundle/specifications/mailcatcher-0.10.0.gemspec"),
        ("mailcatcher", "0.9.0", "/app/vendor/bundle/ruby/3.2.0/specifications/mailcatcher-0.9.0.gemspec"),
    }


def test_gem_file_names():
    assert gem_name_version("mailcatcher-0.10.0") == ("mailcatcher", "0.10.0")
    assert gem_name_version("nokogiri-1.16.0-x86_64-linux") == ("nokogiri", "1.16.0")
    assert gem_name_version("mini-mime-1.1.5") == ("mini-mime", "1.1.5")
    assert gem_name_version("odd") == ("odd", "?")


def test_jars_by_name_by_pom_properties_and_nested(tmp_path):
    pom = "#Generated by Maven\nartifactId=subethasmtp\ngroupId=org.subethamail\nversion=3.1.7\n"
    fs = tree(tmp_path, {
        "/home/greenmail/greenmail-standalone-2.1.2.jar": _jar({"META-INF/MANIFEST.MF": "Main-Class: x\n"}),
        "/opt/app/app.jar": _jar({"META-INF/maven/org.subethamail/subethasmtp/pom.properties": pom,
                                  "com/example/Main.class": "x"}),
        "/srv/boot.jar": _jar({"BOOT-INF/lib/james-server-core-3.8.1.jar": "x", "BOOT-INF/lib/spring-5.jar": "x"}),
        "/opt/app/lib/commons-lang3-3.14.0.jar": _jar({"META-INF/MANIFEST.MF": ""}),
        "/opt/app/broken.jar": b"PK\x03\x04 not really a zip",
    })
    found = _found(fs)
    assert found["greenmail-standalone"] == ("greenmail", "2.1.2", "/home/greenmail/greenmail-standalone-2.1.2.jar")
    assert found["subethasmtp"] == (
        "subethasmtp", "3.1.7", "/opt/app/app.jar!/META-INF/maven/org.subethamail/subethasmtp/pom.properties")
    assert found["james-server-core"][:2] == ("james", "3.8.1")
    assert set(found) == {"greenmail-standalone", "subethasmtp", "james-server-core"}


def test_jar_names_need_the_whole_artifact_prefix():
    wanted = known()["jar"]
    assert jar_artifact("greenmail-2.0.0.jar", wanted) == ("greenmail", "greenmail", "2.0.0")
    assert jar_artifact("greenmailer-1.0.jar", wanted) is None
    assert jar_artifact("greenmail.jar", wanted) == ("greenmail", "greenmail", "?")
    assert list(jar_contents(b"not a zip", wanted)) == []


def test_pypi_names_are_normalised():
    assert normal_pypi("Salmon_Mail") == normal_pypi("salmon.mail") == "salmon-mail"
    assert known()["pypi"]["salmon-mail"] == "salmon"


def test_links_out_of_the_root_are_not_followed(tmp_path):
    outside = tmp_path / "outside"
    (outside / "smtp-server").mkdir(parents=True)
    (outside / "smtp-server" / "package.json").write_text('{"name": "smtp-server", "version": "9.9.9"}')
    root = tmp_path / "root"
    (root / "app").mkdir(parents=True)
    (root / "app" / "node_modules").symlink_to(outside)  # absolute: re-rooted inside, where nothing is
    (root / "srv").mkdir()
    (root / "srv" / "node_modules").symlink_to("../../outside")  # `..` stops at the root
    with DirFS(root) as fs:
        assert _found(fs) == {}


def test_directory_cycles_and_wide_directories_are_bounded(tmp_path, monkeypatch):
    from smtpgate.static import langpkg

    monkeypatch.setattr(langpkg, "MAX_ENTRIES", 50)
    files: dict[str, str | bytes] = {f"/app/node_modules/pkg{i:03}/package.json": "{}" for i in range(80)}
    fs = tree(tmp_path, files)
    (tmp_path / "app" / "node_modules" / "pkg000" / "node_modules").symlink_to("/app")  # a loop back up
    problems: list[str] = []
    assert installed_lang_packages(fs, problems) == []
    assert any("80 entries, only the first 50" in p for p in problems)


def test_time_budget_stops_the_search_and_says_so(tmp_path, monkeypatch):
    from smtpgate.static import langpkg

    monkeypatch.setattr(langpkg, "TIME_BUDGET", -1.0)
    fs = tree(tmp_path, {"/app/node_modules/smtp-server/package.json": '{"name": "smtp-server"}'})
    problems: list[str] = []
    installed_lang_packages(fs, problems)
    assert any("stopped early (the time budget" in p for p in problems)


def test_malformed_package_json_is_a_problem_not_a_crash(tmp_path):
    fs = tree(tmp_path, {"/app/node_modules/maildev/package.json": '{"name": "maildev", '})
    problems: list[str] = []
    assert installed_lang_packages(fs, problems) == []
    assert any("not valid JSON" in p for p in problems)


# -- enabled by the image command ------------------------------------------------------


def _cmd(fs: DirFS, argv: list[str], workdir: str = "/app"):
    return command_server(fs, tuple(argv), workdir, {})


def test_node_script_that_requires_the_library():
    with DirFS(ROOTS / "npm-smtp-server") as fs:
        hit = _cmd(fs, ["node", "server.js"])
        assert hit is not None and hit.mta.id == "smtp-server"
        assert (hit.script, hit.path, hit.line) == ("/app/server.js", "/app/server.js", 2)
        assert 'require("smtp-server")' in hit.text
        assert _cmd(fs, ["node", "/app/server"]) is not None  # node adds .js
        assert _cmd(fs, ["node", "-e", "require('smtp-server')"]) is None  # inline code: not a script


def test_python_script_that_imports_the_library():
    with DirFS(ROOTS / "pip-smtp-server") as fs:
        hit = _cmd(fs, ["/opt/mail/bin/python", "-u", "app.py"], "/srv")
        assert hit is not None and hit.mta.id == "aiosmtpd"
        assert (hit.path, hit.line, hit.text) == ("/srv/app.py", 5, "from aiosmtpd.controller import Controller")


@pytest.mark.parametrize(
    ("files", "argv", "want"),
    [
        ({"/app/main.py": "import os\nfrom mail import run\n",
          "/app/mail/__init__.py": "from twisted.mail.smtp import ESMTPFactory\n"},
         ["python3", "main.py"], "twisted-mail"),
        ({"/app/run.py": "import smtpd, asyncore\n"}, ["python3.11", "run.py"], "python-smtpd"),
        ({"/app/svc/__main__.py": "from salmon.server import SMTPReceiver\n"}, ["python", "-m", "svc"], "salmon"),
        ({"/app/tap.py": "from twisted.mail import mail, maildir\n"}, ["python", "tap.py"], "twisted-mail"),
        ({"/app/tap.py": "import twisted.mail.tap\n"}, ["python", "tap.py"], "twisted-mail"),
        ({"/app/index.mjs": "import { SMTPServer } from 'smtp-server';\n"}, ["node", "index.mjs"], "smtp-server"),
        ({"/app/index.js": "const mail = require('./lib/mail');\n",
          "/app/lib/mail.js": "module.exports = require('maildev');\n"}, ["node", "."], "maildev"),
        ({"/app/package.json": '{"scripts": {"start": "node ./bin/www"}}',
          "/app/bin/www": "#!/usr/bin/env node\nconst { SMTPServer } = require(\"smtp-server\")\n"},
         ["npm", "start"], "smtp-server"),
        ({"/app/package.json": '{"scripts": {"mail": "maildev --ip 0.0.0.0"}}'}, ["yarn", "mail"], "maildev"),
        ({"/app/server.js": "require('smtp-tester').init(4025)\n"}, ["npm", "start"], "smtp-server"),
        ({"/usr/local/bin/sink": "#!/usr/bin/env python3\nimport aiosmtpd.main\n"}, ["sink"], "aiosmtpd"),
        ({"/app/bin/catch": "#!/usr/bin/env ruby\nrequire 'mailcatcher'\nMailCatcher.run!\n"}, ["/app/bin/catch"],
         "mailcatcher"),
        ({"/app/package.json": '{"scripts": {"dev": "node mail.js"}}', "/app/mail.js": "require('smtp-server')\n"},
         ["bun", "run", "dev"], "smtp-server"),
        ({"/opt/app/app.jar": _jar({"BOOT-INF/lib/subethasmtp-3.1.7.jar": "x"})},
         ["java", "-Xmx256m", "-jar", "/opt/app/app.jar"], "subethasmtp"),
        ({"/opt/gm/greenmail-standalone-2.1.2.jar": "not read: the name says it"},
         ["java", "-Dgreenmail.setup.test.all", "-cp", "/opt/gm/greenmail-standalone-2.1.2.jar", "Main"], "greenmail"),
    ],
)
def test_scripts_run_by_the_command(tmp_path, files, argv, want):
    fs = tree(tmp_path, files)
    hit = _cmd(fs, argv)
    assert hit is not None and hit.mta.id == want


@pytest.mark.parametrize(
    ("files", "argv"),
    [
        ({"/app/app.py": "# from aiosmtpd import Controller is not used\nimport flask\n"}, ["python", "app.py"]),
        ({"/app/app.py": "import aiosmtpdx\nimport smtpdev_helpers\n"}, ["python", "app.py"]),
        ({"/app/server.js": "const nodemailer = require('nodemailer'); // a client\n"}, ["node", "server.js"]),
        ({"/app/package.json": '{"scripts": {"start": "node app.js"}}', "/app/app.js": "require('express')\n"},
         ["npm", "start"]),
        ({"/app/package.json": '{"scripts": {"start": "npm start"}}'}, ["npm", "start"]),  # a loop
        ({}, ["node", "missing.js"]),
        ({"/app/app.py": "from twisted.web import server\n"}, ["python", "app.py"]),
        ({"/app/app.py": "from twisted.mail.smtp import sendmail\n"}, ["python", "app.py"]),  # a client
        ({"/app/app.py": "from salmon.server import Relay\n"}, ["python", "app.py"]),  # a client
        ({"/opt/app/app.jar": _jar({"BOOT-INF/lib/spring-core-6.1.0.jar": "x"})}, ["java", "-jar", "/opt/app/app.jar"]),
        ({"/app/package.json": '{"scripts": {"start": "node a.js"}}'}, ["npm", "install"]),
    ],
)
def test_scripts_that_run_no_smtp_server(tmp_path, files, argv):
    assert _cmd(tree(tmp_path, files), argv) is None


def test_command_patterns_of_language_servers():
    from smtpgate.static.services import mta_by_command

    cases = {
        "node /usr/local/lib/node_modules/maildev/bin/maildev --ip 0.0.0.0": "maildev",
        "maildev -s 1025": "maildev",
        "npx fake-smtp-server -s 1025": "fake-smtp-server",
        "python -m aiosmtpd -n -l 0.0.0.0:8025": "aiosmtpd",
        "twistd mail --smtp=tcp:25": "twisted-mail",
        "twistd -n mail -d example.com=/srv/mail": "twisted-mail",
        "/opt/venv/bin/salmon start --pid /run/salmon.pid": "salmon",
        "mailcatcher --foreground --ip 0.0.0.0": "mailcatcher",
        "java -jar /home/greenmail/greenmail-standalone.jar": "greenmail",
        "smtpdev --smtp-host 0.0.0.0": "smtpdev",
        "qpsmtpd-forkserver -l 0.0.0.0 -p 25": "qpsmtpd",
        "msmtpd --interface=0.0.0.0 --port=25": "msmtpd",
    }
    for command, want in cases.items():
        mta = mta_by_command(command)
        assert mta is not None and mta.id == want, command
    for command in ("salmon gen myapp", "twistd web --path /srv", "npm install maildev", "node app.js"):
        mta = mta_by_command(command)
        assert mta is None or mta.id not in ("salmon", "twisted-mail", "maildev"), command


# -- the whole static analysis --------------------------------------------------------


def test_analyse_npm_fixture_root_enabled_and_installed():
    with DirFS(ROOTS / "npm-smtp-server") as fs:
        facts = analyse(fs, image_config=ImageConfig(cmd=("node", "server.js"), workdir="/app"))
    [finding] = static_findings(facts)
    assert (finding.software.id, finding.software.version, finding.state) == ("smtp-server", "3.21.6", State.ENABLED)
    kinds = {e.kind for e in finding.evidence}
    assert kinds == {"command", "package"}
    assert any(e.path == "/app/server.js" and e.line == 2 for e in finding.evidence)


def test_analyse_installed_only_when_the_command_runs_something_else(tmp_path):
    fs = tree(tmp_path, {"/srv/idle.py": "import time\n"}, base="pip-smtp-server")
    facts = analyse(fs, image_config=ImageConfig(cmd=("/opt/mail/bin/python", "idle.py"), workdir="/srv"))
    [finding] = static_findings(facts)
    assert (finding.software.id, finding.state) == ("aiosmtpd", State.INSTALLED)


def test_a_distribution_package_and_its_dist_info_are_one_package(tmp_path):
    dpkg = ("Package: python3-aiosmtpd\nStatus: install ok installed\nVersion: 1.4.4-1\n\n")
    fs = tree(tmp_path, {
        "/var/lib/dpkg/status": dpkg,
        "/usr/lib/python3/dist-packages/aiosmtpd-1.4.4.dist-info/METADATA": "Name: aiosmtpd\nVersion: 1.4.4\n",
        "/usr/local/lib/python3.11/dist-packages/aiosmtpd-1.4.6.dist-info/METADATA": "Name: aiosmtpd\nVersion: 1.4.6\n",
    })
    facts = analyse(fs)
    assert sorted((p.db, p.version) for p in facts.packages) == [("dpkg", "1.4.4-1"), ("pypi", "1.4.6")]


# -- naming what speaks ----------------------------------------------------------------


def test_a_server_built_on_a_library_is_named_by_its_process():
    from smtpgate.model import Process

    ehlo = ["250-gate.example Nice to meet you, [127.0.0.1]", "250 PIPELINING"]
    maildev = Process(9, "node", ("node", "/usr/local/bin/maildev", "--ip", "0.0.0.0"))
    plain = Process(9, "node", ("node", "server.js"))
    assert identify("220 gate.example ESMTP", ehlo, maildev).id == "maildev"
    assert identify("220 gate.example ESMTP", ehlo, maildev).how == "ehlo+process"
    assert identify("220 gate.example ESMTP", ehlo, plain).id == "smtp-server"
    smtpdev = Process(9, "python", ("/usr/local/bin/python", "/usr/local/bin/smtpdev"))
    assert identify("220 host Python SMTP 1.4.6", (), smtpdev).id == "smtpdev"
    assert get("smtp-server").fix and get("twisted-mail").fix


def test_an_unknown_listener_running_the_command_script_is_named_by_the_package():
    from smtpgate.model import Finding, Listener, Process, Software
    from smtpgate.static import merge

    with DirFS(ROOTS / "npm-smtp-server") as fs:
        facts = analyse(fs, image_config=ImageConfig(cmd=("node", "server.js"), workdir="/app"))
    unknown = Software("unknown", "unknown SMTP server", None, "none")

    def listening(cmdline: tuple[str, ...]) -> Finding:
        proc = Process(1, "node", cmdline)
        return Finding(software=unknown, state=State.LISTENING, listeners=(Listener("0.0.0.0", 2525, 4, 0, proc),))

    [named] = merge([listening(("node", "server.js"))], facts)
    assert (named.software.id, named.software.version, named.software.how) == ("smtp-server", "3.21.6",
                                                                               "process+package")
    assert {e.kind for e in named.evidence} >= {"command", "package"}
    other = merge([listening(("node", "/srv/other/server.js"))], facts)
    assert {f.software.id for f in other} == {"unknown", "smtp-server"}  # a different script: not it


def test_a_wide_directory_the_search_looks_into_is_no_cut(tmp_path):
    """The search only looks around: a listing cap it meets under /srv is its own note, not an
    incomplete view (which would make the scan undecided); what the other readers list stays a cut."""
    from smtpgate.static import FsLimits

    for i in range(30):
        (tmp_path / "srv" / "uploads").mkdir(parents=True, exist_ok=True)
        (tmp_path / "srv" / "uploads" / f"f{i:02}").write_text("x")
    with DirFS(tmp_path, limits=FsLimits(dir_entries=10)) as fs:
        problems: list[str] = []
        installed_lang_packages(fs, problems)
        assert fs.complete and not fs.cuts
        assert any("/srv/uploads: more entries than the listing cap" in p for p in problems)
        fs.listdir("/srv/uploads")
        assert not fs.complete and fs.cuts


# -- hostile input -------------------------------------------------------------------

BYTES = st.binary(max_size=600)
WORDS = st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=20), max_size=6)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(package_json=BYTES, metadata=BYTES, gemspec=BYTES, jar=BYTES, script=BYTES, argv=WORDS)
def test_hostile_files_and_commands_never_crash(tmp_path_factory, package_json, metadata, gemspec, jar, script, argv):
    root = tmp_path_factory.mktemp("hostile")
    fs = tree(root, {
        "/app/node_modules/smtp-server/package.json": package_json,
        "/app/package.json": package_json,
        "/usr/local/lib/python3.11/site-packages/aiosmtpd-1.0.dist-info/METADATA": metadata,
        "/usr/local/bundle/specifications/mailcatcher-1.0.gemspec": gemspec,
        "/opt/app/app.jar": jar,
        "/app/server.js": script,
        "/app/app.py": script,
    })
    problems: list[str] = []
    for pkg in installed_lang_packages(fs, problems, "/app"):
        assert pkg.software and len(pkg.version) <= 64
    for words in (argv, ["node", *argv], ["python3", *argv], ["npm", "start", *argv], ["java", "-jar", *argv]):
        hit = command_server(fs, tuple(words), "/app", {})
        assert hit is None or hit.mta.id != "unknown"
