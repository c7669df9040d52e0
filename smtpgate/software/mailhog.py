"""MailHog (a mail-testing tool): greets "<hostname> ESMTP MailHog"."""

from smtpgate.software.base import RERUN, Mta, patterns
from smtpgate.software.listen import ArgvListen

MAILHOG = Mta(
    id="mailhog",
    name="MailHog",
    banners=patterns(r"\bESMTP MailHog\b"),
    processes=patterns(r"^(?:\S*/)?mailhog(?:\s|$)"),
    binaries=("/usr/local/bin/MailHog", "/usr/bin/MailHog", "/usr/local/bin/mailhog"),
    argv_listen=ArgvListen(flags=("-smtp-bind-addr", "--smtp-bind-addr"), default="0.0.0.0:1025"),  # Go flag: - or --
    units=("mailhog",),
    listen_setting="`-smtp-bind-addr` / `MH_SMTP_BIND_ADDR` (default `0.0.0.0:1025`)",
    fix=(
        "Bind to loopback: run `MailHog -smtp-bind-addr 127.0.0.1:1025`, or set "
        "`MH_SMTP_BIND_ADDR=127.0.0.1:1025` in the image or compose environment",
        "Its UI and API show every captured message: bind them too (`MH_UI_BIND_ADDR` and "
        "`MH_API_BIND_ADDR` = `127.0.0.1:8025`)",
        "Or replace it (unmaintained since 2020; Mailpit is the usual successor) and keep it out "
        "of images that are deployed",
    ),
    verify=("`ss -ltnp | grep -i mailhog` lists 127.0.0.1 only", RERUN),
)
