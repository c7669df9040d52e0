"""Read a VM disk image without booting it: partitions, filesystems, a mounted root.

Partition tables (MBR with extended/logical partitions, GPT) and filesystem
signatures are parsed here in Python, so the same code explains any image
(unit-tested on captured sectors). Mounting needs root: a qcow2 (or any
non-raw format) is first converted to a sparse raw file in a temporary
directory with ``qemu-img convert`` (the image itself is only ever read), then
each candidate partition is attached read-only (``mount -o ro,loop,offset=``,
with ``noload``/``norecovery`` so no journal is replayed) until one holds a
root filesystem (``/etc`` and ``/usr``). ``/usr`` or ``/var`` on partitions of
their own are mounted beneath it when ``/etc/fstab`` names them by UUID or
LABEL. LVM, LUKS, ZFS and btrfs subvolume layouts are recognised and reported,
not read.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import struct
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from smtpgate.errors import TargetError

ReadAt = Callable[[int, int], bytes]  # (offset, size) -> the bytes there

SECTOR = 512
MBR_SIGNATURE = b"\x55\xaa"
GPT_SIGNATURE = b"EFI PART"
EXTENDED_TYPES = {0x05, 0x0F, 0x85}
GPT_EMPTY = "00000000-0000-0000-0000-000000000000"
# GPT partition types that are never a root filesystem.
GPT_NOT_ROOT = {
    "21686148-6449-6e6f-744e-656564454649": "BIOS boot",
    "c12a7328-f81f-11d2-ba4b-00a0c93ec93b": "EFI system",
    "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f": "Linux swap",
}
MBR_NOT_ROOT = {0x82: "Linux swap", 0xEF: "EFI system", 0xEE: "GPT protective"}


class DiskError(TargetError):
    """The disk image could not be read offline."""


@dataclass(frozen=True)
class Partition:
    """One partition (or the whole disk when it has no partition table)."""

    number: int  # 1-based; 0 for a whole-disk filesystem
    start: int  # bytes from the start of the disk
    size: int  # bytes
    kind: str  # "mbr 0x83", "gpt 0fc63daf-...", "whole disk"
    name: str = ""  # GPT partition name
    boot: bool = False

    @property
    def label(self) -> str:
        return f"partition {self.number}" if self.number else "the whole disk"


@dataclass(frozen=True)
class PartitionTable:
    scheme: str  # "mbr", "gpt", "none"
    partitions: tuple[Partition, ...] = ()
    problems: tuple[str, ...] = ()


def _le(fmt: str, data: bytes, offset: int = 0) -> tuple:
    return struct.unpack_from("<" + fmt, data, offset)


def guid(raw: bytes) -> str:
    """A GPT GUID in its usual text form (first three fields little-endian)."""
    return str(uuid.UUID(bytes_le=bytes(raw)))


def _mbr_entries(sector: bytes) -> list[tuple[int, int, int, bool]]:
    """(type, first LBA, sectors, bootable) of the four primary slots in use."""
    out = []
    for i in range(4):
        entry = sector[446 + 16 * i : 462 + 16 * i]
        boot, ptype = entry[0], entry[4]
        lba, count = _le("II", entry, 8)
        if ptype and count:
            out.append((ptype, lba, count, boot == 0x80))
    return out


def parse_partitions(read: ReadAt, disk_size: int) -> PartitionTable:
    """Parse the partition table of a disk. ``read(offset, length) -> bytes``
    reads the disk; ``disk_size`` bounds every partition."""
    mbr = read(0, SECTOR)
    if len(mbr) < SECTOR or mbr[510:512] != MBR_SIGNATURE:
        return PartitionTable("none", (Partition(0, 0, disk_size, "whole disk"),))
    primaries = _mbr_entries(mbr)
    if any(ptype == 0xEE for ptype, *_ in primaries):
        gpt = _parse_gpt(read, disk_size)
        if gpt is not None:
            return gpt
    if not primaries and _looks_like_boot_sector(mbr):
        return PartitionTable("none", (Partition(0, 0, disk_size, "whole disk"),))
    parts: list[Partition] = []
    problems: list[str] = []
    for number, (ptype, lba, count, boot) in enumerate(primaries, start=1):
        if ptype in EXTENDED_TYPES:
            parts.extend(_logical(read, lba, disk_size, problems))
            continue
        parts.append(Partition(number, lba * SECTOR, count * SECTOR, f"mbr 0x{ptype:02x}", boot=boot))
    return PartitionTable("mbr", tuple(_bounded(parts, disk_size, problems)), tuple(problems))


def _looks_like_boot_sector(sector: bytes) -> bool:
    """A FAT/NTFS volume boot record also ends in 55 AA: a filesystem, not a table."""
    return sector[3:11] in (b"NTFS    ", b"MSDOS5.0", b"mkfs.fat", b"mkdosfs\x00") or sector[0] in (0xEB, 0xE9)


def _logical(read: ReadAt, ext_lba: int, disk_size: int, problems: list[str]) -> list[Partition]:
    """Logical partitions: a chain of EBRs, each relative to the extended partition."""
    parts: list[Partition] = []
    ebr_lba, number, seen = ext_lba, 5, set[int]()
    while ebr_lba and ebr_lba not in seen and len(seen) < 128:
        seen.add(ebr_lba)
        ebr = read(ebr_lba * SECTOR, SECTOR)
        if len(ebr) < SECTOR or ebr[510:512] != MBR_SIGNATURE:
            problems.append(f"extended partition: no EBR signature at sector {ebr_lba}")
            break
        entries = _mbr_entries(ebr)
        nxt = 0
        for ptype, lba, count, boot in entries:
            if ptype in EXTENDED_TYPES:
                nxt = ext_lba + lba
            else:
                parts.append(Partition(number, (ebr_lba + lba) * SECTOR, count * SECTOR, f"mbr 0x{ptype:02x}",
                                       boot=boot))
                number += 1
        ebr_lba = nxt
    return parts


def _parse_gpt(read: ReadAt, disk_size: int) -> PartitionTable | None:
    for sector in (SECTOR, 4096):  # 512-byte sectors, then 4Kn disks
        header = read(sector, 92)
        if header[:8] == GPT_SIGNATURE:
            break
    else:
        return None
    entries_lba, count, entry_size = _le("QII", header, 72)
    if entry_size < 128 or count > 1024:
        return PartitionTable("gpt", problems=(f"GPT header with {count} entries of {entry_size} bytes",))
    table = read(entries_lba * sector, count * entry_size)
    parts: list[Partition] = []
    problems: list[str] = []
    for i in range(len(table) // entry_size):
        entry = table[i * entry_size : (i + 1) * entry_size]
        ptype = guid(entry[0:16])
        if ptype == GPT_EMPTY:
            continue
        first, last = _le("QQ", entry, 32)
        name = entry[56:128].decode("utf-16-le", "replace").rstrip("\x00")
        parts.append(Partition(i + 1, first * sector, (last - first + 1) * sector, f"gpt {ptype}", name=name))
    return PartitionTable("gpt", tuple(_bounded(parts, disk_size, problems)), tuple(problems))


def _bounded(parts: list[Partition], disk_size: int, problems: list[str]) -> list[Partition]:
    kept = []
    for part in parts:
        if part.start >= disk_size:
            problems.append(f"{part.label} starts beyond the end of the disk")
            continue
        if part.start + part.size > disk_size:
            problems.append(f"{part.label} extends beyond the end of the disk; truncated")
            part = Partition(part.number, part.start, disk_size - part.start, part.kind, part.name, part.boot)
        kept.append(part)
    return kept


def not_root_reason(part: Partition) -> str | None:
    """Why a partition type can never be a root filesystem (None: it may be)."""
    if part.kind.startswith("gpt "):
        return GPT_NOT_ROOT.get(part.kind[4:])
    if part.kind.startswith("mbr "):
        return MBR_NOT_ROOT.get(int(part.kind[4:], 16))
    return None


def filesystem_type(read: ReadAt, start: int) -> str | None:
    """The filesystem (or container) whose signature starts at ``start``."""
    head = read(start, 0x10100)
    if len(head) >= 1082 and head[1080:1082] == b"\x53\xef":
        return "ext4"  # ext2/3/4 share a driver and a magic
    checks = (
        (0, b"XFSB", "xfs"),
        (0x10040, b"_BHRfS_M", "btrfs"),
        (0x200, b"LABELONE", "lvm2"),
        (0, b"LUKS\xba\xbe", "luks"),
        (0x36, b"FAT", "vfat"),
        (0x52, b"FAT32", "vfat"),
        (3, b"NTFS", "ntfs"),
        (0xFF6, b"SWAPSPACE2", "swap"),
        (0x8001, b"CD001", "iso9660"),
    )
    for offset, magic, name in checks:
        if head[offset : offset + len(magic)] == magic:
            return name
    return None


MOUNT_OPTIONS = {"ext4": "ro,noload", "xfs": "ro,norecovery,nouuid"}


# -- images on disk ---------------------------------------------------------


def image_format(path: str) -> tuple[str, int]:
    """(format, virtual size) from ``qemu-img info``; raw when qemu-img is missing."""
    if shutil.which("qemu-img") is None:
        return "raw", os.path.getsize(path)
    try:
        out = subprocess.run(
            ["qemu-img", "info", "--output=json", "-U", path], capture_output=True, text=True, timeout=60, check=True
        ).stdout
        info = json.loads(out)
    except (subprocess.SubprocessError, OSError, ValueError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        raise DiskError(f"qemu-img cannot read {path}: {detail.strip()}") from exc
    return info.get("format", "raw"), int(info.get("virtual-size") or 0)


class _RawReader:
    def __init__(self, path: str):
        self.fh = open(path, "rb")  # closed by close()

    def __call__(self, offset: int, length: int) -> bytes:
        self.fh.seek(offset)
        return self.fh.read(length)

    def close(self) -> None:
        self.fh.close()


@dataclass
class OfflineRoot:
    """A root filesystem of a disk image, mounted read-only at ``path``."""

    path: str
    partition: Partition
    fstype: str
    table: PartitionTable
    notes: list[str] = field(default_factory=list)


@contextlib.contextmanager
def mounted_root(image: str, workdir: str | None = None) -> Iterator[OfflineRoot]:
    """Mount the root filesystem of ``image`` read-only; everything is undone on exit."""
    if os.geteuid() != 0:
        raise DiskError("reading a disk image offline mounts it read-only, which needs root")
    tmp = tempfile.mkdtemp(prefix="smtpgate-disk.", dir=workdir)
    mounts: list[str] = []
    try:
        raw, notes = _as_raw(image, tmp)
        reader = _RawReader(raw)
        try:
            size = os.path.getsize(raw)
            table = parse_partitions(reader, size)
            candidates = _candidates(reader, table, notes)
        finally:
            reader.close()
        notes.append(_describe(table))
        root = _mount_root(raw, candidates, tmp, mounts, notes)
        root.table = table
        root.notes = notes + root.notes
        yield root
    finally:
        for point in reversed(mounts):
            subprocess.run(["umount", point], capture_output=True, timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)


def _as_raw(image: str, tmp: str) -> tuple[str, list[str]]:
    fmt, _ = image_format(image)
    if fmt == "raw":
        return image, [f"{os.path.basename(image)}: raw disk image, read in place"]
    raw = os.path.join(tmp, "disk.raw")
    try:
        subprocess.run(["qemu-img", "convert", "-U", "-O", "raw", image, raw], capture_output=True, text=True,
                       timeout=1800, check=True)
    except subprocess.CalledProcessError as exc:
        raise DiskError(f"qemu-img convert of {image} failed: {exc.stderr.strip()}") from exc
    return raw, [f"{os.path.basename(image)}: {fmt} image, converted to a temporary sparse raw copy"]


def _describe(table: PartitionTable) -> str:
    if table.scheme == "none":
        return "no partition table: the whole disk is read as one filesystem"
    parts = ", ".join(f"{p.number}: {p.kind} at {p.start // SECTOR} ({p.size >> 20} MiB)" for p in table.partitions)
    return f"{table.scheme.upper()} partition table ({parts or 'empty'})"


def _candidates(read, table: PartitionTable, notes: list[str]) -> list[tuple[Partition, str]]:
    found = []
    for part in table.partitions:
        why = not_root_reason(part)
        if why:
            continue
        fstype = filesystem_type(read, part.start)
        if fstype in MOUNT_OPTIONS:
            found.append((part, fstype))
        elif fstype in ("lvm2", "luks", "btrfs"):
            notes.append(f"{part.label} holds {fstype}, which offline mode does not read")
    # Bigger partitions first: the root is rarely the small /boot.
    return sorted(found, key=lambda pf: -pf[0].size)


def _mount(raw: str, part: Partition, fstype: str, point: str, mounts: list[str]) -> str | None:
    os.makedirs(point, exist_ok=True)
    opts = f"{MOUNT_OPTIONS[fstype]},loop,offset={part.start},sizelimit={part.size}"
    proc = subprocess.run(["mount", "-t", fstype, "-o", opts, raw, point], capture_output=True, text=True,
                          timeout=120)
    if proc.returncode != 0:
        return (proc.stderr or proc.stdout).strip() or f"mount exited {proc.returncode}"
    mounts.append(point)
    return None


def _mount_root(raw: str, candidates, tmp: str, mounts: list[str], notes: list[str]) -> OfflineRoot:
    if not candidates:
        raise DiskError("no ext4 or xfs filesystem found on the disk (" + "; ".join(notes) + ")")
    for i, (part, fstype) in enumerate(candidates):
        point = os.path.join(tmp, f"p{i}")
        problem = _mount(raw, part, fstype, point, mounts)
        if problem:
            notes.append(f"{part.label} ({fstype}) could not be mounted: {problem}")
            continue
        if os.path.isdir(os.path.join(point, "etc")):
            root = OfflineRoot(point, part, fstype, PartitionTable("none"))
            root.notes.append(f"root filesystem: {part.label} ({fstype}), mounted read-only")
            _mount_others(raw, root, candidates, tmp, mounts)
            return root
        subprocess.run(["umount", point], capture_output=True, timeout=60)
        mounts.remove(point)
    raise DiskError("no filesystem on the disk holds a root directory with /etc (" + "; ".join(notes) + ")")


def fstab_mounts(text: str) -> list[tuple[str, str]]:
    """(source, mount point) pairs of /etc/fstab worth following offline."""
    out = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2 and fields[1] in ("/usr", "/var", "/usr/local", "/opt"):
            out.append((fields[0], fields[1]))
    return out


def _mount_others(raw: str, root: OfflineRoot, candidates, tmp: str, mounts: list[str]) -> None:
    """/usr, /var, ... on partitions of their own, found through fstab by UUID or LABEL."""
    try:
        with open(os.path.join(root.path, "etc", "fstab"), encoding="utf-8", errors="replace") as fh:
            wanted = fstab_mounts(fh.read())
    except OSError:
        return
    if not wanted:
        return
    ids = {}
    with open(raw, "rb") as fh:
        for part, fstype in candidates:
            if part == root.partition:
                continue
            fh.seek(part.start)
            ids.update({key: (part, fstype) for key in _fs_ids(fh.read(0x10000), fstype)})
    for source, target in wanted:
        hit = ids.get(source)
        if hit is None:
            root.notes.append(f"fstab mounts {source} on {target}: not found on this disk, not read")
            continue
        problem = _mount(raw, hit[0], hit[1], os.path.join(root.path, target.lstrip("/")), mounts)
        root.notes.append(f"{target}: {hit[0].label} ({hit[1]})" + (f" could not be mounted: {problem}" if problem
                                                                      else ", mounted read-only"))


def _fs_ids(head: bytes, fstype: str) -> list[str]:
    """UUID= and LABEL= forms of a filesystem's identity, from its superblock."""
    if fstype == "ext4" and len(head) >= 1024 + 0x88:
        sb = head[1024:]
        ident = str(uuid.UUID(bytes=bytes(sb[0x68:0x78])))
        label = sb[0x78:0x88].split(b"\x00")[0].decode("utf-8", "replace")
        return [f"UUID={ident}"] + ([f"LABEL={label}"] if label else [])
    if fstype == "xfs" and len(head) >= 0x80:
        ident = str(uuid.UUID(bytes=bytes(head[0x20:0x30])))
        label = head[0x6C:0x78].split(b"\x00")[0].decode("utf-8", "replace")
        return [f"UUID={ident}"] + ([f"LABEL={label}"] if label else [])
    return []
