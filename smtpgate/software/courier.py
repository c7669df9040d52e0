"""Courier: `couriertcpd` holds the port and runs `courieresmtpd` per connection."""

from smtpgate.software.base import RERUN, Mta, patterns, ss_check

COURIER = Mta(
    id="courier",
    name="Courier MTA",
    banners=(),  # the greeting is only "<host> ESMTP"
    ehlo=patterns(r"^XVERP=Courier\b", r"^XEXDATA\b"),
    processes=patterns(
        r"^(?:\S*/)?couriertcpd\s.*\bcourieresmtpd\b",  # couriertcpd also serves IMAP/POP3
        r"^(?:\S*/)?courieresmtpd(?:\s|$)",
    ),
    packages=("courier-mta", "courier"),
    units=("courier-mta", "courier-mta-ssl", "courier-msa", "courier"),
    binaries=("/usr/lib/courier/courier/courieresmtpd", "/usr/lib/courier/courieresmtpd"),
    starts=patterns(r"(?:^|[\s/])esmtpd(?:-msa|-ssl)?\s+start\b", r"(?:^|[\s/])couriertcpd\s.*courieresmtpd"),
    listen_setting=(
        "`ADDRESS=` and `PORT=` in /etc/courier/esmtpd (25) and /etc/courier/esmtpd-msa (587), "
        "`SSLADDRESS=` and `SSLPORT=` in /etc/courier/esmtpd-ssl (465); `0` means all interfaces"
    ),
    fix=(
        "Bind to loopback: set `ADDRESS=127.0.0.1` in /etc/courier/esmtpd and "
        "/etc/courier/esmtpd-msa, and `SSLADDRESS=127.0.0.1` in /etc/courier/esmtpd-ssl, then "
        "restart (`systemctl restart courier-mta courier-msa courier-mta-ssl`, or "
        "`esmtpd stop; esmtpd start`)",
        "Or start no listener: `ESMTPDSTART=NO` in /etc/courier/esmtpd and "
        "/etc/courier/esmtpd-msa, `ESMTPDSSLSTART=NO` in /etc/courier/esmtpd-ssl",
        "Or don't run it: `systemctl disable --now courier-mta courier-mta-ssl courier-msa`, or "
        "remove the courier-mta package",
    ),
    verify=(
        "`grep -E '^(SSL)?ADDRESS=|START=' /etc/courier/esmtpd*` shows 127.0.0.1 or NO",
        ss_check("25,465,587"),
        RERUN,
    ),
)
