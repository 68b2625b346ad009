#!/usr/bin/env bash
# Many keys on one node: Encrypt on an empty node, then CreateKey from 64
# connections for SECONDS (default 170: about 850,000 keys on 2 cores) with
# the server's resident memory sampled every second, then a restart (time
# to /ready, memory at rest), then Encrypt again. ARCA_BIN names the binary
# (default target/release/arca), ARCA_CONFIG an optional config file for the
# server (e.g. one with `[storage] cache_mib`). Results: docs/performance.md,
# "Many keys".
set -euo pipefail
secs=${1:-170}
bin=${ARCA_BIN:-$(cd "$(dirname "$0")/.." && pwd)/target/release/arca}
dir=$(mktemp -d "${TMPDIR:-/tmp}/arca-many-keys.XXXXXX")
port=$((20000 + RANDOM % 20000))
endpoint="http://127.0.0.1:$port"
pid=
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT

start() {
  (cd "$dir" && ARCA_LOG=warn,arca_node::store::snapshot=info exec "$bin" server --dev ${ARCA_CONFIG:+--config "$ARCA_CONFIG"} --listen-addr "127.0.0.1:$port" \
    --peer-addr "127.0.0.1:$((port + 1))" >>server.log 2>&1) &
  pid=$!
  for _ in $(seq 600); do
    curl -sf "$endpoint/ready" >/dev/null && return 0
    sleep 0.05
  done
  echo "the server did not become ready" >&2
  exit 1
}
rss_kb() { awk '/VmRSS/ { print $2 }' "/proc/$pid/status"; }
# utime + stime of the server, in clock ticks.
cpu_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat"; }
created() {
  curl -s "$endpoint/metrics" |
    awk '/^arca_requests_total\{operation="CreateKey",code="OK"\}/ { print $2 }'
}
# Both Encrypt runs use one key, created by the first: once a million writes
# fill the retry table, a new CreateKey waits for old entries to expire.
# During CreateKey the keys created and the server's CPU are sampled every
# 5 s, and the rate and CPU per CreateKey are printed per 100,000 keys: the
# slope as the count grows, within one run.
key=
encrypt() {
  local out
  out=$("$bin" bench encrypt --endpoint "$endpoint" --connections 32 --seconds 10 \
    --plaintext-bytes 64 ${key:+--key-id "$key"})
  [ -n "$key" ] || key=$(awk '/^key: / { print $2 }' <<<"$out")
  tail -3 <<<"$out"
}

start
AWS_ACCESS_KEY_ID=$(grep -oE "aws_access_key_id: +[A-Z0-9]+" "$dir/server.log" | awk '{ print $2 }')
AWS_SECRET_ACCESS_KEY=$(grep -oE "aws_secret_access_key: +[^ ]+" "$dir/server.log" | awk '{ print $2 }')
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY

echo "== Encrypt, empty node"
encrypt
(while kill -0 "$pid" 2>/dev/null; do rss_kb; sleep 1; done) >"$dir/rss.txt" 2>/dev/null &
(while kill -0 "$pid" 2>/dev/null; do
  echo "$(date +%s%N) $(created) $(cpu_ticks)"
  sleep 5
done) >"$dir/samples.txt" 2>/dev/null &
sampler=$!
echo "== CreateKey, $secs s"
# Past 1,000,000 writes within 10 minutes the node refuses more with
# ThrottlingException (the retry table's DEDUP_CAPACITY): a run that long
# counts those as errors, and the key count stays at 1,000,000.
RUST_BACKTRACE=0 "$bin" bench create-key --endpoint "$endpoint" --connections 64 --seconds "$secs" 2>&1 | tail -4 || true
kill "$sampler" 2>/dev/null || true
echo "== CreateKey per 100,000 keys (from samples every 5 s)"
awk -v hz="$(getconf CLK_TCK)" '
  $2 == "" { next }
  !started { t0 = $1; k0 = $2; c0 = $3; started = 1; next }
  function row(t, k, c, note) {
    printf "  keys %7d - %7d: %6.0f CreateKey/s, %5.0f us server CPU per CreateKey%s\n",
      k0, k, (k - k0) / ((t - t0) / 1e9), (c - c0) / hz * 1e6 / (k - k0), note
    t0 = t; k0 = k; c0 = c
  }
  $2 >= k0 + 100000 { row($1, $2, $3, "") }
  { t = $1; k = $2; c = $3 }
  END { if (k > k0) row(t, k, c, " (to the end; the rate counts up to 5 s after it)") }' "$dir/samples.txt"
echo "max RSS under load: $(sort -n "$dir/rss.txt" | tail -1) KiB; data file: $(stat -c %s "$dir/arca-data/arca.redb") bytes"

kill -TERM "$pid"
while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
t0=$(date +%s%N)
start
t1=$(date +%s%N)
echo "== restart: ready after $(( (t1 - t0) / 1000000 )) ms; RSS at rest $(rss_kb) KiB"
echo "== Encrypt, full node"
encrypt
echo "RSS after: $(rss_kb) KiB"
echo "== snapshots built (index, bytes, encode and store time) and slow log appends, in order"
grep -E 'snapshot built|a log append took long' "$dir/server.log" | sed -E 's/ +(INFO|WARN) +[^ ]+: / /' || true
