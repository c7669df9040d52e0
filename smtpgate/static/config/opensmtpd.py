"""OpenSMTPD: `listen on` lines of smtpd.conf.

`listen on localhost|lo|127.0.0.1|::1` is loopback; `all`, `egress` and `0.0.0.0`
are every (external) interface; another interface or address is specific;
`listen on socket` is the local submission socket, not TCP. A `$macro` is
looked up in the file's own `name = "value"` definitions. No `listen on`
line: OpenSMTPD listens nowhere on TCP.
"""

from __future__ import annotations

import re

from smtpgate.model import BindScope
from smtpgate.static.config.common import address_scope, strip_comment
from smtpgate.static.facts import ConfiguredListen
from smtpgate.static.fs import RootFS

PATHS = ("/etc/smtpd.conf", "/etc/smtpd/smtpd.conf", "/etc/opensmtpd/smtpd.conf", "/usr/local/etc/smtpd.conf",
         "/etc/mail/smtpd.conf")
_MACRO = re.compile(r"""^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"?([^"]*)"?\s*$""")


def read(fs: RootFS, problems: list[str]) -> list[ConfiguredListen]:
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
