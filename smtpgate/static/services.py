"""What an init system or service manager would start: one reader per mechanism.

Each reader is a pure function of a RootFS that returns `Enablement`s (and,
for inetd, where it listens). A service is tied to an MTA by its name
(`Mta.units`) or by the command it runs (`Mta.starts`, the same test the
entrypoint reader uses).
"""

from __future__ import annotations

import re

from smtpgate import software
from smtpgate.model import BindScope, Process
from smtpgate.software.base import Mta
from smtpgate.static import shell
from smtpgate.static.facts import ConfiguredListen, Enablement
from smtpgate.static.fs import RootFS
from smtpgate.static.supervisor import programs

UNIT_DIRS = ("/etc/systemd/system", "/usr/local/lib/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system")
BOOT_TARGETS = ("multi-user.target", "default.target", "graphical.target", "sockets.target", "basic.target")
SYSV_RUNLEVELS = ("/etc/rc2.d", "/etc/rc3.d", "/etc/rc4.d", "/etc/rc5.d", "/etc/rcS.d", "/etc/rc.d/rc3.d",
                  "/etc/rc.d/rc5.d")
OPENRC_RUNLEVELS = ("/etc/runlevels/default", "/etc/runlevels/boot", "/etc/runlevels/sysinit")
S6_DIRS = ("/etc/services.d", "/etc/s6/services", "/etc/s6", "/etc/s6-overlay/s6-rc.d")
RUNIT_DIRS = ("/etc/service", "/var/service", "/service", "/etc/runit/runsvdir/default")
SMTP_SERVICES = {"smtp": 25, "submission": 587, "smtps": 465, "submissions": 465, "urd": 465, "ssmtp": 465,
                 "25": 25, "465": 465, "587": 587}


def mta_by_unit(name: str) -> Mta | None:
    """`postfix.service`, `postfix@-.service`, `S01postfix`, `exim4` -> the registry entry."""
    base = re.sub(r"\.(service|socket)$", "", name)
    base = base.split("@", 1)[0]
    return next((m for m in software.all_mtas() if base in m.units), None)


# A package manager installing or removing a server names it without running it.
_PACKAGE_VERB = re.compile(
    r"^(?:\S*/)?(?:apt-get|apt|aptitude|apk|yum|dnf|microdnf|zypper|npm|npx\s+-y\s+npm|yarn|pnpm|pip[\d.]*|pipx|uv"
    r"|poetry|gem|bundle|python[\d.]*\s+-m\s+pip)\s+(?:-\S+\s+)*"
    r"(?:install|i|add|ci|remove|rm|uninstall|purge|del|update|upgrade)\b")


def mta_by_command(command: str) -> Mta | None:
    """The MTA a command line starts (`Mta.starts`, else `Mta.processes`); None for package installs."""
    if _PACKAGE_VERB.match(command.lstrip()):
        return None
    return next((m for m in software.all_mtas() if m.starts and m.starts_daemon(command)), None) or next(
        (m for m in software.all_mtas() if not m.starts and m.processes and m.starts_daemon(command)), None)


# Servers configured on their command line: option, default "host:port" (None: no default known).
_ARGV_LISTEN: dict[str, tuple[tuple[str, ...], str | None]] = {
    "aiosmtpd": (("-l", "--listen"), "localhost:8025"),
    "python-smtpd": ((), "localhost:8025"),  # positional localaddr after the options
    "mailpit": (("-s", "--smtp"), "[::]:1025"),
    "mailhog": (("-smtp-bind-addr",), "0.0.0.0:1025"),
}


def argv_listen(mta_id: str, argv: tuple[str, ...]) -> tuple[str, str] | None:
    """(address, port) a command-line configured server binds, from its argv (or its default)."""
    if mta_id not in _ARGV_LISTEN:
        return None
    flags, default = _ARGV_LISTEN[mta_id]
    value = default
    for i, arg in enumerate(argv):
        for flag in flags:
            if arg == flag and i + 1 < len(argv):
                value = argv[i + 1]
            elif arg.startswith(flag + "="):
                value = arg.split("=", 1)[1]
    if mta_id == "python-smtpd" and "smtpd" in argv:
        rest = list(argv[argv.index("smtpd") + 1:])
        positional = [a for i, a in enumerate(rest) if not a.startswith("-") and (i == 0 or rest[i - 1] != "-c")]
        value = positional[0] if positional else default
    if value is None:
        return None
    host, _, port = value.rpartition(":")
    return (host.strip("[]") or "all"), port


# -- systemd -------------------------------------------------------------------


def systemd(fs: RootFS, problems: list[str]) -> list[Enablement]:
    """Units and sockets enabled in `*.wants/` / `*.requires/` and not masked."""
    out: list[Enablement] = []
    seen: set[tuple[str, str]] = set()
    for base in UNIT_DIRS:
        for wants in fs.glob(f"{base}/*.wants") + fs.glob(f"{base}/*.requires"):
            target = wants.rsplit("/", 1)[1].rsplit(".", 1)[0]
            if base != "/etc/systemd/system" and target not in BOOT_TARGETS:
                continue  # packages' static wants of other units are pulled in only through those
            for unit in fs.listdir(wants):
                path = f"{wants}/{unit}"
                mta = mta_by_unit(unit) or _unit_mta(fs, path, unit)
                if mta is None or (mta.id, unit) in seen:
                    continue
                masked = _masked(fs, unit)
                if masked:
                    problems.append(f"{path}: {unit} is enabled but masked ({masked} -> /dev/null); not counted")
                    continue
                seen.add((mta.id, unit))
                out.append(Enablement(mta.id, "systemd", f"systemd unit {unit} is enabled ({path})", path))
    return out


def _masked(fs: RootFS, unit: str) -> str | None:
    for base in ("/etc/systemd/system", "/run/systemd/system"):
        path = f"{base}/{unit}"
        if fs.readlink(path) == "/dev/null":
            return path
        node = fs.stat(path, follow=False)
        if node is not None and node.kind == "file" and node.size == 0:
            return path
    return None


def _unit_mta(fs: RootFS, path: str, unit: str) -> Mta | None:
    """An MTA a unit runs under another name: read its ExecStart= lines."""
    if not unit.endswith(".service"):
        return None
    text = fs.text(path) or next((fs.text(f"{d}/{unit}") for d in UNIT_DIRS if fs.isfile(f"{d}/{unit}")), None)
    for line in (text or "").splitlines():
        key, _, value = line.strip().partition("=")
        if key.strip() in ("ExecStart", "ExecStartPre") and value:
            mta = mta_by_command(value.lstrip("-@:+!"))
            if mta is not None:
                return mta
    return None


# -- SysV rc, OpenRC -----------------------------------------------------------


def sysv(fs: RootFS, problems: list[str]) -> list[Enablement]:
    out, seen = [], set()
    for rc in SYSV_RUNLEVELS:
        for name in fs.listdir(rc):
            m = re.match(r"^S\d\d(.+)$", name)
            mta = mta_by_unit(m.group(1)) if m else None
            if mta is not None and mta.id not in seen:
                seen.add(mta.id)
                out.append(Enablement(mta.id, "sysv", f"SysV init script starts it at boot ({rc}/{name})",
                                      f"{rc}/{name}"))
    return out


def openrc(fs: RootFS, problems: list[str]) -> list[Enablement]:
    out = []
    for level in OPENRC_RUNLEVELS:
        for name in fs.listdir(level):
            mta = mta_by_unit(name)
            if mta is not None:
                out.append(Enablement(mta.id, "openrc", f"OpenRC service {name} is in runlevel "
                                      f"{level.rsplit('/', 1)[1]}", f"{level}/{name}"))
    return out


# -- supervisord, s6, runit ----------------------------------------------------


def supervisord(fs: RootFS, problems: list[str], config: str | None = None,
                listens: list[ConfiguredListen] | None = None) -> list[Enablement]:
    """Programs with autostart; where one configures its listener on its command line
    (aiosmtpd -l, ...), that goes to `listens`."""
    out = []
    for prog in programs(fs, config, problems):
        mta = _commands_mta(prog.command, problems, prog.path)
        if mta is None:
            continue
        listen = argv_listen(mta.id, tuple(prog.command.split()))
        if listen is not None and listens is not None and prog.autostart:
            listens.append(ConfiguredListen(mta.id, _scope(listen[0]), listen[0], listen[1],
                                            f"supervisord program {prog.name}: {mta.name} command line listens on "
                                            f"{listen[0]}:{listen[1]}", prog.path, prog.line))
        if not prog.autostart:
            problems.append(f"{prog.path}:{prog.line}: supervisord program {prog.name} runs {mta.name} "
                            "but has autostart=false; not counted")
            continue
        out.append(Enablement(mta.id, "supervisord", f"supervisord program {prog.name} (autostart) runs "
                              f"`{prog.command[:200]}`", prog.path, prog.line))
    return out


def _commands_mta(text: str, problems: list[str], where: str) -> Mta | None:
    for cmd in shell.commands(text, problems, where):
        mta = mta_by_command(cmd.text)
        if mta is not None:
            return mta
    return None


def service_dirs(fs: RootFS, problems: list[str]) -> list[Enablement]:
    """s6 (s6-overlay v2 and v3, plain s6) and runit service directories with a `run` script."""
    out = []
    for mechanism, roots in (("s6", S6_DIRS), ("runit", RUNIT_DIRS)):
        for root in roots:
            for name in fs.listdir(root):
                run = f"{root}/{name}/run"
                text = fs.text(run)
                if text is None:
                    continue
                if fs.exists(f"{root}/{name}/down"):
                    problems.append(f"{root}/{name}: has a `down` file; not started")
                    continue
                mta = None
                for cmd in shell.commands(text, problems, run):
                    mta = mta_by_command(cmd.text)
                    if mta is not None:
                        out.append(Enablement(mta.id, mechanism, f"{mechanism} service {name} runs "
                                              f"`{cmd.text[:200]}`", run, cmd.line))
                        break
                if mta is None and mta_by_unit(name) is not None:
                    unit = mta_by_unit(name)
                    assert unit is not None
                    out.append(Enablement(unit.id, mechanism, f"{mechanism} service {name}", run))
    return out


# -- inetd, xinetd ---------------------------------------------------------------


def _served_mta(server: str, args: str) -> Mta:
    argv = tuple([server, *args.split()])
    for cmd in (" ".join(argv), " ".join(argv[1:])):
        found = software.identify_process(Process(0, cmd.split()[0].rsplit("/", 1)[-1] if cmd else "",
                                                  tuple(cmd.split())))
        if found is not None:
            return found
    return software.get("unknown")


def inetd(fs: RootFS, problems: list[str]) -> tuple[list[Enablement], list[ConfiguredListen]]:
    """`/etc/inetd.conf` SMTP lines (service smtp/submission/smtps or port 25/465/587)."""
    enabled, listens = [], []
    path = "/etc/inetd.conf"
    for number, line in enumerate((fs.text(path) or "").splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#") or len(fields) < 6:
            continue
        host, _, service = fields[0].rpartition(":")
        if service not in SMTP_SERVICES:
            continue
        server = fields[5] if len(fields) > 5 else ""
        args = " ".join(fields[6:])
        if server.rsplit("/", 1)[-1] in ("tcpd", "tcpserver") and fields[6:]:
            server, args = fields[6], " ".join(fields[7:])
        mta = _served_mta(server, args)
        enabled.append(Enablement(mta.id, "inetd", f"inetd serves {service} with `{server} {args}`".rstrip(),
                                  path, number))
        scope = BindScope.ALL if host in ("", "*") else _scope(host)
        listens.append(ConfiguredListen(mta.id, scope, host or "all", service,
                                        f"inetd listens on {host or '*'}:{service}", path, number))
    return enabled, listens


def xinetd(fs: RootFS, problems: list[str]) -> tuple[list[Enablement], list[ConfiguredListen]]:
    enabled, listens = [], []
    for path in ["/etc/xinetd.conf", *fs.glob("/etc/xinetd.d/*")]:
        text = fs.text(path)
        if text is None:
            continue
        for name, line, keys in _xinetd_blocks(text):
            port = keys.get("port", ("", 0))[0]
            if name not in SMTP_SERVICES and port not in SMTP_SERVICES:
                continue
            if keys.get("disable", ("no", 0))[0].lower() == "yes":
                continue
            mta = _served_mta(keys.get("server", ("", 0))[0], keys.get("server_args", ("", 0))[0])
            enabled.append(Enablement(mta.id, "inetd", f"xinetd service {name} is enabled", path, line))
            bind = keys.get("bind", keys.get("interface", ("", 0)))
            scope = _scope(bind[0]) if bind[0] else BindScope.ALL
            listens.append(ConfiguredListen(mta.id, scope, bind[0] or "all", port or name,
                                            f"xinetd service {name} binds {bind[0] or 'all interfaces'}",
                                            path, bind[1] or line))
    return enabled, listens


def _xinetd_blocks(text: str) -> list[tuple[str, int, dict[str, tuple[str, int]]]]:
    out: list[tuple[str, int, dict[str, tuple[str, int]]]] = []
    current: dict[str, tuple[str, int]] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if line.startswith("service ") and current is None:
            current = {}
            out.append((line.split()[1], number, current))
        elif line.startswith("}"):
            current = None
        elif current is not None and "=" in line:
            key, _, value = line.partition("=")
            current[key.strip().rstrip("+-")] = (value.strip(), number)
    return out


def _scope(address: str) -> BindScope:
    from smtpgate.static.config.common import address_scope

    return address_scope(address)
