#!/usr/bin/env bash
# docs/runbooks/disaster-recovery.md, end to end, on a throw-away cluster:
# two of three nodes are lost for good (kill -9), the survivor is recovered
# offline into a one-node cluster, two fresh nodes join, and every key works
# on every node; the audit log records the recovery and still verifies.
# Then a data directory put back from an old copy is refused, and the node
# rejoins as the refusal says. ARCA_BIN names the binary; KEEP=1 keeps the
# work directory.
. "$(dirname "$0")/lib.sh"
# Frequent snapshots, a short log: the put-back case below needs the leader
# to purge its log past an old copy quickly.
EXTRA_TOML=$'[raft]\nsnapshot_every = 20\nkeep_after_snapshot = 5'

echo "==> a 3-node cluster with two keys"
new_cluster 3 a
ct_one="$(make_key one)"
ct_two="$(make_key two)"
commit="$(metric 1 a arca_raft_commit_index)"
wait_until "node 1 to apply every write" "[ \"\$(metric 1 a arca_raft_applied_index)\" -ge $commit ]"

echo "==> nodes 2 and 3 are lost for good"
kill -9 "${pid[a2]}" "${pid[a3]}"; unset 'pid[a2]' 'pid[a3]'
rm -rf "$work/a-node2" "$work/a-node3"

echo "==> 1. stop the survivor and keep a copy of its data directory"
kill -TERM "${pid[a1]}"; wait "${pid[a1]}" || true; unset 'pid[a1]'
cp -a "$work/a-node1/data" "$work/a-node1/data.before-recover"

echo "==> 2. recover it offline"
arca cluster recover --config "$work/a-node1/arca.toml" --yes

echo "==> 3. start it, then add two fresh nodes"
start 1 a; ready 1 a
add 4 a 1
add 5 a 1
arca cluster status --endpoint "http://${api[a1]}"

echo "==> 4. check every node"
for i in 1 4 5; do
  check_key "$i" a one "$ct_one"
  check_key "$i" a two "$ct_two"
done
ct_three="$(make_key three)"
check_key 5 a three "$ct_three"

echo "==> 5. the audit log records the recovery and verifies"
grep -q '"operation":"RecoverCluster"' "$work/a-node1/data/audit.jsonl" || failed "no RecoverCluster audit record"
kill -TERM "${pid[a1]}"; wait "${pid[a1]}" || true
arca audit verify --root-key-file "$work/root.key" "$work/a-node1/data/audit.jsonl"
start 1 a; ready 1 a

echo "==> a data directory put back from an old copy"
kill -TERM "${pid[a5]}"; wait "${pid[a5]}" || true; unset 'pid[a5]'
cp -a "$work/a-node5/data" "$work/node5-copy"
start 5 a; ready 5 a
key_three="$(call 1 a DescribeKey '{"KeyId":"alias/three"}' | jq -r .KeyMetadata.KeyId)"
copied="$(metric 1 a arca_raft_last_log_index)"
n=0
until [ "$(metric 1 a arca_raft_purged_index)" -gt $((copied + 10)) ] 2>/dev/null; do
  n=$((n + 1)); [ $n -lt 3000 ] || failed "the leader never purged its log"
  call 1 a UpdateKeyDescription "{\"KeyId\":\"$key_three\",\"Description\":\"write $n\"}" >/dev/null
done
kill -TERM "${pid[a5]}"; wait "${pid[a5]}" || true; unset 'pid[a5]'
rm -rf "$work/a-node5/data"; cp -a "$work/node5-copy" "$work/a-node5/data"
if timeout 30 "$ARCA_BIN" server --config "$work/a-node5/arca.toml" >"$work/put-back.log" 2>&1; then
  failed "node 5 started on a data directory put back from an old copy"
fi
grep -q "put back from a copy" "$work/put-back.log" || failed "node 5 did not say why it refused: $(cat "$work/put-back.log")"
echo "    refused, as it should be: $(grep -o 'It was put back from a copy.*' "$work/put-back.log" | head -c 160)…"

echo "==> 6. the way back: remove the node, start it empty, add it again"
arca cluster remove-node --endpoint "http://${api[a1]}" --node-id 5
rm -rf "$work/a-node5/data"; mkdir "$work/a-node5/data"
start 5 a
arca cluster add-node --endpoint "http://${api[a1]}" --node-id 5 --api-addr "${api[a5]}" --peer-addr "${peer[a5]}" >/dev/null
ready 5 a
check_key 5 a one "$ct_one"
echo "OK: disaster recovery"
