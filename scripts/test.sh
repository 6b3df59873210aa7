#!/usr/bin/env bash
# THE test command: installs test deps, lints, unit-tests, builds, and runs the
# end-to-end suite against real clients (docker, podman, skopeo, ctr, oras-py, helm).
#
#   scripts/test.sh                 # everything
#   scripts/test.sh -k docker       # extra args go to pytest
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

step "cargo test"
cargo test --workspace

step "cargo build --release -p wharf"
cargo build --release -p wharf
export WHARF_BIN="${WHARF_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/wharf}"

step "start daemons"
scripts/start-daemons.sh

step "end-to-end tests"
python3 -m pytest -q tests/e2e "$@"
