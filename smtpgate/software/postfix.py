"""Postfix: `master` holds the ports, children `smtpd` / `postscreen` speak SMTP."""

from smtpgate.software.base import RERUN, Mta, patterns, ss_check

POSTFIX = Mta(
    id="postfix",
    name="Postfix",
    # smtpd_banner defaults to "$myhostname ESMTP $mail_name" (Debian appends "(Debian/GNU)");
    # a version shows only where an admin added "($mail_version)".
    banners=patterns(r"\bE?SMTP Postfix\b(?: \((?P<version>\d+\.\d+(?:\.\d+)*)\))?"),
    processes=patterns(
        r"^\S*/postfix/(?:sbin/)?(?:master|smtpd|postscreen)(?:\s|$)",  # lib/ or libexec/
        r"^(?:\S*/)?(?:smtpd|postscreen)\s(?:.*\s)?-t\s+(?:inet|pass|unix)\b",  # master(8)'s args
        r"^postscreen$",
        r"^(?:\S*/)?postfix\s+start(?:-fg)?\b",
    ),
    packages=("postfix",),
    units=("postfix",),
    binaries=("/usr/lib/postfix/sbin/master", "/usr/libexec/postfix/master", "/usr/sbin/postfix"),
    starts=patterns(
        r"(?:^|[\s/])postfix\s+(?:-\S+\s+)*start(?:-fg)?(?:\s|$)",
        r"(?:^|\s)\S*/postfix/(?:sbin/)?master(?:\s|$)",
        r"(?:^|[\s/])postmulti\s.*-p\s+start(?:-fg)?\b",
    ),
    listen_setting=(
        "`inet_interfaces` in /etc/postfix/main.cf (the last occurrence wins); a `host:port` "
        "service name in /etc/postfix/master.cf overrides it for that service"
    ),
    fix=(
        "Bind to loopback: set `inet_interfaces = loopback-only` in /etc/postfix/main.cf "
        "(`postconf -e inet_interfaces=loopback-only`; the last occurrence in the file wins), "
        "then `postfix stop; postfix start` (`postfix reload` does not apply a change of "
        "inet_interfaces)",
        "In /etc/postfix/master.cf, a service written as `0.0.0.0:smtp` or `192.0.2.1:submission` "
        "ignores inet_interfaces: write it as `127.0.0.1:smtp` or remove it",
        "Or accept no mail from the network: comment out the `smtp inet` line (and the "
        "`submission`, `submissions`/`smtps` inet lines) in /etc/postfix/master.cf, then "
        "`postfix reload`",
        "Or don't run it: `systemctl disable --now postfix` (VM images), remove the postfix "
        "package, or drop `postfix start`/`postfix start-fg` from the image's entrypoint",
    ),
    verify=(
        "`postconf -n inet_interfaces` prints `inet_interfaces = loopback-only`",
        "`postconf -M | grep inet` lists no service on a non-loopback `host:port`",
        ss_check("25,465,587"),
        RERUN,
    ),
)
