#!/bin/sh
# The grafana container's entry point: brings the admin's password to GF_SECURITY_ADMIN_PASSWORD at every start
# (Grafana itself applies it only when it creates its database), then runs the image's own /run.sh. The password
# goes to the Grafana CLI on stdin, not on its command line.
set -eu
if [ -f "$GF_PATHS_DATA/grafana.db" ]; then
  printf '%s\n' "${GF_SECURITY_ADMIN_PASSWORD:?set GF_SECURITY_ADMIN_PASSWORD}" |
    grafana cli --homepath "$GF_PATHS_HOME" --config "$GF_PATHS_CONFIG" admin reset-admin-password \
      --password-from-stdin > /dev/null
fi
exec /run.sh "$@"
