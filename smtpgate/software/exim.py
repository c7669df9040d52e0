"""Exim (Debian: exim4): one `exim4 -bd` daemon holds the ports."""

from smtpgate.software.base import RERUN, Mta, patterns, ss_check

EXIM = Mta(
    id="exim",
    name="Exim",
    # smtp_banner defaults to "$smtp_active_hostname ESMTP Exim $version_number $tod_full".
    banners=patterns(r"\bE?SMTP Exim (?P<version>\d+(?:\.\d+)+)"),
    ehlo=patterns(r"^(?:X_)?PIPE_?CONNECT\b"),  # an Exim extension (4.93+), off elsewhere
    processes=patterns(r"^(?:\S*/)?exim4?(?:\s|$)"),
    packages=("exim4-daemon-light", "exim4-daemon-heavy", "exim4-base", "exim"),
    units=("exim4", "exim"),
    binaries=("/usr/sbin/exim4", "/usr/sbin/exim", "/usr/bin/exim", "/usr/exim/bin/exim"),
    starts=patterns(r"(?:^|[\s/])exim4?\s(?:.*\s)?-bd\w*(?:\s|$)"),  # -bd / -bdf: the listening daemon
    listen_setting=(
        "Debian: `dc_local_interfaces` in /etc/exim4/update-exim4.conf.conf (empty means all "
        "interfaces); elsewhere `local_interfaces` and `daemon_smtp_ports` in the Exim "
        "configuration; `-oX` on the daemon's command line overrides both"
    ),
    fix=(
        "Debian/Ubuntu: set `dc_local_interfaces='127.0.0.1 ; ::1'` in "
        "/etc/exim4/update-exim4.conf.conf, run `update-exim4.conf`, then restart the daemon "
        "(`systemctl restart exim4` or `/etc/init.d/exim4 restart`)",
        "Other systems: set `local_interfaces = <; 127.0.0.1 ; ::1` in the main section of the "
        "Exim configuration (`exim -bV` names the file), then restart the daemon",
        "Remove `-oX` from the daemon's command line (the image's entrypoint, or "
        "`SMTPLISTENEROPTIONS` in /etc/default/exim4): it overrides local_interfaces",
        "Or keep local delivery without a listener: `QUEUERUNNER='queueonly'` in "
        "/etc/default/exim4 (Debian), or start Exim with `-q30m` and without `-bd`",
        "Or don't run it: `systemctl disable --now exim4`, or remove the exim4-daemon-* package",
    ),
    verify=(
        "`exim -bP local_interfaces` (Debian: `exim4 -bP local_interfaces`) prints "
        "`local_interfaces = <; 127.0.0.1 ; ::1`",
        ss_check("25,465,587"),
        RERUN,
    ),
)
