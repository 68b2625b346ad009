#!/usr/bin/env bash
# Runbook: replace a failed node (docs/runbooks/cluster.md, "Replacing a
# failed node"): node 3 of three crashes for good; it is removed, and node 4,
# with an empty data directory and a new id, takes its place.
set -euo pipefail
. "$(dirname "$0")/tls-cluster.sh"

step "a three-node cluster with a key in use"
quick_cluster 3
key="$(new_key 1)"
ct="$(encrypt 1 "$key" "before the failure")"

step "node 3 fails (SIGKILL; its disk is lost)"
kill_node 3
rm -rf "$RB/node3/data"
pause

step "1. remove node 3 (a majority is up)"
arca cluster remove-node --endpoint "https://${API[1]}" --node-id 3 >/dev/null
check_members 1 "1 2"
pause
step "2. start the replacement, node 4, with an empty data directory"
configure_node 4
start_node 4
step "3. add node 4"
add_node 1 4
wait_ready 4

step "check: voters 1, 2, 4; node 4 decrypts what was written before"
check_members 2 "1 2 4"
check_decrypt 4 "$ct" "before the failure"
ct4="$(encrypt 4 "$key" "after the replacement")"
check_decrypt 2 "$ct4" "after the replacement"
echo "replace-node: OK"
