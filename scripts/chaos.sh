#!/usr/bin/env bash
# The chaos suite against a fresh local 3-node cluster (real processes on
# 127.0.0.1, temporary data directories): concurrent clients on every node,
# one fault per round (SIGKILL of the leader or a follower and a restart,
# SIGSTOP/SIGCONT of either), then the checks — nothing acknowledged lost, no
# stale read (a per-key linearizability check), every ciphertext decrypts on
# every node — and write-resumption times per fault. See docs/chaos.md.
#
#   scripts/chaos.sh [--rounds N] [--seed S] [--out FILE] [--faults NAME,...] [--release]
#
# Prints a one-line summary, writes the JSON report (default
# chaos-report.json), and exits non-zero if anything was lost or stale.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
profile=debug
args=()
for a in "$@"; do
  if [ "$a" = --release ]; then profile=release; else args+=("$a"); fi
done
flags=()
[ "$profile" = release ] && flags+=(--release)
cargo build -q "${flags[@]}" -p arca -p arca-system-tests --bin arca --bin arca-chaos \
  --manifest-path "$root/Cargo.toml"
exec "$root/target/$profile/arca-chaos" "${args[@]}"
