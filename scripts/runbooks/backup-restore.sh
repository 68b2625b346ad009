#!/usr/bin/env bash
# docs/runbooks/backup-restore.md, end to end, on a throw-away cluster:
# back up a 3-node cluster from a follower, verify the file, restore it into
# a new 3-node cluster, and check that every key, alias and ciphertext made
# before the backup works there. ARCA_BIN names the binary; KEEP=1 keeps the
# work directory.
. "$(dirname "$0")/lib.sh"

echo "==> a 3-node cluster with two keys"
new_cluster 3 a
ct_one="$(make_key one)"
ct_two="$(make_key two)"

echo "==> 1. back up (from node 2)"
backup="$work/arca-$(date -u +%Y%m%dT%H%M%SZ).backup"
arca backup --endpoint "http://${api[a2]}" --out "$backup"
[ "$(stat -c %a "$backup")" = 600 ] || failed "the backup file is not mode 0600"
[ -n "$(metric 2 a arca_backup_age_seconds)" ] || failed "node 2 reports no backup age"

echo "==> 2. verify it offline, with the root key"
arca backup verify "$backup" --root-key-file "$work/root.key"

echo "==> a key made after the backup is not restored"
ct_late="$(make_key late)"

echo "==> 3. restore into a new cluster: seed node 1, start it, add nodes"
arca cluster-secret --out "$work/b.secret" >/dev/null
config 1 b
arca restore "$backup" --config "$work/b-node1/arca.toml"
start 1 b; ready 1 b
add 2 b 1
add 3 b 1
arca cluster status --endpoint "http://${api[b1]}"

echo "==> 4. check every node of the new cluster"
for i in 1 2 3; do
  check_key "$i" b one "$ct_one"
  check_key "$i" b two "$ct_two"
  if call "$i" b Decrypt "{\"CiphertextBlob\":\"$ct_late\"}" >/dev/null 2>&1; then
    failed "a ciphertext of a key made after the backup decrypts in the restored cluster"
  fi
done
echo "OK: backup and restore"
