"""VM and SSH-host parsing on captured real data: partition tables made by sfdisk,
the fixture disk's MBR, an ext4 superblock, a SeaBIOS console, and the output of
the inspection scripts in a booted Debian guest (tests/unit/data/vm/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from smtpgate.errors import TargetError
from smtpgate.model import BindScope, Evidence, Finding, Listener, Software, State
from smtpgate.static import live
from smtpgate.static.merge import merge
from smtpgate.targets import disk, ssh, vm

DATA = Path(__file__).parent / "data" / "vm"


def reader(blob: bytes):
    return lambda offset, length: blob[offset : offset + length]


def sparse_reader(sectors: dict[int, bytes]):
    def read(offset: int, length: int) -> bytes:
        out = bytearray(length)
        for start, data in sectors.items():
            lo, hi = max(offset, start), min(offset + length, start + len(data))
            if lo < hi:
                out[lo - offset : hi - offset] = data[lo - start : hi - start]
        return bytes(out)

    return read


# -- partition tables -------------------------------------------------------------------------


def test_fixture_mbr_one_bootable_linux_partition():
    table = disk.parse_partitions(reader((DATA / "fixture-mbr.bin").read_bytes()), 1175 << 20)
    assert table.scheme == "mbr"
    (part,) = table.partitions
    assert (part.number, part.start, part.kind, part.boot) == (1, 2048 * 512, "mbr 0x83", True)


def test_mbr_with_extended_and_logical_partitions():
    captured = json.loads((DATA / "mbr-extended.json").read_text())
    sectors = {int(k): bytes.fromhex(v) for k, v in captured["sectors"].items()}
    table = disk.parse_partitions(sparse_reader(sectors), captured["size"])
    got = [(p.number, p.start // 512, p.size // 512, p.kind) for p in table.partitions]
    assert got == [(1, 2048, 16384, "mbr 0x83"), (5, 20480, 16384, "mbr 0x82"), (6, 38912, 92160, "mbr 0x83")]
    assert disk.not_root_reason(table.partitions[1]) == "Linux swap"
    assert not table.problems


def test_gpt_partitions_types_and_names():
    blob = (DATA / "gpt-table.bin").read_bytes()
    table = disk.parse_partitions(reader(blob), 64 << 20)
    assert table.scheme == "gpt"
    assert [(p.number, p.name) for p in table.partitions] == [(1, "bios"), (2, "esp"), (3, "root")]
    assert [disk.not_root_reason(p) for p in table.partitions] == ["BIOS boot", "EFI system", None]
    assert table.partitions[2].start == 18 << 20


def test_no_signature_means_whole_disk_and_truncation_is_reported():
    table = disk.parse_partitions(reader(bytes(4096)), 4096)
    assert table.scheme == "none" and table.partitions[0].label == "the whole disk"
    mbr = bytearray((DATA / "fixture-mbr.bin").read_bytes())
    table = disk.parse_partitions(reader(bytes(mbr)), 100 << 20)  # the disk is smaller than the partition
    assert table.partitions[0].size == (100 << 20) - 2048 * 512
    assert "extends beyond the end of the disk" in table.problems[0]


def test_filesystem_signatures():
    head = (DATA / "ext4-head.bin").read_bytes()
    assert disk.filesystem_type(reader(head), 0) == "ext4"
    assert disk.filesystem_type(reader(bytes(1 << 17)), 0) is None
    xfs = b"XFSB" + bytes(1 << 17)
    assert disk.filesystem_type(reader(xfs), 0) == "xfs"
    ids = disk._fs_ids(head, "ext4")
    assert ids[0].startswith("UUID=") and "LABEL=root" in ids


def test_fstab_mounts_worth_following():
    text = "UUID=a / ext4 defaults 0 1\nUUID=b /usr ext4 ro 0 2\n# LABEL=c /var xfs\nLABEL=d /var xfs defaults 0 2\n"
    assert disk.fstab_mounts(text) == [("UUID=b", "/usr"), ("LABEL=d", "/var")]


# -- console ------------------------------------------------------------------------------------


def test_seabios_console_is_cleaned_and_fatal():
    path = DATA / "console-no-bootable-device.log"
    text = vm.console_text(str(path))
    assert "\x1b" not in text and "\r" not in text
    assert text.splitlines()[0] == "SeaBIOS (version 1.16.2-debian-1.16.2-1)"
    assert vm.fatal_console(text) == "No bootable device"
    assert vm.console_tail(str(path), 2) == "Boot failed: could not read the boot disk\nNo bootable device."
    assert vm.fatal_console("[    1.0] Kernel panic - not syncing: VFS: Unable to mount root fs") is not None
    assert vm.fatal_console("Booting from Hard Disk...\n[    0.0] Linux version 6.1") is None


def test_user_data_is_cloud_config():
    text = vm.user_data("ssh-ed25519 AAAA test", "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END", "ssh-ed25519 HH")
    assert text.startswith("#cloud-config\n")
    doc = yaml.safe_load(text)
    assert doc["users"][0]["name"] == vm.SEED_USER
    assert doc["users"][0]["ssh_authorized_keys"] == ["ssh-ed25519 AAAA test"]
    assert doc["ssh_keys"]["ed25519_private"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----\nabc")


# -- the guest's inspection scripts -------------------------------------------------------------


@pytest.fixture(scope="module")
def guest():
    sockets = (DATA / "postfix-all.sockets.txt").read_text()
    details = (DATA / "postfix-all.details.txt").read_text()
    return sockets, details


def test_guest_snapshot_listeners_and_owners(guest):
    snap, ipv6 = ssh.snapshot_from_text(*guest)
    assert ipv6 is True and snap.owners_readable
    by_end = {li.endpoint: li for li in snap.listeners}
    assert set(by_end) == {"0.0.0.0:22", "[::]:22", "0.0.0.0:25", "[::]:25"}
    master = by_end["0.0.0.0:25"].process
    assert master is not None and master.name == "master"
    assert master.cmdline == ("/usr/lib/postfix/sbin/master", "-w") and master.exe == "/usr/lib/postfix/sbin/master"
    assert by_end["[::]:25"].scope is BindScope.ALL
    pid1 = next(p for p in snap.processes if p.pid == 1)
    assert pid1.name == "systemd" and pid1.cmdline[0] == "/sbin/init"
    assert len(snap.processes) > 20 and snap.cpu_seconds > 0


def test_owner_pids_are_socket_holders_and_pid1(guest):
    sockets, details = guest
    pids = ssh.owner_pids(sockets)
    assert pids[0] == 1 and len(pids) >= 3
    assert set(pids) <= set(ssh.parse_details(details))


def test_fd_listing_and_stat_lines():
    listing = "/proc/1/fd:\ntotal 0\nlrwx------ 1 root root 64 Nov 27 21:41 3 -> socket:[123]\n\n/proc/22/fd:\n"
    assert ssh.parse_fd_listing(listing) == {1: [123], 22: []}
    stats = ssh.parse_stat_lines("7 (a (weird) name) S 1 7 7 0 -1 4194560 0 0 0 0 5 6 0 0 20 0 1 0 9 0 0\n")
    assert stats == {7: ("a (weird) name", 1, 11)}


def live_facts(text: str):
    return live.facts_from_listings(ssh.sections(text), "ssh://root@guest")


def test_services_enrich_listening_and_find_enabled():
    text = (DATA / "postfix-all.services.txt").read_text()
    listener = Listener("0.0.0.0", 25, 4)
    listening = Finding(Software("postfix", "Postfix"), State.LISTENING, listeners=(listener,),
                        evidence=(Evidence("listening", "x"),))
    facts = live_facts(text)
    out = merge([listening], facts)
    assert len(out) == 1 and not facts.problems
    texts = [e.text for e in out[0].evidence]
    assert any("postfix.service is enabled" in t for t in texts)
    assert any(t.startswith("package postfix 3.7") for t in texts)
    alone = merge([], facts)
    assert [(f.software.id, f.state) for f in alone] == [("postfix", State.ENABLED)]
    disabled = "\n".join(ln if not ln.startswith("postfix.service") else "postfix.service disabled enabled"
                         for ln in text.splitlines())
    found = merge([], live_facts(disabled))
    assert [(f.software.id, f.state) for f in found] == [("postfix", State.INSTALLED)]
    assert "systemd unit postfix.service is disabled" in [e.text for e in found[0].evidence]


def test_live_facts_are_the_static_facts_of_the_guest():
    facts = live_facts((DATA / "postfix-all.services.txt").read_text())
    assert facts.boots_init and facts.init == "systemd"
    assert [(p.software, p.name, p.db) for p in facts.packages] == [("postfix", "postfix", "dpkg")]
    assert [b.path for b in facts.binaries] == ["/usr/lib/postfix/sbin/master", "/usr/sbin/postfix"]
    assert [e.mechanism for e in facts.enabled] == ["systemd"]  # rc links count only without systemd units


def test_runlevel_links_without_systemd():
    listing = "\n".join(["@@smtpgate init", "init", "@@smtpgate units", "@@smtpgate sysv", "/etc/rc2.d:",
                         "K01exim4", "S01postfix", "README", "/etc/runlevels/default:", "opensmtpd", "sshd"])
    facts = live_facts(listing)
    got = {(e.software, e.mechanism, e.path) for e in facts.enabled}
    assert got == {("postfix", "sysv", "/etc/rc2.d/S01postfix"),
                   ("opensmtpd", "openrc", "/etc/runlevels/default/opensmtpd")}
    assert not facts.problems


def test_packages_from_each_manager():
    parts = {"dpkg": ("Package: postfix\nStatus: install ok installed\nVersion: 3.7.11-0+deb12u1\n\n"
                      "Package: exim4-base\nStatus: deinstall ok config-files\nVersion: 4.96\n"),
             "rpm": "sendmail 8.17.1-19.el9\n", "apk": "P:opensmtpd\nV:7.4.0_p1-r0\n"}
    got = {p.name: (p.version, p.db) for p in live.facts_from_listings(parts, "h").packages}
    assert got["postfix"] == ("3.7.11-0+deb12u1", "dpkg") and "exim4-base" not in got
    assert got["sendmail"] == ("8.17.1-19.el9", "rpm") and got["opensmtpd"] == ("7.4.0_p1-r0", "apk")


@pytest.mark.parametrize(("url", "user", "host", "port"), [
    ("ssh://deploy@staging.example:2222", "deploy", "staging.example", 2222),
    ("ssh://root@[2001:db8::1]", "root", "2001:db8::1", 22),
    ("ssh://a%40b@host", "a@b", "host", 22),
])
def test_ssh_urls(url, user, host, port):
    ep = ssh.parse_ssh_url(url)
    assert (ep.user, ep.host, ep.port) == (user, host, port)


@pytest.mark.parametrize("url", ["http://host", "ssh://", "ssh://u@h/path", "ssh://u:pw@h", "ssh://h:99999"])
def test_bad_ssh_urls(url):
    with pytest.raises(TargetError):
        ssh.parse_ssh_url(url)
