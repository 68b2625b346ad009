# Shared by the cluster runbook scripts in this directory (sourced, not
# run; lib.sh serves the backup and recovery ones): each script carries out
# one procedure of docs/runbooks/cluster.md end to end,
# with the real `arca` binary and CLI, against a real cluster on 127.0.0.1
# in a temporary directory that is removed afterwards (ARCA_RUNBOOK_KEEP=1
# keeps it).
#
#   ARCA_BIN             the arca binary (default: built with cargo)
#   ARCA_RUNBOOK_PAUSE   seconds an operator pauses between steps (default 0)
#
# Node I gets an API port (HTTPS) and a peer port (mutual TLS) picked free on
# 127.0.0.1, certificates from a cluster CA made for the run, and its files in
# $RB/nodeI/.
set -euo pipefail

rb_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [ -z "${ARCA_BIN:-}" ]; then
  cargo build -q -p arca --manifest-path "$rb_root/Cargo.toml"
  ARCA_BIN="${CARGO_TARGET_DIR:-$rb_root/target}/debug/arca"
fi
arca() { "$ARCA_BIN" "$@"; }

RB="$(mktemp -d -t arca-runbook.XXXXXX)"
declare -A API PEER PID

cleanup() {
  local rc=$? i
  # Nodes still running stop gracefully (killed if they hang).
  local pids="${PID[*]}"
  if [ -n "$pids" ]; then
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    # shellcheck disable=SC2086
    ( sleep 10; kill -KILL $pids 2>/dev/null ) >/dev/null 2>&1 &
    local watchdog=$!
    for i in "${!PID[@]}"; do wait "${PID[$i]}" 2>/dev/null || true; done
    kill "$watchdog" 2>/dev/null || true
    wait "$watchdog" 2>/dev/null || true
  fi
  if [ "$rc" != 0 ]; then
    echo "FAILED (exit $rc); node logs:" >&2
    for i in "${!API[@]}"; do
      # The cause is often long before the end (the aftermath repeats):
      # every warning, error and panic first, then the last lines.
      echo "--- node $i (warnings, errors, panics)" >&2
      grep -E 'WARN|ERROR|panicked' "$RB/node$i/arca.log" 2>/dev/null | head -n 200 >&2 || true
      echo "--- node $i (last 30 lines)" >&2
      tail -n 30 "$RB/node$i/arca.log" >&2 2>/dev/null || true
    done
  fi
  if [ "${ARCA_RUNBOOK_KEEP:-0}" = 1 ]; then echo "kept $RB" >&2; else rm -rf "$RB"; fi
  exit "$rc"
}
trap cleanup EXIT

step() { echo "==> $*"; }
fail() { echo "runbook check failed: $*" >&2; exit 1; }
pause() { sleep "${ARCA_RUNBOOK_PAUSE:-0}"; } # the operator's pause, not a wait for a condition

# A port nobody listens on, below the kernel's ephemeral range: a port
# handed out by bind(0) elsewhere on this machine (the system tests' nodes)
# is never chosen here.
free_port() {
  local p low
  low="$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)"
  [ "$low" -gt 12000 ] 2>/dev/null || low=32768
  while :; do
    p=$((10000 + RANDOM % (low - 10000)))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      case " ${USED_PORTS:-} " in *" $p "*) continue ;; esac
      USED_PORTS="${USED_PORTS:-} $p"
      echo "$p"
      return
    fi
  done
}

# Waits until `cmd...` succeeds, for at most $1 seconds.
wait_until() {
  local secs="$1" what="$2"; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$end" ] || fail "timed out after ${secs}s waiting for $what"
    sleep 0.1
  done
}

http_ok() { curl -sf --max-time 2 --cacert "$RB/ca/ca.pem" "https://$1$2"; }
wait_healthy() { wait_until 30 "node $1 to answer /health" http_ok "${API[$1]}" /health; }
wait_ready() { wait_until 60 "node $1 to be ready" http_ok "${API[$1]}" /ready; }

# Runbook step 1: the two shared secrets and the cluster CA.
make_secrets() {
  arca root-key generate --out "$RB/root.key" >/dev/null
  arca cluster-secret --out "$RB/cluster.secret" >/dev/null
  arca tls ca --out "$RB/ca" >/dev/null
}

# Runbook step 2 for node $1: certificates, config, start.
configure_node() {
  local i="$1" d="$RB/node$1"
  API[$i]="127.0.0.1:$(free_port)"
  PEER[$i]="127.0.0.1:$(free_port)"
  mkdir -p "$d/data"
  arca tls node --ca "$RB/ca" --node-id "$i" --addr "${PEER[$i]}" --out "$d" >/dev/null
  arca tls server --ca "$RB/ca" --name 127.0.0.1 --out "$d" >/dev/null
  cat > "$d/arca.toml" <<TOML
node_id = $i
listen_addr = "${API[$i]}"
peer_addr = "${PEER[$i]}"
data_dir = "$d/data"
root_key_file = "$RB/root.key"
cluster_secret_file = "$RB/cluster.secret"
tls_cert_file = "$d/server.pem"
tls_key_file = "$d/server.key"
peer_tls_ca_file = "$RB/ca/ca.pem"
peer_tls_cert_file = "$d/node-$i.pem"
peer_tls_key_file = "$d/node-$i.key"

[keys]
rsa_pool = 0
TOML
}

start_node() {
  local i="$1"
  "$ARCA_BIN" server --config "$RB/node$i/arca.toml" >>"$RB/node$i/arca.log" 2>&1 &
  PID[$i]=$!
  wait_healthy "$i"
}

# A graceful stop: SIGTERM, then the process finishes what is in flight and
# exits 0 (killed if it has not within 30 s).
stop_node() {
  local i="$1" pid="${PID[$1]}" rc=0 watchdog
  kill -TERM "$pid"
  ( sleep 30; kill -KILL "$pid" 2>/dev/null ) >/dev/null 2>&1 &
  watchdog=$!
  wait "$pid" || rc=$?
  kill "$watchdog" 2>/dev/null || true
  wait "$watchdog" 2>/dev/null || true
  unset "PID[$i]"
  [ "$rc" = 0 ] || fail "node $i did not stop cleanly on SIGTERM (status $rc)"
}

# A crash: SIGKILL.
kill_node() {
  kill -KILL "${PID[$1]}"
  wait "${PID[$1]}" 2>/dev/null || true
  unset "PID[$1]"
}

# Runbook step 3, on node $1: prints the admin key once; kept in the
# environment the CLI reads.
init_cluster() {
  local i="$1" d="$RB/node$1" json
  json="$(arca cluster init --peer-addr "${PEER[$i]}" --cluster-secret-file "$RB/cluster.secret" \
      --peer-tls-ca-file "$RB/ca/ca.pem" --peer-tls-cert-file "$d/node-$i.pem" \
      --peer-tls-key-file "$d/node-$i.key" --region us-east-1 --account-id 111122223333 --json)"
  AWS_ACCESS_KEY_ID="$(printf '%s' "$json" | sed -E 's/.*"AccessKeyId":"([^"]+)".*/\1/')"
  AWS_SECRET_ACCESS_KEY="$(printf '%s' "$json" | sed -E 's/.*"SecretAccessKey":"([^"]+)".*/\1/')"
  export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION=us-east-1 AWS_CA_BUNDLE="$RB/ca/ca.pem"
}

# Runbook step 4: add node $2 through node $1.
add_node() {
  arca cluster add-node --endpoint "https://${API[$1]}" --node-id "$2" \
    --api-addr "${API[$2]}" --peer-addr "${PEER[$2]}" >/dev/null
}

status() { arca cluster status --endpoint "https://${API[$1]}"; }

# Checks, through node $1, that the cluster has a leader and exactly the
# voters "$2" (space separated ids, ascending).
check_members() {
  local via="$1" want="$2" out got
  out="$(status "$via")"
  echo "$out"
  # The first line, without a pipe: under pipefail, `printf | head | grep -q`
  # fails whenever head exits before printf's last write (printf writes a
  # line at a time and then dies of SIGPIPE).
  [[ "${out%%$'\n'*}" == "leader: "[0-9]* ]] || fail "no leader: $out"
  got="$(printf '%s\n' "$out" | awk 'NR > 2 && ($2 == "leader" || $2 == "voter") { print $1 }' | sort -n | tr '\n' ' ')"
  [ "$got" = "$want " ] || fail "voters are '$got', expected '$want '"
}

# One API call through node $1, tried up to three times as an SDK client
# would (a 503 while a new leader takes over is retriable).
call() { # node target json
  local attempt
  for attempt in 1 2 3; do
    if arca call --endpoint "https://${API[$1]}" "$2" "$3"; then return 0; fi
    [ "$attempt" = 3 ] || sleep 0.5 # the client's back-off
  done
  return 1
}
field() { sed -E "s/.*\"$1\":\"([^\"]+)\".*/\1/"; }

# A symmetric key created through node $1; prints its id.
new_key() {
  call "$1" TrentService.CreateKey '{}' | field KeyId
}

# Encrypts $3 (text) under key $2 through node $1; prints the ciphertext (base64).
encrypt() {
  call "$1" TrentService.Encrypt \
    "{\"KeyId\":\"$2\",\"Plaintext\":\"$(printf '%s' "$3" | base64 -w0)\"}" | field CiphertextBlob
}

# Decrypts through node $1 and checks the plaintext is $3.
check_decrypt() {
  local got
  got="$(call "$1" TrentService.Decrypt "{\"CiphertextBlob\":\"$2\"}" | field Plaintext | base64 -d)"
  [ "$got" = "$3" ] || fail "node $1 decrypted '$got', expected '$3'"
}

# A cluster of nodes 1..$1 as in steps 1-4, without pauses (the starting
# point of the other procedures).
quick_cluster() {
  local n="$1" i
  make_secrets
  for i in $(seq 1 "$n"); do configure_node "$i"; start_node "$i"; done
  init_cluster 1
  for i in $(seq 2 "$n"); do add_node 1 "$i"; done
  for i in $(seq 1 "$n"); do wait_ready "$i"; done
}
