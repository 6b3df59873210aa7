#!/usr/bin/env bash
# Runs every wharf fuzz target, one after another, for SECONDS each (default 600), at the
# lowest CPU priority. New inputs go to corpus/<target> (gitignored); the committed seeds in
# seeds/<target> are read but never written. Crashes land in artifacts/<target>/.
# Logs: target/fuzz-logs/<target>.log. Exits non-zero if any target failed.
#
#   ./run-all.sh            # 600 s per target
#   ./run-all.sh 60         # a quick pass
#   ./run-all.sh 600 range  # only some targets
set -uo pipefail

cd "$(dirname "$0")"
secs="${1:-600}"
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(reference digest range manifest)

# Only stable Rust is installed; cargo-fuzz needs -Z flags (sanitizers), which
# RUSTC_BOOTSTRAP=1 unlocks on a stable toolchain.
export RUSTC_BOOTSTRAP=1

dict_for() {
    case "$1" in
        manifest) echo dicts/manifest.dict ;;
        range) echo dicts/range.dict ;;
        reference | digest) echo dicts/reference.dict ;;
    esac
}

mkdir -p target/fuzz-logs
failed=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    log="target/fuzz-logs/$t.log"
    echo "== $t: ${secs}s (log: fuzz/$log)"
    nice -n 19 cargo fuzz run "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 -dict="$(dict_for "$t")" \
        >"$log" 2>&1
    rc=$?
    grep -E '^#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::new_units_added' "$log" | tail -3
    if [ $rc -ne 0 ]; then
        echo "!! $t FAILED (exit $rc); see $log and artifacts/$t/"
        failed+=("$t")
    fi
done

if [ ${#failed[@]} -ne 0 ]; then
    echo "failed: ${failed[*]}"
    exit 1
fi
echo "all targets ran clean"
