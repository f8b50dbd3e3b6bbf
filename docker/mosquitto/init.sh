#!/bin/sh
# The mosquitto container's entry point, run as root before the broker drops to its own user: writes the accounts,
# what each may do and the TLS files from the environment and the mounted certificates, at every start, then runs
# the broker. The environment is the one place accounts are kept: changing a password is editing .env and
# `docker compose up -d`.
#   MQTT_SERVER_ACCOUNTS  "name:password ..."  servers: read every Pi's readings (the shared subscription),
#                                               status and health, publish replay requests, acknowledgements, alert states and
#                                               discovery configs, and clear a reading topic a Pi retained
#   MQTT_PI_ACCOUNTS      "pi-id:password ..."  Pis: publish teleinfo/<pi-id>/<meter>/reading,
#                                               teleinfo/<pi-id>/status and .../health, read teleinfo/replay and their own
#                                               acknowledgements teleinfo/<pi-id>/ack; nothing else
#   MQTT_HA_ACCOUNTS      "name:password ..."  Home Assistant (optional): read readings, Pi status, alert states
#                                               and discovery configs, publish homeassistant/status; nothing else
# Every account connects with the client id teleinfo-<name> and no other, so that a password cannot take over
# another client's session. Subscriptions are checked as publications are (the dynamic security plugin): no account
# but a server's joins the servers' shared subscription. The lists are split on spaces and never globbed: a password
# may hold any character but a space.
set -eu
set -f

conf_dir=/mosquitto/data
certs_from=/teleinfo/certs
certs=/mosquitto/certs
health=/mosquitto/health
health_account=healthcheck

fail() {
  echo "init.sh: $*" >&2
  exit 2
}

: "${MQTT_SERVER_ACCOUNTS:?set MQTT_SERVER_ACCOUNTS (name:password ...)}"
: "${MQTT_PI_ACCOUNTS:?set MQTT_PI_ACCOUNTS (pi-id:password ...)}"
umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# name:password lines for mosquitto_passwd -U (which hashes them in place: no password on a command line), and the
# role of each name.
: > "$work/passwords"
: > "$work/roles"
add() {
  role="$1"
  name="${2%%:*}"
  password="${2#*:}"
  case "$name" in
    '' | *[!A-Za-z0-9_-]*) fail "account name '$name' must be letters, digits, - or _" ;;
  esac
  if [ "$password" = "$2" ] || [ -z "$password" ]; then
    fail "account '$name' has no password (name:password; a password holds no space)"
  fi
  if [ "$name" = "$health_account" ] || grep -q "^$name " "$work/roles"; then
    fail "account name '$name' is used twice (or is the broker's own '$health_account')"
  fi
  printf '%s:%s\n' "$name" "$password" >> "$work/passwords"
  printf '%s %s\n' "$name" "$role" >> "$work/roles"
}
for account in $MQTT_SERVER_ACCOUNTS; do add server "$account"; done
for account in $MQTT_PI_ACCOUNTS; do add pi "$account"; done
for account in ${MQTT_HA_ACCOUNTS:-}; do add homeassistant "$account"; done
mkdir -p "$conf_dir" "$certs" "$health"
# The container's health check: an account of its own, a new random password at each start, in an options file
# that only root (the health check's user) reads.
health_password=$(tr -dc A-Za-z0-9 < /dev/urandom | head -c 32)
printf '%s:%s\n' "$health_account" "$health_password" >> "$work/passwords"
printf '%s health\n' "$health_account" >> "$work/roles"
printf -- '-h 127.0.0.1\n-p 1883\n-u %s\n-P %s\n-i teleinfo-%s\n' \
  "$health_account" "$health_password" "$health_account" > "$health/mosquitto_sub"
mosquitto_passwd -U "$work/passwords"

acl() { printf '{"acltype":"%s","topic":"%s","allow":true}' "$1" "$2"; }
role() {
  printf '{"rolename":"%s","acls":[' "$1"
  shift
  sep=''
  while [ "$#" -gt 1 ]; do
    printf '%s' "$sep"
    acl "$1" "$2"
    sep=','
    shift 2
  done
  printf ']}'
}

# The dynamic security plugin's file: every account with its PBKDF2-SHA512 hash as mosquitto_passwd made it
# ($7$iterations$salt$hash), its client id and its role. Names are checked above; hashes are base64: no escaping.
{
  printf '{"defaultACLAccess":{"publishClientSend":false,"publishClientReceive":false,"subscribe":false,"unsubscribe":true},\n'
  printf '"clients":['
  sep=''
  while IFS= read -r line; do
    name="${line%%:*}"
    hash="${line#*:}"
    iterations=$(echo "$hash" | cut -d'$' -f3)
    salt=$(echo "$hash" | cut -d'$' -f4)
    digest=$(echo "$hash" | cut -d'$' -f5)
    kind=$(grep "^$name " "$work/roles" | cut -d' ' -f2)
    [ "$kind" = pi ] && rolename="pi-$name" || rolename="$kind"
    printf '%s\n{"username":"%s","clientid":"teleinfo-%s","password":"%s","salt":"%s","iterations":%s,"roles":[{"rolename":"%s"}]}' \
      "$sep" "$name" "$name" "$digest" "$salt" "$iterations" "$rolename"
    sep=','
  done < "$work/passwords"
  printf '],\n"groups":[],\n"roles":[\n'
  role server \
    subscribeLiteral '$share/teleinfo-ingest/teleinfo/+/+/reading' \
    subscribeLiteral 'teleinfo/+/+/reading' \
    publishClientReceive 'teleinfo/+/+/reading' \
    publishClientSend 'teleinfo/+/+/reading' \
    subscribeLiteral 'teleinfo/+/status' \
    publishClientReceive 'teleinfo/+/status' \
    subscribeLiteral 'teleinfo/+/health' \
    publishClientReceive 'teleinfo/+/health' \
    publishClientSend 'teleinfo/replay' \
    publishClientSend 'teleinfo/+/ack' \
    publishClientSend 'teleinfo/+/alert/+' \
    publishClientSend 'homeassistant/#' \
    subscribeLiteral 'homeassistant/status' \
    publishClientReceive 'homeassistant/status'
  printf ',\n'
  role homeassistant \
    subscribePattern 'teleinfo/+/+/reading' \
    publishClientReceive 'teleinfo/+/+/reading' \
    subscribePattern 'teleinfo/+/status' \
    publishClientReceive 'teleinfo/+/status' \
    subscribePattern 'teleinfo/+/alert/+' \
    publishClientReceive 'teleinfo/+/alert/+' \
    subscribePattern 'homeassistant/#' \
    publishClientReceive 'homeassistant/#' \
    publishClientSend 'homeassistant/status'
  printf ',\n'
  role health subscribeLiteral '$SYS/broker/uptime' publishClientReceive '$SYS/broker/uptime'
  # A role per Pi: the plugin of mosquitto 2.0 has no %u in its topics.
  while read -r name kind; do
    [ "$kind" = pi ] || continue
    printf ',\n'
    role "pi-$name" \
      publishClientSend "teleinfo/$name/+/reading" \
      publishClientSend "teleinfo/$name/status" \
      publishClientSend "teleinfo/$name/health" \
      subscribeLiteral 'teleinfo/replay' \
      publishClientReceive 'teleinfo/replay' \
      subscribeLiteral "teleinfo/$name/ack" \
      publishClientReceive "teleinfo/$name/ack"
  done < "$work/roles"
  printf '\n]}\n'
} > "$work/dynamic-security.json"
mv "$work/dynamic-security.json" "$conf_dir/dynamic-security.json"
rm -f "$conf_dir/passwd" "$conf_dir/acl"

# The broker loads its TLS files after dropping to its user: copies it owns, the key readable by it only.
for file in ca.crt broker.crt broker.key; do
  [ -f "$certs_from/$file" ] || fail "$certs_from/$file is missing: make the certificates first (npm run certs)"
  cp "$certs_from/$file" "$certs/$file"
done
chmod 0444 "$certs/ca.crt" "$certs/broker.crt"
chmod 0400 "$certs/broker.key"
chown -R mosquitto:mosquitto "$certs" "$conf_dir"

if [ "$#" -gt 0 ]; then exec "$@"; fi
