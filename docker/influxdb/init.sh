#!/bin/sh
# The influxdb container's entry point: brings the database and its accounts to what the environment says at every
# start, then runs influxd (its arguments). The image's own init script runs on the first start only (a password
# changed later in .env would never apply) and breaks on a quote in a password; this one quotes every value.
# Meanwhile influxd listens on another port of the container's loopback, without auth: the other containers and the
# health check see nothing until the accounts are right.
#   INFLUXDB_DB                                   the database
#   INFLUXDB_ADMIN_USER, INFLUXDB_ADMIN_PASSWORD  every privilege: yours (the influx shell, backups)
#   INFLUXDB_WRITE_USER, ..._PASSWORD             ALL on the database (no admin): the server Node-RED writes
#                                                 readings, and reads them back into rollups (teleinfo-rollup)
#   INFLUXDB_READ_USER, ..._PASSWORD              READ on the database: Grafana
#   INFLUX_RAW_RETENTION                          how long raw readings are kept (90d, 52w; default INF):
#                                                 the database's default policy; rollups go to "forever"
# Accounts that are no longer named here keep what they had: drop them in the influx shell.
# A portable backup staged in /var/lib/influxdb/restore (docker/restore.sh puts it there) is restored at this start,
# before the accounts are applied (a database restored comes without its privileges), into a database that holds
# no measurement yet; otherwise it is set aside as restore.refused. One that fails is set aside as restore.failed.
set -eu

fail() {
  echo "init.sh: $*" >&2
  exit 2
}

: "${INFLUXDB_DB:?set INFLUXDB_DB}"
for name in "$INFLUXDB_DB" "$INFLUXDB_ADMIN_USER" "$INFLUXDB_WRITE_USER" "$INFLUXDB_READ_USER"; do
  case "$name" in
    '' | *[!A-Za-z0-9_-]*) fail "'$name': a database or account name is letters, digits, - or _" ;;
  esac
done
[ "$INFLUXDB_ADMIN_USER" != "$INFLUXDB_WRITE_USER" ] && [ "$INFLUXDB_ADMIN_USER" != "$INFLUXDB_READ_USER" ] &&
  [ "$INFLUXDB_WRITE_USER" != "$INFLUXDB_READ_USER" ] || fail 'the admin, write and read accounts need three names'

# A password as an InfluxQL string literal: backslashes and quotes escaped, one line.
literal() {
  case "$1" in
    '') fail 'an InfluxDB password is empty' ;;
    *'
'*) fail 'an InfluxDB password holds a line break' ;;
  esac
  printf "'%s'" "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e "s/'/\\\\'/g")"
}

# How long raw readings are kept, and the span of the shards InfluxDB drops them by (a retention shorter than
# two days needs hour shards; an infinite one, InfluxDB's own week).
raw="${INFLUX_RAW_RETENTION:-INF}"
case "$raw" in
  INF | inf) raw=INF shard=7d ;;
  *)
    echo "$raw" | grep -Eq '^[1-9][0-9]*[hdw]$' ||
      fail "INFLUX_RAW_RETENTION: '$raw' is a number of hours, days or weeks (90d, 52w) or INF"
    n=${raw%?}
    case "$raw" in *h) hours=$n ;; *d) hours=$((n * 24)) ;; *w) hours=$((n * 168)) ;; esac
    [ "$hours" -ge 1 ] || fail "INFLUX_RAW_RETENTION: at least 1h"
    if [ "$hours" -lt 48 ]; then shard=1h; else shard=1d; fi
    ;;
esac

port=18086
INFLUXDB_HTTP_BIND_ADDRESS="127.0.0.1:$port" INFLUXDB_HTTP_AUTH_ENABLED=false INFLUXDB_HTTP_HTTPS_ENABLED=false \
  INFLUXDB_HTTP_LOG_ENABLED=false "$@" &
pid=$!
tries=0
until curl -sf "http://127.0.0.1:$port/ping" > /dev/null; do
  tries=$((tries + 1))
  [ "$tries" -lt 300 ] && kill -0 "$pid" 2> /dev/null || fail 'influxd did not start'
  sleep 0.1
done

# One statement, from stdin (no password on a command line); fails on an error unless told it may.
statement() {
  answer=$(curl -sS "http://127.0.0.1:$port/query" --data-urlencode 'q@-') || fail "influxd did not answer"
  case "$answer" in
    *'"error"'*) [ "${1:-}" = may-fail ] || fail "$(echo "$answer" | sed 's/.*"error":"\([^"]*\)".*/\1/')" ;;
  esac
}
account() {
  user="$1"
  password=$(literal "$2")
  # CREATE USER fails for an existing account with another password: SET PASSWORD then brings it to this one.
  printf 'CREATE USER "%s" WITH PASSWORD %s' "$user" "$password" | statement may-fail
  printf 'SET PASSWORD FOR "%s" = %s' "$user" "$password" | statement
}
staged=/var/lib/influxdb/restore
if [ -d "$staged" ]; then
  measurements=$(printf 'SHOW MEASUREMENTS ON "%s"' "$INFLUXDB_DB" | curl -sS "http://127.0.0.1:$port/query" --data-urlencode 'q@-') ||
    fail 'influxd did not answer'
  case "$measurements" in
    *'"series"'*)
      rm -rf "$staged.refused" && mv "$staged" "$staged.refused"
      echo "init.sh: $INFLUXDB_DB already holds measurements: the backup staged is not restored (set aside as $staged.refused)" >&2
      ;;
    *)
      printf 'DROP DATABASE "%s"' "$INFLUXDB_DB" | statement
      if influxd restore -portable -db "$INFLUXDB_DB" "$staged" >&2; then
        rm -rf "$staged"
        echo "init.sh: $INFLUXDB_DB restored from the backup staged" >&2
      else
        rm -rf "$staged.failed" && mv "$staged" "$staged.failed"
        kill -TERM "$pid"
        fail "the backup staged could not be restored (set aside as $staged.failed)"
      fi
      ;;
  esac
fi
printf 'CREATE DATABASE "%s"' "$INFLUXDB_DB" | statement
account "$INFLUXDB_ADMIN_USER" "${INFLUXDB_ADMIN_PASSWORD:-}"
printf 'GRANT ALL PRIVILEGES TO "%s"' "$INFLUXDB_ADMIN_USER" | statement
# An account with exactly one privilege on the database (GRANT replaces what it had there).
database_account() {
  account "$2" "$3"
  printf 'REVOKE ALL PRIVILEGES FROM "%s"' "$2" | statement
  printf 'GRANT %s ON "%s" TO "%s"' "$1" "$INFLUXDB_DB" "$2" | statement
}
database_account ALL "$INFLUXDB_WRITE_USER" "${INFLUXDB_WRITE_USER_PASSWORD:-}"
database_account READ "$INFLUXDB_READ_USER" "${INFLUXDB_READ_USER_PASSWORD:-}"
# Raw readings expire; the rollups computed from them never do.
printf 'ALTER RETENTION POLICY "autogen" ON "%s" DURATION %s SHARD DURATION %s DEFAULT' "$INFLUXDB_DB" "$raw" "$shard" |
  statement
printf 'CREATE RETENTION POLICY "forever" ON "%s" DURATION INF REPLICATION 1' "$INFLUXDB_DB" | statement may-fail

kill -TERM "$pid"
wait "$pid" || true
exec "$@"
