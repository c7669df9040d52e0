"""Less common SMTP servers: mail stores, test sinks and qmail."""

from smtpgate.software.base import RERUN, Mta, patterns, ss_check

_VERSION = r"(?P<version>\d+(?:\.\d+)+)"

STALWART = Mta(
    id="stalwart",
    name="Stalwart Mail Server",
    banners=patterns(r"\bStalwart ESMTP\b"),  # default greeting "Stalwart ESMTP at your service"
    processes=patterns(r"^(?:\S*/)?stalwart(?:-mail)?(?:\s|$)"),
    listen_setting="`bind` of each SMTP listener (`server.listener.<name>.bind`)",
    fix=(
        'Bind to loopback: set the SMTP listeners\' `bind` to `["127.0.0.1:25"]` (likewise the '
        "submission listeners on 587/465), in config.toml or the web admin's listener settings, "
        "then restart",
        "Or delete the SMTP listeners if the image only serves IMAP/JMAP",
    ),
    verify=(ss_check("25,465,587"), RERUN),
)

MADDY = Mta(
    id="maddy",
    name="Maddy Mail Server",
    banners=(),  # go-smtp's generic "<domain> ESMTP Service Ready"
    processes=patterns(r"^(?:\S*/)?maddy(?:\s|$)"),
    packages=("maddy",),
    listen_setting="endpoint addresses in /etc/maddy/maddy.conf (`smtp tcp://0.0.0.0:25`, ...)",
    fix=(
        "Bind to loopback: in /etc/maddy/maddy.conf write `smtp tcp://127.0.0.1:25` and "
        "`submission tls://127.0.0.1:465 tcp://127.0.0.1:587` instead of 0.0.0.0, then restart",
        "Or remove the `smtp` and `submission` endpoint blocks",
    ),
    verify=(ss_check("25,465,587"), RERUN),
)

SMTP4DEV = Mta(
    id="smtp4dev",
    name="smtp4dev",
    banners=patterns(r"\bsmtp4dev ready\b"),
    processes=patterns(r"(?:^|[\s/])Rnwood\.Smtp4dev(?:\.dll)?(?:\s|$)"),
    listen_setting="`ServerOptions:AllowRemoteConnections` and `ServerOptions:Port`",
    fix=(
        "Accept local connections only: set `ServerOptions__AllowRemoteConnections=false` in the "
        'environment (or `"AllowRemoteConnections": false` under `ServerOptions` in '
        "appsettings.json)",
        "Or keep it out of images that are deployed: it is a testing tool",
    ),
    verify=(ss_check("25,2525"), RERUN),
)

MAILDEV = Mta(
    id="maildev",
    name="MailDev",
    banners=(),  # nodemailer smtp-server's generic "<host> ESMTP"
    processes=patterns(r"(?:^|[\s/])maildev(?:\s|$)"),
    listen_setting="`--ip` / `MAILDEV_IP` (default: all interfaces), port `--smtp` (1025)",
    fix=(
        "Bind to loopback: `maildev --ip 127.0.0.1`, or set `MAILDEV_IP=127.0.0.1` (and "
        "`MAILDEV_WEB_IP=127.0.0.1` for its web UI)",
        "Or keep it out of images that are deployed: it is a testing tool",
    ),
    verify=("`ss -ltnp | grep node` lists port 1025 on 127.0.0.1 / [::1] only", RERUN),
)

INBUCKET = Mta(
    id="inbucket",
    name="Inbucket",
    banners=patterns(r"\bInbucket SMTP ready\b"),
    processes=patterns(r"^(?:\S*/)?inbucket(?:\s|$)"),
    listen_setting="`INBUCKET_SMTP_ADDR` (default `0.0.0.0:2500`)",
    fix=(
        "Bind to loopback: set `INBUCKET_SMTP_ADDR=127.0.0.1:2500` (and `INBUCKET_WEB_ADDR`, "
        "`INBUCKET_POP3_ADDR` likewise)",
        "Or keep it out of images that are deployed: it is a testing tool",
    ),
    verify=(ss_check("2500"), RERUN),
)

GREENMAIL = Mta(
    id="greenmail",
    name="GreenMail",
    banners=patterns(rf"\bGreenMail SMTP Service(?: v{_VERSION})?"),
    processes=patterns(r"\bgreenmail[\w.-]*\.jar\b", r"\bcom\.icegreen\.greenmail\."),
    listen_setting="Java system property `greenmail.hostname` (standalone image: 0.0.0.0)",
    fix=(
        "Bind to loopback: pass `-Dgreenmail.hostname=127.0.0.1` (standalone: `GREENMAIL_OPTS`)",
        "Or keep it out of images that are deployed: it is a testing tool",
    ),
    verify=(ss_check("3025,3465"), RERUN),
)

JAMES = Mta(
    id="james",
    name="Apache James",
    banners=patterns(rf"\bJAMES SMTP Server(?: {_VERSION})?", r"\bApache JAMES\b"),
    processes=patterns(r"\borg\.apache\.james\.", r"\bjames-server[\w.-]*\.jar\b"),
    listen_setting="`<bind>` of each `<smtpserver>` in conf/smtpserver.xml",
    fix=(
        "Bind to loopback: `<bind>127.0.0.1:25</bind>` in every `<smtpserver>` of "
        "conf/smtpserver.xml, then restart James",
        'Or switch an SMTP server off: `<smtpserver enabled="false">`',
    ),
    verify=(ss_check("25,465,587"), RERUN),
)

QMAIL = Mta(
    id="qmail",
    name="qmail",
    banners=(),  # qmail-smtpd greets "<control/smtpgreeting> ESMTP"
    processes=patterns(r"(?:^|[\s/])qmail-smtpd(?:\s|$)"),
    packages=("qmail", "netqmail", "notqmail"),
    listen_setting=(
        "the host argument of `tcpserver ... 0 smtp qmail-smtpd` in the service's run script "
        "(/var/qmail/supervise/qmail-smtpd/run or /service/qmail-smtpd/run)"
    ),
    fix=(
        "Bind to loopback: in the qmail-smtpd run script change tcpserver's host argument "
        "from `0` to `127.0.0.1`, then `svc -t /service/qmail-smtpd`",
        "Or stop the SMTP service: `svc -d /service/qmail-smtpd` and remove its link from "
        "/service (qmail still delivers locally without it)",
    ),
    verify=(ss_check("25"), RERUN),
)

OTHERS = (STALWART, MADDY, SMTP4DEV, MAILDEV, INBUCKET, GREENMAIL, JAMES, QMAIL)
