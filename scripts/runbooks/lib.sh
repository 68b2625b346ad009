# Shared by the runbook scripts: a throw-away cluster of real `arca`
# processes on 127.0.0.1 (plain HTTP on loopback), and KMS calls signed by
# curl's own SigV4. Source it; set ARCA_BIN to the binary (default: the
# debug build).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ARCA_BIN="${ARCA_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/arca}"
[ -x "$ARCA_BIN" ] || { echo "no arca binary at $ARCA_BIN: cargo build -p arca, or set ARCA_BIN" >&2; exit 1; }
arca() { "$ARCA_BIN" "$@"; }
for tool in curl jq; do
  command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 1; }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/arca-runbook.XXXXXX")"
declare -A pid api peer
cleanup() {
  for i in "${!pid[@]}"; do kill -9 "${pid[$i]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
failed() { echo "FAILED: $*" >&2; for l in "$work"/*/arca.log; do echo "--- $l" >&2; tail -n 20 "$l" >&2; done; exit 1; }

# A loopback port nobody listens on.
# Ports below the kernel's ephemeral range: a port handed out by bind(0)
# elsewhere on this machine (the system tests' nodes) is never chosen here.
free_port() {
  local p low
  low="$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)"
  [ "$low" -gt 12000 ] 2>/dev/null || low=32768
  while :; do
    p=$((10000 + RANDOM % (low - 10000)))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

# Waits (deadline $2 s, default 30) until command $1 succeeds.
wait_until() {
  local what="$1" deadline=$(( $(date +%s) + ${3:-30} ))
  until eval "$2" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || failed "timed out waiting for $what"
    sleep 0.1
  done
}

# config I [SET]: writes node I's config in $work/SET-nodeI (SET default "a").
config() {
  local i="$1" set="${2:-a}" d="$work/${2:-a}-node$1"
  mkdir -p "$d/data"
  api[$set$i]="127.0.0.1:$(free_port)"; peer[$set$i]="127.0.0.1:$(free_port)"
  cat > "$d/arca.toml" <<TOML
node_id = $i
listen_addr = "${api[$set$i]}"
peer_addr = "${peer[$set$i]}"
data_dir = "$d/data"
root_key_file = "$work/root.key"
cluster_secret_file = "$work/${set}.secret"
allow_insecure_http = true
log = "info,openraft=warn"
${EXTRA_TOML:-}
TOML
}

# start I [SET]: starts node I and waits for /health.
start() {
  local i="$1" set="${2:-a}" d="$work/${2:-a}-node$1"
  # The binary itself in the background (not the `arca` function, whose
  # subshell would get the signals).
  "$ARCA_BIN" server --config "$d/arca.toml" >>"$d/arca.log" 2>&1 &
  pid[$set$i]=$!
  wait_until "node $set$i to answer /health" "curl -sf http://${api[$set$i]}/health"
}

ready() { wait_until "node ${2:-a}$1 to be ready" "curl -sf http://${api[${2:-a}$1]}/ready" "${3:-30}"; }

# A KMS call through node I: call I [SET] TARGET JSON
call() {
  curl -sf --aws-sigv4 "aws:amz:us-east-1:kms" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
    -H "X-Amz-Target: TrentService.$3" -H "Content-Type: application/x-amz-json-1.1" \
    --data-binary "$4" "http://${api[$2$1]}/"
}

# new_cluster N [SET]: N nodes, initialized and joined; exports the admin key.
new_cluster() {
  local n="$1" set="${2:-a}"
  [ -f "$work/root.key" ] || arca root-key generate --out "$work/root.key" >/dev/null
  arca cluster-secret --out "$work/${set}.secret" >/dev/null
  config 1 "$set"; start 1 "$set"
  local init
  init="$(arca cluster init --peer-addr "${peer[${set}1]}" --cluster-secret-file "$work/${set}.secret" --json)"
  export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION=us-east-1
  AWS_ACCESS_KEY_ID="$(jq -r .AccessKeyId <<<"$init")"
  AWS_SECRET_ACCESS_KEY="$(sed -n 's/^aws_secret_access_key = //p' "$(jq -r .CredentialsFile <<<"$init")")"
  ready 1 "$set"
  for i in $(seq 2 "$n"); do add "$i" "$set" 1; done
}

# add I SET VIA: starts node I on an empty data directory and adds it
# through node VIA.
add() {
  local i="$1" set="$2" via="$3"
  config "$i" "$set"; start "$i" "$set"
  arca cluster add-node --endpoint "http://${api[$set$via]}" --node-id "$i" \
    --api-addr "${api[$set$i]}" --peer-addr "${peer[$set$i]}" >/dev/null
  ready "$i" "$set"
}

# A metric of node I.
metric() { curl -sf "http://${api[${2:-a}$1]}/metrics" | awk -v m="$3" '$1 == m { print $2 }'; }

# make_key TAG: a key with alias alias/TAG and a ciphertext of "TAG plaintext"
# through node a1; prints the ciphertext (base64).
make_key() {
  local id
  id="$(call 1 a CreateKey '{}' | jq -r .KeyMetadata.KeyId)"
  call 1 a CreateAlias "{\"AliasName\":\"alias/$1\",\"TargetKeyId\":\"$id\"}" >/dev/null
  call 1 a Encrypt "{\"KeyId\":\"alias/$1\",\"Plaintext\":\"$(printf '%s plaintext' "$1" | base64 -w0)\"}" | jq -r .CiphertextBlob
}

# check_key I SET TAG CIPHERTEXT: the ciphertext decrypts to "TAG plaintext"
# through node I, and the alias still encrypts.
check_key() {
  local got
  got="$(call "$1" "$2" Decrypt "{\"CiphertextBlob\":\"$4\"}" | jq -r .Plaintext | base64 -d)" \
    || failed "Decrypt through node $2$1"
  [ "$got" = "$3 plaintext" ] || failed "node $2$1 decrypted '$got', not '$3 plaintext'"
  call "$1" "$2" Encrypt "{\"KeyId\":\"alias/$3\",\"Plaintext\":\"YQ==\"}" >/dev/null || failed "Encrypt alias/$3 through node $2$1"
}
