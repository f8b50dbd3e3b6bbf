#!/bin/sh
# Backs up this checkout's Docker deployment into a new folder, on its Docker host:
#   sh docker/backup.sh <dir>
# The deployment is the one `docker compose` finds here: set COMPOSE_FILE for another (the servers override,
# docker-compose.yml:docker-compose.servers.yml; a Pi's docker-compose.pi.yml). It writes a tar per service:
#   influxdb.tar      InfluxDB's portable backup of the database (readings, rollups, Pi health, retention
#                     policies), taken by influxd in its container while it runs
#   grafana.tar       Grafana's /var/lib/grafana (its database: what you changed in Grafana)
#   node-red-*.tar    each Node-RED's /data (the flow as deployed, its credentials still encrypted, context, spool,
#                     nodes installed from the palette)
# Grafana and Node-RED are stopped meanwhile, so that their files and the database agree; the Pis keep their
# readings and send them once the server is back. Not in it: .env and docker/certs (secrets, kept apart: the
# credentials are encrypted with NODE_RED_CREDENTIAL_SECRET), the broker's data (the Pis publish their status again).
# Restore with docker/restore.sh.
set -eu

fail() {
  echo "backup.sh: $*" >&2
  exit 2
}

[ $# -eq 1 ] || fail 'usage: sh docker/backup.sh <dir>'
[ ! -e "$1" ] || fail "$1 exists: a backup goes into a new folder"
mkdir -p "$1"
dir=$(cd "$1" && pwd)
cd "$(dirname "$0")/.."

services=$(docker compose config --services)
# The services that write files of their own, stopped for the backup and started again after it.
held=$(docker compose ps --services --status running | grep -E '^(grafana|node-red-.+)$' || true)
if [ -n "$held" ]; then
  # Started again whatever happens; below, at the end of a backup, so that a failure to start says so.
  trap 'docker compose start $held' EXIT
  # shellcheck disable=SC2086 # one word per service
  docker compose stop $held
fi

for service in $services; do
  case "$service" in
    influxdb)
      echo "backup.sh: influxdb" >&2
      # shellcheck disable=SC2016 # expanded in the container
      docker compose exec -T influxdb sh -c '
        set -e
        d=$(mktemp -d)
        influxd backup -portable -database "$INFLUXDB_DB" "$d/backup" > "$d/log" 2>&1 || { cat "$d/log" >&2; exit 1; }
        tar -C "$d/backup" -cf - .
        rm -rf "$d"' > "$dir/influxdb.tar"
      ;;
    grafana | node-red-*)
      if [ "$service" = grafana ]; then data=/var/lib/grafana; else data=/data; fi
      echo "backup.sh: $service ($data)" >&2
      docker compose run --rm --no-deps -T --entrypoint tar "$service" -C "$data" -cf - . > "$dir/$service.tar"
      ;;
  esac
done
date -u '+taken %Y-%m-%dT%H:%M:%SZ' > "$dir/backup.txt"
if [ -n "$held" ]; then
  trap - EXIT
  # shellcheck disable=SC2086 # one word per service
  docker compose start $held
fi
echo "backup.sh: $dir" >&2
