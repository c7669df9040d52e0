"""What an init system or service manager would start: one reader per mechanism.

Each reader is a pure function of a RootFS that returns `Enablement`s (and,
for inetd, where it listens). A service is tied to an MTA by its name
(`Mta.units`) or by the command it runs (`Mta.starts`, the same test the
entrypoint reader uses).
"""

from __future__ import annotations

import re
from dataclasses import replace

from smtpgate import software
from smtpgate.model import BindScope, Process
from smtpgate.software.base import Mta
from smtpgate.software.listen import address_scope
from smtpgate.static import shell
from smtpgate.static.facts import ConfiguredListen, Enablement
from smtpgate.static.fs import RootFS
from smtpgate.static.supervisor import programs

UNIT_DIRS = ("/etc/systemd/system", "/usr/local/lib/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system")
BOOT_TARGETS = ("multi-user.target", "default.target", "graphical.target", "sockets.target", "basic.target")
SYSV_RUNLEVELS = ("/etc/rc2.d", "/etc/rc3.d", "/etc/rc4.d", "/etc/rc5.d", "/etc/rcS.d", "/etc/rc.d/rc3.d",
                  "/etc/rc.d/rc5.d")
OPENRC_RUNLEVELS = ("/etc/runlevels/default", "/etc/runlevels/boot", "/etc/runlevels/sysinit")
S6_DIRS = ("/etc/services.d", "/etc/s6/services", "/etc/s6", "/etc/s6-overlay/s6-rc.d", "/run/service")
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


MAX_DEFINITION_DEPTH = 3


def command_mta(fs: RootFS, text: str, where: str, problems: list[str], env: dict[str, str] | None = None,
                args: list[str] | None = None, depth: int = 0) -> Mta | None:
    """The MTA a command line or script starts: directly, or through a shell script it runs
    (a supervisord program's wrapper, a run script that execs another), `MAX_DEFINITION_DEPTH` deep."""
    for cmd in shell.commands(text, problems, where, env, args=args, arg0=where, exists=fs.exists, glob=fs.glob):
        argv, _ = shell.unwrap(list(cmd.argv))
        mta = mta_by_command(" ".join(argv)) if argv else None
        if mta is not None:
            return mta
        path = _script_path(fs, argv)
        if path is not None and depth < MAX_DEFINITION_DEPTH:
            inner = command_mta(fs, fs.text(path) or "", path, problems, env, argv[1:], depth + 1)
            if inner is not None:
                return inner
    return None


def _script_path(fs: RootFS, argv: list[str]) -> str | None:
    if not argv:
        return None
    arg = shell.script_argument(tuple(argv))
    if arg and arg.startswith("/") and fs.isfile(arg):
        return arg
    head = fs.head(argv[0]) if argv[0].startswith("/") else None
    first = head.split(b"\n", 1)[0] if head else b""
    words = first[2:].decode("utf-8", "replace").split() if first.startswith(b"#!") else []
    return argv[0] if any(w.rsplit("/", 1)[-1] in shell.SHELLS for w in words[:2]) else None


def resolve_service(fs: RootFS, manager: str, name: str, supervisord_config: str | None, env: dict[str, str],
                    problems: list[str]) -> tuple[Mta, str] | None:
    """The MTA a control command's service X runs, by the service's definition where the image has
    one (and says how it was found), else by its name."""
    base = name.rstrip("/").rsplit("/", 1)[-1]
    for path, how in _definitions(fs, manager, name, base, supervisord_config, problems, env):
        if path.startswith("program:"):
            mta = command_mta(fs, how, path, problems, env)
            how = f"supervisord [{path}] runs `{how[:120]}`"
        elif path.endswith(".service"):
            mta = _unit_mta(fs, path, base if base.endswith(".service") else f"{base}.service")
            how = f"unit {path}"
        else:
            mta = command_mta(fs, fs.text(path) or "", path, problems, env, ["start"] if "/init.d/" in path else None)
            how = f"defined by {path}"
        if mta is not None:
            return mta, how
    unit = mta_by_unit(base.split(":", 1)[-1])
    return (unit, "by its name") if unit is not None else None


def _definitions(fs: RootFS, manager: str, name: str, base: str, supervisord_config: str | None,
                 problems: list[str], env: dict[str, str]) -> list[tuple[str, str]]:
    if manager == "supervisord":
        wanted = base.split(":", 1)[-1]
        progs = programs(fs, supervisord_config, problems, env)
        return [(f"program:{p.name}", p.command) for p in progs if wanted in ("all", "*", p.name)]
    if manager in ("runit", "s6"):
        dirs = [name] if name.startswith("/") else []
        dirs += [f"{root}/{base}" for root in (*S6_DIRS, *RUNIT_DIRS, "/run/service", "/etc/sv", "/etc/runit/sv")]
        return [(f"{d}/{f}", "") for d in dirs for f in ("run", "up") if fs.isfile(f"{d}/{f}")][:2]
    if manager in ("sysv", "openrc"):
        return [(f"{d}/{base}", "") for d in ("/etc/init.d", "/etc/rc.d/init.d") if fs.isfile(f"{d}/{base}")]
    if manager == "systemd":
        unit = base if base.endswith(".service") else f"{base}.service"
        return [(f"{d}/{unit}", "") for d in UNIT_DIRS if fs.isfile(f"{d}/{unit}")][:1]
    return []


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
    for line in (text or "").split("\n"):
        key, _, value = line.strip().partition("=")
        if key.strip() in ("ExecStart", "ExecStartPre") and value:
            mta = mta_by_command(value.lstrip("-@:+!"))
            if mta is not None:
                return mta
    return None


# -- SysV rc, OpenRC -----------------------------------------------------------


def sysv(fs: RootFS, problems: list[str]) -> list[Enablement]:
    """S links of the runlevels SysV init enters: with an /etc/inittab, rcS and its `initdefault`
    runlevel, plus the daemons its own lines run; without one, runlevels S and 2-5."""
    out, seen = [], set()
    runlevels, extra = _inittab(fs, problems)
    for rc in runlevels:
        for name in fs.listdir(rc):
            m = re.match(r"^S\d\d(.+)$", name)
            mta = mta_by_unit(m.group(1)) if m else None
            if mta is not None and mta.id not in seen:
                seen.add(mta.id)
                out.append(Enablement(mta.id, "sysv", f"SysV init script starts it at boot ({rc}/{name})",
                                      f"{rc}/{name}"))
    return out + extra


def _inittab(fs: RootFS, problems: list[str]) -> tuple[tuple[str, ...], list[Enablement]]:
    text = fs.text("/etc/inittab")
    if text is None:
        return SYSV_RUNLEVELS, []
    level, extra = "2", []
    for number, raw in enumerate(text.split("\n"), 1):
        fields = raw.split(":", 3)
        if raw.lstrip().startswith("#") or len(fields) < 4:
            continue
        if fields[2] == "initdefault" and fields[1].strip():
            level = fields[1].strip()[:1]
        elif fields[2] in ("respawn", "once", "wait", "boot", "bootwait", "sysinit"):
            mta = mta_by_command(fields[3].strip())
            if mta is not None:
                extra.append(Enablement(mta.id, "sysv", f"/etc/inittab line {number} runs `{fields[3][:200]}`",
                                        "/etc/inittab", number))
    return ("/etc/rcS.d", f"/etc/rc{level}.d", f"/etc/rc.d/rc{level}.d"), extra


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
                listens: list[ConfiguredListen] | None = None, env: dict[str, str] | None = None) -> list[Enablement]:
    """Programs with autostart (and what their commands start, through the scripts they run);
    where one configures its listener on its command line (aiosmtpd -l, ...), that goes to `listens`."""
    out = []
    for prog in programs(fs, config, problems, env):
        mta = command_mta(fs, prog.command, prog.path, problems, env)
        if mta is None:
            continue
        listen = mta.command_listen(tuple(prog.command.split()), f"supervisord program {prog.name}", prog.path,
                                    prog.line)
        if listen is not None and listens is not None and prog.autostart:
            listens.append(listen)
        if not prog.autostart:
            problems.append(f"{prog.path}:{prog.line}: supervisord program {prog.name} runs {mta.name} "
                            "but has autostart=false; not counted unless a command starts it (supervisorctl start)")
            continue
        out.append(Enablement(mta.id, "supervisord", f"supervisord program {prog.name} (autostart) runs "
                              f"`{prog.command[:200]}`", prog.path, prog.line))
    return out


S6_RC = "/etc/s6-overlay/s6-rc.d"


def service_dirs(fs: RootFS, problems: list[str], scan_dirs: dict[str, list[str]] | None = None,
                 ) -> list[Enablement]:
    """s6 (s6-overlay v2 and v3, plain s6) and runit service directories with a `run` script (an s6-rc
    oneshot: `up`). A `down` file means not started. s6-overlay v3 starts the s6-rc services of its
    `user` bundle (`user/contents.d`). Where the command names the directory `runsvdir`/`s6-svscan`
    scans, only that one is what the launched supervisor starts: the others are `dormant`."""
    out = []
    scan_dirs = scan_dirs or {}
    for mechanism, roots in (("s6", S6_DIRS), ("runit", RUNIT_DIRS)):
        named = scan_dirs.get(mechanism, [])
        for root in dict.fromkeys([*named, *roots]):
            bundle = set(fs.listdir(f"{root}/user/contents.d")) if root == S6_RC else None
            for name in fs.listdir(root):
                found = _service_dir(fs, mechanism, root, name, bundle, problems)
                if found is not None:
                    dormant = bool(named) and root not in named and not _same_dir(fs, root, named)
                    out.append(replace(found, dormant=dormant) if dormant else found)
    return out


def _same_dir(fs: RootFS, root: str, named: list[str]) -> bool:
    real = fs.readlink(root) or ""
    return bool(real) and any(real.rstrip("/") == n.rstrip("/") for n in named)


def _service_dir(fs: RootFS, mechanism: str, root: str, name: str, bundle: set[str] | None,
                 problems: list[str]) -> Enablement | None:
    run = next((f"{root}/{name}/{f}" for f in ("run", "up") if fs.isfile(f"{root}/{name}/{f}")), None)
    if run is None:
        return None
    if fs.exists(f"{root}/{name}/down"):
        problems.append(f"{root}/{name}: has a `down` file; not started unless a command brings it up")
        return None
    if bundle is not None and name not in bundle:
        problems.append(f"{root}/{name}: not in the s6-rc `user` bundle; not started unless a command does")
        return None
    mta = command_mta(fs, fs.text(run) or "", run, problems)
    if mta is not None:
        return Enablement(mta.id, mechanism, f"{mechanism} service {name} runs {mta.name} ({run})", run)
    unit = mta_by_unit(name)
    return Enablement(unit.id, mechanism, f"{mechanism} service {name}", run) if unit is not None else None


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
    for number, line in enumerate((fs.text(path) or "").split("\n"), 1):
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
        scope = BindScope.ALL if host in ("", "*") else address_scope(host)
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
            scope = address_scope(bind[0]) if bind[0] else BindScope.ALL
            listens.append(ConfiguredListen(mta.id, scope, bind[0] or "all", port or name,
                                            f"xinetd service {name} binds {bind[0] or 'all interfaces'}",
                                            path, bind[1] or line))
    return enabled, listens


def _xinetd_blocks(text: str) -> list[tuple[str, int, dict[str, tuple[str, int]]]]:
    out: list[tuple[str, int, dict[str, tuple[str, int]]]] = []
    current: dict[str, tuple[str, int]] | None = None
    for number, raw in enumerate(text.split("\n"), 1):
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
