"""Installed MTAs: package databases (dpkg, apk, rpm's SQLite db) and known executables.

Package names come from the software registry (`Mta.packages`), executables
from `Mta.binaries`. rpm: only the SQLite database (Fedora 33+, RHEL/Alma/Rocky
9+, openSUSE since 2021) is read; the Berkeley DB `Packages` file of older
RPM distributions and SUSE's `Packages.db` (ndb) are not, which is said in the
problems when such a file is present.
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Iterator

from smtpgate import software
from smtpgate.static.facts import Binary, Package
from smtpgate.static.fs import RootFS

DPKG_STATUS = "/var/lib/dpkg/status"
APK_DB = "/lib/apk/db/installed"
RPM_SQLITE = ("/var/lib/rpm/rpmdb.sqlite", "/usr/lib/sysimage/rpm/rpmdb.sqlite")
RPM_OTHER = ("/var/lib/rpm/Packages", "/var/lib/rpm/Packages.db", "/usr/lib/sysimage/rpm/Packages.db")


def package_owner() -> dict[str, str]:
    """Package name -> registry id, from the registry."""
    owners: dict[str, str] = {}
    for mta in software.all_mtas():
        for name in mta.packages:
            owners.setdefault(name, mta.id)
    return owners


TEXT_DATABASES = (("dpkg", DPKG_STATUS), ("apk", APK_DB))


def installed_packages(fs: RootFS, problems: list[str]) -> list[Package]:
    """Every installed package that belongs to a known MTA, from every database present."""
    owners = package_owner()
    found: list[Package] = []
    for db, path in TEXT_DATABASES:
        text = fs.text(path)
        if text is not None:
            found += database_packages(db, text, path, problems, owners)
    for path in RPM_SQLITE:
        data = fs.read(path)
        if data is not None:
            for name, version in parse_rpm_sqlite(data, path, problems):
                if name in owners:
                    found.append(Package(owners[name], name, version, "rpm", path))
    for path in RPM_OTHER:
        if fs.exists(path):
            problems.append(f"{path}: this rpm database format (Berkeley DB / ndb) is not read; "
                            "installed MTAs are found by their executables only")
    return found


def database_packages(db: str, text: str, path: str, problems: list[str],
                      owners: dict[str, str] | None = None) -> list[Package]:
    """The MTA packages of one package database's text: dpkg's status file, apk's installed
    db, or `rpm -qa` lines as RPM_QUERY formats them (a live system's rpm, whose database
    is read through rpm itself)."""
    owners = package_owner() if owners is None else owners
    reader = {"dpkg": parse_dpkg_status, "apk": parse_apk_installed, "rpm": parse_rpm_query}[db]
    return [Package(owners[name], name, version, db, path, line)
            for name, version, line in reader(text, path, problems) if name in owners]


RPM_QUERY = "rpm -qa --qf '%{NAME} %{VERSION}-%{RELEASE}\\n'"


def parse_rpm_query(text: str, path: str, problems: list[str]) -> Iterator[tuple[str, str, int]]:
    """(package, version-release, line) of each line `RPM_QUERY` prints."""
    bad = 0
    for number, line in enumerate(text.split("\n"), 1):
        fields = line.split()
        if len(fields) == 2:
            yield fields[0], fields[1], number
        elif fields:
            bad += 1
    if bad:
        problems.append(f"{path}: {bad} malformed line(s) ignored")


def parse_dpkg_status(text: str, path: str, problems: list[str]) -> Iterator[tuple[str, str, int]]:
    """(package, version, line) of every package whose Status is `install ok installed`."""
    fields: dict[str, str] = {}
    start = 0
    bad = 0
    for number, line in enumerate([*text.split("\n"), ""], 1):
        if not line.strip():
            if fields:
                if "Package" not in fields:
                    bad += 1
                elif fields.get("Status", "").split() == ["install", "ok", "installed"]:
                    yield fields["Package"], fields.get("Version", "?"), start
            fields, start = {}, 0
        elif line[0] in " \t":
            continue  # continuation of a multi-line field (Description, Conffiles)
        elif ":" in line:
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
            start = start or number
        else:
            bad += 1
    if bad:
        problems.append(f"{path}: {bad} malformed line(s) or stanza(s) ignored")


def parse_apk_installed(text: str, path: str, problems: list[str]) -> Iterator[tuple[str, str, int]]:
    """(package, version, line) of each record (`P:` name, `V:` version) in apk's installed db."""
    name, version, start, bad = "", "", 0, 0
    for number, line in enumerate([*text.split("\n"), ""], 1):
        if not line.strip():
            if name:
                yield name, version or "?", start
            name, version, start = "", "", 0
        elif len(line) >= 2 and line[1] == ":":
            if line[0] == "P":
                name, start = line[2:].strip(), number
            elif line[0] == "V":
                version = line[2:].strip()
        else:
            bad += 1
    if bad:
        problems.append(f"{path}: {bad} malformed line(s) ignored")


# rpm header tags (rpmtag.h) and the string types
_NAME, _VERSION, _RELEASE = 1000, 1001, 1002
_STRING_TYPES = (6, 8, 9)


def parse_rpm_sqlite(data: bytes, path: str, problems: list[str]) -> Iterator[tuple[str, str]]:
    """(name, version-release) per package in an rpmdb.sqlite image (read in memory)."""
    con = sqlite3.connect(":memory:")
    try:
        con.deserialize(data)  # Python 3.11+; in memory, no temporary file
        rows = con.execute("SELECT blob FROM Packages").fetchall()
    except (sqlite3.Error, AttributeError) as exc:
        problems.append(f"{path}: not a readable rpm SQLite database ({exc})")
        return
    finally:
        con.close()
    bad = 0
    for (blob,) in rows:
        tags = rpm_header_strings(bytes(blob) if blob is not None else b"")
        if tags is None or _NAME not in tags:
            bad += 1
            continue
        yield tags[_NAME], f"{tags.get(_VERSION, '?')}-{tags.get(_RELEASE, '?')}"
    if bad:
        problems.append(f"{path}: {bad} unreadable package header(s) ignored")


def rpm_header_strings(blob: bytes) -> dict[int, str] | None:
    """NAME/VERSION/RELEASE of an rpm header blob (index count, data length, entries, data)."""
    if len(blob) < 8:
        return None
    count, length = struct.unpack(">II", blob[:8])
    start = 8 + 16 * count
    if count > 100_000 or start + length > len(blob):
        return None
    out: dict[int, str] = {}
    for i in range(count):
        tag, kind, offset, _n = struct.unpack(">IIII", blob[8 + 16 * i: 24 + 16 * i])
        if tag in (_NAME, _VERSION, _RELEASE) and kind in _STRING_TYPES and offset < length:
            end = blob.find(b"\0", start + offset, start + length)
            if end >= 0:
                out[tag] = blob[start + offset: end].decode("utf-8", "replace")
    return out


def known_binaries(fs: RootFS) -> list[Binary]:
    """Known daemon executables present (regular files, found through links inside the root)."""
    found = []
    for mta in software.all_mtas():
        for path in mta.binaries:
            if fs.isfile(path):
                found.append(Binary(mta.id, path))
    return found
