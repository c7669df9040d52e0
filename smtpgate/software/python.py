"""Python's SMTP servers: aiosmtpd, and the old stdlib smtpd module (removed in 3.12)."""

from smtpgate.software.base import RERUN, Mta, patterns

AIOSMTPD = Mta(
    id="aiosmtpd",
    name="aiosmtpd",
    banners=patterns(r"\bPython SMTP (?P<version>\d+(?:\.\d+)+)"),  # ident "Python SMTP <version>"
    processes=patterns(r"\s-m\s*aiosmtpd(?:\s|$)", r"(?:^|\s)(?:\S*/)?aiosmtpd(?:\s|$)"),
    packages=("python3-aiosmtpd", "py3-aiosmtpd"),
    binaries=("/usr/bin/aiosmtpd", "/usr/local/bin/aiosmtpd"),
    listen_setting=(
        "`-l/--listen HOST:PORT` of `python3 -m aiosmtpd` (default localhost:8025); in code, the "
        "`hostname` given to `aiosmtpd.controller.Controller`"
    ),
    fix=(
        "Bind to loopback: start it as `python3 -m aiosmtpd -n -l 127.0.0.1:8025` (not "
        "`-l 0.0.0.0:8025` or `-l :8025`)",
        'In application code: pass `hostname="127.0.0.1"` to `aiosmtpd.controller.Controller(...)`',
        "Or don't start it in the image: it is a development and test server",
    ),
    verify=("`ss -ltnp | grep python` lists it on 127.0.0.1 / [::1] only", RERUN),
)

PYTHON_SMTPD = Mta(
    id="python-smtpd",
    name="Python smtpd",
    banners=patterns(r"\bPython SMTP proxy version (?P<version>\d+(?:\.\d+)+)"),
    processes=patterns(r"\s-m\s*smtpd(?:\s|$)"),
    listen_setting="the `host:port` argument of `python3 -m smtpd`, or `localaddr` in code",
    fix=(
        "Bind to loopback: `python3 -m smtpd -n -c DebuggingServer 127.0.0.1:1025`; in code, "
        '`smtpd.SMTPServer(("127.0.0.1", 1025), None)`',
        "Better, replace it with aiosmtpd: the smtpd module is gone from Python 3.12",
        "Or don't start it in the image",
    ),
    verify=("`ss -ltnp | grep python` lists it on 127.0.0.1 / [::1] only", RERUN),
)
