#!/usr/bin/env bash
# Runbook: bootstrap a three-node cluster (docs/runbooks/cluster.md, steps
# 1-4), pausing between the steps as an operator does
# (ARCA_RUNBOOK_PAUSE, default 1 s), then check it serves.
set -euo pipefail
. "$(dirname "$0")/tls-cluster.sh"
: "${ARCA_RUNBOOK_PAUSE:=1}"

step "1. the root key, the cluster secret and the cluster CA"
make_secrets
pause
step "2. configure and start nodes 1-3"
for i in 1 2 3; do configure_node "$i"; start_node "$i"; done
pause
step "3. initialize the cluster on node 1"
init_cluster 1
wait_ready 1
pause
step "4. add nodes 2 and 3"
add_node 1 2
pause
add_node 1 3
for i in 1 2 3; do wait_ready "$i"; done

step "check: three voters and a leader; every node encrypts and decrypts"
check_members 2 "1 2 3"
key="$(new_key 1)"
for i in 1 2 3; do
  ct="$(encrypt "$i" "$key" "bootstrap via node $i")"
  check_decrypt $(( i % 3 + 1 )) "$ct" "bootstrap via node $i"
done
echo "bootstrap: OK"
