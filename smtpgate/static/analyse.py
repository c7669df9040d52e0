"""Run every reader over one root filesystem and gather the facts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from smtpgate import software
from smtpgate.static import langpkg, services
from smtpgate.static.command import BOOT_INITS, analyse_command
from smtpgate.static.config import READERS
from smtpgate.static.facts import Enablement, Package, StaticFacts
from smtpgate.static.fs import RootFS
from smtpgate.static.image import ImageConfig
from smtpgate.static.packages import installed_packages, known_binaries

T = TypeVar("T")

# An init that boots also runs what these other mechanisms enable (systemd runs
# SysV scripts through systemd-sysv-generator).
ALSO_RUNS = {"systemd": ("sysv",), "sysv": (), "openrc": (), "runit": (), "s6": (), "supervisord": (), "inetd": ()}


def _safe(problems: list[str], what: str, fn: Callable[..., T], *args: Any, default: Any) -> T:
    """A reader that fails on odd input is a problem in the report, never a crash of the scan."""
    try:
        return fn(*args)
    except RecursionError:
        problems.append(f"{what}: input nested too deeply; not read")
    except Exception as exc:  # noqa: BLE001 - each reader is isolated; the message names it
        problems.append(f"{what}: could not be read ({type(exc).__name__}: {exc})")
    return default


def analyse(fs: RootFS, *, image_config: ImageConfig | None = None, boots_init: bool | None = None) -> StaticFacts:
    """Installed, enabled and configured MTAs in `fs`; `boots_init` None decides from the image command."""
    problems: list[str] = []
    packages = _safe(problems, "package databases", installed_packages, fs, problems, default=[])
    binaries = _safe(problems, "daemon executables", known_binaries, fs, default=[])
    cmd = _safe(problems, "image command", analyse_command, fs, image_config, problems, default=None)
    enabled = list(cmd.enabled) if cmd else []
    listens = list(cmd.listens) if cmd else []
    launched = set(cmd.launched) if cmd else set()
    for mech in list(launched):
        launched.update(ALSO_RUNS.get(mech, ()))
    managed: list[Enablement] = []
    managed += _safe(problems, "systemd units", services.systemd, fs, problems, default=[])
    managed += _safe(problems, "SysV rc links", services.sysv, fs, problems, default=[])
    managed += _safe(problems, "OpenRC runlevels", services.openrc, fs, problems, default=[])
    managed += _safe(problems, "supervisord", services.supervisord, fs, problems,
                     cmd.supervisord_config if cmd else None, listens, default=[])
    managed += _safe(problems, "s6/runit services", services.service_dirs, fs, problems, default=[])
    for reader, name in ((services.inetd, "inetd"), (services.xinetd, "xinetd")):
        en, li = _safe(problems, name, reader, fs, problems, default=([], []))
        managed += en
        listens += li
    for item in managed:
        if item.mechanism in launched:
            item = replace(item, by_command=True,
                           text=f"{item.text}; the image command launches {item.mechanism}, so it starts")
        enabled.append(item)
    for mta_id, config_reader in READERS.items():
        listens += _safe(problems, f"{software.get(mta_id).name} configuration", config_reader, fs, problems,
                         default=[])
    # Last: the language-ecosystem search is bounded by time and bytes of its own.
    workdir = image_config.workdir if image_config is not None else ""
    packages += _distinct(packages, _safe(problems, "language packages", langpkg.installed_lang_packages, fs,
                                          problems, workdir, default=[]))
    # Dovecot, nginx: an SMTP service only where the configuration sets one up.
    smtp_configured = {c.software for c in listens}
    drop = {m.id for m in software.all_mtas() if m.needs_smtp_config and m.id not in smtp_configured}
    init = cmd.init if cmd else ""
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
        source=fs.name,
    )


DISTRO_PREFIXES = ("/usr/lib/python3/", "/usr/share/")  # where Debian's python3-*, node-*, ruby-* files live


def _distinct(system: list[Package], lang: list[Package]) -> list[Package]:
    """Language packages, less those a distribution package of the same software put there
    (Debian's python3-aiosmtpd ships aiosmtpd's dist-info: one package, said once)."""
    owned = {p.software for p in system}
    return [p for p in lang if not (p.software in owned and p.path.startswith(DISTRO_PREFIXES))]
