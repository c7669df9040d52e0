"""nginx mail proxy: greets "<server_name> ESMTP ready", so only the process tells it apart.

Where it listens (`listens`): `listen` of each `server` in `mail { }` that speaks SMTP.

nginx.conf and its `include`s (globs, relative to /etc/nginx), tokenised with
quotes, `#` comments, `;`, `{` and `}`. A mail server speaks SMTP when its
`protocol` is `smtp`, or, with no `protocol`, when it listens on 25, 465 or 587
(nginx picks the protocol from the port). Without the mail module
(`ngx_mail_module`) nginx refuses `mail { }`, so a block alone is enough.
"""

from __future__ import annotations

import re

from smtpgate.model import BindScope
from smtpgate.software.base import RERUN, Mta, patterns, ss_check
from smtpgate.software.listen import ConfigFiles, ConfiguredListen, address_scope, read_once

MAIN_PATHS = ("/etc/nginx/nginx.conf", "/usr/local/nginx/conf/nginx.conf", "/usr/local/etc/nginx/nginx.conf")
_TOKEN = re.compile(r"""\s*(?:#[^\n]*|"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|([{};])|([^\s{};"'#]+))""")
MAX_FILES = 200
SMTP_PORTS = {"25", "465", "587"}


def tokens(text: str) -> list[tuple[str, int]]:
    out, pos = [], 0
    line = 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            break
        line += text.count("\n", pos, m.start(0) + len(m.group(0)) - len(m.group(0).lstrip()))
        value = next((g for g in m.groups() if g is not None), None)
        if value is not None:
            out.append((value, line))
        line += m.group(0).lstrip().count("\n")
        pos = m.end()
    return out


def _expand(fs: ConfigFiles, path: str, problems: list[str], seen: list[str]) -> list[tuple[str, int, str]]:
    text = read_once(fs, path, seen, MAX_FILES)
    if text is None:
        return []
    toks = tokens(text)
    out: list[tuple[str, int, str]] = []
    i = 0
    while i < len(toks):
        word, line = toks[i]
        if word == "include" and i + 2 < len(toks) and toks[i + 2][0] == ";":
            pattern = toks[i + 1][0]
            pattern = pattern if pattern.startswith("/") else f"/etc/nginx/{pattern}"
            for inc in fs.glob(pattern):
                out += _expand(fs, inc, problems, seen)
            i += 3
            continue
        out.append((word, line, path))
        i += 1
    return out


def read(fs: ConfigFiles, problems: list[str]) -> list[ConfiguredListen]:
    main = next((p for p in MAIN_PATHS if fs.isfile(p)), None)
    if main is None:
        return []
    toks = _expand(fs, main, problems, [])
    out: list[ConfiguredListen] = []
    stack: list[str] = []
    statement: list[tuple[str, int, str]] = []
    server: dict[str, list[tuple[list[str], int, str]]] | None = None
    for word, line, path in toks:
        if word == "{":
            stack.append(statement[0][0] if statement else "")
            if stack == ["mail", "server"]:
                server = {}
            statement = []
        elif word == "}":
            if stack == ["mail", "server"] and server is not None:
                out += _server(server)
                server = None
            if stack:
                stack.pop()
            statement = []
        elif word == ";":
            if server is not None and statement and len(stack) == 2:
                server.setdefault(statement[0][0], []).append(
                    ([w for w, _, _ in statement[1:]], statement[0][1], statement[0][2]))
            statement = []
        else:
            statement.append((word, line, path))
    return out


def _server(server: dict[str, list[tuple[list[str], int, str]]]) -> list[ConfiguredListen]:
    given = server.get("protocol", [([""], 0, "")])[-1][0]
    protocol = given[0] if given else ""
    out = []
    for args, line, path in server.get("listen", []):
        if not args:
            continue
        addr, _, port = args[0].rpartition(":")
        if not addr and not port.isdigit():
            addr, port = port, "25"  # `listen 127.0.0.1;`
        smtp = protocol == "smtp" or (not protocol and port in SMTP_PORTS)
        if not smtp:
            continue
        scope = address_scope(addr) if addr else BindScope.ALL
        out.append(ConfiguredListen("nginx", scope, addr or "all", port,
                                    f"nginx mail server `listen {' '.join(args)}` (protocol "
                                    f"{protocol or 'from the port'})", path, line, "ssl" in args))
    return out


NGINX = Mta(
    id="nginx",
    name="nginx mail proxy",
    banners=(),
    processes=patterns(r"^nginx: (?:master|worker) process\b", r"^(?:\S*/)?nginx(?:\s|$)"),
    packages=("libnginx-mod-mail", "nginx-mod-mail"),
    units=("nginx",),
    binaries=("/usr/lib/nginx/modules/ngx_mail_module.so", "/usr/lib64/nginx/modules/ngx_mail_module.so"),
    starts=patterns(r"(?:^|[\s/])nginx(?:\s|$)"),
    needs_smtp_config=True,
    listens=read,
    listen_setting=(
        "`listen` in each `server { protocol smtp; }` block of the `mail { }` context "
        "(/etc/nginx/nginx.conf or a file it includes)"
    ),
    fix=(
        "Bind to loopback: write the listener as `listen 127.0.0.1:25;` (and `listen [::1]:25;`) "
        "in every `server` block inside `mail { }`, then `nginx -t && nginx -s reload`",
        "Or, if the image needs no mail proxy, remove the `mail { }` block and the "
        "`load_module modules/ngx_mail_module.so;` line (Debian: the libnginx-mod-mail package)",
    ),
    verify=(
        "`nginx -T | grep -A30 '^mail'` shows only 127.0.0.1 / [::1] `listen` lines",
        ss_check("25,465,587"),
        RERUN,
    ),
)
