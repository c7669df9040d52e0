"""Python's SMTP servers: aiosmtpd, the old stdlib smtpd module (removed in 3.12), Twisted's
mail package, and the servers built on them (Salmon, smtpdev)."""

from smtpgate.software.base import RERUN, Mta, import_patterns, patterns, py_import, ss_check
from smtpgate.software.listen import ArgvListen

AIOSMTPD = Mta(
    id="aiosmtpd",
    name="aiosmtpd",
    banners=patterns(r"\bPython SMTP (?P<version>\d+(?:\.\d+)+)"),  # ident "Python SMTP <version>"
    processes=patterns(r"\s-m\s*aiosmtpd(?:\s|$)", r"(?:^|\s)(?:\S*/)?aiosmtpd(?:\s|$)"),
    packages=("python3-aiosmtpd", "py3-aiosmtpd"),
    lang_packages=("pypi:aiosmtpd",),
    imports=import_patterns(py_import("aiosmtpd")),
    binaries=("/usr/bin/aiosmtpd", "/usr/local/bin/aiosmtpd"),
    # aiosmtpd/main.py (argparse): `-l/--listen [HOST][:PORT]` (nargs="?"); no colon is a host on
    # port 8025, an empty host before a colon is localhost; -c/--class and -s/--size take values
    argv_listen=ArgvListen(flags=("-l", "--listen"), default="localhost:8025", program="aiosmtpd",
                           empty_host="localhost",
                           value_options=("-c", "--class", "-s", "--size", "--smtpscert", "--smtpskey",
                                          "--tlscert", "--tlskey"),
                           abbrev=True, optional_value=True),
    listen_setting=(
        "`-l/--listen HOST:PORT` of `python3 -m aiosmtpd` (default localhost:8025); in code, the "
        "`hostname` given to `aiosmtpd.controller.Controller`"
    ),
    fix=(
        "Bind to loopback: start it as `python3 -m aiosmtpd -n -l 127.0.0.1:8025` (not "
        "`-l 0.0.0.0:8025`, `-l 0.0.0.0` or `-l [::]:8025`)",
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
    imports=import_patterns(py_import("smtpd")),
    # python3 -m smtpd [options] [localaddr [remoteaddr]]: getopt 'nVhc:s:du', long options
    # (which getopt takes by a unique prefix) class= and size= take a value
    argv_listen=ArgvListen(default="localhost:8025", program="smtpd", positional=True,
                           value_options=("-c", "--class", "-s", "--size"), abbrev=True),
    listen_setting="the `host:port` argument of `python3 -m smtpd`, or `localaddr` in code",
    fix=(
        "Bind to loopback: `python3 -m smtpd -n -c DebuggingServer 127.0.0.1:1025`; in code, "
        '`smtpd.SMTPServer(("127.0.0.1", 1025), None)`',
        "Better, replace it with aiosmtpd: the smtpd module is gone from Python 3.12",
        "Or don't start it in the image",
    ),
    verify=("`ss -ltnp | grep python` lists it on 127.0.0.1 / [::1] only", RERUN),
)

TWISTED_MAIL = Mta(
    id="twisted-mail",
    name="Twisted mail",
    # twisted.mail.smtp: SMTP.greeting() "<host> NO UCE NO UBE NO RELAY PROBES", ESMTP adds " ESMTP"
    banners=patterns(r"\bNO UCE NO UBE NO RELAY PROBES\b"),
    processes=patterns(
        r"(?:^|[\s/])twistd3?\s(?:.*\s)?mail(?:\s|$)",  # twistd [options] mail [mail options]
        r"(?:^|[\s/])twist3?\s(?:.*\s)?mail(?:\s|$)",
        r"\s-m\s*twisted\s(?:.*\s)?mail(?:\s|$)",
    ),
    lang_packages=("pypi:twisted",),
    # the server side only: twisted.mail.smtp also holds the client (sendmail, ESMTPSenderFactory)
    imports=import_patterns(
        *(py_import(f"twisted.mail.{m}") for m in ("mail", "tap", "protocols", "maildir", "relay")),
        r"^[ \t]*from[ \t]+twisted\.mail[ \t]+import[ \t][^#\n]*\b(?:mail|tap|protocols|maildir|relay)\b",
        r"^[ \t]*from[ \t]+twisted\.mail\.smtp[ \t]+import[ \t][^#\n]*\b(?:E?SMTPFactory|ESMTP|SMTP)\b(?!\w)",
        r"\btwisted\.mail\.smtp\.(?:E?SMTPFactory|ESMTP|SMTP)\b(?![\w.])",
    ),
    listen_setting="`--smtp=tcp:PORT:interface=ADDRESS` of `twistd mail` (default: all interfaces, port 8025); "
                   "in code, the `interface` given to `reactor.listenTCP` / the endpoint string",
    fix=(
        "Bind to loopback: `twistd mail --smtp=tcp:8025:interface=127.0.0.1`; in code "
        '`reactor.listenTCP(port, factory, interface="127.0.0.1")` or `"tcp:25:interface=127.0.0.1"`',
        "Or don't start `twistd mail` (or the code that listens with an SMTP factory) in the image",
    ),
    verify=(ss_check("25,8025"), RERUN),
)

SALMON = Mta(
    id="salmon",
    name="Salmon",
    banners=(),  # its receivers greet like the library under them (smtpd / aiosmtpd)
    processes=patterns(r"(?:^|[\s/])salmon\s+(?:start|restart)\b", r"\s-m\s*salmon\s+(?:start|restart)\b"),
    lang_packages=("pypi:salmon-mail",),
    imports=import_patterns(  # its receivers (salmon.server.Relay is the client side)
        r"^[ \t]*from[ \t]+salmon\.server[ \t]+import[ \t][^#\n]*\b\w*Receiver\b",
        r"\bsalmon\.server\.\w*Receiver\b",
    ),
    built_on=("python-smtpd", "aiosmtpd"),
    listen_setting="`receiver_config` (`host`, `port`) in the project's config/settings.py",
    fix=(
        "Bind to loopback: `receiver_config = {'host': '127.0.0.1', 'port': 8823}` in config/settings.py, "
        "then `salmon restart`",
        "Or don't start the receiver (`salmon start`) in the image",
    ),
    verify=(ss_check("25,8823"), RERUN),
)

SMTPDEV = Mta(
    id="smtpdev",
    name="smtpdev",
    banners=(),  # aiosmtpd's "Python SMTP <version>"
    processes=patterns(r"(?:^|[\s/])smtpdev(?:\s|$)", r"\s-m\s*smtpdev(?:\s|$)"),
    lang_packages=("pypi:smtpdev",),
    imports=import_patterns(py_import("smtpdev")),
    built_on=("aiosmtpd",),
    listen_setting="`--smtp-host` and `--smtp-port` of smtpdev (also `SMTPDEV_SMTP_HOST`)",
    fix=(
        "Bind to loopback: `smtpdev --smtp-host 127.0.0.1 --web-host 127.0.0.1`",
        "Or keep it out of images that are deployed: it is a development tool",
    ),
    verify=(ss_check("2500,8025"), RERUN),
)
