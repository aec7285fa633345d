#!/usr/bin/env bash
# The store micro-benchmark (tests/bench/store.rs) on the PostgreSQL store: starts a temporary
# PostgreSQL server (tests/pg_server.sh: installs Debian's postgresql when missing, its own
# directory, a free loopback port), runs `cargo bench --bench store` against it and removes it.
#
#   tests/bench/store_pg.sh                               # 1,000, 100,000 and 1,000,000 users
#   BENCH_STORE_USERS=1000000 tests/bench/store_pg.sh     # one size
#   tests/bench/store_pg.sh -- --measurement-time 3       # arguments after the script go to cargo bench
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/pg_server.sh
source tests/pg_server.sh
trap pg_server_stop EXIT
pg_server_start
BENCH_STORE_BACKEND=postgres BENCH_STORE_PG_URL="$PG_SERVER_URL" cargo bench --bench store "$@"
