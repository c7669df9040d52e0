"""Sendmail: the daemon retitles itself "sendmail: MTA: accepting connections"."""

from smtpgate.software.base import RERUN, Mta, patterns, ss_check

SENDMAIL = Mta(
    id="sendmail",
    name="Sendmail",
    # SmtpGreetingMessage "$j Sendmail $v/$Z; $b": binary version / config version; date.
    banners=patterns(r"\bE?SMTP Sendmail (?P<version>\d+(?:\.\d+)+)"),
    processes=patterns(
        r"^sendmail: (?:MTA|MSP)\b",
        r"^(?:\S*/)?sendmail-mta(?:\s|$)",
        r"^(?:\S*/)?sendmail\s(?:.*\s)?-bd\b",
    ),
    packages=("sendmail-bin", "sendmail"),
    units=("sendmail",),
    # not /usr/sbin/sendmail: every MTA installs that compatibility name
    binaries=("/usr/sbin/sendmail-mta", "/usr/lib/sm.bin/sendmail", "/usr/sbin/sendmail.sendmail"),
    starts=patterns(r"(?:^|[\s/])(?:sendmail|sendmail-mta|sendmail\.sendmail)\s(?:.*\s)?-bd\b"),
    listen_setting=(
        "`DAEMON_OPTIONS` in /etc/mail/sendmail.mc, compiled into `O DaemonPortOptions` in "
        "/etc/mail/sendmail.cf (the .cf file is what runs)"
    ),
    fix=(
        "Bind to loopback: give every DAEMON_OPTIONS line in /etc/mail/sendmail.mc an "
        "`Addr=127.0.0.1`, e.g. DAEMON_OPTIONS(`Port=smtp,Addr=127.0.0.1, Name=MTA')dnl and "
        "DAEMON_OPTIONS(`Port=submission,Addr=127.0.0.1, Name=MSA, M=Ea')dnl",
        "Rebuild sendmail.cf (Debian: `sendmailconfig`; elsewhere `make -C /etc/mail` or "
        "`m4 /etc/mail/sendmail.mc > /etc/mail/sendmail.cf`), then restart sendmail "
        "(`systemctl restart sendmail`)",
        "Or don't listen: start sendmail without `-bd` (`-q15m` alone runs the queue and opens "
        "no port), or `systemctl disable --now sendmail`, or remove the sendmail-bin package",
    ),
    verify=(
        "`grep '^O DaemonPortOptions' /etc/mail/sendmail.cf`: every line has `Addr=127.0.0.1`",
        ss_check("25,465,587"),
        RERUN,
    ),
)
