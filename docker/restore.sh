#!/bin/sh
# Restores a backup of docker/backup.sh into this checkout's Docker deployment, on its Docker host, then starts it:
#   sh docker/restore.sh <dir>
# Into an empty deployment: a new host with .env (the same NODE_RED_CREDENTIAL_SECRET) and docker/certs in place,
# or this one after `docker compose down -v`. Grafana's and each Node-RED's files are replaced by the backup's.
# InfluxDB restores its part itself at its next start (docker/influxdb/init.sh), into a database that holds no
# measurement yet: this checks that first, and refuses a deployment that holds readings. COMPOSE_FILE as for
# backup.sh.
set -eu

fail() {
  echo "restore.sh: $*" >&2
  exit 2
}

[ $# -eq 1 ] || fail 'usage: sh docker/restore.sh <dir>'
[ -d "$1" ] || fail "$1: no such folder"
dir=$(cd "$1" && pwd)
cd "$(dirname "$0")/.."

services=$(docker compose config --services)
found=
for tar in "$dir"/*.tar; do
  [ -f "$tar" ] || fail "$dir holds no backup"
  service=$(basename "$tar" .tar)
  echo "$services" | grep -qx "$service" || fail "$service (in $dir) is not a service of this deployment"
  found="$found $service"
done

# InfluxDB's answer once it listens (its init.sh done), up to 30 minutes for a large restore.
influxdb_up() {
  tries=0
  until docker compose exec -T influxdb curl -sf http://127.0.0.1:8086/ping > /dev/null 2>&1; do
    tries=$((tries + 1))
    [ "$tries" -lt 900 ] || fail 'InfluxDB does not answer after 30 minutes: docker compose logs influxdb'
    sleep 2
  done
}

case "$found" in
  *' influxdb'*)
    # An empty deployment, checked before anything is replaced: its database holds no measurement.
    docker compose up -d influxdb
    influxdb_up
    # The admin's password to curl on its stdin, as a config line, not on a command line.
    measurements=$(
      docker compose exec -T influxdb sh << 'EOF'
set -eu
password=$(printf '%s' "$INFLUXDB_ADMIN_PASSWORD" | sed 's/[\\"]/\\&/g')
printf 'user = "%s:%s"\n' "$INFLUXDB_ADMIN_USER" "$password" |
  curl -sS -K - http://127.0.0.1:8086/query --data-urlencode "q=SHOW MEASUREMENTS ON \"$INFLUXDB_DB\""
EOF
    )
    case "$measurements" in
      *'"series"'*) fail 'the database already holds measurements: a backup is restored into an empty deployment (back this one up first, then docker compose down -v)' ;;
      *'"results"'*) ;;
      *) fail "InfluxDB did not answer: $measurements" ;;
    esac
    ;;
esac

# What writes the files about to be replaced.
held=$(echo "$services" | grep -E '^(grafana|node-red-.+)$' || true)
# shellcheck disable=SC2086 # one word per service
[ -z "$held" ] || docker compose stop $held

for service in $found; do
  echo "restore.sh: $service" >&2
  # shellcheck disable=SC2016 # expanded in the container
  case "$service" in
    influxdb)
      docker compose run --rm --no-deps -T --entrypoint sh influxdb -c \
        'rm -rf "$0" "$0.refused" "$0.failed" && mkdir "$0" && tar -C "$0" -xf -' \
        /var/lib/influxdb/restore < "$dir/$service.tar"
      ;;
    grafana | node-red-*)
      if [ "$service" = grafana ]; then data=/var/lib/grafana; else data=/data; fi
      docker compose run --rm --no-deps -T --entrypoint sh "$service" -c \
        'find "$0" -mindepth 1 -delete && tar -C "$0" -xf -' "$data" < "$dir/$service.tar"
      ;;
  esac
done

case "$found" in
  *' influxdb'*)
    # A new container: init.sh restores what is staged before influxd listens on its port.
    docker compose up -d --force-recreate influxdb
    influxdb_up
    # shellcheck disable=SC2016 # expanded in the container
    docker compose exec -T influxdb sh -c \
      'for f in "$0.refused" "$0.failed"; do [ ! -e "$f" ] || exit 1; done' /var/lib/influxdb/restore ||
      fail 'InfluxDB did not restore the backup: docker compose logs influxdb says why'
    ;;
esac

docker compose up -d
echo "restore.sh: restored from $dir" >&2
