#!/usr/bin/env bash
# profilegate's one test command: installs what the tests need, then runs every test.
#
#   ./tests/run.sh
#
# Installs (when missing): cmake (pingora's build), openssl (the test OP's RSA keys, made once
# per run; the PostgreSQL server's certificates), Node.js + npm (the test OpenID Provider),
# Debian's chromium (the headless-browser test), Debian's postgresql (a temporary server for the
# PostgreSQL store's tests, started on a free loopback port and removed at the end), Debian's
# glewlwyd (the second real OpenID Provider: tests/second_op.rs runs it in the foreground on a
# free loopback port with its own configuration and SQLite database, never its system service;
# installed without recommends, with dbconfig-sqlite3 and openssl), Debian's nginx (with
# libnginx-mod-http-headers-more-filter) and caddy (the edge proxies of tests/forward_auth.rs,
# run in the foreground on free loopback ports), and the npm packages pinned by
# tests/op/package-lock.json (the test OP) and tests/browser/package-lock.json (playwright-core,
# which drives that chromium and never downloads a browser). Then: cargo fmt --check, cargo clippy
# (all targets, warnings are errors), unit,
# component and end-to-end tests (real OP, echo upstream, profilegate on loopback ports, and a
# real Chromium; its screenshots go to target/test-artifacts/browser/), a smoke run of both
# benchmarks on the debug build (they install nginx, wrk and curl when missing), then a short
# smoke run of every cargo-fuzz target (tests/fuzz; installs cargo-fuzz when missing).
#
# Nothing waits forever: every test binary runs under a wall-clock limit of TEST_BINARY_LIMIT
# seconds (default 600; cargo test runs each one through tests/bounded.sh, its `runner`), and
# each long step (cargo test as a whole, each benchmark smoke, the fuzz smoke) under
# TEST_STEP_LIMIT seconds (default 3600). A binary or step past its limit is stopped with its
# children and the run fails with a "TIME LIMIT" line naming it. Inside the tests every wait on
# a child process has its own, shorter deadline and fails with the child's stderr
# (tests/support/child.rs). The installs are left to apt's and npm's own network timeouts.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

TEST_BINARY_LIMIT="${TEST_BINARY_LIMIT:-600}"
TEST_STEP_LIMIT="${TEST_STEP_LIMIT:-3600}"
bounded() { tests/bounded.sh "$TEST_STEP_LIMIT" "$@"; }
bounded_fg() { tests/bounded.sh --foreground "$TEST_STEP_LIMIT" "$@"; }

missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
# openssl: the test OP's RSA keys (tests/support/op_keys.rs) and the PostgreSQL test server's
# certificates. Debian's minimal images do not have it.
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v timeout >/dev/null 2>&1 || missing+=(coreutils)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# wrk: tests/reload.rs drives load through twenty configuration reloads.
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
# curl (with nghttp2): tests/tls.rs and tests/http2.rs (TLS versions, --http2, h2c).
command -v curl >/dev/null 2>&1 || missing+=(curl)
# nginx (with the headers-more module the README's block uses) and caddy: the edge proxies in
# front of forward-auth mode (tests/forward_auth.rs runs them in the foreground on free loopback
# ports with their own configurations; a system service their packages may start is not used).
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || missing+=(nginx)
[ -e /usr/lib/nginx/modules/ngx_http_headers_more_filter_module.so ] ||
  missing+=(libnginx-mod-http-headers-more-filter)
command -v caddy >/dev/null 2>&1 || missing+=(caddy)
# Installed without recommends: dbconfig-sqlite3 makes apt pick SQLite (not a MariaDB client)
# for the package's database configuration.
light=()
command -v glewlwyd >/dev/null 2>&1 || light+=(glewlwyd dbconfig-sqlite3)
if ((${#missing[@]} + ${#light[@]})); then
  step "installing Debian packages: ${missing[*]} ${light[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  if ((${#missing[@]})); then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  if ((${#light[@]})); then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
      "${light[@]}" >/dev/null
  fi
fi

step "installing the test OpenID Provider (npm ci in tests/op)"
(cd tests/op && npm ci --no-audit --no-fund --loglevel=error)

step "installing the browser driver (npm ci in tests/browser)"
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

# A PostgreSQL server for the PostgreSQL store's tests: a temporary cluster (its own directory,
# a free loopback port, password authentication), stopped and removed when this script exits.
# The tests read PG_TEST_URL; PG_TEST_REQUIRED makes them fail rather than skip without it.
step "starting a temporary PostgreSQL server (the PostgreSQL store's tests)"
# shellcheck source=tests/pg_server.sh
source tests/pg_server.sh
trap pg_server_stop EXIT
# A SIGTERM (a CI runner's cancel) or Ctrl-C still stops the PostgreSQL server.
trap 'exit 143' TERM
trap 'exit 130' INT
pg_server_start
export PG_TEST_URL="$PG_SERVER_URL"
export PG_TEST_CA="$PG_SERVER_CA"
export PG_TEST_REQUIRED=1
# tests/second_op.rs fails rather than skips when Glewlwyd (installed above) cannot run.
export GLEWLWYD_TEST_REQUIRED=1

step "cargo fmt --check"
cargo fmt --all -- --check

# Lints are policy (STYLE.md): every warning of every target fails the run.
step "cargo clippy --all-targets -- -D warnings"
bounded cargo clippy --locked --all-targets -- -D warnings

step "cargo test (each test binary at most $TEST_BINARY_LIMIT s)"
# Every test binary cargo runs (unit tests, integration tests, the benchmarks in test mode) goes
# through the runner: `tests/bounded.sh LIMIT BINARY ARGS...`, from the package root with cargo
# test's environment, its output untouched (libtest's "test result:" lines included). The runner
# is set for the host target only, the one these tests build for. --all-targets runs no doc
# tests (cargo's definition), so no test escapes the runner.
host=$(rustc -vV | sed -n 's/^host: //p')
runner="target.$host.runner=['$PWD/tests/bounded.sh', '$TEST_BINARY_LIMIT']"
bounded cargo test --locked --all-targets --config "$runner"

# The benchmarks need a release build to measure anything; this only proves they still run end
# to end (installs, processes, logins, wrk, the validity checks, cleanup), on debug binaries
# (`cargo test` compiled them already; `cargo build` puts the examples where the scripts look).
step "benchmark smoke (tests/bench/run.sh, edge.sh and memory.sh, debug build, a few seconds each)"
cargo build --locked --bin profilegate --example bare-pingora --example bench-memory-fill
TARGET=${CARGO_TARGET_DIR:-target}
# The benchmark scripts stop their own children on SIGTERM, and may ask sudo for a password to
# install a package: they stay in the foreground (bounded_fg).
DURATION=1 ROUNDS=1 WARMUP=0 LOGINS=2 SKIP_APACHE=1 \
  PROFILEGATE_BIN="$TARGET/debug/profilegate" BARE_PINGORA_BIN="$TARGET/debug/examples/bare-pingora" \
  bounded_fg tests/bench/run.sh >"$TARGET/bench-smoke.log" 2>&1 || { tail -n 40 "$TARGET/bench-smoke.log"; exit 1; }
echo "side-by-side benchmark ran (debug build: its figures mean nothing; $TARGET/bench-smoke.log)"
DURATION=1 ROUNDS=1 WARMUP=0 PROFILEGATE_BIN="$TARGET/debug/profilegate" \
  bounded_fg tests/bench/edge.sh >"$TARGET/edge-bench-smoke.log" 2>&1 || { tail -n 40 "$TARGET/edge-bench-smoke.log"; exit 1; }
echo "edge benchmark ran (forward-auth behind nginx, HTTPS; $TARGET/edge-bench-smoke.log)"
USERS=2000 COOKIES=200 SOAK=3 SAMPLE_EVERY=1 WARMUP=1 RSS_LIMIT_MB=1024 \
  PROFILEGATE_BIN="$TARGET/debug/profilegate" FILL_BIN="$TARGET/debug/examples/bench-memory-fill" \
  bounded_fg tests/bench/memory.sh >"$TARGET/memory-smoke.log" 2>&1 || { tail -n 40 "$TARGET/memory-smoke.log"; exit 1; }
BACKEND=postgres USERS=2000 COOKIES=200 SOAK=3 SAMPLE_EVERY=1 WARMUP=1 RSS_LIMIT_MB=1024 \
  PROFILEGATE_BIN="$TARGET/debug/profilegate" FILL_BIN="$TARGET/debug/examples/bench-memory-fill" \
  bounded_fg tests/bench/memory.sh >"$TARGET/memory-smoke-postgres.log" 2>&1 || { tail -n 40 "$TARGET/memory-smoke-postgres.log"; exit 1; }
echo "memory benchmark ran ($TARGET/memory-smoke.log, $TARGET/memory-smoke-postgres.log)"

step "fuzz smoke (cargo fuzz, ${FUZZ_SECONDS:-10} s per target; SECURITY.md says how to run longer)"
# cargo-fuzz and libFuzzer end by themselves (-max_total_time); the limit is for a stuck build.
FUZZ_SECONDS="${FUZZ_SECONDS:-10}" bounded_fg tests/fuzz/smoke.sh
