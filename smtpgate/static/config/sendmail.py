"""Sendmail: `O DaemonPortOptions=` lines of sendmail.cf, the compiled file that runs.

Each line is one daemon socket: `Port=` (default smtp), `Addr=` (default all
interfaces: INADDR_ANY), `Family=inet|inet6`, `Name=`, `M=s` (implicit TLS).
No such line at all means one daemon on all interfaces, port 25. The .mc
source is not what runs; it is mentioned when it says otherwise.
"""

from __future__ import annotations

from smtpgate.model import BindScope
from smtpgate.static.config.common import address_scope
from smtpgate.static.facts import ConfiguredListen
from smtpgate.static.fs import RootFS

CF_PATHS = ("/etc/mail/sendmail.cf", "/etc/sendmail.cf", "/usr/local/etc/mail/sendmail.cf")


def daemon_options(text: str) -> list[tuple[dict[str, str], int]]:
    out = []
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line.startswith("O DaemonPortOptions"):
            continue
        _, _, value = line.partition("=")
        opts = {}
        for part in value.split(","):
            key, sep, val = part.partition("=")
            if sep:
                opts[key.strip().lower()] = val.strip()
        out.append((opts, number))
    return out


def read(fs: RootFS, problems: list[str]) -> list[ConfiguredListen]:
    path = next((p for p in CF_PATHS if fs.isfile(p)), None)
    if path is None:
        return []
    daemons = daemon_options(fs.text(path) or "")
    if not daemons:
        return [ConfiguredListen("sendmail", BindScope.ALL, "all", "smtp",
                                 "sendmail.cf has no DaemonPortOptions: one daemon on all interfaces, port 25",
                                 path, None)]
    out = []
    for opts, line in daemons:
        addr = opts.get("addr", "")
        scope = address_scope(addr) if addr else BindScope.ALL
        port = opts.get("port", "smtp")
        tls = "s" in opts.get("m", "")
        name = opts.get("name", "")
        out.append(ConfiguredListen("sendmail", scope, addr or "all", port,
                                    f"Sendmail daemon {name or '(unnamed)'}: Port={port}, "
                                    f"Addr={addr or 'all interfaces'}", path, line, tls))
    return out
