"""Mailpit (a mail-testing tool): greets "<host> Mailpit ESMTP Service ready"."""

from smtpgate.software.base import RERUN, Mta, patterns
from smtpgate.software.listen import ArgvListen

MAILPIT = Mta(
    id="mailpit",
    name="Mailpit",
    banners=patterns(r"\bMailpit ESMTP Service ready\b"),
    processes=patterns(r"^(?:\S*/)?mailpit(?:\s|$)"),
    binaries=("/usr/local/bin/mailpit", "/usr/bin/mailpit", "/mailpit"),
    argv_listen=ArgvListen(flags=("-s", "--smtp"), default="[::]:1025", program="mailpit"),
    units=("mailpit",),
    listen_setting="`--smtp` / `MP_SMTP_BIND_ADDR` (default `[::]:1025`)",
    fix=(
        "Bind to loopback: run `mailpit --smtp 127.0.0.1:1025`, or set "
        "`MP_SMTP_BIND_ADDR=127.0.0.1:1025` in the image or compose environment",
        "Its web UI shows every captured message: bind it too (`--listen 127.0.0.1:8025` / "
        "`MP_UI_BIND_ADDR=127.0.0.1:8025`)",
        "Or keep it out of images that are deployed: it is a testing tool",
    ),
    verify=("`ss -ltnp | grep mailpit` lists 127.0.0.1 / [::1] only", RERUN),
)
