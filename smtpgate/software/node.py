"""SMTP servers from npm: nodemailer's smtp-server library and the test servers built on it.

smtp-server greets with a generic "220 <name> ESMTP" (plus an optional `banner`), but its
EHLO reply's first line is always "<name> Nice to meet you, <client>". MailDev and
fake-smtp-server run it inside, so they show that reply too: their own process or
package names them (`built_on`); smtp-tester is smtp-server with a capture API, and is
reported as smtp-server.
"""

from smtpgate.software.base import RERUN, Mta, import_patterns, js_require, patterns, ss_check

SMTP_SERVER_FIX = (
    "Bind to loopback: `server.listen(port, \"127.0.0.1\")` in the code that creates the "
    "`SMTPServer` (a listen() without a host binds all interfaces)",
    "Or don't start the SMTP server in the image that is deployed (it is usually a test or "
    "development sink)",
)

MAILDEV = Mta(
    id="maildev",
    name="MailDev",
    banners=(),  # nodemailer smtp-server's generic "<host> ESMTP"
    processes=patterns(r"(?:^|[\s/])maildev(?:\s|$)", r"/maildev/bin/maildev\b"),
    lang_packages=("npm:maildev",),
    imports=import_patterns(js_require("maildev")),
    built_on=("smtp-server",),
    listen_setting="`--ip` / `MAILDEV_IP` (default: all interfaces), port `--smtp` (1025)",
    fix=(
        "Bind to loopback: `maildev --ip 127.0.0.1`, or set `MAILDEV_IP=127.0.0.1` (and "
        "`MAILDEV_WEB_IP=127.0.0.1` for its web UI)",
        "Or keep it out of images that are deployed: it is a testing tool",
    ),
    verify=("`ss -ltnp | grep node` lists port 1025 on 127.0.0.1 / [::1] only", RERUN),
)

FAKE_SMTP_SERVER = Mta(
    id="fake-smtp-server",
    name="fake-smtp-server",
    banners=(),
    processes=patterns(r"(?:^|[\s/])fake-smtp-server(?:\s|$)", r"/fake-smtp-server/index\.js\b"),
    lang_packages=("npm:fake-smtp-server",),
    built_on=("smtp-server",),
    listen_setting="`--smtp-ip` (default: all interfaces) and `-s/--smtp-port` (1025)",
    fix=(
        "Bind to loopback: `fake-smtp-server --smtp-ip 127.0.0.1` (and `--http-ip 127.0.0.1` for its UI)",
        "Or keep it out of images that are deployed: it is a testing tool",
    ),
    verify=(ss_check("1025"), RERUN),
)

SMTP_SERVER = Mta(
    id="smtp-server",
    name="nodemailer smtp-server",
    banners=(),
    ehlo=patterns(r"^\S+ Nice to meet you, "),
    # smtp-tester (a test helper) is smtp-server with a capture API: the same server
    lang_packages=("npm:smtp-server", "npm:smtp-tester"),
    imports=import_patterns(js_require("smtp-server"), js_require("smtp-tester")),
    listen_setting="the host given to `server.listen(port, host)` of the `SMTPServer` (none: all interfaces)",
    fix=SMTP_SERVER_FIX,
    verify=(ss_check("25,465,587,1025,2525"), RERUN),
)

NODE = (MAILDEV, FAKE_SMTP_SERVER, SMTP_SERVER)
