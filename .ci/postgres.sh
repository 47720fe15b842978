#!/usr/bin/env bash
# Starts a throwaway PostgreSQL on 127.0.0.1 for the logging plugin's tests (Debian's packages,
# installed when missing) and prints its URL. Idempotent: a server already answering on the
# port is reused. Runs as root (CI and the dev machines); the server runs as `postgres`.
#
#   export BIFROST_TEST_POSTGRES_URL="$(bash .ci/postgres.sh)"
set -euo pipefail

PORT="${BIFROST_PG_PORT:-55432}"
DATA="${BIFROST_PG_DIR:-/tmp/bifrost-pg-$PORT}"
URL="postgres://bifrost:bifrost@127.0.0.1:$PORT/bifrost_test"

pgbin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
BIN="$(pgbin)"
if [ -z "$BIN" ] || ! command -v psql >/dev/null; then
  echo "installing postgresql from Debian packages" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
  BIN="$(pgbin)"
fi
[ -n "$BIN" ] || { echo "postgresql binaries not found after install" >&2; exit 1; }

as_pg() { runuser -u postgres -- "$@"; }

if ! "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
  rm -rf "$DATA"
  mkdir -p "$DATA"
  chown postgres:postgres "$DATA"
  chmod 700 "$DATA"
  # Loopback only, trust auth for the throwaway cluster; fsync off: test data.
  as_pg "$BIN/initdb" -D "$DATA" -U postgres -A trust --no-sync -E UTF8 >/dev/null
  as_pg "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DATA -c fsync=off -c max_connections=200" \
    start >&2
fi

psql() { command psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres "$@"; }
psql -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'bifrost'" | grep -q 1 ||
  psql -c "CREATE ROLE bifrost LOGIN PASSWORD 'bifrost'" >&2
psql -tAc "SELECT 1 FROM pg_database WHERE datname = 'bifrost_test'" | grep -q 1 ||
  psql -c "CREATE DATABASE bifrost_test OWNER bifrost ENCODING 'UTF8'" >&2
echo "$URL"
