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
# The node put back is a follower (the case the refusal is for; see the
# runbook): node 5, or node 4 if node 5 leads.
leader() { arca cluster status --endpoint "http://${api[a1]}" --json | jq -r '.leader // empty'; }
wait_until "a leader" '[ -n "$(leader)" ]'
v=5; [ "$(leader)" != 5 ] || v=4
kill -TERM "${pid[a$v]}"; wait "${pid[a$v]}" || true; unset "pid[a$v]"
cp -a "$work/a-node$v/data" "$work/node$v-copy"
start $v a; ready $v a
key_three="$(call 1 a DescribeKey '{"KeyId":"alias/three"}' | jq -r .KeyMetadata.KeyId)"
copied="$(metric 1 a arca_raft_last_log_index)"
n=0
until [ "$(metric 1 a arca_raft_purged_index)" -gt $((copied + 10)) ] 2>/dev/null; do
  n=$((n + 1)); [ $n -lt 3000 ] || failed "the leader never purged its log"
  call 1 a UpdateKeyDescription "{\"KeyId\":\"$key_three\",\"Description\":\"write $n\"}" >/dev/null
done
# The refusal rests on the leader's record of what node $v acknowledged:
# wait until a leader other than node $v has replicated to it past its copy.
matched() {
  arca cluster status --endpoint "http://${api[a1]}" --json |
    jq -r --argjson v "$v" 'if .leader == $v then 0 else (.members[] | select(.node_id == $v) | .matched_index // 0) end'
}
wait_until "the leader to match node $v past its copy" "[ \"\$(matched)\" -gt $((copied + 10)) ]"
kill -TERM "${pid[a$v]}"; wait "${pid[a$v]}" || true; unset "pid[a$v]"
rm -rf "$work/a-node$v/data"; cp -a "$work/node$v-copy" "$work/a-node$v/data"
if timeout 30 "$ARCA_BIN" server --config "$work/a-node$v/arca.toml" >"$work/put-back.log" 2>&1; then
  failed "node $v started on a data directory put back from an old copy"
fi
grep -q "put back from a copy" "$work/put-back.log" || failed "node $v did not say why it refused: $(cat "$work/put-back.log")"
echo "    refused, as it should be: $(grep -o 'It was put back from a copy.*' "$work/put-back.log" | head -c 160)…"

echo "==> 6. the way back: remove the node, start it empty, add it again"
arca cluster remove-node --endpoint "http://${api[a1]}" --node-id $v
rm -rf "$work/a-node$v/data"; mkdir "$work/a-node$v/data"
start $v a
arca cluster add-node --endpoint "http://${api[a1]}" --node-id $v --api-addr "${api[a$v]}" --peer-addr "${peer[a$v]}" >/dev/null
ready $v a
check_key $v a one "$ct_one"
echo "OK: disaster recovery"
