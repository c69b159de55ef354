#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests, listening on 127.0.0.1 only.
#   scripts/postgres.sh installed    succeeds when PostgreSQL's server programs are on this machine
#   scripts/postgres.sh start DIR    initdb in DIR (an empty folder), start the server on a free port, create
#                                    a role `idclass` (allowed to CREATE DATABASE, for the tests' test_idclass)
#                                    and its database `idclass`; prints the DATABASE_URL that reaches it
#   scripts/postgres.sh stop DIR     stop that server and remove DIR
#   scripts/postgres.sh run CMD...   CMD with DATABASE_URL exported, on a server of its own in a temporary
#                                    folder, stopped and removed when CMD ends, fails or is interrupted;
#                                    exits with CMD's status (e.g. `scripts/postgres.sh run scripts/test.sh`)
# Run as root, the server runs as the `postgres` user (initdb refuses root); otherwise as yourself.
set -euo pipefail

bindir() {  # Debian keeps the server programs off PATH, in /usr/lib/postgresql/<version>/bin
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -z "$dir" ] && command -v initdb >/dev/null && dir=$(dirname "$(realpath "$(command -v initdb)")")
  [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/psql" ] && echo "$dir"
}

as_server_user() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
  local dir=$1 bin port password
  bin=$(bindir) || { echo "PostgreSQL is not installed (Debian: apt-get install postgresql)" >&2; exit 1; }
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  chmod 700 "$dir"
  cd "$dir"  # the server user may not be able to read the caller's folder
  password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  # trust on the socket, which lives in DIR and only the server user can reach; a password over TCP
  as_server_user "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" || { cat "$dir/initdb.log" >&2; exit 1; }
  # durability is no concern for a server that is deleted after the run
  as_server_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -s start \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off \
        -c full_page_writes=off" >&2 || { cat "$dir/server.log" >&2; exit 1; }
  as_server_user "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d postgres >&2 <<SQL
CREATE ROLE idclass LOGIN CREATEDB PASSWORD '$password';
CREATE DATABASE idclass OWNER idclass;
SQL
  echo "postgres://idclass:$password@127.0.0.1:$port/idclass"
}

stop() {
  local dir=$1 bin
  if [ -f "$dir/data/postmaster.pid" ] && bin=$(bindir); then
    (cd "$dir" && as_server_user "$bin/pg_ctl" -D "$dir/data" -m fast -w -s stop) || true
  fi
  rm -rf "$dir"
}

run() {
  run_dir=$(mktemp -d)  # global: the EXIT trap reads it after run() has returned
  trap 'stop "$run_dir"' EXIT
  trap 'exit 130' INT TERM  # the EXIT trap stops the server then too
  DATABASE_URL=$(start "$run_dir")
  export DATABASE_URL
  "$@"
}

case "${1:-}" in
  installed) bindir >/dev/null 2>&1 ;;
  start|stop) [ -n "${2:-}" ] || { echo "usage: $0 $1 DIR" >&2; exit 2; }; "$1" "$(realpath "$2")" ;;
  run) [ -n "${2:-}" ] || { echo "usage: $0 run COMMAND [ARGS...]" >&2; exit 2; }; shift; run "$@" ;;
  *) echo "usage: $0 installed | start DIR | stop DIR | run COMMAND [ARGS...]" >&2; exit 2 ;;
esac
