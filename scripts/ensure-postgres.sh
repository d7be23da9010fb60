#!/usr/bin/env bash
# Makes a PostgreSQL server reachable for the test suite and prints the
# DATABASE_URL to use on stdout (progress goes to stderr), so callers write:
#
#     DATABASE_URL="$(scripts/ensure-postgres.sh)"; export DATABASE_URL
#
# Idempotent, and never needs systemd. In order, it:
#   1. reuses $DATABASE_URL if it is already set and answers;
#   2. reuses a server already answering at 127.0.0.1:5432 as user postgres;
#   3. starts an existing local cluster (pg_lsclusters / pg_ctlcluster);
#   4. otherwise installs PostgreSQL with apt-get (root only) and starts it.
# When a local cluster answers but refuses the passwordless login, it adds
# `trust` rules for loopback connections to that cluster's pg_hba.conf
# (marked "baton ensure-postgres") and reloads it. That is meant for
# development and CI machines only.
#
# Overrides: BATON_PG_HOST (127.0.0.1), BATON_PG_PORT (5432),
# BATON_PG_USER (postgres), BATON_PG_WAIT_SECS (30).
set -euo pipefail

host="${BATON_PG_HOST:-127.0.0.1}"
port="${BATON_PG_PORT:-5432}"
user="${BATON_PG_USER:-postgres}"
wait_secs="${BATON_PG_WAIT_SECS:-30}"
hba_marker="# baton ensure-postgres"

log() { printf 'ensure-postgres: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

url() { printf 'postgres://%s@%s:%s/postgres' "$user" "$host" "$1"; }

# Is anything accepting connections at host:$1? Uses pg_isready when
# available, else a bare TCP connect.
is_up() {
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -h "$host" -p "$1" -t 3
    else
        (exec 3<>"/dev/tcp/$host/$1") 2>/dev/null
    fi
}

# Can we log in and run a query with the URL $1? Without psql we can only
# trust the server being up.
can_login() {
    if command -v psql >/dev/null 2>&1; then
        PGCONNECT_TIMEOUT=3 psql "$1" -XAtqc 'select 1' >/dev/null 2>&1
    else
        local hostport="${1#*@}"
        hostport="${hostport%%/*}"
        is_up "${hostport##*:}"
    fi
}

wait_until_up() {
    local deadline=$((SECONDS + wait_secs))
    until is_up "$1"; do
        if ((SECONDS >= deadline)); then
            die "PostgreSQL did not accept connections on $host:$1 within ${wait_secs}s"
        fi
        sleep 1
    done
}

# Prints "<version> <name> <port> <status>" for the cluster to use: the one
# on $port if there is one, else the first listed. Prints nothing if there
# are no clusters (or no postgresql-common).
pick_cluster() {
    command -v pg_lsclusters >/dev/null 2>&1 || return 0
    local clusters
    clusters="$(pg_lsclusters --no-header 2>/dev/null | awk '{print $1, $2, $3, $4}')"
    [ -n "$clusters" ] || return 0
    printf '%s\n' "$clusters" | awk -v p="$port" '$3 == p' | head -n 1 | grep . ||
        printf '%s\n' "$clusters" | head -n 1
}

start_cluster() { # version name
    log "starting cluster $1/$2"
    pg_ctlcluster --skip-systemctl-redirect "$1" "$2" start
}

# Lets $user in without a password over loopback, then reloads.
allow_trust() { # version name
    local hba="/etc/postgresql/$1/$2/pg_hba.conf"
    [ -w "$hba" ] || die "cannot log in as $user and cannot edit $hba (run as root, or set DATABASE_URL)"
    if ! grep -qF "$hba_marker" "$hba"; then
        log "adding loopback trust rules to $hba"
        # pg_hba.conf is first-match, so the rules go at the top.
        local tmp
        tmp="$(mktemp)"
        {
            printf '%s: passwordless loopback access for local tests\n' "$hba_marker"
            printf 'local   all   all                  trust\n'
            printf 'host    all   all   127.0.0.1/32   trust\n'
            printf 'host    all   all   ::1/128        trust\n'
            cat "$hba"
        } >"$tmp"
        cat "$tmp" >"$hba" # keeps the file's owner and mode
        rm -f "$tmp"
    fi
    pg_ctlcluster --skip-systemctl-redirect "$1" "$2" reload
}

install_postgres() {
    [ "$(id -u)" -eq 0 ] || die "PostgreSQL is not installed and we are not root; install it or set DATABASE_URL"
    command -v apt-get >/dev/null 2>&1 || die "PostgreSQL is not installed and apt-get is unavailable; install it or set DATABASE_URL"
    log "installing PostgreSQL with apt-get"
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
}

# 1. An explicit DATABASE_URL wins.
if [ -n "${DATABASE_URL:-}" ]; then
    if can_login "$DATABASE_URL"; then
        log "using DATABASE_URL from the environment"
        printf '%s\n' "$DATABASE_URL"
        exit 0
    fi
    die "DATABASE_URL is set but does not answer; unset it to let this script provide a server"
fi

# 2. Already running and usable (the common case).
if is_up "$port" && can_login "$(url "$port")"; then
    log "PostgreSQL already running at $host:$port"
    url "$port"
    printf '\n'
    exit 0
fi

# 3 and 4. Find (or make) a local cluster, start it, make it usable.
cluster="$(pick_cluster)"
if [ -z "$cluster" ]; then
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
        install_postgres
    fi
    cluster="$(pick_cluster)"
    if [ -z "$cluster" ]; then
        # The Debian package normally creates "main"; it can be configured not to.
        # The newest installed server version.
        version="$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -V | tail -n 1)"
        [ -n "$version" ] || die "no PostgreSQL server binaries under /usr/lib/postgresql"
        log "creating cluster $version/main on port $port"
        pg_createcluster --port "$port" "$version" main >&2
        cluster="$(pick_cluster)"
    fi
fi
[ -n "$cluster" ] || die "no PostgreSQL cluster found after installation"
read -r version name cluster_port status <<<"$cluster"

if [ "$status" != "online" ]; then
    start_cluster "$version" "$name" >&2
fi
wait_until_up "$cluster_port"

if ! can_login "$(url "$cluster_port")"; then
    allow_trust "$version" "$name" >&2
    wait_until_up "$cluster_port"
    can_login "$(url "$cluster_port")" || die "still cannot log in as $user at $host:$cluster_port"
fi

log "PostgreSQL $version/$name ready at $host:$cluster_port"
url "$cluster_port"
printf '\n'
