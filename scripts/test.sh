#!/usr/bin/env bash
# Runs every sluice test on a fresh machine, installing what the tests need:
#   - Python packages for the end-to-end suite (boto3, the AWS CLI v1, pytest, cbor2, awslambdaric,
#     moto's S3 server, pyarrow and DuckDB, aws_kinesis_agg) into .venv
#   - PostgreSQL (Debian's package) for the Redshift-destination loader's tests
#   - the AWS SDK for JavaScript v3 for the JS test (tests/js, from its package-lock.json; needs node/npm),
#     and esbuild, which bundles it for the web page test (tests/python/test_browser.py)
#   - Chromium (Debian's package) for that web page test, run headless
#   - the Rust build (debug), then cargo fmt/clippy checks, the Rust tests and the Python suite.
# Usage: scripts/test.sh            (CI runs this same command through .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "test dependencies (.venv, tests/js/node_modules)"
# Programs the end-to-end tests call: Node.js for the JS SDK, openssl for a TLS certificate,
# curl for ALPN checks, Java for Spark reading a delivered Parquet file (pyspark), Chromium for
# the web page (CORS) test. Installed from Debian's packages
# when missing; Chromium without its recommended packages (desktop services, printing), which
# headless use does not need and which would more than double its install time.
missing=()
for tool in node:nodejs npm:npm openssl:openssl curl:curl java:default-jre-headless; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
done
browser=()
command -v chromium >/dev/null 2>&1 || browser=(chromium)
if [ ${#missing[@]} -gt 0 ] || [ ${#browser[@]} -gt 0 ]; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  [ ${#missing[@]} -eq 0 ] || $sudo_cmd apt-get install -y -qq "${missing[@]}"
  [ ${#browser[@]} -eq 0 ] || $sudo_cmd apt-get install -y -qq --no-install-recommends "${browser[@]}"
fi
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
npm ci --prefix tests/js --no-audit --no-fund --silent

# --- PostgreSQL for sluice-pgload (crates/pgload/tests/postgres.rs) ---------------------------
# The Redshift destination's loader is tested against a real PostgreSQL: Debian's `postgresql`
# package, installed when no server binaries are present (about 15 s on a fresh machine; this
# machine kind's image already has PostgreSQL 15, so there it only costs the check). The tests
# start servers of their own (initdb into a temporary directory, pg_ctl on a free 127.0.0.1
# port; as root through `runuser -u postgres`, since initdb refuses root) and never use the
# package's default cluster. SLUICE_PG_BIN is the binaries' directory (the newest version's);
# with CI=true the tests fail rather than skip when it is missing.
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql
fi
SLUICE_PG_BIN="$(dirname "$(printf '%s\n' /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")"
export SLUICE_PG_BIN
# --- end PostgreSQL ---------------------------------------------------------------------------

step "build"
cargo build --workspace --all-targets --locked

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "rust tests"
cargo test --workspace --locked

# --- rust-bootstrap fixture (tests/python/test_rust_bootstrap.py) ---------------------------
# A provided.al2023 handler built with the official `lambda_runtime` crate; a standalone
# package with its own Cargo.lock (not a workspace member), built unoptimised to save time.
step "rust lambda fixture (tests/fixtures/rust-bootstrap)"
CARGO_TARGET_DIR="$PWD/target/fixtures" cargo build --release --locked \
  --manifest-path tests/fixtures/rust-bootstrap/Cargo.toml
export SLUICE_RUST_BOOTSTRAP="$PWD/target/fixtures/release/bootstrap"
# --- end rust-bootstrap fixture ---------------------------------------------------------------

step "python end-to-end tests (boto3, AWS CLI, raw HTTP)"
SLUICE_BIN="$PWD/target/debug/sluice" PATH="$PWD/.venv/bin:$PATH" .venv/bin/python -m pytest -q tests/python
