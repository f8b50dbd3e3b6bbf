#!/bin/sh
# Writes the broker's password file and ACL from the environment, then runs mosquitto (the container's entry point;
# the tests run it too). Rewritten at every start: the environment is the one place accounts are kept, so changing a
# password is editing .env and restarting.
#   MQTT_SERVER_ACCOUNTS  "name:password ..."  servers: read every Pi's readings and status, publish replay requests
#   MQTT_PI_ACCOUNTS      "pi-id:password ..."  Pis: publish teleinfo/<pi-id>/<meter>/reading and teleinfo/<pi-id>/status,
#                                               read teleinfo/replay; nothing else
#   MQTT_HA_ACCOUNTS      "name:password ..."  Home Assistant (optional): read readings, Pi status, alert states and
#                                               discovery configs, publish homeassistant/status
#   MQTT_STATE_DIR        where the two files go (default /mosquitto/data)
set -eu
dir="${MQTT_STATE_DIR:-/mosquitto/data}"
: "${MQTT_SERVER_ACCOUNTS:?set MQTT_SERVER_ACCOUNTS (name:password ...)}"
: "${MQTT_PI_ACCOUNTS:?set MQTT_PI_ACCOUNTS (pi-id:password ...)}"
mkdir -p "$dir"
umask 077
passwd="$dir/passwd"
acl="$dir/acl"
: > "$passwd.new"
{
  echo '# Written by init.sh from MQTT_SERVER_ACCOUNTS and MQTT_PI_ACCOUNTS; edits are lost at the next start.'
  echo '# A Pi: its own readings and status, and the servers replay requests (a pattern: %u is its account).'
  echo 'pattern write teleinfo/%u/+/reading'
  echo 'pattern write teleinfo/%u/status'
  echo '# (mosquitto warns that this pattern has no %u: it is meant for every Pi)'
  echo 'pattern read teleinfo/replay'
} > "$acl.new"
add() {
  name="${1%%:*}"
  password="${1#*:}"
  case "$name" in
    '' | *[!A-Za-z0-9_-]*) echo "init.sh: account name '$name' must be letters, digits, - or _" >&2; exit 2 ;;
  esac
  if [ "$password" = "$1" ] || [ -z "$password" ]; then echo "init.sh: account '$name' has no password" >&2; exit 2; fi
  mosquitto_passwd -b "$passwd.new" "$name" "$password"
}
for account in $MQTT_SERVER_ACCOUNTS; do
  add "$account"
  {
    echo ''
    echo "user ${account%%:*}"
    echo 'topic read teleinfo/+/+/reading'
    echo 'topic read teleinfo/+/status'
    echo 'topic write teleinfo/replay'
    echo 'topic readwrite teleinfo/+/alert/+'
    echo '# Home Assistant discovery: configs out, Home Assistant'"'"'s birth message in'
    echo 'topic write homeassistant/#'
    echo 'topic read homeassistant/status'
    echo '# the container health check reads this'
    echo 'topic read $SYS/broker/uptime'
  } >> "$acl.new"
done
for account in $MQTT_PI_ACCOUNTS; do add "$account"; done
for account in ${MQTT_HA_ACCOUNTS:-}; do
  add "$account"
  {
    echo ''
    echo "user ${account%%:*}"
    echo 'topic read teleinfo/+/+/reading'
    echo 'topic read teleinfo/+/status'
    echo 'topic read teleinfo/+/alert/+'
    echo 'topic read homeassistant/#'
    echo 'topic write homeassistant/status'
  } >> "$acl.new"
done
mv "$passwd.new" "$passwd"
mv "$acl.new" "$acl"
chown mosquitto:mosquitto "$passwd" "$acl" 2>/dev/null || true
if [ "$#" -gt 0 ]; then exec "$@"; fi
