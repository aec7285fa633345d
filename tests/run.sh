#!/usr/bin/env bash
# profilegate's one test command: installs what the tests need, then runs every test.
#
#   ./tests/run.sh
#
# Installs (when missing): cmake (pingora's build), Node.js + npm (the test OpenID Provider),
# and the test OP's npm packages pinned by tests/op/package-lock.json. Then: cargo fmt --check,
# unit, component and end-to-end tests (real OP, echo upstream, profilegate on loopback ports).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if ((${#missing[@]})); then
  step "installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

step "installing the test OpenID Provider (npm ci in tests/op)"
(cd tests/op && npm ci --no-audit --no-fund --loglevel=error)

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo test"
cargo test --locked --all-targets
