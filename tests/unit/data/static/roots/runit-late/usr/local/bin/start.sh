#!/bin/sh
# Supervise the services, prepare, then start the MTA.
runsvdir -P /etc/service &
i=0
while [ "$i" -lt 12 ]; do
  sleep 1
  i=$((i + 1))
done
sv up postfix
wait
