#!/usr/bin/env bash
# Throughput and server CPU per request of one or more `arca` builds, each
# started fresh with `server --dev` in a temporary directory, back to back in
# one run. The load generator is the first binary's `arca bench OP` (encrypt
# unless --op says otherwise: decrypt, generate-data-key, sign, floor); the
# server's CPU comes from /proc/PID/stat over the measured window, so builds
# without the metrics counter compare too.
#
# usage: scripts/bench-compare.sh [--rounds N] [--op OP]... BIN... [-- BENCH ARGS...]
# e.g.   scripts/bench-compare.sh --op encrypt --op decrypt ./arca-before ./arca-after -- --seconds 10
set -euo pipefail

rounds=1
ops=()
while [[ ${1:-} == --rounds || ${1:-} == --op ]]; do
    case $1 in
        --rounds) rounds=$2 ;;
        --op) ops+=("$2") ;;
    esac
    shift 2
done
[[ ${#ops[@]} -gt 0 ]] || ops=(encrypt)
bins=()
while [[ $# -gt 0 && $1 != -- ]]; do bins+=("$(realpath "$1")"); shift; done
[[ ${1:-} == -- ]] && shift
[[ ${#bins[@]} -gt 0 ]] || { echo "usage: $0 [--rounds N] BIN... [-- BENCH ARGS...]" >&2; exit 2; }
client=${bins[0]}
port=${ARCA_BENCH_PORT:-7790}

# utime + stime of a process, in clock ticks.
cpu_ticks() {
    awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$1/stat"
}

run_one() {
    local op=$1 bin=$2; shift 2
    local dir pid id secret
    dir=$(mktemp -d)
    (cd "$dir" && ARCA_LOG=warn exec "$bin" server --dev --listen-addr "127.0.0.1:$port" --peer-addr "127.0.0.1:$((port + 1))" >server.log 2>&1) &
    pid=$!
    for _ in $(seq 1 150); do
        curl -sf "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && break
        sleep 0.2
    done
    # Wait until the server is idle (its RSA key pool fills in the
    # background after start-up), so that only requests are measured.
    for _ in $(seq 1 120); do
        local a b
        a=$(cpu_ticks "$pid"); sleep 1; b=$(cpu_ticks "$pid")
        (( b - a <= 2 )) && break
    done
    id=$(grep -oE "aws_access_key_id: +[A-Z0-9]+" "$dir/server.log" | awk '{print $2}')
    secret=$(grep -oE "aws_secret_access_key: +[^ ]+" "$dir/server.log" | awk '{print $2}')
    echo "== $bin"
    AWS_ACCESS_KEY_ID=$id AWS_SECRET_ACCESS_KEY=$secret \
        "$client" bench "$op" --endpoint "http://127.0.0.1:$port" \
        --server-pid "$pid" "$@" || true
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
}

for r in $(seq 1 "$rounds"); do
    for op in "${ops[@]}"; do
        echo "# round $r: $op"
        for b in "${bins[@]}"; do run_one "$op" "$b" "$@"; done
    done
done
