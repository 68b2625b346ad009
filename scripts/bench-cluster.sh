#!/usr/bin/env bash
# Writes through a real 3-node cluster on this machine: `arca bench OP`
# (create-key unless given) against node 1 (the first leader), every node
# with its own data directory and fsync. Prints the bench's figures and the
# CPU time of all three nodes together per request.
#
# usage: ARCA_BIN=target/release/arca scripts/bench-cluster.sh [OP] [BENCH ARGS...]
# e.g.   ARCA_BIN=target/release/arca scripts/bench-cluster.sh create-key --connections 64 --seconds 10
source "$(dirname "$0")/runbooks/lib.sh"

op=create-key
if [[ $# -gt 0 && $1 != --* ]]; then op=$1; shift; fi

# utime + stime of a process, in clock ticks.
cpu_ticks() { awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$1/stat"; }
all_ticks() { local t=0; for p in "${pid[@]}"; do t=$((t + $(cpu_ticks "$p"))); done; echo "$t"; }

new_cluster 3
out="$work/bench.out"
before=$(all_ticks); start_s=$(date +%s.%N)
arca bench "$op" --endpoint "http://${api[a1]}" --server-pid "${pid[a1]}" "$@" | tee "$out"
after=$(all_ticks); end_s=$(date +%s.%N)
requests=$(awk '/requests:/ { print $2 }' "$out")
hz=$(getconf CLK_TCK)
awk -v b="$before" -v a="$after" -v r="$requests" -v hz="$hz" -v s="$start_s" -v e="$end_s" 'BEGIN {
  printf "  all three nodes: %.2f s CPU over the whole run (%.1f s), %.1f µs per measured request (includes warm-up)\n",
    (a - b) / hz, e - s, (a - b) / hz * 1e6 / r }'
