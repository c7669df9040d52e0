"""Postfix: `master` holds the ports, children `smtpd` / `postscreen` speak SMTP.

Where it listens (`listens`): main.cf `inet_interfaces` (the last occurrence wins) and master.cf inet services.

A master.cf service written `host:port` listens on that host whatever
inet_interfaces says; a commented-out line is no service; `-o
smtpd_tls_wrappermode=yes` makes it implicit TLS. Only inet services whose
command is smtpd or postscreen speak SMTP. Line continuation in both files:
a line that starts with white space continues the previous one.
"""

from __future__ import annotations

from dataclasses import dataclass

from smtpgate.model import BindScope
from smtpgate.software.base import RERUN, Mta, patterns, ss_check
from smtpgate.software.listen import ConfigFiles, ConfiguredListen, address_scope, widest

CONFIG_DIR = "/etc/postfix"
SMTP_COMMANDS = {"smtpd", "postscreen"}


@dataclass(frozen=True)
class Setting:
    value: str
    line: int
    occurrences: int = 1


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(line, text): comments and blank lines dropped, indented lines joined to the previous one."""
    out: list[tuple[int, str]] = []
    for number, raw in enumerate(text.split("\n"), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        if raw[0] in " \t" and out:
            out[-1] = (out[-1][0], f"{out[-1][1]} {raw.strip()}")
        else:
            out.append((number, raw.rstrip()))
    return out


def main_cf(text: str) -> dict[str, Setting]:
    """Parameters of main.cf; for a name given twice the last wins (and the count is kept)."""
    params: dict[str, Setting] = {}
    for number, line in logical_lines(text):
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not name or " " in name:
            continue
        count = params[name].occurrences + 1 if name in params else 1
        params[name] = Setting(value.strip(), number, count)
    return params


@dataclass(frozen=True)
class Service:
    name: str  # "smtp", "127.0.0.1:10025", "[::1]:smtp"
    type: str
    command: str
    args: tuple[str, ...]
    line: int

    @property
    def host(self) -> str | None:
        if self.name.startswith("[") and "]:" in self.name:
            return self.name[1: self.name.index("]:")]
        return self.name.rpartition(":")[0] if ":" in self.name else None

    @property
    def port(self) -> str:
        return self.name.rpartition(":")[2]

    def option(self, key: str) -> str | None:
        found = None
        for i, arg in enumerate(self.args):
            if arg == "-o":
                text = self.args[i + 1] if i + 1 < len(self.args) else ""
            else:
                text = arg[2:] if arg.startswith("-o") else ""
            k, sep, v = text.partition("=")
            if sep and k.strip() == key:
                found = v.strip()
        return found


def master_cf(text: str, problems: list[str], path: str) -> list[Service]:
    out = []
    for number, line in logical_lines(text):
        fields = line.split()
        if len(fields) < 8:
            problems.append(f"{path}:{number}: master.cf line with {len(fields)} fields (8 needed); ignored")
            continue
        out.append(Service(fields[0], fields[1], fields[7].rsplit("/", 1)[-1], tuple(fields[8:]), number))
    return out


def interfaces_scope(value: str) -> BindScope:
    words = [w for w in value.replace(",", " ").split() if w]
    return widest([address_scope(w) for w in words]) or BindScope.ALL


def read(fs: ConfigFiles, problems: list[str]) -> list[ConfiguredListen]:
    main_path, master_path = f"{CONFIG_DIR}/main.cf", f"{CONFIG_DIR}/master.cf"
    main_text, master_text = fs.text(main_path), fs.text(master_path)
    if main_text is None and master_text is None:
        return []
    params = main_cf(main_text or "")
    inet = params.get("inet_interfaces")
    if inet is not None and "$" in inet.value:
        problems.append(f"{main_path}:{inet.line}: inet_interfaces = {inet.value} uses a variable; judged as written")
    scope = interfaces_scope(inet.value) if inet else BindScope.ALL
    said = (f"inet_interfaces = {inet.value}" + (f" (the last of {inet.occurrences} occurrences)"
                                                 if inet.occurrences > 1 else "")) if inet else \
        "inet_interfaces not set (default: all)"
    out = []
    for svc in master_cf(master_text or "", problems, master_path):
        if svc.type != "inet" or svc.command not in SMTP_COMMANDS:
            continue
        tls = (svc.option("smtpd_tls_wrappermode") or "").lower() in ("yes", "true")
        kind = "implicit TLS " if tls else ""
        if svc.host is not None:
            out.append(ConfiguredListen("postfix", address_scope(svc.host), svc.host, svc.port,
                                        f"Postfix {kind}service `{svc.name} inet ... {svc.command}` in master.cf "
                                        f"binds {svc.host} itself (overrides inet_interfaces)",
                                        master_path, svc.line, tls))
        else:
            where = (main_path, inet.line) if inet else (master_path, svc.line)
            out.append(ConfiguredListen("postfix", scope, inet.value if inet else "all", svc.port,
                                        f"Postfix {kind}service `{svc.name} inet ... {svc.command}` "
                                        f"({master_path}:{svc.line}) listens on {said}",
                                        where[0], where[1], tls))
    return out


POSTFIX = Mta(
    id="postfix",
    name="Postfix",
    # smtpd_banner defaults to "$myhostname ESMTP $mail_name" (Debian appends "(Debian/GNU)");
    # a version shows only where an admin added "($mail_version)".
    banners=patterns(r"\bE?SMTP Postfix\b(?: \((?P<version>\d+\.\d+(?:\.\d+)*)\))?"),
    processes=patterns(
        r"^\S*/postfix/(?:sbin/)?(?:master|smtpd|postscreen)(?:\s|$)",  # lib/ or libexec/
        r"^(?:\S*/)?(?:smtpd|postscreen)\s(?:.*\s)?-t\s+(?:inet|pass|unix)\b",  # master(8)'s args
        r"^postscreen$",
        r"^(?:\S*/)?postfix\s+start(?:-fg)?\b",
    ),
    packages=("postfix",),
    units=("postfix",),
    binaries=("/usr/lib/postfix/sbin/master", "/usr/libexec/postfix/master", "/usr/sbin/postfix"),
    starts=patterns(
        r"(?:^|[\s/])postfix\s+(?:-\S+\s+)*start(?:-fg)?(?:\s|$)",
        r"(?:^|\s)\S*/postfix/(?:sbin/)?master(?:\s|$)",
        r"(?:^|[\s/])postmulti\s.*-p\s+start(?:-fg)?\b",
    ),
    listens=read,
    listen_setting=(
        "`inet_interfaces` in /etc/postfix/main.cf (the last occurrence wins); a `host:port` "
        "service name in /etc/postfix/master.cf overrides it for that service"
    ),
    fix=(
        "Bind to loopback: set `inet_interfaces = loopback-only` in /etc/postfix/main.cf "
        "(`postconf -e inet_interfaces=loopback-only`; the last occurrence in the file wins), "
        "then `postfix stop; postfix start` (`postfix reload` does not apply a change of "
        "inet_interfaces)",
        "In /etc/postfix/master.cf, a service written as `0.0.0.0:smtp` or `192.0.2.1:submission` "
        "ignores inet_interfaces: write it as `127.0.0.1:smtp` or remove it",
        "Or accept no mail from the network: comment out the `smtp inet` line (and the "
        "`submission`, `submissions`/`smtps` inet lines) in /etc/postfix/master.cf, then "
        "`postfix reload`",
        "Or don't run it: `systemctl disable --now postfix` (VM images), remove the postfix "
        "package, or drop `postfix start`/`postfix start-fg` from the image's entrypoint",
    ),
    verify=(
        "`postconf -n inet_interfaces` prints `inet_interfaces = loopback-only`",
        "`postconf -M | grep inet` lists no service on a non-loopback `host:port`",
        ss_check("25,465,587"),
        RERUN,
    ),
)
