#!/usr/bin/env bash
# Runbook: a rolling restart (docs/runbooks/cluster.md, "Rolling restart"):
# one node at a time, stop it gracefully (SIGTERM), start it, wait until
# /ready answers 200, then go on to the next. Between restarts the cluster
# encrypts and decrypts through the other nodes.
set -euo pipefail
. "$(dirname "$0")/tls-cluster.sh"

step "a three-node cluster with a key in use"
quick_cluster 3
key="$(new_key 1)"
ct="$(encrypt 1 "$key" "before the restarts")"

for i in 1 2 3; do
  other=$(( i % 3 + 1 ))
  step "restart node $i"
  stop_node "$i"
  # The others serve while it is down.
  ct_down="$(encrypt "$other" "$key" "while node $i was down")"
  start_node "$i"
  wait_ready "$i"
  check_decrypt "$i" "$ct_down" "while node $i was down"
  pause
done

step "check: three voters; old and new ciphertexts decrypt everywhere"
check_members 1 "1 2 3"
for i in 1 2 3; do check_decrypt "$i" "$ct" "before the restarts"; done
echo "rolling-restart: OK"
