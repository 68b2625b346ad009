#!/usr/bin/env bash
# Runs every fuzz target for a chosen time each (default 60 s), on its
# committed corpus (fuzz/corpus/<target>), which grows as the fuzzer finds
# new inputs. Targets run side by side, one per core (ARCA_FUZZ_JOBS sets
# how many at once). A crash or a hang fails the run, prints the end of the
# fuzzer's output and leaves the input in fuzz/artifacts/<target>/.
#
# usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#        scripts/fuzz.sh build      (only build the targets)
# Needs the nightly toolchain; installs cargo-fuzz from crates.io if missing.
# With ARCA_FUZZ_SCRATCH=1 (the test command sets it) new inputs go to a
# temporary directory and the committed corpus is only read.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=${1:-60}
shift || true
jobs=${ARCA_FUZZ_JOBS:-$(nproc)}
toolchains="$(rustup toolchain list)" # not piped into grep -q: see test.sh
grep -q '^nightly' <<<"$toolchains" || {
  echo "the nightly toolchain is required: rustup toolchain install nightly" >&2; exit 1; }
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --version 0.13.2 --locked
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)

cargo +nightly fuzz build -O
[ "$seconds" != build ] || exit 0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One target: its output goes to $work/<target>.log, its exit status to
# $work/<target>.status.
run_target() {
  local t=$1
  mkdir -p "corpus/$t"
  local dirs=("corpus/$t")
  if [ "${ARCA_FUZZ_SCRATCH:-0}" = 1 ]; then
    mkdir -p "$work/new/$t"
    dirs=("$work/new/$t" "corpus/$t")
  fi
  # An input that runs for more than 10 s is a hang, and fails like a crash.
  local status=0
  cargo +nightly fuzz run -O "$t" "${dirs[@]}" -- \
    -max_total_time="$seconds" -max_len=4096 -timeout=10 -print_final_stats=1 \
    >"$work/$t.log" 2>&1 || status=$?
  echo "$status" >"$work/$t.status"
}

echo "==> ${#targets[@]} targets, $seconds s each, $jobs at a time"
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  run_target "$t" &
done
wait

failed=()
for t in "${targets[@]}"; do
  status=$(cat "$work/$t.status" 2>/dev/null || echo 1)
  echo "==> $t"
  grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)|DONE +cov:' "$work/$t.log" || true
  if [ "$status" != 0 ]; then
    tail -n 60 "$work/$t.log"
    echo "$t found a crash: see fuzz/artifacts/$t/" >&2
    failed+=("$t")
  fi
done
[ ${#failed[@]} -eq 0 ] || { echo "fuzzing failed: ${failed[*]}" >&2; exit 1; }
