"""The software registry checked against itself: each MTA's facts live in its one module
(smtpgate/software/<mta>.py), and nothing two entries claim can be told apart.

Data: the captured root filesystems of tests/unit/data/static/roots (README there).
"""

from __future__ import annotations

import ast
import importlib
import io
import pkgutil
import subprocess
import sys
import tarfile
from collections import Counter
from pathlib import Path

import pytest

import smtpgate.software as software_pkg
from smtpgate.model import BindScope
from smtpgate.software import REGISTRY, all_mtas, get
from smtpgate.software.base import Mta
from smtpgate.software.listen import ArgvListen
from smtpgate.static import DirFS, TarFS
from smtpgate.static.services import mta_by_unit
from smtpgate.static.tarfs import default_wanted

ROOTS = Path(__file__).parent.parent / "data" / "static" / "roots"
ENTRIES = [m for m in REGISTRY if m.id != "unknown"]
MODULES = [name for _, name, _ in pkgutil.iter_modules(software_pkg.__path__, "smtpgate.software.")]

# Unit and SysV script names a live host's systemd / init.d uses for each MTA (what
# smtpgate/targets/ssh.py's UNITS and SYSV tables listed): each must name its entry.
LIVE_UNITS = {
    "postfix": ("postfix.service", "postfix"),
    "exim": ("exim4.service", "exim.service", "exim4"),
    "sendmail": ("sendmail.service", "sendmail"),  # not sm-client: see test_queue_runners_are_not_listeners
    "opensmtpd": ("opensmtpd.service", "smtpd.service", "opensmtpd"),
    "courier": ("courier-mta.service", "courier-mta-ssl.service", "courier-msa.service", "courier.service",
                "courier-mta"),
    "dovecot": ("dovecot.service", "dovecot.socket", "dovecot"),
    "nginx": ("nginx.service", "nginx"),
    "haraka": ("haraka.service",),
    "mailpit": ("mailpit.service",),
    "mailhog": ("mailhog.service",),
    "maddy": ("maddy.service",),
    "qmail": ("qmail.service", "qmail-smtpd.socket", "qmail-smtpd.service"),
}


def _claims(field: str) -> Counter[str]:
    return Counter(value for mta in REGISTRY for value in getattr(mta, field))


@pytest.mark.parametrize("field", ["packages", "lang_packages", "units", "binaries"])
def test_nothing_claimed_by_two_entries(field):
    twice = {value: [m.id for m in REGISTRY if value in getattr(m, field)]
             for value, n in _claims(field).items() if n > 1}
    assert twice == {}


def test_ids_are_unique_and_get_finds_each():
    assert [i for i, n in Counter(m.id for m in REGISTRY).items() if n > 1] == []
    assert all(get(m.id) is m for m in REGISTRY)
    assert all_mtas()[-1].id == "unknown"


def test_built_on_names_registry_entries():
    ids = {m.id for m in REGISTRY}
    assert {(m.id, lib) for m in REGISTRY for lib in m.built_on if lib not in ids or lib == m.id} == set()


def test_every_entry_says_how_to_fix_and_verify():
    assert [m.id for m in ENTRIES if not (m.fix and m.verify and m.listen_setting)] == []


def test_an_entry_that_reads_where_it_listens_says_which_setting_that_is():
    readers = [m for m in REGISTRY if m.listens is not None or m.argv_listen is not None]
    assert {"postfix", "exim", "sendmail", "opensmtpd", "dovecot", "nginx", "aiosmtpd", "python-smtpd",
            "mailpit", "mailhog"} <= {m.id for m in readers}
    assert [m.id for m in readers if not (m.listen_setting and m.fix)] == []


def test_needs_smtp_config_entries_have_a_listen_reader():
    needing = [m for m in REGISTRY if m.needs_smtp_config]
    assert {m.id for m in needing} >= {"dovecot", "nginx"}
    assert [m.id for m in needing if m.listens is None] == []


def test_argv_listen_entries_say_where_they_listen_without_options():
    """A command-line configured server with no option given: its default, never a crash."""
    for mta in REGISTRY:
        if isinstance(mta.argv_listen, ArgvListen):
            found = mta.command_listen(("server",), "test")
            assert (found is not None) == (mta.argv_listen.default is not None), mta.id


@pytest.mark.parametrize("module", MODULES)
def test_every_module_level_entry_is_registered(module):
    """An `Mta` defined in a software module but left out of REGISTRY is dead (a stale copy)."""
    mod = importlib.import_module(module)
    stray = [name for name, value in vars(mod).items()
             if isinstance(value, Mta) and not any(value is m for m in REGISTRY)]
    assert stray == []


@pytest.mark.parametrize("module", MODULES)
def test_no_module_level_name_is_assigned_twice(module):
    """A second `NAME = Mta(...)` silently replaces the first (node.py once defined SMTP_SERVER twice)."""
    path = Path(importlib.import_module(module).__file__ or "")
    tree = ast.parse(path.read_text())
    names = Counter(target.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
                    for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
                    if isinstance(target, ast.Name))
    assert [name for name, n in names.items() if n > 1] == []


@pytest.mark.parametrize(("mta_id", "names"), sorted(LIVE_UNITS.items()))
def test_live_unit_names_map_to_their_entry(mta_id, names):
    assert {name: getattr(mta_by_unit(name), "id", None) for name in names} == dict.fromkeys(names, mta_id)


@pytest.mark.parametrize("root", sorted(p.name for p in ROOTS.iterdir()))
def test_readers_on_captured_roots_speak_only_for_their_entry(root):
    """Every listen reader over every captured root: what it finds is its own MTA's, with evidence."""
    found = []
    with DirFS(ROOTS / root) as fs:
        for mta in REGISTRY:
            if mta.listens is None:
                continue
            problems: list[str] = []
            for listen in mta.listens(fs, problems):
                found.append(listen)
                assert listen.software == mta.id and listen.text and listen.path, listen
    if root in ("postfix-all", "exim-all"):
        assert {c.software for c in found} == {root.split("-", 1)[0]}


def test_the_registry_imports_no_reader_of_static_analysis():
    """smtpgate.static uses the registry, never the other way round: no import cycle."""
    code = ("import sys, smtpgate.software; "
            "print(sorted(m for m in sys.modules if m.startswith('smtpgate.static')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


def test_config_paths_are_kept_from_a_stream():
    paths = [p for m in REGISTRY for p in m.config_paths]
    assert "/usr/exim/configure" in paths and all(p.startswith("/") for p in paths)
    assert [p for p in paths if default_wanted(p.rstrip("/") + ("/x" if p.endswith("/") else ""), 100, 0o644)
            != "keep"] == []


def test_a_config_outside_etc_is_read_from_a_stream():
    """Exim built from source reads /usr/exim/configure: the streamed image keeps it, the reader finds it."""
    data = b"primary_hostname = mx\nlocal_interfaces = 0.0.0.0\nbegin acl\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("usr/exim/configure")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    with TarFS.from_stream(buf) as fs:
        reader = get("exim").listens
        assert reader is not None
        (listen,) = reader(fs, [])
    assert (listen.scope, listen.path, listen.line) == (BindScope.ALL, "/usr/exim/configure", 2)


def test_names_are_written_the_way_the_readers_look_them_up():
    """Units without a suffix or instance (mta_by_unit strips `.service`/`.socket` and `@...`),
    binaries as absolute paths, command-line flags as options."""
    assert [(m.id, u) for m in REGISTRY for u in m.units
            if not u or u.endswith((".service", ".socket")) or "@" in u or "/" in u] == []
    assert [(m.id, b) for m in REGISTRY for b in m.binaries if not b.startswith("/")] == []
    assert [(m.id, f) for m in REGISTRY if isinstance(m.argv_listen, ArgvListen)
            for f in (*m.argv_listen.flags, *m.argv_listen.value_options) if not f.startswith("-")] == []


def test_queue_runners_are_not_listeners():
    """sendmail's sm-client.service runs the client queue (`sendmail -Ac -q`) and listens on no port:
    enabled alone it is no enabled SMTP service (Debian and RHEL enable it beside sendmail.service)."""
    assert mta_by_unit("sm-client.service") is None
    assert mta_by_unit("sendmail.service") is not None and mta_by_unit("sendmail.service").id == "sendmail"
