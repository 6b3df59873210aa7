#!/usr/bin/env bash
# The scale-out backends for the tests: a single-node Garage (S3) and a throwaway PostgreSQL
# cluster, on loopback, in a temporary work dir. Also installs nginx (the e2e suite's load
# balancer in scale-out mode). Needs root (apt, `su postgres`).
#
#   source scripts/backends.sh start   # start, export WHARF_TEST_* here, stop on EXIT
#   scripts/backends.sh start          # start and print the `export` lines; stop yourself:
#   scripts/backends.sh stop           # stop what the last start started, remove its work dir
#   scripts/backends.sh install        # only install (idempotent; version-checked)
#   scripts/backends.sh env            # print the exports of the running backends
#
# Exports WHARF_TEST_S3_ENDPOINT, WHARF_TEST_S3_REGION, WHARF_TEST_S3_BUCKET,
# WHARF_TEST_S3_ACCESS_KEY, WHARF_TEST_S3_SECRET_KEY, WHARF_TEST_PG_URL
# (postgres://wharf:wharf@127.0.0.1:55432/wharf_test; the role `wharf` has CREATEDB) and
# WHARF_TEST_GARAGE_BIN (the garage binary, for tests that run a Garage cluster of their own).
#
# Installs (each only when missing): Garage 2.5.0 with `cargo install --no-default-features
# --features bundled-libs,sqlite` (~8 min once per machine, 2 cores), postgresql and nginx
# from apt. Once installed, start + stop take a few seconds.
#
# Ports: S3 3900, Garage RPC 3901, PostgreSQL 55432 (WHARF_BACKENDS_S3_PORT,
# WHARF_BACKENDS_RPC_PORT, WHARF_BACKENDS_PG_PORT to change). Backends left over from an
# earlier run that crashed are found by the state file (or by their command line holding a
# wharf-backends work dir) and stopped first; anything else on those ports is an error.

_wb_sourced=0
if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then _wb_sourced=1; fi

if [[ $_wb_sourced == 1 ]]; then
    # Sourced: do the work in a child bash (its `set -e` must not touch the caller's shell),
    # then take its exports and register the stop on the caller's EXIT.
    _wb_script="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
    case "${1:-start}" in
    start)
        if ! _wb_exports="$(bash "$_wb_script" start)"; then
            echo "backends: start failed (see the messages above)" >&2
            unset _wb_exports _wb_script _wb_sourced
            return 1
        fi
        eval "$_wb_exports"
        printf '%s\n' "$_wb_exports" | sed 's/SECRET_KEY=.*/SECRET_KEY=…/' >&2
        # Chain onto an existing EXIT trap instead of replacing it.
        _wb_prev_trap=""
        _wb_take_trap() { _wb_prev_trap=${3:-}; }
        eval "_wb_take_trap $(trap -p EXIT)"
        unset -f _wb_take_trap
        # shellcheck disable=SC2064
        trap "${_wb_prev_trap:+$_wb_prev_trap; }bash '$_wb_script' stop" EXIT
        unset _wb_exports _wb_prev_trap _wb_script _wb_sourced
        return 0
        ;;
    *)
        bash "$_wb_script" "$@"
        _wb_rc=$?
        unset _wb_script _wb_sourced
        return $_wb_rc
        ;;
    esac
fi

set -euo pipefail
export PATH="$HOME/.cargo/bin:$PATH"

GARAGE_VERSION=2.5.0
S3_PORT="${WHARF_BACKENDS_S3_PORT:-3900}"
RPC_PORT="${WHARF_BACKENDS_RPC_PORT:-3901}"
PG_PORT="${WHARF_BACKENDS_PG_PORT:-55432}"
BUCKET=wharf-test
REGION=garage
STATE="${WHARF_BACKENDS_STATE:-/tmp/wharf-backends.state}"   # env of the running backends
WORK_PREFIX=/tmp/wharf-backends.

log() { printf 'backends: %s\n' "$*" >&2; }
die() {
    printf 'backends: ERROR: %s\n' "$*" >&2
    exit 1
}

need_root() {
    [[ $(id -u) == 0 ]] || die "must run as root (apt-get, and initdb/pg_ctl through su postgres)"
}

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

# --------------------------------------------------------------------------------------
# install
# --------------------------------------------------------------------------------------
apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    local tmp_policy=""
    # Never let a package's postinst start a system service (nginx on :80, a postgres cluster).
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        tmp_policy=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' >"$tmp_policy"
        chmod 755 "$tmp_policy"
    fi
    log "apt-get install $*"
    local rc=0
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@" >/dev/null; } || rc=$?
    [[ -n $tmp_policy ]] && rm -f "$tmp_policy"
    [[ $rc == 0 ]] || die "apt-get install $* failed ($rc)"
}

install_all() {
    need_root
    local apt=()
    [[ -n $(pg_bin) && -x "$(pg_bin)/initdb" ]] || apt+=(postgresql)
    command -v psql >/dev/null 2>&1 || apt+=(postgresql-client)
    command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || apt+=(nginx)
    command -v openssl >/dev/null 2>&1 || apt+=(openssl)
    command -v ss >/dev/null 2>&1 || apt+=(iproute2)
    if [[ ${#apt[@]} -gt 0 ]]; then apt_install "${apt[@]}"; fi

    if ! garage --version 2>/dev/null | grep -q "cargo:$GARAGE_VERSION"; then
        # Another install already building it (by hand, or a parallel run): wait for that one.
        while pgrep -f "cargo install garage" >/dev/null 2>&1; do
            log "a 'cargo install garage' is running; waiting for it"
            sleep 15
        done
        if ! garage --version 2>/dev/null | grep -q "cargo:$GARAGE_VERSION"; then
            command -v cargo >/dev/null 2>&1 || die "cargo not found: Garage is built with cargo install (rustup.rs)"
            log "building Garage $GARAGE_VERSION (cargo install, about 8 min on 2 cores, once per machine)"
            cargo install garage --locked --version "$GARAGE_VERSION" \
                --no-default-features --features bundled-libs,sqlite \
                || die "cargo install garage $GARAGE_VERSION failed"
        fi
        garage --version 2>/dev/null | grep -q "cargo:$GARAGE_VERSION" \
            || die "garage $GARAGE_VERSION not on PATH after the install ($(command -v garage || echo none))"
    fi
}

# --------------------------------------------------------------------------------------
# stop (also: clean up what a crashed run left behind)
# --------------------------------------------------------------------------------------
# pid listening on 127.0.0.1:PORT (or any address), empty when none
port_pid() {
    { ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2; } || true
}
port_busy() { [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]; }

wait_gone() { # wait_gone PID SECONDS
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}

stop_garage_pid() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || return 0
    if ! wait_gone "$pid" 10; then
        log "garage $pid ignored SIGTERM for 10 s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        wait_gone "$pid" 5 || true
    fi
}

stop_pg_datadir() {
    local data=$1 pgb
    pgb=$(pg_bin)
    if [[ -f $data/postmaster.pid && -n $pgb ]]; then
        su postgres -s /bin/sh -c "$pgb/pg_ctl -D '$data' -m fast -w -t 20 stop" >/dev/null 2>&1 \
            || su postgres -s /bin/sh -c "$pgb/pg_ctl -D '$data' -m immediate -w -t 10 stop" >/dev/null 2>&1 \
            || true
    fi
}

stop_all() {
    if [[ -f $STATE ]]; then
        local WORK="" GARAGE_PID="" PG_DATA=""
        # shellcheck disable=SC1090
        source "$STATE"
        if [[ -n $GARAGE_PID ]] && tr '\0' ' ' <"/proc/$GARAGE_PID/cmdline" 2>/dev/null | grep -q "garage"; then
            stop_garage_pid "$GARAGE_PID"
        fi
        [[ -n $PG_DATA ]] && stop_pg_datadir "$PG_DATA"
        [[ -n $WORK && $WORK == "$WORK_PREFIX"* ]] && rm -rf "$WORK"
        rm -f "$STATE"
        log "stopped (work dir $WORK removed)"
    fi
    # Anything of ours still on the ports (a run whose state file is gone)?
    local port pid cmd
    for port in "$S3_PORT" "$RPC_PORT" "$PG_PORT"; do
        pid=$(port_pid "$port")
        [[ -n $pid ]] || continue
        cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
        if [[ $cmd == *"$WORK_PREFIX"* ]]; then
            if [[ $cmd == *garage* ]]; then
                log "stopping a leftover garage (pid $pid) on port $port: $cmd"
                stop_garage_pid "$pid"
            else
                local data
                data=$(sed -nE 's/.* -D ([^ ]+).*/\1/p' <<<"$cmd")
                log "stopping a leftover postgres (pid $pid) on port $port: $cmd"
                [[ -n $data && -d $data ]] && stop_pg_datadir "$data"
                if kill -0 "$pid" 2>/dev/null; then
                    kill -TERM "$pid" 2>/dev/null || true
                    wait_gone "$pid" 10 || kill -KILL "$pid" 2>/dev/null || true
                fi
            fi
        fi
    done
    # Work dirs of crashed runs whose processes are gone.
    local d
    for d in "$WORK_PREFIX"*; do
        [[ -d $d ]] || continue
        if ! pgrep -f -- "$d" >/dev/null 2>&1; then rm -rf "$d"; fi
    done
}

# --------------------------------------------------------------------------------------
# start
# --------------------------------------------------------------------------------------
print_env() {
    [[ -f $STATE ]] || die "no backends running (no $STATE)"
    local WORK="" GARAGE_PID="" PG_DATA="" S3_ENDPOINT="" ACCESS_KEY="" SECRET_KEY="" PG_URL="" GARAGE_BIN=""
    # shellcheck disable=SC1090
    source "$STATE"
    printf 'export WHARF_TEST_S3_ENDPOINT=%q\n' "$S3_ENDPOINT"
    printf 'export WHARF_TEST_S3_REGION=%q\n' "$REGION"
    printf 'export WHARF_TEST_S3_BUCKET=%q\n' "$BUCKET"
    printf 'export WHARF_TEST_S3_ACCESS_KEY=%q\n' "$ACCESS_KEY"
    printf 'export WHARF_TEST_S3_SECRET_KEY=%q\n' "$SECRET_KEY"
    printf 'export WHARF_TEST_PG_URL=%q\n' "$PG_URL"
    printf 'export WHARF_TEST_GARAGE_BIN=%q\n' "$GARAGE_BIN"
}

start_all() {
    need_root
    install_all
    stop_all # a previous run (crashed or not) must not be in the way
    local port pid
    for port in "$S3_PORT" "$RPC_PORT" "$PG_PORT"; do
        if port_busy "$port"; then
            pid=$(port_pid "$port")
            die "port $port is taken by pid ${pid:-?} ($(tr '\0' ' ' <"/proc/${pid:-0}/cmdline" 2>/dev/null || echo unknown)); stop it or set WHARF_BACKENDS_*_PORT"
        fi
    done

    local t0=$SECONDS
    WORK=$(mktemp -d "${WORK_PREFIX}XXXXXX")
    chmod 755 "$WORK" # postgres must traverse it
    local gdir=$WORK/garage pgdir=$WORK/pg pgb garage_bin
    mkdir -p "$gdir"
    install -d -o postgres -g postgres "$pgdir"
    pgb=$(pg_bin)
    garage_bin=$(command -v garage)

    # ---------- Garage, single node; key + bucket created at startup ----------
    local access_key secret_key
    access_key="GK$(openssl rand -hex 12)"
    secret_key=$(openssl rand -hex 32)
    cat >"$gdir/garage.toml" <<CONF
metadata_dir = "$gdir/meta"
data_dir = "$gdir/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$RPC_PORT"
rpc_public_addr = "127.0.0.1:$RPC_PORT"
rpc_secret = "$(openssl rand -hex 32)"
[s3_api]
s3_region = "$REGION"
api_bind_addr = "127.0.0.1:$S3_PORT"
root_domain = ".s3.garage.localhost"
CONF
    # Write the state file first: a failing start below is still cleaned up by `stop`.
    write_state() {
        cat >"$STATE" <<ST
WORK=$(printf %q "$WORK")
GARAGE_PID=$(printf %q "${GARAGE_PID:-}")
PG_DATA=$(printf %q "$pgdir/data")
S3_ENDPOINT=$(printf %q "http://127.0.0.1:$S3_PORT")
ACCESS_KEY=$(printf %q "$access_key")
SECRET_KEY=$(printf %q "$secret_key")
PG_URL=$(printf %q "postgres://wharf:wharf@127.0.0.1:$PG_PORT/wharf_test")
GARAGE_BIN=$(printf %q "$garage_bin")
ST
        chmod 600 "$STATE"
    }
    GARAGE_PID=""
    write_state
    GARAGE_DEFAULT_ACCESS_KEY=$access_key GARAGE_DEFAULT_SECRET_KEY=$secret_key GARAGE_DEFAULT_BUCKET=$BUCKET \
        setsid bash -c 'echo $$ >"$1"; exec "$2" -c "$3" server --single-node --default-bucket' \
        _ "$gdir/garage.pid" "$garage_bin" "$gdir/garage.toml" \
        >"$gdir/garage.log" 2>&1 </dev/null &
    local i
    for ((i = 0; i < 50; i++)); do [[ -s $gdir/garage.pid ]] && break; sleep 0.02; done
    GARAGE_PID=$(cat "$gdir/garage.pid")
    write_state
    local ok=0
    for ((i = 0; i < 150; i++)); do
        if garage -c "$gdir/garage.toml" bucket info "$BUCKET" >/dev/null 2>&1; then ok=1; break; fi
        kill -0 "$GARAGE_PID" 2>/dev/null || break
        sleep 0.2
    done
    if [[ $ok != 1 ]]; then
        log "garage log ($gdir/garage.log):"
        tail -n 40 "$gdir/garage.log" >&2 || true
        stop_all
        die "Garage did not become ready on 127.0.0.1:$S3_PORT within 30 s"
    fi

    # ---------- PostgreSQL, throwaway cluster (trust auth, no fsync: test data only) ----------
    if ! su postgres -s /bin/sh -c "$pgb/initdb -D '$pgdir/data' -U postgres -A trust --no-sync -E UTF8" \
        >"$pgdir/initdb.log" 2>&1; then
        tail -n 40 "$pgdir/initdb.log" >&2
        stop_all
        die "initdb failed"
    fi
    if ! su postgres -s /bin/sh -c "$pgb/pg_ctl -D '$pgdir/data' -l '$pgdir/log' -w -t 30 -o \"-p $PG_PORT -k '$pgdir' -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300\" start" \
        >/dev/null 2>&1; then
        log "postgres log ($pgdir/log):"
        tail -n 40 "$pgdir/log" >&2 || true
        stop_all
        die "PostgreSQL did not start on 127.0.0.1:$PG_PORT"
    fi
    if ! psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -q \
        -c "CREATE ROLE wharf LOGIN CREATEDB PASSWORD 'wharf'" \
        -c "CREATE DATABASE wharf_test OWNER wharf" >/dev/null; then
        stop_all
        die "could not create the role/database in PostgreSQL"
    fi
    psql "postgres://wharf:wharf@127.0.0.1:$PG_PORT/wharf_test" -qAtc 'select 1' >/dev/null \
        || { stop_all; die "cannot connect as wharf to wharf_test"; }

    log "Garage (S3 127.0.0.1:$S3_PORT, bucket $BUCKET) and PostgreSQL (127.0.0.1:$PG_PORT) up in $((SECONDS - t0)) s; work dir $WORK"
    print_env
}

case "${1:-}" in
install) install_all ;;
start) start_all ;;
stop) stop_all ;;
env) print_env ;;
*)
    echo "usage: source $0 start | $0 {start|stop|install|env}" >&2
    exit 2
    ;;
esac
