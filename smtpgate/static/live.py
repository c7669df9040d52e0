"""A live system's own listings as static facts: what its service manager would start at
boot and which MTA packages its package databases hold.

A booted VM or a live host (smtpgate.targets.ssh) is not read file by file: one script
prints `systemctl list-unit-files`, the dpkg status file, apk's installed db, `rpm -qa`
(the rpm database is read through rpm itself), the SysV/OpenRC runlevel links and which
known daemon executables exist. `facts_from_listings` turns that into the same
`StaticFacts` the image and disk readers produce, with the same rules: a unit belongs to an
MTA by its name (`services.mta_by_unit`, from `Mta.units`), a package by `Mta.packages`
(`packages.database_packages`, the parsers the filesystem readers use), an executable by
`Mta.binaries`. The gate then merges them like any other static facts (`static.merge`).

What the listings cannot tell is said: units are known by name and state only (their
ExecStart is not read, so a unit of another name that runs an MTA is not tied to it);
language packages (npm, PyPI, ...) and MTA configuration files are not read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from smtpgate import software
from smtpgate.static.facts import Binary, Enablement, ServiceState, StaticFacts
from smtpgate.static.packages import APK_DB, DPKG_STATUS, RPM_QUERY, database_packages
from smtpgate.static.services import OPENRC_RUNLEVELS, SYSV_RUNLEVELS, mta_by_unit

# systemctl's states of a unit that starts at boot (systemctl(1) is-enabled)
ENABLED_STATES = frozenset({"enabled", "enabled-runtime", "linked", "linked-runtime"})
RUNLEVEL_DIRS = (*SYSV_RUNLEVELS, *OPENRC_RUNLEVELS)  # the ones the filesystem reader counts
_RC_LINK = re.compile(r"^S\d\d(?P<name>[\w.@+-]+)$")
SOURCES = {"dpkg": DPKG_STATUS, "apk": APK_DB, "rpm": RPM_QUERY}


def listing_script(mark: str) -> str:
    """The POSIX sh script whose output `facts_from_listings` reads, one `<mark><section>` line
    before each section. It only reads: nothing on the system is changed."""
    binaries = " ".join(sorted({path for mta in software.all_mtas() for path in mta.binaries}))
    rc_dirs = " ".join(RUNLEVEL_DIRS)
    return f"""LC_ALL=C; export LC_ALL
echo "{mark}init"; cat /proc/1/comm 2>/dev/null
echo "{mark}units"
command -v systemctl >/dev/null 2>&1 && systemctl list-unit-files --no-legend --no-pager 2>/dev/null
echo "{mark}dpkg"
[ -f {DPKG_STATUS} ] && head -c 67108864 {DPKG_STATUS}
echo "{mark}rpm"
command -v rpm >/dev/null 2>&1 && {RPM_QUERY} 2>/dev/null
echo "{mark}apk"
[ -f {APK_DB} ] && head -c 67108864 {APK_DB}
echo "{mark}sysv"
for d in {rc_dirs}; do [ -d "$d" ] && echo "$d:" && ls "$d"; done 2>/dev/null
echo "{mark}binaries"
for f in {binaries}; do [ -f "$f" ] && echo "$f"; done
"""


def parse_unit_files(text: str) -> dict[str, str]:
    """``systemctl list-unit-files --no-legend`` -> {unit: state}."""
    out = {}
    for line in text.split("\n"):
        fields = line.split()
        if len(fields) >= 2:
            out[fields[0]] = fields[1]
    return out


def runlevel_links(text: str) -> list[tuple[str, str, str]]:
    """(directory, entry, service name) of each start link `ls` listed ("/etc/rc2.d:" headers; an OpenRC
    runlevel holds plain service names, a SysV one S<NN><name> links)."""
    out, where = [], RUNLEVEL_DIRS[0]
    for line in text.split("\n"):
        line = line.strip()
        if line.endswith(":"):
            where = line[:-1]
        elif line:
            found = _RC_LINK.match(line)
            if found:
                out.append((where, line, found.group("name")))
            elif where.startswith("/etc/runlevels/"):
                out.append((where, line, line))
    return out


def facts_from_listings(parts: dict[str, str], source: str) -> StaticFacts:
    """StaticFacts from the sections `listing_script` printed (a section missing: nothing known)."""
    problems: list[str] = []
    units = parse_unit_files(parts.get("units", ""))
    init = parts.get("init", "").strip()
    if not units and init == "systemd":
        problems.append("systemctl list-unit-files gave nothing: enabled units unknown")
    enabled, states = _unit_facts(units)
    if not units:  # systemd's own units decide where it runs; its sysv-generator reads rc links only without them
        enabled += _runlevel_facts(runlevel_links(parts.get("sysv", "")))
    packages = []
    for db, where in SOURCES.items():
        text = parts.get(db, "")
        if text.strip():
            packages += database_packages(db, text, where, problems)
    binaries = [Binary(mta.id, path) for path in _lines(parts.get("binaries", ""))
                for mta in software.all_mtas() if path in mta.binaries]
    return StaticFacts(packages=tuple(packages), binaries=tuple(binaries), enabled=tuple(enabled),
                       states=tuple(states), boots_init=True, init=init, problems=tuple(problems), source=source)


def _unit_facts(units: dict[str, str]) -> tuple[list[Enablement], list[ServiceState]]:
    enabled, states = [], []
    for unit, state in units.items():
        mta = mta_by_unit(unit)
        if mta is None:
            continue
        if state in ENABLED_STATES:
            enabled.append(Enablement(mta.id, "systemd", f"systemd unit {unit} is {state} (systemctl list-unit-files)"))
        else:
            states.append(ServiceState(mta.id, f"systemd unit {unit} is {state}"))
    return enabled, states


def _runlevel_facts(links: Iterable[tuple[str, str, str]]) -> list[Enablement]:
    out, seen = [], set()
    for where, entry, name in links:
        mta = mta_by_unit(name)
        if mta is None or mta.id in seen:
            continue
        seen.add(mta.id)
        mechanism = "openrc" if where.startswith("/etc/runlevels/") else "sysv"
        out.append(Enablement(mta.id, mechanism, f"init script {name} starts in the default runlevel ({where}/{entry})",
                              f"{where}/{entry}"))
    return out


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.split("\n") if line.strip()]
