#!/usr/bin/env bash
# profilegate's memory benchmark (issue 6: RSS < 64 MB with 1,000,000 users stored, flat over a
# 5-minute soak under load). One command, everything on loopback:
#
#   tests/bench/memory.sh                                 # 1,000,000 users, 5-minute soak
#   USERS=10000 COOKIES=2000 SOAK=20 SAMPLE_EVERY=2 WARMUP=5 tests/bench/memory.sh   # smoke run
#
# It installs what it needs when missing (apt-get: nginx, wrk, curl, cmake), builds profilegate
# and its helper example `bench-memory-fill` in release mode (or takes PROFILEGATE_BIN and
# FILL_BIN), and in one temporary directory:
#
#   1. fills a sled store with USERS users (each with one login and the answer to the one
#      required question), through the library's store API for the first user and copies of its
#      record for the others (tests/bench/memory_fill.rs, with progress), and seals session
#      cookies of COOKIES different users spread over the store with the configuration's secret,
#      exactly as the proxy seals them at login (nothing pending, the record's revision);
#   2. starts an upstream (nginx answering every request with `200 ok`) and the real profilegate
#      release binary in front of it on that store, default settings except what the benchmark
#      needs (ports, one required question, an OP issuer nobody answers: signed-in requests never
#      call the OP; the failed discovery at start-up is only a warning);
#   3. checks once that a request with one of the cookies reaches the upstream with the user's
#      X-Profile-Company, then drives load with wrk for SOAK seconds, every request carrying the
#      cookie of a user picked at random (tests/bench/memory.lua): the profile cache and, for the
#      users it does not hold, the store are exercised, not one hot user;
#   4. samples profilegate's VmRSS, RssAnon and VmHWM (/proc/PID/status) before the load and
#      every SAMPLE_EVERY seconds during it, then prints the table, the first and last samples,
#      the maximum and the verdict.
#
# Verdict: "RSS < 64 MB" holds when every sample's VmRSS (and the high-water mark VmHWM) stays
# below RSS_LIMIT_MB MB (1 MB = 1,000,000 bytes, as the target is written: 64 MB = 61.0 MiB).
# "Flat" holds when the average VmRSS of the last minute of the soak is
# at most FLAT_PCT % above the average of the first minute after WARMUP seconds of warm-up
# (growth is what a leak or an unbounded cache shows; shrinking is fine). A run in which any
# response was not a 200 (a lost session answers with redirects or 401s), or any connection
# failed or timed out, is INVALID: the script says so and exits with status 1. A valid run that
# misses a target exits with status 2.
#
# Environment (all optional):
#   USERS=1000000      users stored
#   COOKIES=20000      different signed-in users in the load (their sessions are sealed once)
#   SOAK=300           seconds of load
#   SAMPLE_EVERY=10    seconds between RSS samples
#   WARMUP=60          seconds of the soak before the "first minute" of the flatness check
#   CONNECTIONS=32     wrk connections (-c)
#   WRK_THREADS=1      wrk threads (-t)
#   RSS_LIMIT_MB=64    the RSS target, MB (10^6 bytes)
#   FLAT_PCT=5         allowed growth from the first to the last minute, percent
#   BENCH_PG_SERVER="threads = 1"      extra lines for profilegate's [server] table
#   BENCH_PG_STORE='cache_size = "8MiB"'  extra lines for profilegate's [store] table
#   BENCH_PG_ENV="MALLOC_ARENA_MAX=2"  environment given to profilegate (space-separated)
#   STORE_DIR=DIR      keep the filled store in DIR and reuse it next time (default: temporary)
#   FILL_ORDER=random  the order the users are written in: random (default; subjects from an OP are
#                      opaque ids, so users arrive in no key order) or key (sled's best case)
#   BACKEND=sled       the store: sled (default) or postgres (a temporary PostgreSQL server started
#                      for the run, tests/pg_server.sh; only profilegate's own RSS is measured, the
#                      server's is not; STORE_DIR and FILL_ORDER do not apply)
#   PROFILEGATE_BIN    use this profilegate binary instead of `cargo build --release`
#   FILL_BIN           use this bench-memory-fill binary instead of building the example
#   BENCH_OUT=FILE     also write the RSS table and summary (markdown) to FILE
#   BENCH_KEEP_TMP=1   keep the temporary directory (configuration, logs, wrk output)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH_DIR="$ROOT/tests/bench"

USERS=${USERS:-1000000}
COOKIES=${COOKIES:-20000}
SOAK=${SOAK:-300}
SAMPLE_EVERY=${SAMPLE_EVERY:-10}
WARMUP=${WARMUP:-60}
CONNECTIONS=${CONNECTIONS:-32}
WRK_THREADS=${WRK_THREADS:-1}
RSS_LIMIT_MB=${RSS_LIMIT_MB:-64}
FLAT_PCT=${FLAT_PCT:-5}
export FILL_ORDER=${FILL_ORDER:-random}
BACKEND=${BACKEND:-sled}

BENCH_NAME="memory bench"
# shellcheck source=tests/bench/lib.sh
source "$BENCH_DIR/lib.sh"

for v in USERS COOKIES SOAK SAMPLE_EVERY WARMUP CONNECTIONS WRK_THREADS RSS_LIMIT_MB FLAT_PCT; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a whole number (got '${!v}')"
done
((USERS >= 1 && COOKIES >= 1 && SOAK >= 1 && SAMPLE_EVERY >= 1 && CONNECTIONS >= 1 && WRK_THREADS >= 1)) ||
  die "USERS, COOKIES, SOAK, SAMPLE_EVERY, CONNECTIONS and WRK_THREADS must be at least 1"
((CONNECTIONS >= WRK_THREADS)) || die "CONNECTIONS must be at least WRK_THREADS"
[[ "$BACKEND" == sled || "$BACKEND" == postgres ]] || die "BACKEND must be sled or postgres (got '$BACKEND')"
[[ "$FILL_ORDER" == random || "$FILL_ORDER" == key ]] || die "FILL_ORDER must be random or key (got '$FILL_ORDER')"
((COOKIES <= USERS)) || die "COOKIES ($COOKIES) cannot exceed USERS ($USERS)"

# ------------------------------------------------------------------ dependencies

missing=()
have nginx || missing+=(nginx)
have wrk || missing+=(wrk)
have curl || missing+=(curl)
if [[ -z "${PROFILEGATE_BIN:-}" || -z "${FILL_BIN:-}" ]]; then have cmake || missing+=(cmake); fi
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  apt_install "${missing[@]}" || die "apt-get install ${missing[*]} failed"
fi
NGINX=/usr/sbin/nginx
[[ -x "$NGINX" ]] || NGINX=$(command -v nginx)

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
[[ "$TARGET_DIR" == /* ]] || TARGET_DIR="$ROOT/$TARGET_DIR"
build=()
[[ -n "${PROFILEGATE_BIN:-}" ]] || build+=(--bin profilegate)
[[ -n "${FILL_BIN:-}" ]] || build+=(--example bench-memory-fill)
if ((${#build[@]})); then
  say "building ${build[*]} in release mode (a clean build takes several minutes)"
  (cd "$ROOT" && cargo build --release --locked "${build[@]}") || die "cargo build --release failed"
fi
BIN=${PROFILEGATE_BIN:-$TARGET_DIR/release/profilegate}
FILL=${FILL_BIN:-$TARGET_DIR/release/examples/bench-memory-fill}
[[ -x "$BIN" ]] || die "$BIN is not an executable file"
[[ -x "$FILL" ]] || die "$FILL is not an executable file"

# ------------------------------------------------------------------ processes

bench_tmp profilegate-memory

read -r UP_PORT PG_PORT PG_ADMIN_PORT OP_PORT < <(free_ports 4) || true
[[ -n "${OP_PORT:-}" ]] || die "could not pick free ports (python3 or node is needed)"
UP_URL="http://127.0.0.1:$UP_PORT"
PG_URL="http://127.0.0.1:$PG_PORT"
SESSION_SECRET=$(head -c 32 /dev/urandom | base64)

# ------------------------------------------------------------------ upstream

mkdir -p "$TMP/upstream"
{
  nginx_main "$TMP/upstream" 1
  cat <<EOF
  server {
    listen 127.0.0.1:$UP_PORT;
    default_type text/plain;
    location = /_bench/identity {
      return 200 "user=\$http_x_forwarded_user company=\$http_x_profile_company\n";
    }
    location / { return 200 "ok\n"; }
  }
}
EOF
} >"$TMP/upstream/nginx.conf"
say "starting the upstream (nginx, fixed 200)"
start upstream "$TMP/upstream/stdout.log" "$NGINX" -p "$TMP/upstream" -c "$TMP/upstream/nginx.conf"
UP_PID=$STARTED_PID
wait_http "the upstream nginx" "$UP_PID" "$UP_URL/" 10 200

# ------------------------------------------------------------------ store and cookies

if [[ "$BACKEND" == postgres ]]; then
  # shellcheck source=tests/pg_server.sh
  source "$ROOT/tests/pg_server.sh"
  say "starting a temporary PostgreSQL server (the store; its memory is not profilegate's)"
  pg_server_start >&2 || die "could not start PostgreSQL"
  STORE="$PG_SERVER_URL?sslmode=disable"
else
  STORE=${STORE_DIR:-$TMP/store}
fi
mkdir -p "$TMP/profilegate"
# The issuer: nobody listens there; signed-in requests never call the OP (discovery at start-up
# fails with a warning).
(
  umask 077
  {
    echo "# Written by tests/bench/memory.sh."
    profilegate_toml "http://127.0.0.1:$OP_PORT" memory-bench "$STORE"
    printf '\n[log]\nformat = "text"\n'
  } >"$TMP/profilegate/profilegate.toml"
)
CONFIG="$TMP/profilegate/profilegate.toml"
# profilegate reads PROFILEGATE_<SECTION>_<KEY> overrides and refuses other PROFILEGATE_* names
# (PROFILEGATE_BIN included): it gets none, only the configuration file.
unset_pg=()
while read -r name; do unset_pg+=(-u "$name"); done < <(compgen -e | grep '^PROFILEGATE_' || true)
env ${unset_pg[@]+"${unset_pg[@]}"} "$BIN" check --config "$CONFIG" >"$TMP/check.log" 2>&1 || {
  log_tail "profilegate check" "$TMP/check.log"
  die "the benchmark's configuration does not pass profilegate check"
}

say "filling the $BACKEND store with $USERS users ($FILL_ORDER order for sled) and sealing $COOKIES sessions (the first fill of a million takes a while)"
env ${unset_pg[@]+"${unset_pg[@]}"} "$FILL" "$CONFIG" "$USERS" "$COOKIES" "$TMP/cookies.txt" 9>&- &
echo $! >"$TMP/fill.pid"
wait "$(<"$TMP/fill.pid")" || die "filling the store failed"
rm -f "$TMP/fill.pid"
if [[ "$BACKEND" == postgres ]]; then
  STORE_BYTES=$(psql -qAt "$PG_SERVER_URL" -c "SELECT pg_total_relation_size('profilegate_users')")
else
  STORE_BYTES=$(du -sb "$STORE" | cut -f1)
fi

# ------------------------------------------------------------------ profilegate

say "starting profilegate on the store ($((STORE_BYTES / 1024 / 1024)) MiB on disk)"
env_args=()
# shellcheck disable=SC2206 # BENCH_PG_ENV is a space-separated list of NAME=VALUE
[[ -n "${BENCH_PG_ENV:-}" ]] && env_args=(${BENCH_PG_ENV})
start profilegate "$TMP/profilegate/profilegate.log" env ${unset_pg[@]+"${unset_pg[@]}"} ${env_args[@]+"${env_args[@]}"} "$BIN" --config "$CONFIG"
PG_PID=$STARTED_PID
if ! (wait_http profilegate "$PG_PID" "http://127.0.0.1:$PG_ADMIN_PORT/healthz" 60 200); then
  log_tail profilegate "$TMP/profilegate/profilegate.log"
  exit 1
fi
# With env(1) and setsid exec'ing, PG_PID is profilegate itself; check that it is.
[[ "$(readlink "/proc/$PG_PID/exe" 2>/dev/null)" == "$(readlink -f "$BIN")" ]] ||
  die "pid $PG_PID is not the profilegate binary; cannot sample its memory"

first_cookie=$(head -n1 "$TMP/cookies.txt")
identity=$(curl -s --max-time 5 -H "Cookie: $first_cookie" "$PG_URL/_bench/identity" || true)
[[ "$identity" == "user=user-00000000 company=Bench Corp" ]] || {
  log_tail profilegate "$TMP/profilegate/profilegate.log"
  die "the upstream did not see the signed-in user through profilegate (got: ${identity:-nothing})"
}
say "the upstream sees: $identity"

# ------------------------------------------------------------------ soak

rss_sample() { # -> "VmRSS_kB RssAnon_kB VmHWM_kB"
  awk '/^VmRSS:/ { r = $2 } /^RssAnon:/ { a = $2 } /^VmHWM:/ { h = $2 } END { printf "%d %d %d\n", r, a, h }' \
    "/proc/$PG_PID/status" 2>/dev/null || echo "0 0 0"
}

SAMPLES="$TMP/samples.tsv"
sleep 1
read -r rss anon hwm < <(rss_sample)
printf '%s\t%s\t%s\t%s\n' 0 "$rss" "$anon" "$hwm" >"$SAMPLES"
IDLE_RSS=$rss

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
say "soak: wrk -t$WRK_THREADS -c$CONNECTIONS -d${SOAK}s over $COOKIES users' sessions; RSS every ${SAMPLE_EVERY}s (load average $LOAD_START)"
wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${SOAK}s" --latency -s "$BENCH_DIR/memory.lua" \
  "$PG_URL/" -- "$TMP/cookies.txt" >"$TMP/wrk.txt" 2>&1 9>&- &
WRK_PID=$!
echo "$WRK_PID" >"$TMP/wrk.pid"
started=$SECONDS
next=$SAMPLE_EVERY
while kill -0 "$WRK_PID" 2>/dev/null; do
  if ((SECONDS - started >= next)); then
    kill -0 "$PG_PID" 2>/dev/null || {
      log_tail profilegate "$TMP/profilegate/profilegate.log"
      die "profilegate exited during the soak"
    }
    read -r rss anon hwm < <(rss_sample)
    printf '%s\t%s\t%s\t%s\n' "$((SECONDS - started))" "$rss" "$anon" "$hwm" >>"$SAMPLES"
    printf '    %4ss  VmRSS %6.1f MiB  RssAnon %6.1f MiB  VmHWM %6.1f MiB\n' "$((SECONDS - started))" \
      "$(awk -v k="$rss" 'BEGIN{print k/1024}')" "$(awk -v k="$anon" 'BEGIN{print k/1024}')" \
      "$(awk -v k="$hwm" 'BEGIN{print k/1024}')" >&2
    next=$((next + SAMPLE_EVERY))
  fi
  sleep 0.2
done
wait "$WRK_PID" || true
WRK_PID=""
rm -f "$TMP/wrk.pid"
if ((SECONDS - started > next - SAMPLE_EVERY)); then # a last sample, unless one was just taken
  read -r rss anon hwm < <(rss_sample)
  printf '%s\t%s\t%s\t%s\n' "$((SECONDS - started))" "$rss" "$anon" "$hwm" >>"$SAMPLES"
fi

# ------------------------------------------------------------------ verdict

line=$(grep -m1 '^RESULT ' "$TMP/wrk.txt" || true)
[[ -n "$line" ]] || {
  sed -n '1,40p' "$TMP/wrk.txt" >&2
  die "wrk printed no result"
}
read -r requests non200 hard soft p50 p99 rps < <(awk '{
    for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    printf "%d %d %d %d %d %d %.0f\n", v["requests"], v["non200"], v["connect"] + v["timeout"], v["read"] + v["write"], v["p50_us"], v["p99_us"],
      (v["duration_us"] > 0 ? v["requests"] * 1e6 / v["duration_us"] : 0)
  }' <<<"$line")
valid=1 why=""
if ((requests == 0)); then
  valid=0 why="no requests completed"
elif ((non200 > 0)); then
  valid=0 why="$non200 responses were not 200"
elif ((hard > 0)); then
  valid=0 why="$hard connect errors or timeouts"
elif ((soft * 1000 > requests)); then
  valid=0 why="$soft read/write socket errors"
fi

machine="$(nproc) CPUs (nproc), $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1), Linux $(uname -r)"

REPORT="$TMP/report.md"
awk -F'\t' -v limit="$RSS_LIMIT_MB" -v flat="$FLAT_PCT" -v warm="$WARMUP" -v soak="$SOAK" \
  -v users="$USERS" -v cookies="$COOKIES" -v store_mib="$((STORE_BYTES / 1024 / 1024))" -v backend="$BACKEND" \
  -v idle="$IDLE_RSS" -v reqs="$requests" -v rps="$rps" -v p50="$p50" -v p99="$p99" \
  -v valid="$valid" -v why="$why" -v machine="$machine" -v load="$LOAD_START" '
  function mib(k) { return sprintf("%.1f", k / 1024) }
  { t[NR] = $1; r[NR] = $2; a[NR] = $3; h[NR] = $4; n = NR }
  END {
    printf "profilegate memory benchmark: %d users stored (%s, %s MiB on disk), %d signed-in users in the load, %d s soak\n", users, backend, store_mib, cookies, soak
    printf "machine: %s; load average at the start %s\n\n", machine, load
    print "| t (s) | VmRSS (MiB) | RssAnon (MiB) | VmHWM (MiB) |"
    print "| ---: | ---: | ---: | ---: |"
    max = 0; maxh = 0
    for (i = 1; i <= n; i++) {
      printf "| %d | %s | %s | %s |\n", t[i], mib(r[i]), mib(a[i]), mib(h[i])
      if (r[i] > max) max = r[i]
      if (h[i] > maxh) maxh = h[i]
    }
    # First minute after the warm-up, and the last minute of the soak.
    fs = 0; fc = 0; ls = 0; lc = 0
    for (i = 2; i <= n; i++) {
      if (t[i] > warm && t[i] <= warm + 60) { fs += r[i]; fc++ }
      if (t[i] > soak - 60) { ls += r[i]; lc++ }
    }
    printf "\nwrk: %d requests (%d req/s), p50 %.2f ms, p99 %.2f ms; %s\n", reqs, rps, p50 / 1000, p99 / 1000, (valid ? "every response a 200" : "INVALID: " why)
    printf "RSS idle after start %s MiB; first sample under load %s MiB (t=%d s); last %s MiB (t=%d s); max VmRSS %s MiB; VmHWM %s MiB\n", mib(idle), mib(r[2]), t[2], mib(r[n]), t[n], mib(max), mib(maxh)
    # VmRSS and VmHWM are in KiB; the limit is in MB.
    below = (maxh * 1024 < limit * 1e6)
    printf "verdict RSS < %d MB (%.1f MiB): %s (max VmRSS %s MiB = %.1f MB, VmHWM %s MiB = %.1f MB)\n", limit, limit * 1e6 / 1048576, (below ? "met" : "MISSED"), mib(max), max * 1024 / 1e6, mib(maxh), maxh * 1024 / 1e6
    if (fc == 0 || lc == 0 || warm + 60 > soak - 60) {
      printf "verdict flat: not judged (the soak needs WARMUP + 120 s: first and last minutes must not overlap)\n"
      flatok = -1
    } else {
      f = fs / fc; l = ls / lc; g = (l - f) * 100 / f
      flatok = (g <= flat)
      printf "verdict flat: %s (last-minute average %s MiB vs first-minute average %s MiB after %d s warm-up: %+.1f %%, limit +%d %%)\n", (flatok ? "met" : "MISSED"), mib(l), mib(f), warm, g, flat
    }
    exit (valid ? ((below && flatok != 0) ? 0 : 2) : 1)
  }' "$SAMPLES" >"$REPORT" && verdict=0 || verdict=$?

echo
cat "$REPORT"
[[ -n "${BENCH_OUT:-}" ]] && cp "$REPORT" "$BENCH_OUT"
if ((valid == 0)); then
  sed -n '1,20p' "$TMP/wrk.txt" >&2
  die "the run is INVALID ($why): its figures do not count"
fi
exit "$verdict"
