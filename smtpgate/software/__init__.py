"""The SMTP software registry: which implementation answered, and how to fix it.

One module per implementation holds all smtpgate knows of it (an `Mta`, base.py:
recognition, packages and units, where it listens, fixes); REGISTRY lists them, and
tests/unit/software/test_registry_consistency.py checks the entries against each other.

`identify` trusts the greeting first, then the EHLO reply, then the process that owns
the port: a banner names the software that spoke, while a process may be a proxy or a
generic name. The registry order decides ties, specific before generic.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from itertools import islice

from smtpgate.model import Process, Software
from smtpgate.software.base import TEXT_LIMIT, Mta
from smtpgate.software.courier import COURIER
from smtpgate.software.dovecot import DOVECOT
from smtpgate.software.exim import EXIM
from smtpgate.software.haraka import HARAKA
from smtpgate.software.mailhog import MAILHOG
from smtpgate.software.mailpit import MAILPIT
from smtpgate.software.nginx import NGINX
from smtpgate.software.node import NODE
from smtpgate.software.opensmtpd import OPENSMTPD
from smtpgate.software.others import OTHERS
from smtpgate.software.postfix import POSTFIX
from smtpgate.software.python import AIOSMTPD, PYTHON_SMTPD, SALMON, SMTPDEV, TWISTED_MAIL
from smtpgate.software.sendmail import SENDMAIL
from smtpgate.software.unknown import UNKNOWN

__all__ = ["Mta", "all_mtas", "get", "identify", "identify_process"]

REGISTRY: tuple[Mta, ...] = (
    POSTFIX,  # before OpenSMTPD: both run processes named smtpd
    EXIM,  # before Sendmail: Exim's /usr/sbin/sendmail is a link to exim
    SENDMAIL,
    OPENSMTPD,
    DOVECOT,
    COURIER,
    HARAKA,
    *NODE,  # the servers built on nodemailer's smtp-server before the library itself
    SALMON,  # built on smtpd / aiosmtpd: before them
    SMTPDEV,
    AIOSMTPD,
    PYTHON_SMTPD,
    TWISTED_MAIL,
    MAILPIT,
    MAILHOG,
    *OTHERS,
    NGINX,  # a proxy: its greeting is generic, and what it fronts may greet for itself
    UNKNOWN,
)
_BY_ID = {mta.id: mta for mta in REGISTRY}
_REPLY_CODE = re.compile(r"^\s*\d{3}(?:[ -]|$)")
_MAX_EHLO_LINES = 64


def all_mtas() -> tuple[Mta, ...]:
    """Every entry, in matching order, `unknown` last."""
    return REGISTRY


def get(mta_id: str) -> Mta:
    """The entry for an id; the `unknown` entry for an id not in the registry."""
    return _BY_ID.get(mta_id, UNKNOWN)


def identify_process(process: Process) -> Mta | None:
    """The software a process belongs to, judged by its name, command line and executable."""
    return next((mta for mta in REGISTRY if mta.runs_as(process)), None)


def identify(greeting: str, ehlo: Sequence[str] = (), process: Process | None = None) -> Software:
    """Name the SMTP server behind a greeting, its EHLO reply lines and the owning process.

    `how` says what decided: "greeting", "ehlo" or "process", with "+process" when the
    owning process agrees; "none" for the unknown server. A server built on a library
    (`Mta.built_on`: MailDev on smtp-server, smtpdev on aiosmtpd) speaks like the library:
    where the banner names the library and the process names the server, the server wins.
    """
    owner = identify_process(process) if process is not None else None
    hit = next(_hits(greeting, ehlo), None)
    if hit is not None:
        how, mta, found = hit
        if owner is not None and mta.id in owner.built_on:
            return Software(owner.id, owner.name, None, f"{how}+process")
        how = f"{how}+process" if mta is owner else how
        return Software(mta.id, mta.name, found.groupdict().get("version"), how)
    if owner is not None:
        return Software(owner.id, owner.name, None, "process")
    return Software(UNKNOWN.id, UNKNOWN.name, None, "none")


def _hits(greeting: str, ehlo: Sequence[str]) -> Iterator[tuple[str, Mta, re.Match[str]]]:
    """(how, mta, match) for each greeting hit, then each EHLO hit, in registry order."""
    text = _greeting_text(greeting)
    lines = _ehlo_lines(ehlo)
    for mta in REGISTRY:
        found = mta.greeting_match(text)
        if found:
            yield "greeting", mta, found
    for mta in REGISTRY:
        found = mta.ehlo_match(lines)
        if found:
            yield "ehlo", mta, found


def _greeting_text(greeting: str) -> str:
    """The greeting's text: reply codes stripped, lines joined with spaces, bounded."""
    lines = greeting[:TEXT_LIMIT].split("\n")  # LF only: splitlines() breaks on \x1c, \x85, U+2028 too
    return " ".join(_REPLY_CODE.sub("", line).strip() for line in lines)


def _ehlo_lines(ehlo: Sequence[str]) -> tuple[str, ...]:
    """EHLO reply lines without their codes ("250-PIPELINING" -> "PIPELINING"), bounded."""
    lines = islice(ehlo, _MAX_EHLO_LINES)
    return tuple(_REPLY_CODE.sub("", line[:TEXT_LIMIT]).strip() for line in lines)
