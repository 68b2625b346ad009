#!/usr/bin/env bash
# Runbook: rotating the cluster secret online (docs/runbooks/certificates.md,
# "Rotating the cluster secret"): three rolling restarts, one node at a time.
#   1. every node also accepts the new secret;
#   2. every node signs with the new secret and accepts the old one;
#   3. every node holds only the new secret.
# After each single restart a write goes through every node: followers
# forward it to the leader, which works only while the nodes accept each
# other's signatures.
set -euo pipefail
. "$(dirname "$0")/tls-cluster.sh"

# Points node $1's config at the secret it signs with ($2) and the one it
# also accepts ($3, or none).
secrets() {
  local conf="$RB/node$1/arca.toml"
  sed -i -e '/^cluster_secret_file/d' -e '/^cluster_secret_accept_files/d' "$conf"
  {
    echo "cluster_secret_file = \"$2\""
    [ -z "${3:-}" ] || echo "cluster_secret_accept_files = [\"$3\"]"
    cat "$conf"
  } > "$conf.new"
  mv "$conf.new" "$conf"
}

# A write through every node (forwarded to the leader by the followers).
write_everywhere() {
  local i
  for i in 1 2 3; do
    call "$i" TrentService.UpdateKeyDescription \
      "{\"KeyId\":\"$key\",\"Description\":\"$1, via node $i\"}" >/dev/null ||
      fail "a write through node $i failed ($1)"
  done
}

step "a three-node cluster with a key in use"
quick_cluster 3
key="$(new_key 1)"
ct="$(encrypt 2 "$key" "before the rotation")"
old="$RB/cluster.secret"
new="$RB/cluster.secret.new"
arca cluster-secret --out "$new" >/dev/null

rolling() { # description sign accept
  local i
  step "$1"
  for i in 1 2 3; do
    secrets "$i" "$2" "${3:-}"
    stop_node "$i"
    start_node "$i"
    wait_ready "$i"
    write_everywhere "$1, node $i restarted"
    pause
  done
}
rolling "1. every node accepts the new secret too" "$old" "$new"
rolling "2. every node signs with the new secret" "$new" "$old"
rolling "3. the old secret is retired" "$new"

step "check: three voters, the key decrypts everywhere"
check_members 1 "1 2 3"
for i in 1 2 3; do check_decrypt "$i" "$ct" "before the rotation"; done
rm -f "$old"
echo "cluster-secret-rotation: OK"
