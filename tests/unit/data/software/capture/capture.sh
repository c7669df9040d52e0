#!/usr/bin/env bash
# Capture what real SMTP servers from Debian, PyPI, npm and RubyGems say and run as, for
# tests/unit/data/software/servers.yaml. Runs one scratch container (labelled smtpgate,
# removed on exit) from the fixture base, installs each server from its real package,
# starts it on 127.0.0.1 inside the container and reads it with probe.py; nothing but
# the package registries is reached. Output: one JSON line per server on stdout.
#
#   bash tests/unit/data/software/capture/capture.sh > captured.jsonl
#   bash tests/unit/data/software/capture/capture.sh qpsmtpd   # only these steps (twisted, qpsmtpd,
#                                                              # pypi, npm, gem)
set -euo pipefail
steps=${*:-twisted qpsmtpd pypi npm gem}
want() { case " $steps " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
name=smtpgate-capture-$$
trap 'docker rm -f "$name" >/dev/null 2>&1 || true' EXIT
# owner labels: `smtpgate cleanup` (run by other scans on this engine) spares it while this script runs
docker run -d --name "$name" --label smtpgate=capture --label "smtpgate.owner-pid=$$" \
  --label "smtpgate.owner-host=$(hostname)" --hostname gate.example \
  -v "$here:/cap:ro" -v /etc/ssl/certs/ca-certificates.crt:/tmp/host-ca.crt:ro \
  -e PIP_CERT=/tmp/host-ca.crt -e NODE_EXTRA_CA_CERTS=/tmp/host-ca.crt -e npm_config_cafile=/tmp/host-ca.crt \
  -e SSL_CERT_FILE=/tmp/host-ca.crt \
  smtpgate-fixture/debian-base:bookworm sleep 3600 >/dev/null
run() { docker exec "$name" sh -c "$1"; }
# A server that does not come up is said on stderr with its log; the others are still captured.
probe() { docker exec "$name" python3 /cap/probe.py "$@" || run "tail -n 5 /tmp/$1.log" >&2 || true; }
debs="python3"
want twisted && debs="$debs python3-twisted"
want qpsmtpd && debs="$debs qpsmtpd"
want pypi && debs="$debs python3-venv"
want npm && debs="$debs nodejs npm"
want gem && debs="$debs ruby ruby-dev build-essential libsqlite3-dev"
run "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
       $debs >/tmp/apt.log 2>&1"
ver() { run "dpkg-query -W -f '\${Version}' $1"; }

# Twisted mail (Debian python3-twisted): `twistd mail` with an SMTP port.
if want twisted; then
run 'mkdir -p /tmp/twmail && cd /tmp && twistd3 -n --pidfile= mail --smtp=tcp:2501:interface=127.0.0.1 \
       -d example.test=/tmp/twmail >/tmp/twisted-mail.log 2>&1 &'
probe twisted-mail 2501 "captured, python3-twisted $(ver python3-twisted), \`twistd3 -n mail --smtp=tcp:2501:interface=127.0.0.1 -d example.test=/tmp/twmail\`"

fi

# qpsmtpd (Debian): its forkserver on loopback, with a spool directory it may write.
if want qpsmtpd; then
run 'mkdir -p /run/qpsmtpd /var/spool/qpsmtpd && chown qpsmtpd /run/qpsmtpd /var/spool/qpsmtpd &&
     echo /var/spool/qpsmtpd > /etc/qpsmtpd/spool_dir &&
     (HOME=/var/spool/qpsmtpd qpsmtpd-forkserver -l 127.0.0.1 -p 2502 -u qpsmtpd >/tmp/qpsmtpd.log 2>&1 &); sleep 2'
probe qpsmtpd 2502 "captured, qpsmtpd $(ver qpsmtpd), \`qpsmtpd-forkserver -l 127.0.0.1 -p 2502\`"

fi

# PyPI: aiosmtpd in a venv (`python -m aiosmtpd`); smtpdev in its own venv (its pins, e.g.
# aiohttp==3.6.2, do not build on Python 3.11: installed --no-deps with current releases, and
# the mail-parser and click releases its code imports).
if want pypi; then
run 'python3 -m venv /opt/py && /opt/py/bin/pip install -q aiosmtpd >/tmp/pip.log 2>&1'
pyver() { run "$1/bin/pip show $2 | sed -n 's/^Version: //p'"; }
run '(/opt/py/bin/python -m aiosmtpd -n -l 127.0.0.1:2504 >/tmp/aiosmtpd.log 2>&1 &)'
probe aiosmtpd 2504 "captured, aiosmtpd $(pyver /opt/py aiosmtpd) from PyPI in a venv, \`python -m aiosmtpd -n -l 127.0.0.1:2504\`"
run 'python3 -m venv /opt/smtpdev && D=/opt/smtpdev/bin && $D/pip install -q --no-deps smtpdev >/tmp/pip.log 2>&1 &&
     $D/pip install -q aiohttp aiohttp-jinja2 aiosmtpd attrs bleach jinja2 mail-parser==3.12.0 marshmallow \
       simplejson "click<8" >>/tmp/pip.log 2>&1 &&
     ($D/smtpdev --smtp-host 127.0.0.1 --smtp-port 2506 --web-host 127.0.0.1 --web-port 2516 >/tmp/smtpdev.log 2>&1 &)'
probe smtpdev 2506 "captured, smtpdev $(pyver /opt/smtpdev smtpdev) from PyPI (deps: see capture.sh), \`smtpdev --smtp-host 127.0.0.1 --smtp-port 2506\`"
fi

# npm: nodemailer's smtp-server under a small script, and servers built on it (MailDev 2.1.0: later
# releases need a newer Node than Debian 12's 18).
if want npm; then
run 'mkdir -p /opt/js && cd /opt/js && npm install -s --no-audit --no-fund smtp-server maildev@2.1.0 fake-smtp-server >/tmp/npm.log 2>&1'
npmver() { run "node -p 'require(\"/opt/js/node_modules/$1/package.json\").version'"; }
run 'cd /opt/js && cat > sink.js <<JS
const { SMTPServer } = require("smtp-server");
new SMTPServer({ authOptional: true, onData(s, _x, cb) { s.on("end", cb); s.resume(); } }).listen(2507, "127.0.0.1");
JS
(node sink.js >/tmp/smtp-server.log 2>&1 &)'
probe smtp-server 2507 "captured, smtp-server $(npmver smtp-server) from npm, default options, \`node sink.js\`"
run '(cd /opt/js && node_modules/.bin/maildev --ip 127.0.0.1 -s 2508 -w 2518 >/tmp/maildev.log 2>&1 &)'
probe maildev 2508 "captured, maildev $(npmver maildev) from npm, \`maildev --ip 127.0.0.1 -s 2508 -w 2518\`"
run '(cd /opt/js && node_modules/.bin/fake-smtp-server -s 2509 --smtp-ip 127.0.0.1 -h 2519 >/tmp/fake-smtp-server.log 2>&1 &)'
probe fake-smtp-server 2509 "captured, fake-smtp-server $(npmver fake-smtp-server) from npm, \`fake-smtp-server -s 2509 --smtp-ip 127.0.0.1\`"

fi

# RubyGems: MailCatcher (its native extensions build against Debian's ruby-dev). Needs rubygems.org,
# which the machine this was written on does not reach: not captured there.
if want gem; then
run 'gem install --no-document mailcatcher >/tmp/gem.log 2>&1 && (mailcatcher --ip 127.0.0.1 --smtp-port 2510 --http-port 2520 >/tmp/mailcatcher.log 2>&1 &)'
probe mailcatcher 2510 "captured, mailcatcher $(run "gem list -e mailcatcher | sed -n 's/.*(\\(.*\\))/\\1/p'") from RubyGems, \`mailcatcher --ip 127.0.0.1 --smtp-port 2510\`"
fi
