#!/bin/sh
# Capture the roots of the init-model tests (tests/unit/test_static_init.py) from the
# fixture images (fixtures/build.sh supervisord-off runit-late wrapper-exec first).
# Each image is created (never started, labelled smtpgate), the files copied out, removed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)/roots
grab() {  # image root path...
  image=$1 root=$here/$2; shift 2
  id=$(docker create --label smtpgate=capture smtpgate-fixture/"$image":latest)
  trap 'docker rm -f "$id" >/dev/null' EXIT
  for path in "$@"; do
    mkdir -p "$root$(dirname "$path")"
    docker cp "$id:$path" "$root$(dirname "$path")/"
  done
  docker rm -f "$id" >/dev/null
  trap - EXIT
}
rm -rf "$here/supervisord-off" "$here/runit-late" "$here/wrapper-exec"
grab supervisord-off supervisord-off /etc/supervisor/supervisord.conf /etc/supervisor/conf.d/apps.conf \
  /etc/systemd/system/multi-user.target.wants /etc/rc2.d /var/lib/dpkg/status
grab runit-late runit-late /etc/service/postfix/run /etc/service/postfix/down /usr/local/bin/start.sh
grab wrapper-exec wrapper-exec /usr/local/bin/docker-entrypoint.sh
