#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests, on 127.0.0.1 (port 54329 by
# default), trust authentication for the user `graft`, fsync off.
#
#   eval "$(scripts/test-postgres.sh start)"      # prints the export line
#   cargo test --release --workspace               # now on SQLite and PostgreSQL
#   scripts/test-postgres.sh stop
#
# Needs Debian's postgresql package (installed here when run as root).
set -euo pipefail

port="${GRAFT_TEST_PG_PORT:-54329}"
dir="${GRAFT_TEST_PG_DIR:-/tmp/graft-test-postgres}"

bindir() {
  local found
  found="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
  if [ -z "$found" ]; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
      found="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
    else
      echo "PostgreSQL is not installed: apt-get install postgresql (as root)" >&2
      exit 2
    fi
  fi
  echo "$found"
}

# initdb and the server refuse to run as root: run them as `postgres`.
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-}" in
  start)
    bin="$(bindir)"
    if [ ! -f "$dir/PG_VERSION" ]; then
      mkdir -p "$dir"
      [ "$(id -u)" = 0 ] && chown postgres "$dir"
      as_owner "$bin/initdb" -D "$dir" -U graft --auth=trust -E UTF8 >/dev/null
    fi
    as_owner "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w \
      -o "-p $port -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
      start >&2
    echo "export GRAFT_TEST_POSTGRES=postgres://graft@127.0.0.1:$port/postgres"
    ;;
  stop)
    as_owner "$(bindir)/pg_ctl" -D "$dir" -m fast stop >&2 || true
    rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
