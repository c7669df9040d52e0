"""What the image's own command (Entrypoint + Cmd) starts.

Followed: exec-form argv, `sh -c` lines, shell scripts in the image that it
runs (to a bounded depth) with their positional parameters (an entrypoint's
`exec "$@"` runs the image's Cmd) and the environment given in the
`ImageConfig` (the image's ENV, or a deployment's: it decides the scripts'
branches; a branch nothing decides yields a *conditional* enablement),
wrappers (tini, gosu, ...), and control commands that start a service through
its manager: `service X start`, `/etc/init.d/X start`, `invoke-rc.d`,
`rc-service`, `systemctl start`, `supervisorctl start X` (autostart=false
programs too), `s6-svc -u DIR`, `s6-rc -u change X`, `sv up X`, `runsv DIR`.
X is resolved to an MTA by the service's definition (the supervisord
program's command, the s6/runit run script, the init script, the unit's
ExecStart) and by its name where there is none. Also decides what PID 1 would
be and which init systems and supervisors it launches (their own
configuration is read by `services`), with the service directories a
`runsvdir DIR` / `s6-svscan DIR` scans.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from smtpgate.static import langpkg, shell
from smtpgate.static.facts import ConfiguredListen, Enablement
from smtpgate.static.fs import RootFS
from smtpgate.static.image import ImageConfig
from smtpgate.static.services import mta_by_command, resolve_service
from smtpgate.static.supervisor import programs

# Programs that are an init system or supervisor, and what they start.
INITS: dict[str, tuple[str, ...]] = {
    "systemd": ("systemd",), "init": ("sysv",), "openrc-init": ("openrc",), "openrc": ("openrc",),
    "s6-svscan": ("s6",), "s6-overlay-suexec": ("s6",), "runsvdir": ("runit",), "runit": ("runit",),
    "runit-init": ("runit",), "my_init": ("runit",), "supervisord": ("supervisord",),
    "inetd": ("inetd",), "xinetd": ("inetd",), "openbsd-inetd": ("inetd",),
}
BOOT_INITS = {"systemd", "init", "openrc-init", "openrc", "s6-svscan", "runsvdir", "runit", "runit-init",
              "my_init", "supervisord", "s6-overlay-suexec"}
SERVICE_VERBS = {"start", "restart", "reload", "force-reload", "up", "try-restart", "enable"}
MAX_SCRIPTS = 20


@dataclass
class CommandFacts:
    enabled: list[Enablement] = field(default_factory=list)
    listens: list[ConfiguredListen] = field(default_factory=list)
    launched: list[str] = field(default_factory=list)  # mechanisms: supervisord, systemd, ...
    init: str = ""  # what PID 1 would be
    supervisord_config: str | None = None
    scan_dirs: dict[str, list[str]] = field(default_factory=dict)  # runit/s6 -> dirs named on the command line


def analyse_command(fs: RootFS, config: ImageConfig | None, problems: list[str]) -> CommandFacts:
    out = CommandFacts()
    if config is None or not config.argv:
        return out
    top = shell.Command(tuple(config.argv), 0, exec_=True)
    ctx = _Context(None, dict(config.env), config.workdir, [])
    _follow(fs, [top], ctx, out, problems, pid1=True, delay=0.0)
    if "supervisord" in out.launched:
        _follow_programs(fs, ctx, out, problems)
    return out


def _follow_programs(fs: RootFS, ctx: _Context, out: CommandFacts, problems: list[str]) -> None:
    """What supervisord's autostart programs run, through their scripts: a start script that runs
    `supervisorctl start postfix` (all-in-one mail server images) starts Postfix. A program that is
    itself an MTA is the supervisord reader's (services.supervisord)."""
    for prog in programs(fs, out.supervisord_config, [], ctx.env):
        if not prog.autostart or mta_by_command(prog.command) is not None:
            continue
        sub = _walk(fs, prog.command, prog.path, ctx.env, None, "sh", problems)
        sub = [replace(c, line=prog.line) for c in sub]
        _follow(fs, sub, replace(ctx, where=prog.path), out, problems, pid1=False, delay=0.0)


@dataclass(frozen=True)
class _Context:
    where: str | None  # the script being read (None: the image's Entrypoint/Cmd itself)
    env: dict[str, str]
    workdir: str
    scripts: list[str]  # followed so far (shared: a bound, and no loops of sourcing)
    condition: str = ""


def _follow(fs: RootFS, cmds: list[shell.Command], ctx: _Context, out: CommandFacts, problems: list[str],
            pid1: bool, delay: float, looped: bool = False) -> None:
    for cmd in cmds:
        argv, is_exec = shell.unwrap(list(cmd.argv))
        if not argv:
            continue
        condition = " and ".join(c for c in (ctx.condition, cmd.condition) if c)
        if cmd.skipped:
            _ruled_out(fs, shell.Command(tuple(argv), cmd.line, condition=condition), ctx, out, problems)
            continue
        cmd = shell.Command(tuple(argv), cmd.line, cmd.exec_ or is_exec, cmd.background, condition, cmd.loop)
        becomes_pid1 = pid1 and (cmd.exec_ or ctx.where is None) and not condition
        inner = shell.shell_string(argv)
        if inner is not None:
            arg0, args = shell.shell_string_params(argv)
            sub = _walk(fs, inner, ctx.where or "image command", ctx.env, args, arg0, problems)
            sub = [replace(c, line=cmd.line or c.line) for c in sub] if ctx.where else sub
            _follow(fs, sub, replace(ctx, condition=condition), out, problems, becomes_pid1, delay, looped)
            continue
        seconds = shell.sleep_seconds(cmd.argv)
        if seconds is not None and not cmd.background:
            delay += seconds
            looped = looped or cmd.loop
            continue
        init = init_name(fs, cmd.argv)
        if becomes_pid1:
            out.init = init
        # an init is not followed as a script (s6-overlay's /init is one), but a custom /init script is
        found = None if init in INITS and init != "init" else _script(fs, cmd, ctx.env, ctx.workdir)
        if found is not None and found[0] not in ctx.scripts and len(ctx.scripts) < MAX_SCRIPTS:
            script, args = found
            ctx.scripts.append(script)
            sub = _walk(fs, fs.text(script) or "", script, ctx.env, args, script, problems)
            _follow(fs, sub, replace(ctx, where=script, condition=condition), out, problems, becomes_pid1, delay,
                    looped)
            continue
        _one(fs, cmd, ctx, out, delay, problems, looped)
        for pattern in _boot_scripts(fs, init, cmd.argv) if not cmd.condition else ():
            for script in fs.glob(pattern)[:MAX_SCRIPTS]:
                if script in ctx.scripts or len(ctx.scripts) >= MAX_SCRIPTS or not fs.isfile(script):
                    continue
                ctx.scripts.append(script)
                sub = _walk(fs, fs.text(script) or "", script, ctx.env, [], script, problems)
                _follow(fs, sub, replace(ctx, where=script), out, problems, False, delay, looped)


def _ruled_out(fs: RootFS, cmd: shell.Command, ctx: _Context, out: CommandFacts, problems: list[str]) -> None:
    """A start in a branch the environment rules out: no finding, a note that says what would change it."""
    mta = mta_by_command(cmd.text)
    if mta is None:
        control = control_command(cmd.argv)
        found = [resolve_service(fs, control[0], n, out.supervisord_config, ctx.env, problems)
                 for n in control[1]] if control else []
        mta = next((f[0] for f in found if f is not None), None)
    if mta is not None:
        where = f"{ctx.where}:{cmd.line}" if ctx.where else "the image command"
        problems.append(f"{where}: `{cmd.text[:120]}` would start {mta.name}, but not with the environment given: "
                        f"{cmd.condition} is false (a deployment that makes it true starts it)")


def _walk(fs: RootFS, text: str, where: str, env: dict[str, str], args: list[str] | None, arg0: str,
          problems: list[str]) -> list[shell.Command]:
    return shell.commands(text, problems, where, env, args=args, arg0=arg0, exists=fs.exists, glob=fs.glob)


DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _script(fs: RootFS, cmd: shell.Command, env: dict[str, str], workdir: str) -> tuple[str, list[str]] | None:
    """The shell script a command runs (itself, or `sh script`), when it is one in the image, and its arguments."""
    arg = shell.script_argument(cmd.argv)
    candidates = [arg if not arg or arg.startswith("/") else f"{workdir or '/'}/{arg}", cmd.argv[0]]
    if "/" not in cmd.argv[0]:
        candidates += [f"{d}/{cmd.argv[0]}" for d in env.get("PATH", DEFAULT_PATH).split(":") if d.startswith("/")]
    for path in candidates:
        if not path or "/" not in path:
            continue
        data = fs.head(path)
        if data is None:
            continue
        first = data.split(b"\n", 1)[0]
        if path != candidates[0] and not (first.startswith(b"#!") and _shell_interpreter(first)):
            continue
        if path == candidates[0] and arg in cmd.argv[1:]:
            return path, list(cmd.argv[cmd.argv.index(arg, 1) + 1:])
        return path, list(cmd.argv[1:])
    return None


def _shell_interpreter(first: bytes) -> bool:
    words = first[2:].decode("utf-8", "replace").split()
    names = [w.rsplit("/", 1)[-1] for w in words[:2]]
    return any(n in shell.SHELLS for n in names)


def _one(fs: RootFS, cmd: shell.Command, ctx: _Context, out: CommandFacts, delay: float,
         problems: list[str], looped: bool = False) -> None:
    where = ctx.where
    origin = f"{where}:{cmd.line}" if where else "the image's Entrypoint/Cmd"
    line = cmd.line if where else None
    late = f", after sleeping {delay:g} s{' (at least: in a loop)' if looped else ''}" if delay else ""
    mta = mta_by_command(cmd.text)
    if mta is None:  # an interpreter running a script that uses a server library (smtpgate.static.langpkg)
        hit = langpkg.command_server(fs, cmd.argv, ctx.workdir, ctx.env)
        if hit is not None:
            out.enabled.append(replace(langpkg.script_enablement(hit, cmd.text, origin, late),
                                       by_command=not cmd.condition, condition=cmd.condition))
            return
    if mta is not None:
        out.enabled.append(Enablement(mta.id, "command", f"the image command starts {mta.name}: `{cmd.text[:200]}` "
                                      f"({origin}{late})", where, line, not cmd.condition, cmd.condition))
        if cmd.condition:
            return
        listen = mta.command_listen(cmd.argv, f"`{cmd.text[:200]}`", where, line)
        if listen is not None:
            out.listens.append(listen)
        return
    control = control_command(cmd.argv)
    if control is not None:
        tool, names = control
        for name in names:
            started = resolve_service(fs, tool, name, out.supervisord_config, ctx.env, problems)
            if started is None:
                continue
            found, how = started
            out.enabled.append(Enablement(found.id, "command", f"the image command starts {tool} service {name} "
                                          f"({how}): `{cmd.text[:200]}` ({origin}{late})", where, line,
                                          not cmd.condition, cmd.condition))
        return
    _launches(fs, cmd, out)


def _launches(fs: RootFS, cmd: shell.Command, out: CommandFacts) -> None:
    """An init system or supervisor the command runs: what it reads is started by the image command."""
    name = init_name(fs, cmd.argv)
    if cmd.condition and name in INITS:
        return  # an init started only under a condition: its services are not known to start
    mechanisms = list(INITS.get(name, ()))
    if name == "init":  # SysV or busybox init: what its /etc/inittab runs (Alpine: openrc)
        mechanisms += _inittab_launches(fs)
    for mechanism in mechanisms:
        if mechanism not in out.launched:
            out.launched.append(mechanism)
    if name in ("runsvdir", "s6-svscan"):
        dirs = [a for a in cmd.argv[1:] if a.startswith("/")][:1]
        out.scan_dirs.setdefault(INITS[name][0], []).extend(dirs)
    if name == "supervisord":
        for flag in ("-c", "--configuration"):
            if flag in cmd.argv[:-1]:
                out.supervisord_config = cmd.argv[cmd.argv.index(flag) + 1]
        for arg in cmd.argv:
            if arg.startswith("--configuration="):
                out.supervisord_config = arg.split("=", 1)[1]


def _boot_scripts(fs: RootFS, init: str, argv: tuple[str, ...]) -> tuple[str, ...]:
    """Scripts an init runs once before its services: phusion's my_init (`/etc/my_init.d/*`,
    `/etc/rc.local`), s6-overlay's /init (`/etc/cont-init.d/*`)."""
    if init == "my_init":
        return ("/etc/my_init.d/*", "/etc/rc.local")
    if init == "s6-svscan" and argv and argv[0].rsplit("/", 1)[-1] == "init":
        return ("/etc/cont-init.d/*",)
    return ()


def _inittab_launches(fs: RootFS) -> list[str]:
    out = []
    for raw in (fs.text("/etc/inittab") or "").split("\n"):
        fields = raw.split(":", 3)
        if len(fields) == 4 and not raw.lstrip().startswith("#") and fields[3].strip():
            name = fields[3].split()[0].rsplit("/", 1)[-1]
            out += [m for m in INITS.get(name, ()) if m != "sysv"]
    return out


def init_name(fs: RootFS, argv: tuple[str, ...]) -> str:
    """The program's name, with `init` told apart: systemd's link, s6-overlay's /init, else SysV."""
    name = argv[0].rsplit("/", 1)[-1] if argv else ""
    if name == "python3" and len(argv) > 1:  # supervisord is a python script
        name = argv[1].rsplit("/", 1)[-1] if argv[1].endswith("supervisord") else name
    if name != "init":
        return name
    if "systemd" in (fs.readlink(argv[0]) or ""):
        return "systemd"
    if fs.exists("/etc/s6-overlay") or fs.exists("/package/admin/s6-overlay"):
        return "s6-svscan"
    return name


_SUPERVISORCTL_OPTS = {"-c", "--configuration", "-s", "--serverurl", "-u", "--username", "-p", "--password", "-r",
                       "--history-file"}
_SV_UP = {"up", "u", "start", "once", "o", "restart", "force-restart", "try-restart"}


def control_command(argv: tuple[str, ...]) -> tuple[str, list[str]] | None:
    """A command that starts services through their manager: (manager, service names or dirs), else None.

    `service X start`, `/etc/init.d/X start`, `invoke-rc.d X start`, `rc-service X start`
    (sysv/openrc); `systemctl start X`; `supervisorctl start X`; `s6-svc -u DIR`;
    `s6-rc -u change X`; `sv up X`; `runsv DIR` / `s6-supervise DIR`."""
    name = argv[0].rsplit("/", 1)[-1]
    args = [a for a in argv[1:] if not a.startswith("-")]
    if name in ("service", "invoke-rc.d") and len(args) >= 2 and args[1] in SERVICE_VERBS:
        return "sysv", [args[0]]
    if name == "rc-service" and len(args) >= 2 and args[1] in SERVICE_VERBS:
        return "openrc", [args[0]]
    if argv[0].startswith(("/etc/init.d/", "/etc/rc.d/init.d/")) and args and args[0] in SERVICE_VERBS:
        return "sysv", [name]
    if name == "systemctl" and len(args) >= 2 and args[0] in SERVICE_VERBS:
        return "systemd", args[1:]
    if name == "supervisorctl":
        rest = _without_options(list(argv[1:]), _SUPERVISORCTL_OPTS)
        if len(rest) >= 2 and rest[0] in ("start", "restart"):
            return "supervisord", rest[1:]
    if name == "sv":
        rest = _without_options(list(argv[1:]), {"-w"})
        if len(rest) >= 2 and rest[0] in _SV_UP:
            return "runit", rest[1:]
    if name == "s6-svc":
        flags = "".join(a[1:] for a in argv[1:] if a.startswith("-") and not a.startswith("--"))
        if args and set(flags) & set("uUor") and not set(flags) & set("dD"):
            return "s6", args[-1:]
    if name == "s6-rc":
        flags = "".join(a[1:] for a in argv[1:] if a.startswith("-") and not a.startswith("--"))
        rest = _without_options(list(argv[1:]), {"-v", "-t", "-l", "-n"})
        if rest[:1] == ["change"] and not set(flags) & set("dD"):
            return "s6", rest[1:]
    if name in ("runsv", "s6-supervise") and args:
        return ("runit" if name == "runsv" else "s6"), args[:1]
    return None


def _without_options(args: list[str], with_value: set[str]) -> list[str]:
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in with_value:
            skip = True
        elif not arg.startswith("-"):
            out.append(arg)
    return out
