#!/bin/sh
set -e

# `docker run IMAGE -q1h` passes options to exim
if [ "${1#-}" != "$1" ]; then
	set -- exim4 "$@"
fi

if [ "$1" = 'exim4' ] && [ -n "$RELAY_FROM_HOSTS" ]; then
	echo "relaying for $RELAY_FROM_HOSTS" >&2
fi

mkdir -p /var/spool/exim4 /var/log/exim4
chown -R Debian-exim /var/spool/exim4 /var/log/exim4

exec "$@"
