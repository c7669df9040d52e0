"""OpenSMTPD: a privsep daemon whose processes are titled "smtpd: <role>".

Where it listens (`listens`): `listen on` lines of smtpd.conf.

`listen on localhost|lo|127.0.0.1|::1` is loopback; `all`, `egress` and `0.0.0.0`
are every (external) interface; another interface or address is specific;
`listen on socket` is the local submission socket, not TCP. A `$macro` is
looked up in the file's own `name = "value"` definitions. No `listen on`
line: OpenSMTPD listens nowhere on TCP.
"""

from __future__ import annotations

import re

from smtpgate.model import BindScope
from smtpgate.software.base import RERUN, Mta, patterns, ss_check
from smtpgate.software.listen import ConfigFiles, ConfiguredListen, address_scope, strip_comment

_FLAGS = r"(?:\s+(?:-[dFhnv]+|-[DfPT]\s*\S+))"  # smtpd(8) options, never Postfix's "-t inet"

PATHS = ("/etc/smtpd.conf", "/etc/smtpd/smtpd.conf", "/etc/opensmtpd/smtpd.conf", "/usr/local/etc/smtpd.conf",
         "/etc/mail/smtpd.conf")
_MACRO = re.compile(r"""^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"?([^"]*)"?\s*$""")


def read(fs: ConfigFiles, problems: list[str]) -> list[ConfiguredListen]:
    path = next((p for p in PATHS if fs.isfile(p)), None)
    if path is None:
        return []
    macros: dict[str, str] = {}
    out = []
    for number, raw in enumerate((fs.text(path) or "").split("\n"), 1):
        line = strip_comment(raw).strip()
        m = _MACRO.match(line)
        if m and not line.startswith("listen"):
            macros[m.group(1)] = m.group(2)
            continue
        words = line.split()
        if words[:2] != ["listen", "on"]:
            continue
        if len(words) < 3:
            problems.append(f"{path}:{number}: `listen on` without an interface; ignored")
            continue
        where = words[2]
        if where == "socket":
            continue
        if where.startswith("$"):
            where = macros.get(where[1:], where)
        scope = BindScope.SPECIFIC if where.startswith("$") else address_scope(where)
        port = words[words.index("port") + 1] if "port" in words[:-1] else "25"
        tls = "smtps" in words
        out.append(ConfiguredListen("opensmtpd", scope, where, port, f"OpenSMTPD `{line[:200]}`", path, number, tls))
    return out


OPENSMTPD = Mta(
    id="opensmtpd",
    name="OpenSMTPD",
    banners=patterns(r"\bE?SMTP OpenSMTPD\b"),
    processes=patterns(
        r"^smtpd: ",  # setproctitle: [priv], pony express, queue, scheduler, lookup, ...
        # the parent as started: a path or at least one flag, so a bare comm "smtpd"
        # (Postfix's child too) stays ambiguous
        rf"^(?!\S*/postfix/)(?:\S*/smtpd{_FLAGS}*|smtpd{_FLAGS}+)\s*$",
    ),
    packages=("opensmtpd",),
    units=("opensmtpd", "smtpd"),
    binaries=("/usr/sbin/smtpd", "/usr/local/sbin/smtpd"),
    starts=patterns(r"^(?!\S*/postfix/)(?:\S*/)?smtpd(?:\s|$)", r"(?:^|[\s/])smtpctl\s+start\b"),
    listens=read,
    listen_setting="`listen on` lines in /etc/smtpd.conf (Alpine: /etc/smtpd/smtpd.conf)",
    fix=(
        "Bind to loopback: make every `listen on` line `listen on localhost` (or `listen on lo`) "
        "in /etc/smtpd.conf (Alpine: /etc/smtpd/smtpd.conf); `listen on all`, `listen on egress` "
        "or an interface name such as `listen on eth0` expose it",
        "Check the file with `smtpd -n`, then restart: `systemctl restart opensmtpd`, or "
        "`smtpctl stop` and start `smtpd` again",
        "Or don't run it: `systemctl disable --now opensmtpd`, remove the opensmtpd package, or "
        "drop `smtpd` from the image's entrypoint",
    ),
    verify=("`smtpd -n` prints `configuration OK`", ss_check("25,465,587"), RERUN),
)
