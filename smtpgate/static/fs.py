"""Root filesystems read without running anything, confined to their root.

`RootFS` resolves every path component by component against its own tree: a
symlink's target is looked up inside the root (absolute targets re-rooted,
`..` stops at the root), at most `MAX_HOPS` links per lookup. Backends give
only un-resolved primitives (`_node`, `_children`, `_read`), so no backend
ever asks the host's filesystem to follow a link.

What a read may cost is bounded (`FsLimits`): a listing is cut at
`dir_entries` names per directory (an image can hold a million empty files in
a `*.wants`), and all reading stops when the `seconds` budget is spent. Every
cut is a problem naming where it bit and makes the view incomplete
(`complete` False), which the scan reports as "could not decide".
"""

from __future__ import annotations

import abc
import fnmatch
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass

from smtpgate.errors import SmtpgateError

MAX_HOPS = 40  # like Linux's MAXSYMLINKS
NODE_MEMO = 200_000  # entries remembered by RootFS.node (forgotten all at once beyond)


class StaticError(SmtpgateError):
    """A root filesystem could not be opened or read at all."""


@dataclass(frozen=True)
class FsLimits:
    """What reading one root filesystem may cost."""

    file_bytes: int = 4 << 20  # one file's content (config, script, unit)
    db_bytes: int = 64 << 20  # one package database (dpkg status of a big image is a few MB)
    total_bytes: int = 128 << 20  # all contents kept together
    entries: int = 300_000  # paths indexed (a tar bomb of empty files stops here)
    dir_entries: int = 10_000  # names listed per directory (a flooded *.wants stops here)
    stream_bytes: int = 64 << 30  # bytes read through a tar stream before giving up
    seconds: float = 60.0  # all reading of one root filesystem, index included


DB_PATHS = frozenset({
    "/var/lib/dpkg/status", "/lib/apk/db/installed",
    "/var/lib/rpm/rpmdb.sqlite", "/usr/lib/sysimage/rpm/rpmdb.sqlite",
})


@dataclass(frozen=True)
class Node:
    """One directory entry, as stored (never resolved)."""

    kind: str  # "file", "dir", "link", "other"
    size: int = 0
    target: str = ""  # link target, as written
    mode: int = 0


def split(path: str) -> list[str]:
    return [p for p in path.split("/") if p and p != "."]


def join(parts: list[str]) -> str:
    return "/" + "/".join(parts)


class RootFS(abc.ABC):
    """A read-only root filesystem. Paths are absolute within the root."""

    name: str = "rootfs"

    def __init__(self, limits: FsLimits | None = None) -> None:
        self.limits = limits or FsLimits()
        self.problems: list[str] = []  # what could not be read, for the report
        self.complete = True  # False when a limit cut the index or a listing short
        self.cuts: list[str] = []  # where (each also in problems)
        self._read_total = 0
        self._cache: dict[str, bytes | None] = {}
        self._deadline = time.monotonic() + self.limits.seconds
        self._timed_out = False
        self._nodes: dict[str, Node | None] = {}

    # -- backend primitives: no symlink following, `path` is already resolved above its last part
    @abc.abstractmethod
    def _node(self, path: str) -> Node | None: ...

    @abc.abstractmethod
    def _children(self, path: str) -> list[str]: ...

    @abc.abstractmethod
    def _read(self, path: str, limit: int) -> bytes | None:
        """Up to limit+1 bytes of a regular file (None when unreadable)."""

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release what the backend holds."""

    def __enter__(self) -> RootFS:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- resolution ----------------------------------------------------------
    def node(self, path: str) -> Node | None:
        """The entry at a resolved path, remembered: a root filesystem does not change
        while it is read, and every lookup walks its parents again (on overlay layers,
        each step is several system calls per layer)."""
        if path in self._nodes:
            return self._nodes[path]
        if len(self._nodes) >= NODE_MEMO:
            self._nodes.clear()
        found = self._nodes[path] = self._node(path)
        return found

    def resolve(self, path: str, follow: bool = True) -> str | None:
        """The real path inside the root, or None when it does not exist (or loops)."""
        done: list[str] = []
        todo = split(path)
        hops = 0
        while todo:
            name = todo.pop(0)
            if name == "..":
                if done:
                    done.pop()
                continue
            here = join([*done, name])
            node = self.node(here)
            if node is None:
                return None
            if node.kind == "link" and (todo or follow):
                hops += 1
                if hops > MAX_HOPS:
                    self._problem(f"{path}: too many levels of symbolic links")
                    return None
                if node.target.startswith("/"):
                    done = []
                todo = split(node.target) + todo
                continue
            if todo and node.kind != "dir":
                return None
            done.append(name)
        return join(done)

    def stat(self, path: str, follow: bool = True) -> Node | None:
        real = self.resolve(path, follow)
        if real is None:
            return None
        return Node("dir") if real == "/" else self.node(real)

    def exists(self, path: str) -> bool:
        return self.stat(path) is not None

    def lexists(self, path: str) -> bool:
        return self.stat(path, follow=False) is not None

    def isdir(self, path: str) -> bool:
        node = self.stat(path)
        return node is not None and node.kind == "dir"

    def isfile(self, path: str) -> bool:
        node = self.stat(path)
        return node is not None and node.kind == "file"

    def readlink(self, path: str) -> str | None:
        """A link's target as written (its parent resolved), or None if not a link."""
        parent, _, base = path.rstrip("/").rpartition("/")
        real_parent = self.resolve(parent or "/")
        if real_parent is None or not base:
            return None
        node = self.node(join([*split(real_parent), base]))
        return node.target if node is not None and node.kind == "link" else None

    def link_target(self, path: str) -> str | None:
        """Where a link points, as an absolute path inside the root (unresolved beyond one hop)."""
        target = self.readlink(path)
        if target is None:
            return None
        if target.startswith("/"):
            return join(_normal(split(target)))
        return join(_normal(split(path.rstrip("/").rpartition("/")[0]) + split(target)))

    def listdir(self, path: str) -> list[str]:
        """The names in a directory, sorted; at most `limits.dir_entries` of them
        (a longer listing is cut, reported and makes the view incomplete)."""
        if self.out_of_time():
            return []
        real = self.resolve(path)
        if real is None or not self.isdir(real):
            return []
        names = self._children(real)
        cap = self.limits.dir_entries
        if len(names) > cap:
            self.cut(f"{real}: more than {cap} entries, only {cap} listed")
            names = names[:cap]
        return sorted(names)

    def cut(self, why: str) -> None:
        """A limit bit: what was not read is unknown, so the view is incomplete.
        Recorded whatever the 200-problem cap of other problems (up to 100 cuts)."""
        self.complete = False
        text = f"{why}; the file listing is incomplete"
        if text not in self.cuts and len(self.cuts) < 100:
            self.cuts.append(text)
            self.problems.append(text)

    def out_of_time(self) -> bool:
        """True when the `seconds` budget is spent (cut once): nothing more is read."""
        if self._timed_out:
            return True
        if time.monotonic() <= self._deadline:
            return False
        self._timed_out = True
        self.cut(f"{self.name}: stopped reading after its {self.limits.seconds:g} s time budget")
        return True

    def glob(self, pattern: str) -> list[str]:
        """Paths matching a shell pattern (`*`, `?`, `[..]` per component, no `**`)."""
        found = ["/"]
        for part in split(pattern):
            nxt = []
            for base in found:
                if any(c in part for c in "*?["):
                    nxt += [join([*split(base), n]) for n in self.listdir(base) if fnmatch.fnmatchcase(n, part)]
                elif self.lexists(join([*split(base), part])):
                    nxt.append(join([*split(base), part]))
            found = nxt
        return sorted(found)

    def walk(self, top: str, max_depth: int = 4) -> Iterator[str]:
        """Every path under top (links not followed into), breadth-first, bounded depth."""
        level = [top]
        for _ in range(max_depth):
            nxt = []
            for base in level:
                for name in self.listdir(base):
                    path = join([*split(base), name])
                    yield path
                    node = self.stat(path, follow=False)
                    if node is not None and node.kind == "dir":
                        nxt.append(path)
            level = nxt

    # -- content -------------------------------------------------------------
    def read(self, path: str) -> bytes | None:
        """A regular file's bytes, or None (missing, not a file, over a limit: see `problems`)."""
        real = self.resolve(path)
        if real is None:
            return None
        if real not in self._cache and self.out_of_time():
            return None
        if real in self._cache:
            return self._cache[real]
        node = self.node(real)
        data: bytes | None = None
        if node is not None and node.kind == "file":
            limit = self.limits.db_bytes if real in DB_PATHS else self.limits.file_bytes
            if node.size > limit:
                self._problem(f"{real}: {node.size} bytes, over the {limit}-byte limit; not read")
            elif self._read_total + node.size > self.limits.total_bytes:
                self._problem(f"{real}: not read, the total read limit ({self.limits.total_bytes} bytes) is reached")
            else:
                data = self._read(real, limit)
                if data is not None and len(data) > limit:
                    self._problem(f"{real}: over the {limit}-byte limit; not read")
                    data = None
                self._read_total += len(data or b"")
        self._cache[real] = data
        return data

    def head(self, path: str, size: int = 256) -> bytes | None:
        """The first bytes of a regular file (a `#!` line), whatever its size."""
        real = self.resolve(path)
        node = self.node(real) if real is not None else None
        if real is None or node is None or node.kind != "file":
            return None
        data = self._read(real, size)
        return None if data is None else data[:size]

    def text(self, path: str) -> str | None:
        """A file decoded as UTF-8 (undecodable bytes escaped), or None."""
        data = self.read(path)
        return None if data is None else data.decode("utf-8", "backslashreplace")

    def _problem(self, text: str) -> None:
        if text not in self.problems and len(self.problems) < 200:
            self.problems.append(text)


def _normal(parts: list[str]) -> list[str]:
    out: list[str] = []
    for p in parts:
        if p == "..":
            if out:
                out.pop()
        else:
            out.append(p)
    return out


class DirFS(RootFS):
    """A directory tree as a root filesystem (a mounted VM disk, an unpacked rootfs).

    Every lookup walks from the root with `openat(O_NOFOLLOW)`, one component at
    a time, so a link (or a race that swaps a directory for a link) can never
    lead outside `root`; only regular files are read (never a FIFO or device).
    """

    def __init__(self, root: str | os.PathLike[str], limits: FsLimits | None = None) -> None:
        super().__init__(limits)
        self.root = os.fspath(root)
        self.name = self.root
        try:
            self._root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            raise StaticError(f"cannot open root filesystem {self.root}: {exc.strerror}") from exc

    def close(self) -> None:
        if self._root_fd >= 0:
            os.close(self._root_fd)
            self._root_fd = -1

    def _parent_fd(self, parts: list[str]) -> int | None:
        fd = os.dup(self._root_fd)
        for part in parts:
            try:
                nfd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError:
                os.close(fd)
                return None
            os.close(fd)
            fd = nfd
        return fd

    def _node(self, path: str) -> Node | None:
        if "\x00" in path:  # no file has that name (and the OS calls refuse it)
            return None
        parts = split(path)
        if not parts:
            return Node("dir")
        fd = self._parent_fd(parts[:-1])
        if fd is None:
            return None
        try:
            st = os.lstat(parts[-1], dir_fd=fd)
            target = os.readlink(parts[-1], dir_fd=fd) if stat.S_ISLNK(st.st_mode) else ""
        except OSError:
            return None
        finally:
            os.close(fd)
        if stat.S_ISLNK(st.st_mode):
            return Node("link", target=target, mode=st.st_mode)
        kind = "dir" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode) else "other"
        return Node(kind, size=st.st_size, mode=st.st_mode)

    def _children(self, path: str) -> list[str]:
        """At most `dir_entries` + 1 names (enough for listdir to see the cut): a
        directory of a million entries costs no more than one of ten thousand."""
        fd = self._parent_fd(split(path))
        if fd is None:
            return []
        names: list[str] = []
        try:
            with os.scandir(fd) as it:  # scandir(fd) dups the descriptor; ours is closed below
                for entry in it:
                    names.append(entry.name)
                    if len(names) > self.limits.dir_entries:
                        break
        except OSError:
            pass
        finally:
            os.close(fd)
        return names

    def _read(self, path: str, limit: int) -> bytes | None:
        parts = split(path)
        fd = self._parent_fd(parts[:-1])
        if fd is None:
            return None
        try:
            ffd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
        except OSError as exc:
            self._problem(f"{path}: cannot read: {exc.strerror}")
            return None
        finally:
            os.close(fd)
        try:
            if not stat.S_ISREG(os.fstat(ffd).st_mode):
                return None
            chunks, got = [], 0
            while got <= limit:
                chunk = os.read(ffd, min(1 << 20, limit + 1 - got))
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
            return b"".join(chunks)
        finally:
            os.close(ffd)
