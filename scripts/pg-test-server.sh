#!/usr/bin/env bash
# A throwaway PostgreSQL server for the store tests (crates/store), on 127.0.0.1 only.
#
#   scripts/pg-test-server.sh start DIR PORT   initdb DIR if needed, start the server, print its URL
#   scripts/pg-test-server.sh stop DIR PORT    stop the server and delete DIR
#
# DIR is a scratch directory (e.g. from `mktemp -d /tmp/switchyard-pg.XXXXXX`); its data is not kept.
# PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user, which must
# own DIR (this script hands it over). Durability is off (fsync, synchronous_commit): tests only.
set -euo pipefail

usage() {
  echo "usage: $0 start|stop DIR PORT" >&2
  exit 2
}
[ $# -eq 3 ] || usage
cmd=$1 dir=$2 port=$3
case "$port" in '' | *[!0-9]*) usage ;; esac

# initdb and pg_ctl: on PATH, or Debian's versioned directory (newest first).
bindir=""
if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
  bindir=$(dirname "$(command -v pg_ctl)")
else
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
      bindir=$d
      break
    fi
  done
fi
if [ -z "$bindir" ]; then
  echo "pg-test-server: PostgreSQL is not installed (no initdb/pg_ctl; try: apt-get install -y postgresql)" >&2
  exit 1
fi

# Run as the postgres user when we are root.
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

case "$cmd" in
  start)
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
      chown postgres: "$dir"
    fi
    chmod 700 "$dir"
    if [ ! -s "$dir/PG_VERSION" ]; then
      if ! as_pg "$bindir/initdb" -D "$dir" -A trust -U postgres -E UTF8 --no-sync >"$dir.initdb.log" 2>&1; then
        cat "$dir.initdb.log" >&2
        rm -f "$dir.initdb.log"
        echo "pg-test-server: initdb failed in $dir" >&2
        exit 1
      fi
      rm -f "$dir.initdb.log"
    fi
    opts="-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200"
    opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    if ! as_pg "$bindir/pg_ctl" -D "$dir" -o "$opts" -l "$dir/log" -w -t 60 start >/dev/null; then
      cat "$dir/log" >&2 || true
      echo "pg-test-server: the server did not start (port $port, data $dir)" >&2
      exit 1
    fi
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    if [ -s "$dir/PG_VERSION" ]; then
      as_pg "$bindir/pg_ctl" -D "$dir" -m fast -w -t 60 stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  *)
    usage
    ;;
esac
