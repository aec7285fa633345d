#!/usr/bin/env bash
# profilegate's one test command: installs what the tests need, then runs every test.
#
#   ./tests/run.sh
#
# Installs (when missing): cmake (pingora's build), Node.js + npm (the test OpenID Provider),
# Debian's chromium (the headless-browser test), Debian's postgresql (a temporary server for the
# PostgreSQL store's tests, started on a free loopback port and removed at the end), and the npm packages pinned by
# tests/op/package-lock.json (the test OP) and tests/browser/package-lock.json (playwright-core,
# which drives that chromium and never downloads a browser). Then: cargo fmt --check, unit,
# component and end-to-end tests (real OP, echo upstream, profilegate on loopback ports, and a
# real Chromium; its screenshots go to target/test-artifacts/browser/), a smoke run of both
# benchmarks on the debug build (they install nginx, wrk and curl when missing), then a short
# smoke run of every cargo-fuzz target (tests/fuzz; installs cargo-fuzz when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if ((${#missing[@]})); then
  step "installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

step "installing the test OpenID Provider (npm ci in tests/op)"
(cd tests/op && npm ci --no-audit --no-fund --loglevel=error)

step "installing the browser driver (npm ci in tests/browser)"
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

# A PostgreSQL server for the PostgreSQL store's tests: a temporary cluster (its own directory,
# a free loopback port, password authentication), stopped and removed when this script exits.
# The tests read PG_TEST_URL; PG_TEST_REQUIRED makes them fail rather than skip without it.
step "starting a temporary PostgreSQL server (the PostgreSQL store's tests)"
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
if [ ! -x "${PG_BIN:-/nonexistent}/initdb" ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
fi
PG_DIR=$(mktemp -d /tmp/profilegate-pg.XXXXXX)
PG_AS=()
if [ "$(id -u)" -eq 0 ]; then
  # initdb and postgres refuse to run as root: the Debian package's postgres user runs them.
  chown postgres: "$PG_DIR"
  PG_AS=(runuser -u postgres --)
fi
PG_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
printf '%s\n' "$PG_PASSWORD" >"$PG_DIR/pw"
[ "$(id -u)" -ne 0 ] || chown postgres: "$PG_DIR/pw"
PG_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${PG_AS[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U profilegate --pwfile="$PG_DIR/pw" \
  -A scram-sha-256 -E UTF8 --locale=C >"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log"; exit 1; }
pg_stop() {
  "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
}
trap pg_stop EXIT
"${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR" start >/dev/null ||
  { cat "$PG_DIR/server.log"; exit 1; }
export PG_TEST_URL="postgres://profilegate:$PG_PASSWORD@127.0.0.1:$PG_PORT/postgres"
export PG_TEST_REQUIRED=1
echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo test"
cargo test --locked --all-targets

# The benchmarks need a release build to measure anything; this only proves they still run end
# to end (installs, processes, logins, wrk, the validity checks, cleanup), on debug binaries
# (`cargo test` compiled them already; `cargo build` puts the examples where the scripts look).
step "benchmark smoke (tests/bench/run.sh and memory.sh, debug build, a few seconds each)"
cargo build --locked --bin profilegate --example bare-pingora --example bench-memory-fill
TARGET=${CARGO_TARGET_DIR:-target}
DURATION=1 ROUNDS=1 WARMUP=0 LOGINS=2 SKIP_APACHE=1 \
  PROFILEGATE_BIN="$TARGET/debug/profilegate" BARE_PINGORA_BIN="$TARGET/debug/examples/bare-pingora" \
  tests/bench/run.sh >"$TARGET/bench-smoke.log" 2>&1 || { tail -n 40 "$TARGET/bench-smoke.log"; exit 1; }
echo "side-by-side benchmark ran (debug build: its figures mean nothing; target/bench-smoke.log)"
USERS=2000 COOKIES=200 SOAK=3 SAMPLE_EVERY=1 WARMUP=1 RSS_LIMIT_MB=1024 \
  PROFILEGATE_BIN="$TARGET/debug/profilegate" FILL_BIN="$TARGET/debug/examples/bench-memory-fill" \
  tests/bench/memory.sh >"$TARGET/memory-smoke.log" 2>&1 || { tail -n 40 "$TARGET/memory-smoke.log"; exit 1; }
echo "memory benchmark ran (target/memory-smoke.log)"

step "fuzz smoke (cargo fuzz, ${FUZZ_SECONDS:-10} s per target; SECURITY.md says how to run longer)"
FUZZ_SECONDS="${FUZZ_SECONDS:-10}" tests/fuzz/smoke.sh
