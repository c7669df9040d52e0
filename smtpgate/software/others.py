"""Less common SMTP servers: mail stores, test sinks and qmail."""

from smtpgate.software.base import RERUN, Mta, import_patterns, patterns, ss_check

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
    units=("maddy",),
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
    lang_packages=("jar:greenmail",),
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
    lang_packages=("jar:james-server",),
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
    units=("qmail", "qmail-smtpd"),
    config_paths=("/var/qmail/supervise/",),  # its daemontools run scripts
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

SUBETHASMTP = Mta(
    id="subethasmtp",
    name="SubEthaSMTP",
    # SMTPServer.softwareName defaults to "SubEthaSMTP " + its version: "220 <host> ESMTP SubEthaSMTP 3.1.7"
    banners=patterns(rf"\bESMTP SubEthaSMTP(?: {_VERSION})?"),
    processes=patterns(r"\bsubethasmtp[\w.-]*\.jar\b", r"\borg\.subethamail\.smtp\."),
    lang_packages=("jar:subethasmtp", "jar:subethamail"),
    listen_setting="`SMTPServer.setBindAddress(...)` / the builder's `.bindAddress(...)` (default: all interfaces)",
    fix=(
        "Bind to loopback in the application: `SMTPServer.port(2525).bindAddress("
        'InetAddress.getLoopbackAddress())` (older API: `server.setBindAddress(InetAddress.getByName("127.0.0.1"))`)',
        "Or don't start the embedded SMTP server in the image that is deployed",
    ),
    verify=(ss_check("25,2525"), RERUN),
)

CITADEL = Mta(
    id="citadel",
    name="Citadel",
    banners=patterns(r"\bESMTP Citadel server ready\b"),  # serv_smtp.c: "220 %s ESMTP Citadel server ready."
    processes=patterns(r"^(?:\S*/)?citserver(?:\s|$)"),
    packages=("citadel-server",),
    units=("citadel",),
    binaries=("/usr/sbin/citserver", "/usr/local/citadel/citserver"),
    listen_setting="the SMTP ports in the server's configuration (`c_smtp_port`, `c_msa_port`, `c_smtps_port`; "
                   "`-1` switches one off) and its bind address `c_ip_addr`",
    fix=(
        "Bind to loopback: set the server's listen address to 127.0.0.1 (WebCit: Administration, Edit site-wide "
        "configuration, Network: \"IP address on which to listen\"; `c_ip_addr`), then restart citserver",
        "Or switch SMTP off: set the SMTP, submission and SMTPS ports to -1 in the same settings",
    ),
    verify=(ss_check("25,465,587"), RERUN),
)

QPSMTPD = Mta(
    id="qpsmtpd",
    name="qpsmtpd",
    # "220 <host> ESMTP qpsmtpd 0.94 ready; send us your mail, but not your spam."
    banners=patterns(rf"\bqpsmtpd {_VERSION}", r"\bESMTP qpsmtpd\b"),
    processes=patterns(r"(?:^|[\s/])qpsmtpd(?:-forkserver|-prefork|-async)?(?:\s|$)", r"^qpsmtpd-"),
    packages=("qpsmtpd",),
    units=("qpsmtpd",),
    binaries=("/usr/bin/qpsmtpd-forkserver", "/usr/bin/qpsmtpd-prefork", "/usr/bin/qpsmtpd"),
    listen_setting="`-l`/`--listen-address` of qpsmtpd-forkserver / qpsmtpd-prefork (Debian: /etc/default/qpsmtpd)",
    fix=(
        "Bind to loopback: start it as `qpsmtpd-forkserver -l 127.0.0.1` (or `qpsmtpd-prefork -l 127.0.0.1`); "
        "Debian: set the listen address in /etc/default/qpsmtpd, then `systemctl restart qpsmtpd`",
        "Or don't run it: `systemctl disable --now qpsmtpd`, or remove the qpsmtpd package",
    ),
    verify=(ss_check("25,2525"), RERUN),
)

MSMTPD = Mta(
    id="msmtpd",
    name="msmtpd",
    banners=patterns(r"\bESMTP msmtpd\b"),  # msmtpd.c: "220 localhost ESMTP msmtpd"
    processes=patterns(r"(?:^|[\s/])msmtpd(?:\s|$)"),
    packages=("msmtpd",),
    binaries=("/usr/bin/msmtpd", "/usr/local/bin/msmtpd"),
    listen_setting="`--interface` (default 127.0.0.1) and `--port` of msmtpd",
    fix=(
        "Bind to loopback: start it as `msmtpd --interface=127.0.0.1` (its default); not `--interface=0.0.0.0`",
        "Or don't start it in the image",
    ),
    verify=("`ss -ltnp | grep msmtpd` lists 127.0.0.1 / [::1] only", RERUN),
)

MAILCATCHER = Mta(
    id="mailcatcher",
    name="MailCatcher",
    # (?) not captured here (RubyGems is not reachable from this machine): since 0.9 it runs on
    # midi-smtp-server, whose greeting need not name it; its process and gem do
    banners=patterns(r"\bMailCatcher\b"),
    processes=patterns(r"(?:^|[\s/])mailcatcher(?:\s|$)", r"^MailCatcher\b"),
    lang_packages=("gem:mailcatcher",),
    imports=import_patterns(r"""^[ \t]*require[ \t(]*['"]mailcatcher['"]"""),
    listen_setting="`--ip` (default 127.0.0.1) and `--smtp-port` (1025) of mailcatcher",
    fix=(
        "Bind to loopback: `mailcatcher --ip 127.0.0.1` (its default; images often pass `--ip 0.0.0.0`)",
        "Or keep it out of images that are deployed: it is a testing tool",
    ),
    verify=(ss_check("1025"), RERUN),
)

OTHERS = (STALWART, MADDY, SMTP4DEV, INBUCKET, GREENMAIL, JAMES, SUBETHASMTP, CITADEL, QPSMTPD, MSMTPD, MAILCATCHER,
          QMAIL)
