#!/usr/bin/env bash
# THE test command: installs test deps, lints, starts the scale-out backends (Garage S3 +
# PostgreSQL, scripts/backends.sh), unit-tests, builds, and runs the end-to-end suite against
# real clients (docker, podman, skopeo, ctr, oras-py, helm) twice: against single wharf
# processes (SQLite + files), then in scale-out mode (two wharf nodes on PostgreSQL + S3
# behind nginx). The backends are stopped on exit.
#
#   scripts/test.sh                 # everything
#   scripts/test.sh -k docker       # extra args go to pytest (both e2e runs)
#
# Env: CI=true makes missing clients fail instead of skip; WHARF_BIN overrides the binary.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }

step "install test dependencies"
scripts/install-test-deps.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "scale-out backends: Garage (S3) + PostgreSQL"
# exports WHARF_TEST_PG_URL and WHARF_TEST_S3_* for the Rust tests and the e2e suite;
# stops both and removes their data on exit
source scripts/backends.sh start

step "cargo test"
cargo test --workspace

step "cargo test: the router tests again, on PostgreSQL + S3"
# (--workspace keeps the features of the run above, so nothing is rebuilt)
WHARF_TEST_BACKEND=scale cargo test --workspace --test registry_api --test hub_api --test hub_repos --test web --test rate_limits --test analytics --test analytics_web --test extensions

step "cargo build --release -p wharf"
cargo build --release -p wharf
export WHARF_BIN="${WHARF_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/wharf}"

step "start daemons"
scripts/start-daemons.sh

# Both runs always run; the script fails if either does. pytest's 5 ("no tests selected",
# e.g. a -k that matches only one run's tests) counts as a pass unless both runs say it.
e2e() { # e2e MODE ARGS...
    local mode=$1 rc=0
    shift
    WHARF_E2E_BACKEND=$mode python3 -m pytest -q tests/e2e "$@" || rc=$?
    return $rc
}

step "end-to-end tests: single process (SQLite + files), plus tests/e2e/test_scale.py"
rc_single=0
e2e single "$@" || rc_single=$?

step "end-to-end tests: scale-out (2 nodes on PostgreSQL + S3 behind nginx)"
rc_scale=0
e2e scale --ignore=tests/e2e/test_scale.py "$@" || rc_scale=$?

echo "e2e exit codes: single=$rc_single scale=$rc_scale"
if [[ $rc_single == 5 && $rc_scale == 5 ]]; then exit 5; fi
for rc in "$rc_single" "$rc_scale"; do
    if [[ $rc != 0 && $rc != 5 ]]; then exit "$rc"; fi
done
