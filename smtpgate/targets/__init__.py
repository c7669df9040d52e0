"""Targets, chosen by the form of their reference (pytest-testinfra's lazy
`BACKENDS` style: a kind is a dotted path, imported only when used).

    TARGETS["image"]  any reference without a scheme: a container image on the engine
    TARGETS["ssh"]    ssh://user@host[:port]: a live host, inspected in place
    TARGETS["vm"]     --vm DISK: a VM disk image booted with qemu

A new target kind is one module with a `Target` subclass that has a
`from_ref(ref, options)` classmethod, and one line here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from smtpgate.errors import TargetError

if TYPE_CHECKING:
    from smtpgate.targets.interface import Target

TARGETS: dict[str, str] = {
    "image": "smtpgate.targets.docker.DockerImageTarget",
    "ssh": "smtpgate.targets.ssh.SshHostTarget",
    "vm": "smtpgate.targets.vm.VmTarget",
}
DEFAULT_KIND = "image"  # a reference without a scheme
BY_OPTION = ("vm",)  # kinds chosen by a command-line option (--vm DISK), not by the reference
SCHEMES = tuple(k for k in TARGETS if k != DEFAULT_KIND and k not in BY_OPTION)  # "ssh" for ssh://...


@dataclass(frozen=True)
class TargetOptions:
    """What the command line says about launching and entering targets (each kind takes what it needs)."""

    pull: str = "missing"
    memory: str | int = "1g"
    pids: int = 1024
    cpus: float = 1.0
    disk_limit: int = 2 << 30  # bytes (smtpgate.targets.docker.DISK_LIMIT)
    read_only: bool = False
    network: str = "none"
    method: str = "auto"
    helper_image: str | None = None
    ssh_key: str | None = None
    ssh_known_hosts: str | None = None
    vm: Any = field(default=None)  # smtpgate.targets.vm.VmOptions
    spec: Any = field(default=None)  # smtpgate.workload.RunSpec: how the deployment runs an image


def kind_of(ref: str) -> str:
    """The target kind a reference names: its URL scheme when it has one, else an image.

    Image references never hold "://", so an unknown scheme is a mistake, not an image."""
    scheme, sep, _ = ref.partition("://")
    if not sep:
        return DEFAULT_KIND
    if scheme.lower() in SCHEMES:
        return scheme.lower()
    known = ", ".join(f"{s}://" for s in SCHEMES)
    raise TargetError(f"{ref!r}: unknown reference form {scheme + '://'!r} (known: {known}, or an image reference)")


def target_class(kind: str) -> type[Target]:
    module, _, name = TARGETS[kind].rpartition(".")
    cls: type[Target] = getattr(importlib.import_module(module), name)
    return cls


def make_target(ref: str, options: TargetOptions, kind: str | None = None) -> Target:
    """The target for `ref` (of `kind`, or the kind its form names)."""
    return target_class(kind or kind_of(ref)).from_ref(ref, options)
