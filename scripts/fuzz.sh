#!/usr/bin/env bash
# Runs every fuzz target for a chosen time each (default 60 s), on its
# committed corpus (fuzz/corpus/<target>), which grows as the fuzzer finds
# new inputs. A crash stops the run and leaves the input in
# fuzz/artifacts/<target>/.
#
# usage: scripts/fuzz.sh [SECONDS] [TARGET...]
# Needs the nightly toolchain; installs cargo-fuzz from crates.io if missing.
# With ARCA_FUZZ_SCRATCH=1 (the test command sets it) new inputs go to a
# temporary directory and the committed corpus is only read.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=${1:-60}
shift || true
rustup toolchain list | grep -q '^nightly' || {
  echo "the nightly toolchain is required: rustup toolchain install nightly" >&2; exit 1; }
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --version 0.13.2 --locked
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)

cargo +nightly fuzz build -O
scratch=""
if [ "${ARCA_FUZZ_SCRATCH:-0}" = 1 ]; then
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
fi
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  dirs=("corpus/$t")
  [ -z "$scratch" ] || { mkdir -p "$scratch/$t"; dirs=("$scratch/$t" "corpus/$t"); }
  echo "==> $t ($seconds s)"
  # An input that runs for more than 10 s is a hang, and fails like a crash.
  cargo +nightly fuzz run -O "$t" "${dirs[@]}" -- \
    -max_total_time="$seconds" -max_len=4096 -timeout=10 -print_final_stats=1 2>&1 |
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)|cov:.*DONE|SUMMARY|panicked' || true
  [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "$t found a crash: see fuzz/artifacts/$t/" >&2; exit 1; }
done
