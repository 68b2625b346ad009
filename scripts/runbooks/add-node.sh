#!/usr/bin/env bash
# Runbook: add a node to a running cluster (docs/runbooks/cluster.md, "4. Add
# the other nodes"): node 4 joins a three-node cluster from its own config
# (`arca cluster join`), catches up, and serves keys created before it came.
set -euo pipefail
. "$(dirname "$0")/tls-cluster.sh"

step "a three-node cluster with a key in use"
quick_cluster 3
key="$(new_key 1)"
ct="$(encrypt 2 "$key" "written before node 4")"
pause

step "configure and start node 4; it joins from its own config"
configure_node 4
start_node 4
arca cluster join --endpoint "https://${API[1]}" --config "$RB/node4/arca.toml" >/dev/null
wait_ready 4

step "check: four voters; node 4 decrypts what was written before it joined"
check_members 4 "1 2 3 4"
check_decrypt 4 "$ct" "written before node 4"
ct4="$(encrypt 4 "$key" "written via node 4")"
check_decrypt 1 "$ct4" "written via node 4"
echo "add-node: OK"
