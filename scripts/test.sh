#!/usr/bin/env bash
# The project's test command: formatting, lints, then every test (unit,
# property and system tests; system tests start real nodes on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "cargo is required: https://rustup.rs" >&2; exit 1; }
# A C compiler builds aws-lc-sys (the AES/RSA/ECDSA backend).
command -v cc >/dev/null || command -v gcc >/dev/null || {
  echo "a C compiler (cc/gcc) is required to build aws-lc-sys" >&2; exit 1; }

# The interoperability tests use the openssl CLI as the counterpart.
if ! command -v openssl >/dev/null; then
  echo "==> installing the openssl CLI (interoperability tests)"
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq openssl >/dev/null
  else
    echo "the openssl CLI is required (e.g. apt-get install openssl)" >&2; exit 1
  fi
fi
openssl version

# The alert rules in docs/monitoring are checked and unit-tested by promtool
# (Debian's prometheus package).
if ! command -v promtool >/dev/null; then
  echo "==> installing promtool (alert rule tests)"
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  else
    echo "promtool is required (e.g. apt-get install prometheus)" >&2; exit 1
  fi
fi
# Two system tests drive official Python clients, each pinned in a
# requirements file and installed into a virtual environment made here:
# the Alibaba Cloud SDK for Python (tests/system/alibaba.rs) and the aws CLI
# (tests/system/aws_cli.rs).
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  echo "==> installing python3 with venv (the Alibaba Cloud SDK and aws CLI tests)"
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null
  else
    echo "python3 (3.8+) with venv is required (e.g. apt-get install python3-venv)" >&2; exit 1
  fi
fi
# python_env DIR: DIR/.venv holds exactly DIR/requirements.txt.
python_env() {
  local venv=$1/.venv
  if [ ! -x "$venv/bin/python" ] || ! cmp -s "$1/requirements.txt" "$venv/requirements.txt"; then
    echo "==> creating $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$1/requirements.txt"
    cp "$1/requirements.txt" "$venv/requirements.txt"
  fi
}
python_env tests/alibaba
python_env tests/awscli

echo "==> promtool: alert rules"
promtool check rules docs/monitoring/alerts.yml
(cd docs/monitoring && promtool test rules alerts_test.yml)

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy (warnings denied)"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> cargo build -p arca (the binary the system tests start)"
cargo build --locked -p arca
# Fuzzing needs the nightly toolchain; fuzz.sh installs cargo-fuzz from
# crates.io when missing.
# Listed first, then searched: under pipefail, `rustup ... | grep -q` fails
# when grep exits at its match before rustup's last write.
toolchains="$(rustup toolchain list)"
if ! grep -q '^nightly' <<<"$toolchains"; then
  echo "==> installing the nightly toolchain (fuzzing)"
  rustup toolchain install nightly --profile minimal ||
    { echo "the nightly toolchain is required for fuzzing: rustup toolchain install nightly" >&2; exit 1; }
fi

echo "==> tests"
cargo test --workspace --locked --no-run
# The fuzz targets (nightly, instrumented, their own target directory)
# build while the tests run, at the lowest CPU priority: the system tests
# mostly wait on their clusters, and take the CPU back whenever they need it.
fuzz_build_log=$(mktemp)
(nice -n 19 scripts/fuzz.sh build >"$fuzz_build_log" 2>&1; echo $? >"$fuzz_build_log.status") &
fuzz_build=$!
trap 'pkill -P "$fuzz_build" 2>/dev/null; kill "$fuzz_build" 2>/dev/null || true' EXIT
cargo test --workspace --locked
wait "$fuzz_build" || true
if [ "$(cat "$fuzz_build_log.status" 2>/dev/null)" != 0 ]; then
  cat "$fuzz_build_log"; echo "building the fuzz targets failed" >&2; exit 1
fi
rm -f "$fuzz_build_log" "$fuzz_build_log.status"
trap - EXIT

# Every fuzz target for a short time on its committed corpus (docs/fuzzing.md);
# a crash or a hang fails the run.
echo "==> fuzzing: every target for ${ARCA_FUZZ_SECONDS:-20} s"
ARCA_FUZZ_SCRATCH=1 scripts/fuzz.sh "${ARCA_FUZZ_SECONDS:-20}"
