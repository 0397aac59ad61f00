#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60) under libFuzzer with AddressSanitizer.
#   bash fuzz/run.sh [SECONDS] [TARGET...]
# Needs cargo-fuzz (`cargo install cargo-fuzz`). cargo-fuzz asks for nightly-only flags;
# RUSTC_BOOTSTRAP=1 lets the stable compiler take them (these machines have no nightly).
# Each target starts from its kept inputs (crates/fuzz-targets/regressions/<target>); a
# crash is written to fuzz/artifacts/<target>/: copy it into that regressions directory,
# where `cargo test -p fuzz-targets` replays it, and fix the kind of fault it shows.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
shift || true
export RUSTC_BOOTSTRAP=1
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  # Every target fuzz/Cargo.toml declares.
  mapfile -t targets < <(cargo fuzz list)
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/microlith-fuzz-target}"
mkdir -p logs
for t in "${targets[@]}"; do
  corpus="corpus/$t"
  mkdir -p "$corpus"
  echo "== $t for ${seconds}s"
  start=$(date +%s)
  status=0
  cargo fuzz run "$t" "$corpus" ../crates/fuzz-targets/regressions/"$t" -- \
    -max_total_time="$seconds" -print_final_stats=1 > "logs/$t.log" 2>&1 || status=$?
  grep -E "^stat::number_of_executed_units|Done [0-9]+ runs|ERROR|panicked|SUMMARY" "logs/$t.log" || true
  echo "   $t: $(( $(date +%s) - start ))s (build included), exit $status; log in fuzz/logs/$t.log"
  [ "$status" -eq 0 ] || exit "$status"
done
