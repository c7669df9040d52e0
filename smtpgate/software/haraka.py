"""Haraka (Node.js, from npm): greets "ESMTP Haraka/<version> ready"."""

from smtpgate.software.base import RERUN, Mta, patterns, ss_check

HARAKA = Mta(
    id="haraka",
    name="Haraka",
    banners=patterns(r"\bE?SMTP Haraka(?:/(?P<version>\d+(?:\.\d+)+))?\b"),
    ehlo=patterns(r"\bHaraka is at your service\b"),
    processes=patterns(r"(?:^|/)haraka(?:\.js)?(?:\s|$)"),
    lang_packages=("npm:haraka",),
    units=("haraka",),
    listen_setting="`listen=` in config/smtp.ini of the Haraka directory (default `[::0]:25`)",
    fix=(
        "Bind to loopback: set `listen=127.0.0.1:25` (or `listen=127.0.0.1:25,[::1]:25`) in "
        "config/smtp.ini of the directory given to `haraka -c`, then restart Haraka",
        "Or don't start it: remove `haraka -c ...` from the image's entrypoint or service",
    ),
    verify=("`grep '^listen' config/smtp.ini` shows loopback only", ss_check("25,587"), RERUN),
)
