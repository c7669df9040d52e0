"""Dovecot's submission service (port 587/465): an SMTP server in front of a relay.

Where it listens (`listens`): submission is on only when `protocols` names `submission`.

dovecot.conf and what it `!include`s / `!include_try`s (globs, relative to the
including file; Debian adds `submission` from
/usr/share/dovecot/protocols.d/submissiond.protocol as `protocols = $protocols
submission`). Listeners: `service submission-login { inet_listener NAME {
port, address } }`; `port = 0` switches one off; without `address` the global
`listen` applies (default `*, ::`: all interfaces). Without an explicit block
the built-in listener is 587 on `listen`.
"""

from __future__ import annotations

import re

from smtpgate.model import BindScope
from smtpgate.software.base import RERUN, Mta, patterns, ss_check
from smtpgate.software.listen import ConfigFiles, ConfiguredListen, address_scope, read_once, widest

MAIN = "/etc/dovecot/dovecot.conf"
MAX_FILES = 100


def _lines(fs: ConfigFiles, path: str, problems: list[str], seen: list[str]) -> list[tuple[str, int, str]]:
    """(file, line, text) of a config and its includes, in order."""
    text = read_once(fs, path, seen, MAX_FILES)
    if text is None:
        return []
    out = []
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.split("#", 1)[0].strip() if not raw.strip().startswith("#") else ""
        if not line:
            continue
        m = re.match(r"^!include(_try)?\s+(\S+)", line)
        if m:
            pattern = m.group(2) if m.group(2).startswith("/") else f"{path.rsplit('/', 1)[0]}/{m.group(2)}"
            matches = fs.glob(pattern)
            if not matches and not m.group(1) and not any(c in pattern for c in "*?["):
                problems.append(f"{path}:{number}: included {pattern} is missing")
            for inc in matches:
                out += _lines(fs, inc, problems, seen)
            continue
        out.append((path, number, line))
    return out


def read(fs: ConfigFiles, problems: list[str]) -> list[ConfiguredListen]:
    if not fs.isfile(MAIN):
        return []
    protocols: tuple[str, str, int] = ("imap pop3 lmtp", MAIN, 0)
    listen: tuple[str, str, int] = ("*, ::", MAIN, 0)
    stack: list[str] = []
    listeners: dict[str, dict[str, tuple[str, str, int]]] = {}
    for path, number, line in _lines(fs, MAIN, problems, []):
        if line.endswith("{"):
            stack.append(" ".join(line[:-1].split()))
            if stack[:1] == ["service submission-login"] and len(stack) == 2 and stack[1].startswith("inet_listener"):
                listeners.setdefault(stack[1].split()[-1], {"@": ("", path, number)})
            continue
        if line == "}":
            if stack:
                stack.pop()
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep:
            continue
        if not stack and key == "protocols":
            protocols = (value.replace("$protocols", protocols[0]), path, number)
        elif not stack and key == "listen":
            listen = (value, path, number)
        elif len(stack) == 2 and stack[0] == "service submission-login" and stack[1].startswith("inet_listener"):
            listeners[stack[1].split()[-1]][key] = (value, path, number)
    if "submission" not in protocols[0].split():
        return []
    if not listeners:
        listeners = {"submission": {"@": ("", MAIN, 0), "port": ("587", MAIN, 0)}}
    out = []
    for name, keys in listeners.items():
        port = keys.get("port", ("587" if name == "submission" else "465" if name == "submissions" else "?",))[0]
        if port == "0":
            continue
        addr, apath, aline = keys.get("address", listen)
        scope = widest([address_scope(a) for a in addr.replace(",", " ").split()]) or BindScope.ALL
        tls = keys.get("ssl", ("no",))[0] == "yes"
        out.append(ConfiguredListen("dovecot", scope, addr, port,
                                    f"Dovecot submission listener {name} on port {port}, address {addr} "
                                    f"(protocols = {protocols[0]} at {protocols[1]}:{protocols[2]})",
                                    apath, aline or None, tls))
    return out


DOVECOT = Mta(
    id="dovecot",
    name="Dovecot",
    banners=patterns(r"\bDovecot(?: \([^)]{0,40}\))? ready\b"),  # login_greeting, "(Debian)" etc.
    processes=patterns(
        r"^dovecot/submission(?:-login)?\b",
        r"^submission-logi?n?$",  # comm, cut to 15 characters
        r"^(?:\S*/)?dovecot(?:\s|$)",  # the master holds every listening socket
    ),
    packages=("dovecot-submissiond", "dovecot-core", "dovecot"),
    units=("dovecot",),
    binaries=("/usr/lib/dovecot/submission", "/usr/libexec/dovecot/submission"),
    starts=patterns(r"(?:^|[\s/])dovecot(?:\s|$)"),
    needs_smtp_config=True,
    listens=read,
    config_paths=("/usr/share/dovecot/",),  # protocols.d: what the installed protocol packages enable
    listen_setting=(
        "`protocols` (Debian: the dovecot-submissiond package adds `submission` by being "
        "installed) and `service submission-login { inet_listener submission { address, port } }` "
        "in /etc/dovecot/dovecot.conf and /etc/dovecot/conf.d/; `listen` is the default address"
    ),
    fix=(
        "If nothing needs mail submission: remove `submission` from `protocols` (Debian/Ubuntu: "
        "remove the dovecot-submissiond package), then `systemctl restart dovecot`",
        "Or bind it to loopback: `service submission-login { inet_listener submission { "
        "address = 127.0.0.1, ::1 } inet_listener submissions { address = 127.0.0.1, ::1 } }` "
        "in /etc/dovecot/conf.d/, then `doveadm reload`",
        "Or switch a listener off with `port = 0` inside its `inet_listener` block",
    ),
    verify=(
        "`doveconf -n | grep -E -A4 '^protocols|submission-login'` shows no submission protocol, "
        "or only loopback addresses",
        ss_check("465,587"),
        RERUN,
    ),
)
