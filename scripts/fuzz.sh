#!/usr/bin/env bash
# Runs every fuzz target for a chosen time each (default 60 s), on its
# committed corpus (fuzz/corpus/<target>), which grows as the fuzzer finds
# new inputs. A crash stops the run and leaves the input in
# fuzz/artifacts/<target>/.
#
# usage: scripts/fuzz.sh [SECONDS] [TARGET...]
# Needs the nightly toolchain; installs cargo-fuzz from crates.io if missing.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=${1:-60}
shift || true
rustup toolchain list | grep -q '^nightly' || {
  echo "the nightly toolchain is required: rustup toolchain install nightly" >&2; exit 1; }
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)

cargo +nightly fuzz build -O
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  echo "==> $t ($seconds s)"
  cargo +nightly fuzz run -O "$t" "corpus/$t" -- \
    -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 2>&1 |
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)|cov:.*DONE|SUMMARY|panicked' || true
  [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "$t found a crash: see fuzz/artifacts/$t/" >&2; exit 1; }
done
