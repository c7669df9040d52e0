"""Sockets created inside another process's network namespace.

A socket stays in the namespace it was created in, so a short-lived thread
enters the namespace (setns(2) through ctypes; Python 3.11 has no os.setns),
creates the socket and leaves; the scan then connects with it from asyncio as
with any other socket. This reaches loopback-only listeners and needs no route
into the namespace at all (it works with ``--network none`` and ``internal``
networks), but needs CAP_SYS_ADMIN (root).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import socket
import threading

from smtpgate.collect.smtp import connect, family_of

CLONE_NEWNET = 0x40000000


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


class NetnsDialler:
    """Dial (host, port) from inside the network namespace held by ``ns_path``
    (e.g. /proc/<pid>/ns/net). The namespace is held open until close()."""

    def __init__(self, ns_path: str):
        self.ns_fd = os.open(ns_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            self._make(socket.AF_INET).close()  # fail now, not at the first probe
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.ns_fd >= 0:
            os.close(self.ns_fd)
            self.ns_fd = -1

    def sock_diag(self):
        """A NETLINK_SOCK_DIAG socket of the namespace (smtpgate.collect.sockdiag)."""
        from smtpgate.collect.sockdiag import NETLINK_SOCK_DIAG, SockDiag

        return SockDiag(self._make(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_SOCK_DIAG))

    def _make(self, family: int, kind: int = socket.SOCK_STREAM, proto: int = 0) -> socket.socket:
        box: dict[str, object] = {}

        def work() -> None:
            own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                _setns(self.ns_fd)
                try:
                    box["sock"] = socket.socket(family, kind, proto)
                finally:
                    _setns(own)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, raised there
                box["error"] = exc
            finally:
                os.close(own)

        thread = threading.Thread(target=work, name="smtpgate-setns", daemon=True)
        thread.start()
        thread.join()
        if "error" in box:
            raise box["error"]  # type: ignore[misc]
        return box["sock"]  # type: ignore[return-value]

    async def __call__(self, host: str, port: int) -> socket.socket:
        return await connect(self._make(family_of(host)), host, port)
