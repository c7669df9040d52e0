"""Run every reader over one root filesystem and gather the facts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from smtpgate import software
from smtpgate.errors import SmtpgateError
from smtpgate.static import langpkg, services
from smtpgate.static.command import BOOT_INITS, INITS, analyse_command
from smtpgate.static.facts import Enablement, Package, StaticFacts
from smtpgate.static.fs import RootFS, StaticError
from smtpgate.static.image import ImageConfig
from smtpgate.static.packages import installed_packages, known_binaries

T = TypeVar("T")

# An init that boots also runs what these other mechanisms enable (systemd runs
# SysV scripts through systemd-sysv-generator).
ALSO_RUNS = {"systemd": ("sysv",), "sysv": (), "openrc": (), "runit": (), "s6": (), "supervisord": (), "inetd": ()}


def _safe(fs: RootFS, what: str, fn: Callable[..., T], *args: Any, default: Any) -> T:
    """Run one reader. Readers catch the parse errors they expect (a problem in the
    report); input nested too deeply for Python cuts the read (evidence is missing:
    the scan cannot decide); any other exception is a bug or an input nobody
    foresaw, and the static evidence is then an error of the scan, never a note
    on a pass."""
    try:
        return fn(*args)
    except SmtpgateError:
        raise
    except RecursionError:
        fs.cut(f"{what}: input nested too deeply, not read")
    except Exception as exc:
        raise StaticError(f"static analysis: the {what} reader failed ({type(exc).__name__}: {exc}); "
                          "the static evidence is incomplete") from exc
    return default


_BOOTS = {"systemd": "systemd", "sysv": "SysV init (or systemd's generator)", "openrc": "OpenRC",
          "supervisord": "supervisord", "s6": "s6", "runit": "runit", "inetd": "inetd"}


def _judged_by_init(item: Enablement, launched: set[str], init: str, boots_init: bool | None) -> Enablement:
    """Name the init that would start it: the one the image command launches, or none (dormant) when
    PID 1 is an init that does not read this mechanism (supervisord does not read systemd units)."""
    if item.mechanism in launched and not item.dormant:
        return replace(item, by_command=True, text=f"{item.text}; the image command launches {item.mechanism}, "
                       f"so it starts")
    starter = _BOOTS.get(item.mechanism, "its init")
    if boots_init:
        return replace(item, text=f"{item.text}; judged as a booted machine: {starter} starts it")
    if init not in INITS:  # no init as PID 1: it starts only where one boots (a warning, see policy)
        pid1 = f"PID 1 would be {init}, no init" if init else "PID 1 not known"
        return replace(item, text=f"{item.text}; starts where {starter} boots ({pid1})")
    reads = ", ".join(sorted(launched)) or "nothing"
    return replace(item, dormant=True, text=f"{item.text}; not started: PID 1 would be {init}, which reads "
                   f"only {reads} configuration")


def analyse(fs: RootFS, *, image_config: ImageConfig | None = None, boots_init: bool | None = None) -> StaticFacts:
    """Installed, enabled and configured MTAs in `fs`; `boots_init` None decides from the image command."""
    problems: list[str] = []
    packages = _safe(fs, "package databases", installed_packages, fs, problems, default=[])
    binaries = _safe(fs, "daemon executables", known_binaries, fs, default=[])
    cmd = _safe(fs, "image command", analyse_command, fs, image_config, problems, default=None)
    enabled = list(cmd.enabled) if cmd else []
    listens = list(cmd.listens) if cmd else []
    launched = set(cmd.launched) if cmd else set()
    for mech in list(launched):
        launched.update(ALSO_RUNS.get(mech, ()))
    managed: list[Enablement] = []
    managed += _safe(fs, "systemd units", services.systemd, fs, problems, default=[])
    managed += _safe(fs, "SysV rc links", services.sysv, fs, problems, default=[])
    managed += _safe(fs, "OpenRC runlevels", services.openrc, fs, problems, default=[])
    managed += _safe(fs, "supervisord", services.supervisord, fs, problems,
                     cmd.supervisord_config if cmd else None, listens, image_config.env if image_config else None,
                     default=[])
    managed += _safe(fs, "s6/runit services", services.service_dirs, fs, problems,
                     cmd.scan_dirs if cmd else None, default=[])
    for reader, name in ((services.inetd, "inetd"), (services.xinetd, "xinetd")):
        en, li = _safe(fs, name, reader, fs, problems, default=([], []))
        managed += en
        listens += li
    init = cmd.init if cmd else ""
    enabled += [_judged_by_init(item, launched, init, boots_init) for item in managed]
    for mta in software.all_mtas():
        if mta.listens is not None:
            listens += _safe(fs, f"{mta.name} configuration", mta.listens, fs, problems, default=[])
    # Last: the language-ecosystem search is bounded by time and bytes of its own.
    workdir = image_config.workdir if image_config is not None else ""
    packages += _distinct(packages, _safe(fs, "language packages", langpkg.installed_lang_packages, fs,
                                          problems, workdir, default=[]))
    # Dovecot, nginx: an SMTP service only where the configuration sets one up.
    smtp_configured = {c.software for c in listens}
    drop = {m.id for m in software.all_mtas() if m.needs_smtp_config and m.id not in smtp_configured}
    boots = boots_init if boots_init is not None else init in BOOT_INITS
    return StaticFacts(
        packages=tuple(p for p in packages if p.software not in drop),
        binaries=tuple(b for b in binaries if b.software not in drop),
        enabled=tuple(e for e in enabled if e.software not in drop),
        listens=tuple(listens),
        boots_init=boots,
        init=init,
        launched=tuple(sorted(launched)),
        problems=tuple(dict.fromkeys([*problems, *fs.problems])),
        complete=fs.complete,
        cuts=tuple(fs.cuts),
        source=fs.name,
    )


DISTRO_PREFIXES = ("/usr/lib/python3/", "/usr/share/")  # where Debian's python3-*, node-*, ruby-* files live


def _distinct(system: list[Package], lang: list[Package]) -> list[Package]:
    """Language packages, less those a distribution package of the same software put there
    (Debian's python3-aiosmtpd ships aiosmtpd's dist-info: one package, said once)."""
    owned = {p.software for p in system}
    return [p for p in lang if not (p.software in owned and p.path.startswith(DISTRO_PREFIXES))]
