#!/usr/bin/env bash
# Runbook: remove a node from a running cluster (docs/runbooks/cluster.md,
# "Replacing a failed node", step 1): node 4 leaves a four-node cluster,
# learns it was removed (/ready says so), is stopped, and the rest go on.
set -euo pipefail
. "$(dirname "$0")/tls-cluster.sh"

step "a four-node cluster with a key in use"
quick_cluster 4
key="$(new_key 1)"
ct="$(encrypt 1 "$key" "before the removal")"
pause

step "remove node 4"
arca cluster remove-node --endpoint "https://${API[1]}" --node-id 4 >/dev/null
removed() {
  local ready
  ready="$(curl -s --max-time 2 --cacert "$RB/ca/ca.pem" "https://${API[4]}/ready")" || return 1
  [[ "$ready" == *"removed from the cluster"* ]]
}
wait_until 30 "node 4 to learn it was removed" removed
step "stop node 4"
stop_node 4

step "check: three voters; the cluster encrypts and decrypts"
check_members 1 "1 2 3"
check_decrypt 2 "$ct" "before the removal"
ct2="$(encrypt 3 "$key" "after the removal")"
check_decrypt 1 "$ct2" "after the removal"
echo "remove-node: OK"
