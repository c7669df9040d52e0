"""A root filesystem from a tar stream (a tarball, `docker export`, image layers).

The stream is read once, front to back, and never written to disk: every entry
goes into an index (kind, size, link target), and the contents of only the
files the readers need (`wanted`) are kept, each under a byte limit. A 1 GiB
file is streamed past, not stored. Layers applied in order honour OCI
whiteouts (`.wh.<name>` deletes, `.wh..wh..opq` hides what lower layers put in
a directory).
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from smtpgate import software
from smtpgate.static import langpkg
from smtpgate.static.fs import DB_PATHS, FsLimits, Node, RootFS, StaticError, join, split

# Where the readers look: contents of regular files under these are kept (bounded); each
# MTA's own files elsewhere are its entry's `config_paths`.
KEEP_PREFIXES = (
    "/etc/", "/lib/systemd/", "/usr/lib/systemd/", "/usr/local/etc/",
    "/service/", "/var/service/", "/run/service/", "/etc/s6-overlay/",
    "/docker-entrypoint.d/",
    *dict.fromkeys(path for mta in software.all_mtas() for path in mta.config_paths),
)
SCRIPT_LIMIT = 256 << 10  # executable scripts anywhere else (entrypoints) up to this size
SKIP_PREFIXES = ("/usr/share/", "/usr/include/", "/proc/", "/sys/", "/usr/lib/python", "/usr/local/lib/python")
WHITEOUT, OPAQUE = ".wh.", ".wh..wh..opq"


def default_wanted(path: str, size: int, mode: int) -> str:
    """'keep' (read it), 'script' (keep if it starts with #!) or '' (index only)."""
    if path in DB_PATHS or path.startswith(KEEP_PREFIXES) or langpkg.keep_from_stream(path, size):
        return "keep"
    if path.startswith(SKIP_PREFIXES) or size > SCRIPT_LIMIT:
        return ""
    if mode & 0o111 or path.endswith((".sh", ".conf", ".ini")):
        return "script"
    return ""


class _ChunkReader(io.RawIOBase):
    """A file object over an iterator of byte chunks (the engine's export stream)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it: Iterator[bytes] = iter(chunks)
        self._buf = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buf:
            try:
                self._buf = memoryview(next(self._it))
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


class TarFS(RootFS):
    """The root filesystem held in one or more tar streams, indexed in memory."""

    def __init__(self, limits: FsLimits | None = None, name: str = "tar",
                 wanted: Callable[[str, int, int], str] = default_wanted, extra: Iterable[str] = ()) -> None:
        super().__init__(limits)
        self.name = name
        self._index: dict[str, Node] = {"/": Node("dir", mode=0o755)}
        self._data: dict[str, bytes] = {}
        self._layer: dict[str, int] = {}
        self._wanted = wanted
        self._extra = {join(split(p)) for p in extra}  # always kept (the image's entrypoint)
        self.streamed = 0  # bytes of the stream consumed
        self.entries_seen = 0
        self._counts: dict[str, int] = {}  # directory -> names indexed in it (capped at limits.dir_entries)

    # -- construction --------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike[str], limits: FsLimits | None = None, **kw: Any) -> TarFS:
        """A tarball on disk (plain, gzip, bzip2 or xz)."""
        fs = cls(limits, name=os.fspath(path), **kw)
        try:
            with open(path, "rb") as fh:
                fs.add_layer(fh)
        except OSError as exc:
            raise StaticError(f"cannot read {os.fspath(path)}: {exc.strerror}") from exc
        return fs

    @classmethod
    def from_stream(cls, stream: IO[bytes] | Iterable[bytes], limits: FsLimits | None = None, **kw: Any) -> TarFS:
        fs = cls(limits, **kw)
        fs.add_layer(stream)
        return fs

    def add_layer(self, stream: IO[bytes] | Iterable[bytes]) -> None:
        """Apply one tar stream on top of what is indexed (whiteouts honoured)."""
        fileobj = stream if hasattr(stream, "read") else io.BufferedReader(_ChunkReader(stream), 1 << 20)
        layer = max(self._layer.values(), default=0) + 1
        self.__dict__.pop("_kids", None)  # the children index is rebuilt on demand
        try:
            with tarfile.open(fileobj=fileobj, mode="r|*") as tar:  # type: ignore[call-overload]
                for member in tar:
                    self.entries_seen += 1
                    self.streamed = member.offset_data + member.size
                    if self.streamed > self.limits.stream_bytes:
                        self._cut(f"stopped after {self.limits.stream_bytes} bytes of tar stream")
                        break
                    if self.entries_seen > 4 * self.limits.entries:
                        self._cut(f"stopped after {self.entries_seen - 1} tar entries")
                        break
                    if self.entries_seen % 4096 == 0 and self.out_of_time():
                        break
                    self._add(tar, member, layer)
        except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
            raise StaticError(f"{self.name}: not a readable tar stream: {exc}") from exc

    def _cut(self, why: str) -> None:
        self.cut(f"{self.name}: {why}")

    def _add(self, tar: tarfile.TarFile, m: tarfile.TarInfo, layer: int) -> None:
        parts = split(m.name)
        if not parts or ".." in parts:
            if parts:
                self._problem(f"{self.name}: entry {m.name[:200]!r} escapes the root; ignored")
            return
        base = parts[-1]
        if base == OPAQUE:
            self._opaque(join(parts[:-1]), layer)
            return
        if base.startswith(WHITEOUT):
            self._remove(join([*parts[:-1], base[len(WHITEOUT):]]))
            return
        path = join(parts)
        if path not in self._index and len(self._index) >= self.limits.entries:
            if self.complete:
                self._cut(f"more than {self.limits.entries} paths")
            return
        if not self._room(parts):
            return
        self._ensure_parents(parts, layer)
        if m.isdir():
            old = self._index.get(path)
            if old is not None and old.kind != "dir":
                self._remove(path)
            self._set(path, Node("dir", mode=m.mode), layer)
            return
        self._remove(path)
        if m.issym():
            self._set(path, Node("link", target=m.linkname, mode=m.mode | stat.S_IFLNK), layer)
        elif m.islnk():  # a hard link: the same content as an earlier entry
            src = join(split(m.linkname))
            node = self._index.get(src, Node("other"))
            self._set(path, node, layer)
            if src in self._data:
                self._data[path] = self._data[src]
        elif m.isreg():
            self._set(path, Node("file", size=m.size, mode=m.mode), layer)
            self._keep(tar, m, path)
        else:
            self._set(path, Node("other", mode=m.mode), layer)

    def _keep(self, tar: tarfile.TarFile, m: tarfile.TarInfo, path: str) -> None:
        why = self._wanted(path, m.size, m.mode)
        if not why and path in self._extra and m.size <= SCRIPT_LIMIT:
            why = "script"  # named by the image command: kept when it is a script
        if not why:
            return
        limit = self.limits.db_bytes if path in DB_PATHS else self.limits.file_bytes
        if m.size > limit:
            self._problem(f"{path}: {m.size} bytes, over the {limit}-byte limit; not read")
            return
        if self._read_total + m.size > self.limits.total_bytes:
            self._problem(f"{path}: not kept, the total read limit ({self.limits.total_bytes} bytes) is reached")
            return
        fh = tar.extractfile(m)
        if fh is None:
            return
        data = fh.read(m.size)
        if why == "script" and not data.startswith(b"#!") and not path.endswith((".conf", ".ini")):
            return
        self._data[path] = data
        self._read_total += len(data)

    def _room(self, parts: list[str]) -> bool:
        """False (and the listing cut) when the first new component of the path
        would go into a directory that already holds `dir_entries` names."""
        if join(parts) in self._index:
            return True
        first = len(parts)  # the usual case: the parent exists, the name is new
        if join(parts[:-1]) not in self._index:
            first = next(i for i in range(1, len(parts)) if join(parts[:i]) not in self._index)
        parent, cap = join(parts[: first - 1]), self.limits.dir_entries
        if self._counts.get(parent, 0) < cap:
            return True
        self.cut(f"{self.name}: {parent}: more than {cap} entries, only {cap} indexed")
        return False

    def _ensure_parents(self, parts: list[str], layer: int) -> None:
        for i in range(1, len(parts)):
            parent = join(parts[:i])
            if parent not in self._index:
                self._set(parent, Node("dir", mode=0o755), layer)

    def _set(self, path: str, node: Node, layer: int) -> None:
        if path not in self._index and path != "/":
            parent = path.rpartition("/")[0] or "/"
            self._counts[parent] = self._counts.get(parent, 0) + 1
        self._index[path] = node
        self._layer[path] = layer

    def _remove(self, path: str) -> None:
        if path not in self._index:
            return
        prefix = path.rstrip("/") + "/"
        for key in [k for k in self._index if k == path or k.startswith(prefix)]:
            if self._index.pop(key, None) is not None:
                parent = key.rpartition("/")[0] or "/"
                self._counts[parent] = self._counts.get(parent, 1) - 1
            self._layer.pop(key, None)
            if key in self._data:
                self._read_total -= len(self._data.pop(key))

    def _opaque(self, directory: str, layer: int) -> None:
        prefix = directory.rstrip("/") + "/"
        for key in [k for k in self._index if k.startswith(prefix) and self._layer.get(k, 0) < layer]:
            self._remove(key)

    # -- RootFS primitives -----------------------------------------------------
    def _node(self, path: str) -> Node | None:
        return self._index.get(path)

    def node(self, path: str) -> Node | None:
        return self._index.get(path)  # already a dict, and it changes with each layer: nothing to remember

    def _children(self, path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        if not hasattr(self, "_kids"):
            self._build_children()
        return list(self._kids.get(prefix, ()))

    def _build_children(self) -> None:
        kids: dict[str, list[str]] = {}
        for key in self._index:
            if key == "/":
                continue
            parent, _, base = key.rpartition("/")
            kids.setdefault((parent or "") + "/", []).append(base)
        self._kids = kids

    def _read(self, path: str, limit: int) -> bytes | None:
        data = self._data.get(path)
        if data is None and path in self._index and self._index[path].kind == "file":
            self._problem(f"{path}: content not kept from the stream (not a path smtpgate reads)")
        return data

    def read(self, path: str) -> bytes | None:
        # Contents were bounded and counted when kept: only resolve here.
        real = self.resolve(path)
        if real is None:
            return None
        node = self._index.get(real)
        return self._data.get(real) if node is not None and node.kind == "file" else None

    def head(self, path: str, size: int = 256) -> bytes | None:
        real = self.resolve(path)
        data = self._data.get(real) if real is not None else None
        return None if data is None else data[:size]

    def close(self) -> None:
        self._data.clear()
