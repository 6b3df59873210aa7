#!/usr/bin/env bash
# Start the daemons the end-to-end tests need, when they are not already running.
#
#   dockerd: started only when `docker info` fails, with the vfs storage driver and no
#   iptables/bridge (works inside containers and sandboxes). Its log goes to
#   $WHARF_DOCKERD_LOG (default /tmp/wharf-e2e-dockerd.log). 127.0.0.0/8 is an insecure
#   registry range by default, so no daemon.json is needed for 127.0.0.1:PORT registries.
#
# containerd for the ctr tests is NOT started here: the pytest suite starts its own private
# containerd (own root, state and socket) per test session and stops it afterwards.
#
# Idempotent: a second run returns at once when dockerd answers.
set -euo pipefail

log="${WHARF_DOCKERD_LOG:-/tmp/wharf-e2e-dockerd.log}"
timeout_s="${WHARF_DOCKERD_TIMEOUT:-90}"

if docker info >/dev/null 2>&1; then
    echo "start-daemons: dockerd already running"
    exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
    echo "start-daemons: dockerd not installed (run scripts/install-test-deps.sh)" >&2
    exit 1
fi

echo "start-daemons: starting dockerd (log: $log)"
# setsid + nohup: the daemon outlives this script and the test run; stdin closed.
setsid nohup dockerd --storage-driver=vfs --iptables=false --bridge=none \
    >>"$log" 2>&1 </dev/null &
pid=$!
echo "$pid" >"${log%.log}.pid"

for _ in $(seq 1 "$timeout_s"); do
    if docker info >/dev/null 2>&1; then
        echo "start-daemons: dockerd ready (pid $pid)"
        exit 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "start-daemons: dockerd exited; last log lines:" >&2
        tail -n 30 "$log" >&2 || true
        exit 1
    fi
    sleep 1
done
echo "start-daemons: dockerd not ready after ${timeout_s}s; last log lines:" >&2
tail -n 30 "$log" >&2 || true
exit 1
