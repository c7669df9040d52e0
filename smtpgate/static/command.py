"""What the image's own command (Entrypoint + Cmd) starts.

Followed: exec-form argv, `sh -c` lines, shell scripts in the image that it
runs (to a bounded depth), wrappers (tini, gosu, ...), `service X start` /
`/etc/init.d/X start` / `rc-service` / `systemctl start`, and the init systems
and supervisors it launches (their own configuration is read by
`services`). Also decides what PID 1 would be, for `boots_init`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from smtpgate.static import langpkg, shell
from smtpgate.static.config.common import address_scope
from smtpgate.static.config.exim import ox_listens
from smtpgate.static.facts import ConfiguredListen, Enablement
from smtpgate.static.fs import RootFS
from smtpgate.static.image import ImageConfig
from smtpgate.static.services import argv_listen, mta_by_command, mta_by_unit

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


def analyse_command(fs: RootFS, config: ImageConfig | None, problems: list[str]) -> CommandFacts:
    out = CommandFacts()
    if config is None or not config.argv:
        return out
    top = shell.Command(tuple(config.argv), 0, exec_=True)
    _follow(fs, [top], None, config.env, out, problems, pid1=True, scripts=[], delay=0.0, workdir=config.workdir)
    return out


def _follow(fs: RootFS, cmds: list[shell.Command], where: str | None, env: dict[str, str], out: CommandFacts,
            problems: list[str], pid1: bool, scripts: list[str], delay: float, workdir: str = "") -> None:
    for cmd in cmds:
        argv, is_exec = shell.unwrap(list(cmd.argv))
        if not argv:
            continue
        cmd = shell.Command(tuple(argv), cmd.line, cmd.exec_ or is_exec, cmd.background)
        becomes_pid1 = pid1 and (cmd.exec_ or where is None)
        inner = shell.shell_string(argv)
        if inner is not None:
            sub = shell.commands(inner, problems, where or "image command", env)
            sub = [shell.Command(c.argv, cmd.line or c.line, c.exec_, c.background) for c in sub] if where else sub
            _follow(fs, sub, where, env, out, problems, becomes_pid1, scripts, delay, workdir)
            continue
        seconds = shell.sleep_seconds(cmd.argv)
        if seconds is not None and not cmd.background:
            delay += seconds
            continue
        if becomes_pid1:
            out.init = cmd.name
        script = _script(fs, cmd, env, workdir)
        if script is not None and script not in scripts and len(scripts) < MAX_SCRIPTS:
            scripts.append(script)
            text = fs.text(script) or ""
            _follow(fs, shell.commands(text, problems, script, env), script, env, out, problems,
                    becomes_pid1, scripts, delay, workdir)
            continue
        _one(fs, cmd, where, out, delay, workdir, env)


DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _script(fs: RootFS, cmd: shell.Command, env: dict[str, str], workdir: str) -> str | None:
    """The shell script a command runs (itself, or `sh script`), when it is one in the image."""
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
        return path
    return None


def _shell_interpreter(first: bytes) -> bool:
    words = first[2:].decode("utf-8", "replace").split()
    names = [w.rsplit("/", 1)[-1] for w in words[:2]]
    return any(n in shell.SHELLS for n in names)


def _one(fs: RootFS, cmd: shell.Command, where: str | None, out: CommandFacts, delay: float, workdir: str = "",
         env: dict[str, str] | None = None) -> None:
    origin = f"{where}:{cmd.line}" if where else "the image's Entrypoint/Cmd"
    line = cmd.line if where else None
    late = f", after sleeping {delay:g} s" if delay else ""
    mta = mta_by_command(cmd.text)
    if mta is None:  # an interpreter running a script that uses a server library (smtpgate.static.langpkg)
        hit = langpkg.command_server(fs, cmd.argv, workdir, env or {})
        if hit is not None:
            out.enabled.append(langpkg.script_enablement(hit, cmd.text, origin, late))
            return
    if mta is not None:
        out.enabled.append(Enablement(mta.id, "command", f"the image command starts {mta.name}: `{cmd.text[:200]}` "
                                      f"({origin}{late})", where, line, by_command=True))
        if mta.id == "exim" and "-oX" in cmd.argv[:-1]:
            out.listens.append(ox_listens(cmd.argv[cmd.argv.index("-oX") + 1], where, line))
        listen = argv_listen(mta.id, cmd.argv)
        if listen is not None:
            address, port = listen
            out.listens.append(ConfiguredListen(mta.id, address_scope(address), address, port,
                                                f"{mta.name} command line listens on {address}:{port} "
                                                f"(`{cmd.text[:200]}`)", where, line))
        return
    service = _service_started(cmd.argv)
    if service is not None:
        unit = mta_by_unit(service)
        if unit is not None:
            out.enabled.append(Enablement(unit.id, "command", f"the image command starts service {service}: "
                                          f"`{cmd.text[:200]}` ({origin}{late})", where, line,
                                          by_command=True))
        return
    name = cmd.name
    if name == "init" and fs.readlink(cmd.argv[0]) and "systemd" in (fs.readlink(cmd.argv[0]) or ""):
        name = "systemd"
    if name == "init" and fs.exists("/etc/s6-overlay") or name == "init" and fs.exists("/package/admin/s6-overlay"):
        name = "s6-svscan"
    for mechanism in INITS.get(name, ()):
        if mechanism not in out.launched:
            out.launched.append(mechanism)
    if name == "supervisord":
        for flag in ("-c", "--configuration"):
            if flag in cmd.argv[:-1]:
                out.supervisord_config = cmd.argv[cmd.argv.index(flag) + 1]
        for arg in cmd.argv:
            if arg.startswith("--configuration="):
                out.supervisord_config = arg.split("=", 1)[1]


def _service_started(argv: tuple[str, ...]) -> str | None:
    """`service X start`, `/etc/init.d/X start`, `invoke-rc.d X start`, `rc-service X start`,
    `systemctl start X`, `sv up X`: the service name X."""
    name = argv[0].rsplit("/", 1)[-1]
    args = [a for a in argv[1:] if not a.startswith("-")]
    if name in ("service", "invoke-rc.d", "rc-service") and len(args) >= 2 and args[1] in SERVICE_VERBS:
        return args[0]
    if argv[0].startswith(("/etc/init.d/", "/etc/rc.d/init.d/")) and args and args[0] in SERVICE_VERBS:
        return name
    if name in ("systemctl", "sv") and len(args) >= 2 and args[0] in SERVICE_VERBS:
        return args[1]
    return None
