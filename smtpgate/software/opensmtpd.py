"""OpenSMTPD: a privsep daemon whose processes are titled "smtpd: <role>"."""

from smtpgate.software.base import RERUN, Mta, patterns, ss_check

_FLAGS = r"(?:\s+(?:-[dFhnv]+|-[DfPT]\s*\S+))"  # smtpd(8) options, never Postfix's "-t inet"

OPENSMTPD = Mta(
    id="opensmtpd",
    name="OpenSMTPD",
    banners=patterns(r"\bE?SMTP OpenSMTPD\b"),
    processes=patterns(
        r"^smtpd: ",  # setproctitle: [priv], pony express, queue, scheduler, lookup, ...
        # the parent as started: a path or at least one flag, so a bare comm "smtpd"
        # (Postfix's child too) stays ambiguous
        rf"^(?!\S*/postfix/)(?:\S*/smtpd{_FLAGS}*|smtpd{_FLAGS}+)\s*$",
    ),
    packages=("opensmtpd",),
    units=("opensmtpd", "smtpd"),
    binaries=("/usr/sbin/smtpd", "/usr/local/sbin/smtpd"),
    starts=patterns(r"^(?!\S*/postfix/)(?:\S*/)?smtpd(?:\s|$)", r"(?:^|[\s/])smtpctl\s+start\b"),
    listen_setting="`listen on` lines in /etc/smtpd.conf (Alpine: /etc/smtpd/smtpd.conf)",
    fix=(
        "Bind to loopback: make every `listen on` line `listen on localhost` (or `listen on lo`) "
        "in /etc/smtpd.conf (Alpine: /etc/smtpd/smtpd.conf); `listen on all`, `listen on egress` "
        "or an interface name such as `listen on eth0` expose it",
        "Check the file with `smtpd -n`, then restart: `systemctl restart opensmtpd`, or "
        "`smtpctl stop` and start `smtpd` again",
        "Or don't run it: `systemctl disable --now opensmtpd`, remove the opensmtpd package, or "
        "drop `smtpd` from the image's entrypoint",
    ),
    verify=("`smtpd -n` prints `configuration OK`", ss_check("25,465,587"), RERUN),
)
