#!/usr/bin/env bash
# Root-key rotation, online: the steps of docs/runbooks/root-key-rotation.md.
#
#   root-key-rotation.sh generate NEW_KEY_FILE   # step 1: a new root key (prints its id)
#   (step 2: give every node NEW_KEY_FILE as a further root key file and
#    restart the nodes one at a time; see the runbook)
#   root-key-rotation.sh check NEW_KEY_FILE      # every member holds the new key?
#   root-key-rotation.sh rotate NEW_KEY_FILE     # step 3: check, rotate, wait for the end
#   (step 4: remove the old root key file from every node and restart the
#    nodes one at a time)
#   root-key-rotation.sh verify NEW_KEY_FILE     # step 5: only the new key is in use and held
#
# Environment: ARCA_ENDPOINT (any node's API), AWS_ACCESS_KEY_ID and
# AWS_SECRET_ACCESS_KEY (an identity allowed arca:RotateRootKey and
# arca:ClusterStatus), AWS_REGION, AWS_CA_BUNDLE for https, ARCA_BIN (the
# arca binary; default: arca on PATH).
set -euo pipefail

ARCA_BIN=${ARCA_BIN:-arca}
: "${ARCA_ENDPOINT:?set ARCA_ENDPOINT to the API endpoint of a node}"

usage() {
    sed -n '2,12p' "$0" >&2
    exit 64
}

[ $# -eq 2 ] || usage
step=$1
new_key_file=$2

# Every member's root keys, one line per member: "node N: holds A, B".
members() {
    "$ARCA_BIN" root-key status --endpoint "$ARCA_ENDPOINT" | grep '^node '
}

# Fails unless every member holds root key $1.
check_held() {
    local id=$1 lines missing=0
    lines=$(members)
    if [ -z "$lines" ]; then
        echo "no member answered" >&2
        return 1
    fi
    while IFS= read -r line; do
        if [[ "$line" == *"$id"* ]]; then
            echo "ok: $line"
        else
            echo "NOT READY: ${line%%:*} does not hold root key $id; it ${line#*: }" >&2
            missing=1
        fi
    done <<<"$lines"
    return $missing
}

case "$step" in
    generate)
        if [ -e "$new_key_file" ]; then
            echo "$new_key_file exists; not overwritten" >&2
            exit 1
        fi
        "$ARCA_BIN" root-key generate --out "$new_key_file"
        echo "next: copy $new_key_file (mode 0600) to every node, add it as a further root key file, restart the nodes one at a time"
        ;;
    check)
        id=$("$ARCA_BIN" root-key id --file "$new_key_file")
        check_held "$id"
        echo "every member holds root key $id: ready to rotate"
        ;;
    rotate)
        id=$("$ARCA_BIN" root-key id --file "$new_key_file")
        check_held "$id"
        "$ARCA_BIN" root-key rotate --endpoint "$ARCA_ENDPOINT" --new-root-key-file "$new_key_file"
        echo "next: remove the old root key file from every node, restart the nodes one at a time, then run: $0 verify $new_key_file"
        ;;
    verify)
        id=$("$ARCA_BIN" root-key id --file "$new_key_file")
        status=$("$ARCA_BIN" root-key status --endpoint "$ARCA_ENDPOINT")
        echo "$status"
        if ! grep -qx "root key in use: $id" <<<"$status"; then
            echo "FAILED: the cluster does not use root key $id" >&2
            exit 1
        fi
        if grep -q '^rotation:' <<<"$status"; then
            echo "FAILED: a rotation is still in progress" >&2
            exit 1
        fi
        bad=$(grep '^node ' <<<"$status" | grep -vx "node [0-9]*: holds $id" || true)
        if [ -n "$bad" ]; then
            echo "FAILED: members still hold another root key, or did not answer:" >&2
            echo "$bad" >&2
            exit 1
        fi
        echo "every node holds only root key $id: the old root key can be destroyed (keep a copy offline if audit logs signed under it must stay verifiable)"
        ;;
    *) usage ;;
esac
