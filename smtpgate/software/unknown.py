"""What is said about an SMTP server that nothing in the registry recognised."""

from smtpgate.software.base import RERUN, Mta

UNKNOWN = Mta(
    id="unknown",
    name="unknown SMTP server",
    banners=(),
    listen_setting="the program's own configuration or command line",
    fix=(
        "Find the program that owns the port: `ss -ltnp 'sport = :PORT'`, then "
        "`tr '\\0' ' ' < /proc/PID/cmdline` and `ls -l /proc/PID/exe`",
        "Bind it to 127.0.0.1 / ::1 in its configuration or command line, or don't start it in "
        "the image (remove it from the entrypoint or command, disable its service)",
        "If it must accept mail from the network, approve it in the smtpgate policy with a "
        "reason, an owner and an expiry date",
    ),
    verify=("`ss -ltnp` lists the port on 127.0.0.1 / [::1] only, or not at all", RERUN),
)
