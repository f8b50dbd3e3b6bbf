#!/bin/sh
# The containers' entry point: `instance.sh <pi|server> <userDir> [port] [--reseed]`. scripts/instance.js prepares the
# userDir and prints Node's arguments for the instance, one per line; this shell then becomes that Node-RED (exec),
# so that no launcher process stays beside it: on a Pi, a second Node process would be some 40 MiB more.
set -e
args=$(node "$(dirname "$0")/instance.js" "$@")
IFS='
'
# shellcheck disable=SC2086 # split on newlines only: one argument per line
exec node $args
