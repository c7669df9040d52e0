"""Dovecot's submission service (port 587/465): an SMTP server in front of a relay."""

from smtpgate.software.base import RERUN, Mta, patterns, ss_check

DOVECOT = Mta(
    id="dovecot",
    name="Dovecot",
    banners=patterns(r"\bDovecot(?: \([^)]{0,40}\))? ready\b"),  # login_greeting, "(Debian)" etc.
    processes=patterns(
        r"^dovecot/submission(?:-login)?\b",
        r"^submission-logi?n?$",  # comm, cut to 15 characters
        r"^(?:\S*/)?dovecot(?:\s|$)",  # the master holds every listening socket
    ),
    packages=("dovecot-submissiond", "dovecot-core", "dovecot"),
    units=("dovecot",),
    binaries=("/usr/lib/dovecot/submission", "/usr/libexec/dovecot/submission"),
    starts=patterns(r"(?:^|[\s/])dovecot(?:\s|$)"),
    needs_smtp_config=True,
    listen_setting=(
        "`protocols` (Debian: the dovecot-submissiond package adds `submission` by being "
        "installed) and `service submission-login { inet_listener submission { address, port } }` "
        "in /etc/dovecot/dovecot.conf and /etc/dovecot/conf.d/; `listen` is the default address"
    ),
    fix=(
        "If nothing needs mail submission: remove `submission` from `protocols` (Debian/Ubuntu: "
        "remove the dovecot-submissiond package), then `systemctl restart dovecot`",
        "Or bind it to loopback: `service submission-login { inet_listener submission { "
        "address = 127.0.0.1, ::1 } inet_listener submissions { address = 127.0.0.1, ::1 } }` "
        "in /etc/dovecot/conf.d/, then `doveadm reload`",
        "Or switch a listener off with `port = 0` inside its `inet_listener` block",
    ),
    verify=(
        "`doveconf -n | grep -E -A4 '^protocols|submission-login'` shows no submission protocol, "
        "or only loopback addresses",
        ss_check("465,587"),
        RERUN,
    ),
)
