"""What a policy says, as frozen data: defaults per kind of finding, and approvals.

A policy comes from `smtpgate.policy.schema` (a validated YAML file) or is the
built-in default; `smtpgate.policy.evaluate` applies it to findings.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass, field
from typing import Union

from smtpgate.model import BindScope, Outcome, State

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
Bind = Union[BindScope, IPAddress]  # a scope, or one exact (normalised) address


def normal_ip(address: str) -> IPAddress:
    """Parse an address for comparison: IPv4-mapped IPv6 becomes plain IPv4.

    `::FFFF:10.0.0.1`, `::ffff:a00:1` and `10.0.0.1` compare equal; IPv6 text
    forms compare by value (`2001:db8::1` == `2001:DB8:0:0:0:0:0:1`).
    """
    ip = ipaddress.ip_address(address.strip("[]"))
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


@dataclass(frozen=True)
class Defaults:
    """The outcome for a finding no approval covers, by kind of finding."""

    loopback: Outcome = Outcome.PASS  # SMTP bound only to loopback (CIS local-only mode)
    listening: Outcome = Outcome.FAIL  # any other SMTP listener
    enabled: Outcome | None = None  # enabled, not running; None = auto (fail iff init boots)
    installed: Outcome = Outcome.WARN  # installed only
    lmtp: Outcome | None = None  # LMTP findings; None = same as SMTP


@dataclass(frozen=True)
class Approval:
    """One rule that approves findings; an empty tuple means "any"."""

    reason: str
    source: str  # "path:line" of the approval in its file
    software: tuple[str, ...] = ()  # lower-case registry ids
    ports: tuple[int, ...] = ()
    bind: tuple[Bind, ...] = ()
    state: tuple[State, ...] = ()
    owner: str | None = None
    expires: datetime.date | None = None  # the last day it approves
    images: tuple[str, ...] = ()  # globs on the image reference
    workloads: tuple[str, ...] = ()  # globs on "Kind/name#container" or "file#service"

    def expired(self, today: datetime.date) -> bool:
        """True once `today` is after `expires` (the expiry date itself still approves)."""
        return self.expires is not None and today > self.expires

    @property
    def constrains_listeners(self) -> bool:
        """True when the approval names ports or a bind, so only listeners can match it."""
        return bool(self.ports or self.bind)


@dataclass(frozen=True)
class Policy:
    """A whole policy: defaults and approvals (first matching approval wins)."""

    source: str | None = None  # the file it came from; None for the built-in default
    defaults: Defaults = field(default_factory=Defaults)
    approvals: tuple[Approval, ...] = ()

    @property
    def name(self) -> str:
        """How reasons refer to the policy: its path, or "the default policy"."""
        return self.source if self.source is not None else "the default policy"
