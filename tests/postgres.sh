#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for the tests and the load benchmark.
#
#   eval "$(tests/postgres.sh start)"   # prints: export PINGYI_TEST_POSTGRES=postgres://…; export PINGYI_TEST_PGDATA=…
#   tests/postgres.sh stop "$PINGYI_TEST_PGDATA"
#
# initdb refuses to run as root, so the cluster belongs to the `postgres` user
# (runuser -u postgres --) when this runs as root. It listens on 127.0.0.1 on a free port
# with trust authentication, so it is only for tests on this machine.
set -euo pipefail

pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$dir" ] || { echo "tests/postgres.sh: PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }
  echo "$dir"
}

as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

case "${1:-}" in
  start)
    bin=$(pg_bin)
    data=$(mktemp -d /tmp/pingyi-pg.XXXXXX)
    [ "$(id -u)" -eq 0 ] && chown postgres: "$data"
    port=$(free_port)
    as_postgres "$bin/initdb" -D "$data/db" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$data/initdb.log" 2>&1 \
      || { cat "$data/initdb.log" >&2; exit 1; }
    as_postgres "$bin/pg_ctl" -D "$data/db" -l "$data/server.log" -w -t 60 \
      -o "-p $port -k $data -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=on" start >/dev/null \
      || { cat "$data/server.log" >&2; exit 1; }
    echo "export PINGYI_TEST_POSTGRES=postgres://postgres@127.0.0.1:$port/postgres"
    echo "export PINGYI_TEST_PGDATA=$data"
    ;;
  stop)
    data=${2:?usage: tests/postgres.sh stop DATA_DIR}
    if [ -d "$data/db" ]; then
      as_postgres "$(pg_bin)/pg_ctl" -D "$data/db" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$data"
    ;;
  *)
    echo "usage: tests/postgres.sh start | stop DATA_DIR" >&2
    exit 2
    ;;
esac
