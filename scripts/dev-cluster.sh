#!/usr/bin/env bash
# A local N-node Arca cluster on 127.0.0.1, each node with its own data dir,
# for trying Arca and for chaos tests.
#
#   scripts/dev-cluster.sh up [N]      start N nodes (default 3); init and join on first start
#   scripts/dev-cluster.sh status      arca cluster status
#   scripts/dev-cluster.sh kill I      SIGKILL node I (crash)
#   scripts/dev-cluster.sh start I     start node I again
#   scripts/dev-cluster.sh down        SIGTERM every node
#   scripts/dev-cluster.sh clean       down, then delete all cluster state
#
# Node I listens for the API (HTTPS) on 127.0.0.1:78I0 and for peers (mutual
# TLS) on 127.0.0.1:78I1. On first start the script creates a cluster CA in
# .dev-cluster/tls/ (`arca tls ca`), a node certificate per node (`arca tls
# node`) and an API certificate per node (`arca tls server`); clients trust
# .dev-cluster/tls/ca.pem (AWS_CA_BUNDLE, set by admin.env).
# ARCA_DEV_PORT_PREFIX=58 moves the ports to 58I0 and 58I1.
# State lives in .dev-cluster/ (ARCA_DEV_CLUSTER_DIR to move it); the admin
# credentials are in .dev-cluster/admin.env and .dev-cluster/credentials.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${ARCA_DEV_CLUSTER_DIR:-$root/.dev-cluster}"
profile="${ARCA_PROFILE:-debug}"

build() {
  if [ "$profile" = release ]; then cargo build -q --release -p arca --manifest-path "$root/Cargo.toml"
  else cargo build -q -p arca --manifest-path "$root/Cargo.toml"; fi
  bin="${CARGO_TARGET_DIR:-$root/target}/$profile/arca"
}

api() { echo "127.0.0.1:${ARCA_DEV_PORT_PREFIX:-78}${1}0"; }
peer() { echo "127.0.0.1:${ARCA_DEV_PORT_PREFIX:-78}${1}1"; }
pidfile() { echo "$dir/node$1/arca.pid"; }

running() {
  local p; p="$(pidfile "$1")"
  [ -f "$p" ] && kill -0 "$(cat "$p")" 2>/dev/null
}

wait_http() { # addr path
  for _ in $(seq 1 300); do
    if curl -sf --cacert "$dir/tls/ca.pem" "https://$1$2" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "timed out waiting for https://$1$2" >&2; return 1
}

certs() { # node: its peer certificate and its API certificate, once
  local i="$1" tls="$dir/tls"
  [ -f "$tls/ca.pem" ] || "$bin" tls ca --out "$tls" >/dev/null
  [ -f "$tls/node-$i.pem" ] || "$bin" tls node --ca "$tls" --node-id "$i" --addr "$(peer "$i")" --out "$tls" >/dev/null
  [ -f "$dir/node$i/api-tls/server.pem" ] || "$bin" tls server --ca "$tls" --name 127.0.0.1 --name localhost --out "$dir/node$i/api-tls" >/dev/null
}

start_node() {
  local i="$1"
  if running "$i"; then echo "node $i already running"; return; fi
  mkdir -p "$dir/node$i/data"
  certs "$i"
  cat > "$dir/node$i/arca.toml" <<TOML
node_id = $i
listen_addr = "$(api "$i")"
peer_addr = "$(peer "$i")"
data_dir = "$dir/node$i/data"
root_key_file = "$dir/root.key"
cluster_secret_file = "$dir/cluster.secret"
tls_cert_file = "$dir/node$i/api-tls/server.pem"
tls_key_file = "$dir/node$i/api-tls/server.key"
peer_tls_ca_file = "$dir/tls/ca.pem"
peer_tls_cert_file = "$dir/tls/node-$i.pem"
peer_tls_key_file = "$dir/tls/node-$i.key"
TOML
  nohup "$bin" server --config "$dir/node$i/arca.toml" >>"$dir/node$i/arca.log" 2>&1 &
  echo $! > "$(pidfile "$i")"
  wait_http "$(api "$i")" /health
  echo "node $i: api https://$(api "$i")  peer $(peer "$i") (mutual TLS)  log $dir/node$i/arca.log"
}

load_creds() { # shellcheck disable=SC1091
  . "$dir/admin.env"
}

up() {
  local n="${1:-3}"
  [ "$n" -ge 1 ] && [ "$n" -le 9 ] || { echo "N must be 1..9" >&2; exit 2; }
  build
  mkdir -p "$dir"
  [ -f "$dir/root.key" ] || "$bin" root-key generate --out "$dir/root.key" >/dev/null
  [ -f "$dir/cluster.secret" ] || "$bin" cluster-secret --out "$dir/cluster.secret" >/dev/null
  for i in $(seq 1 "$n"); do start_node "$i"; done
  if [ ! -f "$dir/admin.env" ]; then
    json="$("$bin" cluster init --peer-addr "$(peer 1)" --cluster-secret-file "$dir/cluster.secret" \
            --peer-tls-ca-file "$dir/tls/ca.pem" --peer-tls-cert-file "$dir/tls/node-1.pem" \
            --peer-tls-key-file "$dir/tls/node-1.key" \
            --region us-east-1 --account-id 111122223333 --json)"
    id="$(printf '%s' "$json" | sed -E 's/.*"AccessKeyId":"([^"]+)".*/\1/')"
    secret="$(printf '%s' "$json" | sed -E 's/.*"SecretAccessKey":"([^"]+)".*/\1/')"
    umask 077
    printf 'export AWS_ACCESS_KEY_ID=%s\nexport AWS_SECRET_ACCESS_KEY=%s\nexport AWS_REGION=us-east-1\nexport AWS_DEFAULT_REGION=us-east-1\nexport ARCA_ENDPOINT=https://%s\nexport AWS_CA_BUNDLE=%s\n' \
      "$id" "$secret" "$(api 1)" "$dir/tls/ca.pem" > "$dir/admin.env"
    printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\nregion = us-east-1\n' \
      "$id" "$secret" > "$dir/credentials"
    load_creds
    for i in $(seq 2 "$n"); do
      "$bin" cluster add-node --endpoint "https://$(api 1)" --node-id "$i" \
        --api-addr "$(api "$i")" --peer-addr "$(peer "$i")"
    done
  fi
  for i in $(seq 1 "$n"); do wait_http "$(api "$i")" /ready; done
  load_creds
  "$bin" cluster status --endpoint "https://$(api 1)"
  echo
  echo "Admin credentials: source $dir/admin.env   (or AWS_SHARED_CREDENTIALS_FILE=$dir/credentials)"
  echo "Try: AWS_CA_BUNDLE=$dir/tls/ca.pem aws kms create-key --endpoint-url https://$(api 1)"
}

nodes() { for d in "$dir"/node*; do [ -d "$d" ] && basename "$d" | sed 's/node//'; done; }

case "${1:-}" in
  up) up "${2:-3}" ;;
  down)
    for i in $(nodes); do
      if running "$i"; then kill -TERM "$(cat "$(pidfile "$i")")"; fi
    done
    for i in $(nodes); do
      for _ in $(seq 1 100); do running "$i" || break; sleep 0.1; done
      rm -f "$(pidfile "$i")"
    done
    echo "stopped" ;;
  status)
    build; load_creds
    for i in $(nodes); do
      if running "$i"; then ep="https://$(api "$i")"; break; fi
    done
    [ -n "${ep:-}" ] || { echo "no node is running" >&2; exit 1; }
    "$bin" cluster status --endpoint "$ep" ;;
  kill)
    i="${2:?node number}"
    if running "$i"; then kill -KILL "$(cat "$(pidfile "$i")")"; rm -f "$(pidfile "$i")"; echo "node $i killed"
    else echo "node $i is not running"; fi ;;
  start)
    build; start_node "${2:?node number}" ;;
  clean)
    "$0" down >/dev/null 2>&1 || true
    rm -rf "$dir"; echo "removed $dir" ;;
  *) sed -n '2,19p' "$0"; exit 2 ;;
esac
