#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests, CI and the local demo: a temp data directory,
# loopback only, owned by a non-root OS user (PostgreSQL refuses to run as root).
#
#   scripts/pg-cluster.sh start DIR [PORT [PID]]  create (if needed) and start; prints DATABASE_URL=...
#                                           with PID: stop the cluster by itself once process PID exits
#   scripts/pg-cluster.sh stop DIR           stop it (fast shutdown)
#   scripts/pg-cluster.sh restart DIR        restart it (clients see their connections closed)
#   scripts/pg-cluster.sh url DIR            print the DATABASE_URL of a started cluster
#
# The superuser is `flexcharge` with password `flexcharge` (it only ever listens on 127.0.0.1).
set -euo pipefail

cmd=${1:?usage: pg-cluster.sh start|stop|restart|url DIR [PORT]}
dir=${2:?usage: pg-cluster.sh start|stop|restart|url DIR [PORT]}
port=${3:-55432}

bindir=""
for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$candidate/initdb" ]; then bindir=$candidate; break; fi
done
if [ -z "$bindir" ]; then
    if command -v initdb >/dev/null 2>&1; then bindir=$(dirname "$(command -v initdb)"); else
        echo "pg-cluster: PostgreSQL server binaries not found (apt-get install -y postgresql)" >&2; exit 1
    fi
fi

# Run PostgreSQL's programs as a non-root user when we are root.
owner=""
if [ "$(id -u)" = 0 ]; then
    owner=postgres
    id -u "$owner" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$owner"
fi
as_owner() {
    if [ -n "$owner" ]; then runuser -u "$owner" -- "$@"; else "$@"; fi
}

data="$dir/data"
url_of() { echo "postgresql://flexcharge:flexcharge@127.0.0.1:$(cat "$dir/port")/flexcharge"; }

case "$cmd" in
start)
    mkdir -p "$dir"
    if [ ! -f "$data/PG_VERSION" ]; then
        echo "$port" > "$dir/port"
        echo flexcharge > "$dir/pwfile"
        [ -n "$owner" ] && chown -R "$owner" "$dir"
        as_owner "$bindir/initdb" -D "$data" -U flexcharge --pwfile="$dir/pwfile" \
            --auth-host=scram-sha-256 --auth-local=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
            || { cat "$dir/initdb.log" >&2; exit 1; }
        cat >>"$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 600
shared_buffers = 256MB
fsync = on
synchronous_commit = on
logging_collector = off
CONF
    fi
    [ -n "$owner" ] && chown -R "$owner" "$dir"
    # Already running (e.g. the demo's cluster from an earlier run): use it as it is.
    if ! as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        as_owner "$bindir/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 start >/dev/null
    fi
    as_owner "$bindir/psql" -h "$dir" -p "$(cat "$dir/port")" -U flexcharge -d postgres -qtAc \
        "SELECT 1 FROM pg_database WHERE datname = 'flexcharge'" | grep -q 1 \
        || as_owner "$bindir/createdb" -h "$dir" -p "$(cat "$dir/port")" -U flexcharge flexcharge
    if [ -n "${4:-}" ]; then
        # A watchdog, so a test run that dies does not leave a server behind.
        nohup bash -c "while kill -0 $4 2>/dev/null; do sleep 1; done; \"$(readlink -f "$0")\" stop \"$dir\"; rm -rf \"$dir\"" \
            >/dev/null 2>&1 </dev/null &
    fi
    echo "DATABASE_URL=$(url_of)"
    ;;
stop)
    [ -f "$data/PG_VERSION" ] && as_owner "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null || true
    ;;
restart)
    as_owner "$bindir/pg_ctl" -D "$data" -l "$dir/server.log" -m fast -w -t 60 restart >/dev/null
    ;;
url)
    url_of
    ;;
*)
    echo "pg-cluster: unknown command $cmd" >&2; exit 2 ;;
esac
