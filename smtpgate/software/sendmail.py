"""Sendmail: the daemon retitles itself "sendmail: MTA: accepting connections".

Where it listens (`listens`): `O DaemonPortOptions=` lines of sendmail.cf, the compiled file that runs.

Each line is one daemon socket: `Port=` (default smtp), `Addr=` (default all
interfaces: INADDR_ANY), `Family=inet|inet6`, `Name=`, `M=s` (implicit TLS).
No such line at all means one daemon on all interfaces, port 25. The .mc
source is not what runs; it is mentioned when it says otherwise.
"""

from __future__ import annotations

from smtpgate.model import BindScope
from smtpgate.software.base import RERUN, Mta, patterns, ss_check
from smtpgate.software.listen import ConfigFiles, ConfiguredListen, address_scope

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


def read(fs: ConfigFiles, problems: list[str]) -> list[ConfiguredListen]:
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


SENDMAIL = Mta(
    id="sendmail",
    name="Sendmail",
    # SmtpGreetingMessage "$j Sendmail $v/$Z; $b": binary version / config version; date.
    banners=patterns(r"\bE?SMTP Sendmail (?P<version>\d+(?:\.\d+)+)"),
    processes=patterns(
        r"^sendmail: (?:MTA|MSP)\b",
        r"^(?:\S*/)?sendmail-mta(?:\s|$)",
        r"^(?:\S*/)?sendmail\s(?:.*\s)?-bd\b",
    ),
    packages=("sendmail-bin", "sendmail"),
    units=("sendmail",),  # not sm-client.service: the client queue runner (`sendmail -Ac -q`) listens nowhere
    # not /usr/sbin/sendmail: every MTA installs that compatibility name
    binaries=("/usr/sbin/sendmail-mta", "/usr/lib/sm.bin/sendmail", "/usr/sbin/sendmail.sendmail"),
    starts=patterns(r"(?:^|[\s/])(?:sendmail|sendmail-mta|sendmail\.sendmail)\s(?:.*\s)?-bd\b"),
    listens=read,
    listen_setting=(
        "`DAEMON_OPTIONS` in /etc/mail/sendmail.mc, compiled into `O DaemonPortOptions` in "
        "/etc/mail/sendmail.cf (the .cf file is what runs)"
    ),
    fix=(
        "Bind to loopback: give every DAEMON_OPTIONS line in /etc/mail/sendmail.mc an "
        "`Addr=127.0.0.1`, e.g. DAEMON_OPTIONS(`Port=smtp,Addr=127.0.0.1, Name=MTA')dnl and "
        "DAEMON_OPTIONS(`Port=submission,Addr=127.0.0.1, Name=MSA, M=Ea')dnl",
        "Rebuild sendmail.cf (Debian: `sendmailconfig`; elsewhere `make -C /etc/mail` or "
        "`m4 /etc/mail/sendmail.mc > /etc/mail/sendmail.cf`), then restart sendmail "
        "(`systemctl restart sendmail`)",
        "Or don't listen: start sendmail without `-bd` (`-q15m` alone runs the queue and opens "
        "no port), or `systemctl disable --now sendmail`, or remove the sendmail-bin package",
    ),
    verify=(
        "`grep '^O DaemonPortOptions' /etc/mail/sendmail.cf`: every line has `Addr=127.0.0.1`",
        ss_check("25,465,587"),
        RERUN,
    ),
)
