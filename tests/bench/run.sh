#!/usr/bin/env bash
# profilegate's side-by-side benchmark (issue 6): one command, everything on loopback.
#
#   tests/bench/run.sh                          # the full run: 3 rounds of 10 s per target
#   DURATION=2 ROUNDS=1 tests/bench/run.sh      # a short smoke run
#
# It installs what it needs when missing (apt-get: nginx, wrk, curl, cmake, apache2,
# libapache2-mod-auth-openidc; `npm ci` in tests/op), builds profilegate in release mode, and
# starts on free loopback ports, each with its own configuration in one temporary directory:
#
#   upstream     nginx answering every request with a fixed `200 ok\n`
#   nginx proxy  a plain nginx `proxy_pass` to the upstream, upstream keepalive
#   test OP      node tests/op/server.js (oidc-provider), clients for profilegate and Apache
#   profilegate  the release binary in front of the upstream, one required profile question
#   bare pingora a proxy on profilegate's stack with no code of its own (tests/bench/
#                bare_pingora.rs, the cargo example `bare-pingora`): pingora's server, hyper's
#                HTTP/1, a keep-alive pool, the same settings and allocator as profilegate: the
#                floor under profilegate's cost. BARE_ENGINE=proxy runs pingora-proxy instead
#                (what profilegate ran on before; docs/performance.md compares them)
#   Apache       apache2 + mod_auth_openidc + mod_proxy in front of the upstream (when installable)
#
# Sessions come from real logins at the test OP with curl cookie jars (login and consent forms;
# for profilegate the profile question is answered too, so its requests carry X-Profile-* and
# X-Profile-Jwt). Before measuring, the upstream is asked through each proxy what identity it
# received. Then `wrk` measures every target in turn, ROUNDS times, the order rotating each
# round; each figure is also printed as a ratio to the direct upstream of the same round.
#
# Proxy CPU per request: utime + stime from /proc/<pid>/stat of the proxy's processes (the
# nginx master and workers, every Apache process, the profilegate process; reaped children
# through the parent's cutime + cstime), after the wrk run minus before, divided by the requests
# wrk completed. A run is marked INVALID and never counted when any response is not a 200 (a
# lost session gives fast redirects or 401s), any connection failed or timed out, or more than
# 1 request in 1000 met a connection the server had closed. The script exits with status 1 when
# a target has no valid run at all (or anything else fails), 0 otherwise.
#
# Login cost: LOGINS new users sign in through each proxy (navigation, the OP's forms, the
# callback: code exchange, ID token and userinfo, the new session and, for profilegate, the
# question choice) up to the redirect the callback answers with; the proxy's CPU over all of
# them, divided by LOGINS. The OP's own CPU is not counted.
#
# Environment (all optional):
#   DURATION=10        seconds per wrk run
#   ROUNDS=3           rounds over all targets (the table shows the median over valid rounds);
#                      0: no wrk runs at all, only the login cost
#   CONNECTIONS=32     wrk connections (-c)
#   WRK_THREADS=1      wrk threads (-t)
#   BENCH_PG_SERVER="threads = 1"   extra lines for profilegate's [server] table
#   BENCH_PG_STORE='cache_size = "8MiB"'  extra lines for profilegate's [store] table
#   BENCH_POLICY=1     give profilegate an [access] rule (e-mail domain, verified e-mail) and 20
#                      [[routes]] (10 public, 5 for a group, 5 skipping questions; see lib.sh)
#   BENCH_PG_EXTRA=... extra TOML appended to profilegate's configuration
#   WARMUP=2           seconds of unmeasured load per target before the first round (0: none)
#   LOGINS=50          complete logins of new users per proxy for the login cost (0: none)
#   SKIP_APACHE=1      leave Apache + mod_auth_openidc out
#   PROFILEGATE_BIN    use this profilegate binary instead of `cargo build --release`
#   BARE_PINGORA_BIN   the bare pingora proxy binary (default: built beside profilegate, or
#                      examples/bare-pingora next to PROFILEGATE_BIN; none found: left out)
#   BARE_ENGINE=hyper  the bare proxy's engine: hyper (profilegate's) or proxy (pingora-proxy)
#   BENCH_OUT=FILE     also write the final table (markdown) to FILE
#   BENCH_KEEP_TMP=1   keep the temporary directory (configurations, logs, wrk outputs)
#   BENCH_PERF=FILE    after the rounds, `perf record -g` profilegate under one more wrk run
#   BENCH_CALLGRIND=1  after the rounds, count the instructions per signed-in request of
#                      profilegate and of the bare pingora proxy under valgrind's callgrind
#                      (repeatable whatever else the machine does), with profilegate's top
#                      functions; the callgrind files are kept in the temporary directory
#   BENCH_LOGIN_PERF=FILE  `perf record` profilegate during its logins (BENCH_LOGIN_PERF_ARGS,
#                      default "-g -F 4999", are perf's options)
#
# On a machine with systemd, installing nginx or apache2 also starts their packaged services on
# port 80; this benchmark does not use them (`systemctl disable --now nginx apache2`).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH_DIR="$ROOT/tests/bench"
OP_DIR="$ROOT/tests/op"

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
BARE_ENGINE=${BARE_ENGINE:-hyper}
case "$BARE_ENGINE" in hyper | proxy) ;; *) echo "run.sh: BARE_ENGINE must be hyper or proxy" >&2; exit 2 ;; esac
CONNECTIONS=${CONNECTIONS:-32}
WRK_THREADS=${WRK_THREADS:-1}
WARMUP=${WARMUP:-2}
LOGINS=${LOGINS:-50}
SKIP_APACHE=${SKIP_APACHE:-0}
BENCH_USER=bench
BENCH_COMPANY="Bench Corp"

BENCH_NAME=bench
# shellcheck source=tests/bench/lib.sh
source "$BENCH_DIR/lib.sh"
# shellcheck source=tests/bench/measure.sh
source "$BENCH_DIR/measure.sh"

for v in DURATION ROUNDS CONNECTIONS WRK_THREADS WARMUP LOGINS; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a whole number (got '${!v}')"
done
((DURATION >= 1 && CONNECTIONS >= 1 && WRK_THREADS >= 1)) ||
  die "DURATION, CONNECTIONS and WRK_THREADS must be at least 1"
((ROUNDS > 0)) || WARMUP=0 # ROUNDS=0: the login cost only
((CONNECTIONS >= WRK_THREADS)) || die "CONNECTIONS must be at least WRK_THREADS"

# ------------------------------------------------------------------ dependencies

NGINX=/usr/sbin/nginx
APACHE=/usr/sbin/apache2
APACHE_MODULES=/usr/lib/apache2/modules

missing=()
have nginx || missing+=(nginx)
have wrk || missing+=(wrk)
have curl || missing+=(curl)
have node || missing+=(nodejs)
have npm || missing+=(npm)
if [[ -z "${PROFILEGATE_BIN:-}" ]]; then have cmake || missing+=(cmake); fi
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  apt_install "${missing[@]}" || die "apt-get install ${missing[*]} failed"
fi
[[ -x "$NGINX" ]] || NGINX=$(command -v nginx)

WITH_APACHE=1
if [[ "$SKIP_APACHE" == 1 ]]; then
  WITH_APACHE=0
else
  missing=()
  [[ -x "$APACHE" ]] || missing+=(apache2)
  [[ -f "$APACHE_MODULES/mod_auth_openidc.so" ]] || missing+=(libapache2-mod-auth-openidc)
  if ((${#missing[@]})); then
    say "installing Debian packages: ${missing[*]}"
    if ! apt_install "${missing[@]}"; then
      warn "could not install ${missing[*]}: Apache + mod_auth_openidc is left out"
      WITH_APACHE=0
    fi
  fi
  if ((WITH_APACHE)) && [[ ! -x "$APACHE" || ! -f "$APACHE_MODULES/mod_auth_openidc.so" ]]; then
    warn "apache2 or mod_auth_openidc not found after installing: Apache is left out"
    WITH_APACHE=0
  fi
fi

if [[ ! -d "$OP_DIR/node_modules/oidc-provider" ]]; then
  say "installing the test OP's dependencies (npm ci in tests/op)"
  (cd "$OP_DIR" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed in $OP_DIR"
fi

if [[ -n "${PROFILEGATE_BIN:-}" ]]; then
  BIN=$PROFILEGATE_BIN
  [[ -x "$BIN" ]] || die "PROFILEGATE_BIN=$BIN is not an executable file"
  say "using $BIN (PROFILEGATE_BIN set: not building)"
else
  say "building profilegate in release mode (a clean build takes several minutes)"
  (cd "$ROOT" && cargo build --release --locked --bin profilegate --example bare-pingora) ||
    die "cargo build --release failed"
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/profilegate"
  [[ "$BIN" == /* ]] || BIN="$ROOT/$BIN"
  [[ -x "$BIN" ]] || die "cargo build finished but $BIN is missing"
fi
BARE_BIN=${BARE_PINGORA_BIN:-$(dirname "$BIN")/examples/bare-pingora}
if [[ ! -x "$BARE_BIN" ]]; then
  [[ -n "${BARE_PINGORA_BIN:-}" ]] && die "BARE_PINGORA_BIN=$BARE_BIN is not an executable file"
  warn "no bare pingora proxy at $BARE_BIN: left out (cargo build --release --example bare-pingora)"
  BARE_BIN=""
fi

# ------------------------------------------------------------------ processes

bench_tmp profilegate-bench

rand() { node -p "require('crypto').randomBytes($1).toString('$2')"; }

# ------------------------------------------------------------------ ports and secrets

read -r UP_PORT NGX_PORT PG_PORT PG_ADMIN_PORT OP_PORT AP_PORT BARE_PORT < <(free_ports 7) || true
[[ -n "${BARE_PORT:-}" ]] || die "could not pick free ports"

UP_URL="http://127.0.0.1:$UP_PORT"
NGX_URL="http://127.0.0.1:$NGX_PORT"
PG_URL="http://127.0.0.1:$PG_PORT"
AP_URL="http://127.0.0.1:$AP_PORT"
BARE_URL="http://127.0.0.1:$BARE_PORT"
PG_SECRET=$(rand 24 base64url)
AP_SECRET=$(rand 24 base64url)
SESSION_SECRET=$(rand 32 base64)
AP_PASSPHRASE=$(rand 24 base64url)

# ------------------------------------------------------------------ upstream and nginx proxy

# Both nginx instances start from lib.sh's nginx_main: keep-alive without a request limit on
# every listener (Apache and profilegate get the same), no access log anywhere.
mkdir -p "$TMP/upstream" "$TMP/nginx-proxy"
upstream_nginx_conf "$TMP/upstream" "$UP_PORT" >"$TMP/upstream/nginx.conf"

{
  nginx_main "$TMP/nginx-proxy"
  cat <<EOF
  upstream app {
    server 127.0.0.1:$UP_PORT;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$NGX_PORT;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
} >"$TMP/nginx-proxy/nginx.conf"

say "starting the upstream (nginx, fixed 200) and the plain nginx proxy"
start upstream "$TMP/upstream/stdout.log" "$NGINX" -p "$TMP/upstream" -c "$TMP/upstream/nginx.conf"
UP_PID=$STARTED_PID
start nginx-proxy "$TMP/nginx-proxy/stdout.log" "$NGINX" -p "$TMP/nginx-proxy" -c "$TMP/nginx-proxy/nginx.conf"
NGX_PID=$STARTED_PID
wait_http "the upstream nginx" "$UP_PID" "$UP_URL/" 10 200 || true
wait_http "the nginx proxy" "$NGX_PID" "$NGX_URL/" 10 200
BARE_PID=""
if [[ -n "$BARE_BIN" ]]; then
  # As many workers as profilegate: `threads` from BENCH_PG_SERVER, else the CPU count.
  bare_threads=$(sed -n 's/^[[:space:]]*threads[[:space:]]*=[[:space:]]*\([0-9][0-9]*\).*/\1/p' <<<"${BENCH_PG_SERVER:-}" | tail -n1)
  mkdir -p "$TMP/bare"
  start bare-pingora "$TMP/bare/stdout.log" "$BARE_BIN" "127.0.0.1:$BARE_PORT" "127.0.0.1:$UP_PORT" "${bare_threads:-$(nproc)}" "$BARE_ENGINE"
  BARE_PID=$STARTED_PID
  wait_http "the bare pingora proxy" "$BARE_PID" "$BARE_URL/" 10 200
fi

# ------------------------------------------------------------------ test OP

start_test_op "[{\"client_id\":\"profilegate\",\"client_secret\":\"$PG_SECRET\",\"redirect_uris\":[\"$PG_URL/.profilegate/callback\"]},
  {\"client_id\":\"apache\",\"client_secret\":\"$AP_SECRET\",\"redirect_uris\":[\"$AP_URL/redirect_uri\"]}]"

# ------------------------------------------------------------------ profilegate

mkdir -p "$TMP/profilegate"
(
  umask 077
  {
    echo "# Written by tests/bench/run.sh."
    profilegate_toml "$ISSUER" "$PG_SECRET" "$TMP/profilegate/data"
  } >"$TMP/profilegate/profilegate.toml"
)

start_profilegate profilegate "$TMP/profilegate" "$PG_ADMIN_PORT"

# ------------------------------------------------------------------ Apache + mod_auth_openidc

if ((WITH_APACHE)); then
  AP_DIR="$TMP/apache"
  mkdir -p "$AP_DIR"
  chmod 755 "$AP_DIR"
  user_lines=""
  if [[ "$(id -u)" -eq 0 ]]; then
    if id www-data >/dev/null 2>&1; then
      user_lines=$'User www-data\nGroup www-data'
    else
      user_lines=$'User nobody\nGroup nogroup'
    fi
  fi
  (
    umask 077
    cat >"$AP_DIR/httpd.conf" <<EOF
# Written by tests/bench/run.sh: Apache + mod_auth_openidc in front of the same upstream.
ServerRoot "$AP_DIR"
ServerName 127.0.0.1
Listen 127.0.0.1:$AP_PORT
PidFile "$AP_DIR/httpd.pid"
DefaultRuntimeDir "$AP_DIR"
Mutex file:$AP_DIR default
ErrorLog "$AP_DIR/error.log"
LogLevel warn
$user_lines

LoadModule mpm_event_module $APACHE_MODULES/mod_mpm_event.so
LoadModule authn_core_module $APACHE_MODULES/mod_authn_core.so
LoadModule authz_core_module $APACHE_MODULES/mod_authz_core.so
LoadModule authz_user_module $APACHE_MODULES/mod_authz_user.so
LoadModule proxy_module $APACHE_MODULES/mod_proxy.so
LoadModule proxy_http_module $APACHE_MODULES/mod_proxy_http.so
LoadModule auth_openidc_module $APACHE_MODULES/mod_auth_openidc.so

# Debian's mpm_event defaults, except that idle threads are never reaped: a child stopped
# mid-run would close its keep-alive connections under wrk.
StartServers 2
MinSpareThreads 25
MaxSpareThreads 150
ThreadLimit 64
ThreadsPerChild 25
MaxRequestWorkers 150
MaxConnectionsPerChild 0

KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 75

OIDCProviderMetadataURL $ISSUER/.well-known/openid-configuration
OIDCClientID apache
OIDCClientSecret $AP_SECRET
OIDCRedirectURI $AP_URL/redirect_uri
OIDCCryptoPassphrase $AP_PASSPHRASE
OIDCScope "openid email profile"
OIDCPKCEMethod S256
OIDCSSLValidateServer Off

<Location />
  AuthType openid-connect
  Require valid-user
</Location>

ProxyPass / $UP_URL/
ProxyPassReverse / $UP_URL/
EOF
  )
  say "starting Apache + mod_auth_openidc"
  start apache "$AP_DIR/stdout.log" "$APACHE" -d "$AP_DIR" -f "$AP_DIR/httpd.conf" -DFOREGROUND
  AP_PID=$STARTED_PID
  if ! (wait_http Apache "$AP_PID" "$AP_URL/" 15); then
    log_tail Apache "$AP_DIR/error.log"
    log_tail Apache "$AP_DIR/stdout.log"
    exit 1
  fi
fi

# ------------------------------------------------------------------ real logins

say "signing in at the test OP through profilegate (login, consent, profile question)"
body=$(browse "$TMP/pg.jar" "$PG_URL/") || die "the login through profilegate failed"
[[ "$body" == ok ]] || die "after the login profilegate showed: $body"
PG_COOKIE=$(cookie_header "$TMP/pg.jar" 127.0.0.1)
[[ -n "$PG_COOKIE" ]] || die "no profilegate session cookie in the jar"
# A browser drops the login cookie when the callback deletes it; the measured requests must not
# carry it either.
[[ "$PG_COOKIE" != *profilegate_session_login_* ]] || die "the login cookie outlived the callback"
seen=$(curl -sS --max-time 20 -H "Cookie: $PG_COOKIE" "$PG_URL/_bench/identity")
[[ "$seen" == *"user=$BENCH_USER company=$BENCH_COMPANY jwt=ey"* ]] ||
  die "the upstream did not receive the identity and profile through profilegate: $seen"
say "profilegate forwards X-Forwarded-User, X-Profile-Company and X-Profile-Jwt"

if ((WITH_APACHE)); then
  say "signing in at the test OP through Apache + mod_auth_openidc"
  if ! body=$(browse "$TMP/ap.jar" "$AP_URL/"); then
    log_tail Apache "$AP_DIR/error.log"
    die "the login through Apache failed"
  fi
  [[ "$body" == ok ]] || die "after the login Apache showed: $body"
  AP_COOKIE=$(cookie_header "$TMP/ap.jar" 127.0.0.1)
  [[ -n "$AP_COOKIE" ]] || die "no mod_auth_openidc session cookie in the jar"
  seen=$(curl -sS --max-time 20 -H "Cookie: $AP_COOKIE" "$AP_URL/_bench/identity")
  [[ "$seen" == *"oidc_sub=$BENCH_USER"* ]] ||
    die "the upstream did not receive the identity through Apache: $seen"
  say "Apache forwards OIDC_CLAIM_sub"
fi

# ------------------------------------------------------------------ measuring

TARGETS=(direct nginx profilegate)
declare -A URL=([direct]="$UP_URL/" [nginx]="$NGX_URL/" [profilegate]="$PG_URL/")
declare -A COOKIE=([direct]="" [nginx]="" [profilegate]="$PG_COOKIE")
declare -A PROXY_PID=([direct]="" [nginx]="$NGX_PID" [profilegate]="$PG_PID")
declare -A LABEL=([direct]="upstream direct (nginx)" [nginx]="nginx proxy_pass" [profilegate]="profilegate (signed in)")
if [[ -n "$BARE_PID" ]]; then
  TARGETS+=(bare)
  URL[bare]="$BARE_URL/"
  COOKIE[bare]=""
  PROXY_PID[bare]="$BARE_PID"
  LABEL[bare]="bare pingora proxy (floor)"
fi
if ((WITH_APACHE)); then
  TARGETS+=(apache)
  URL[apache]="$AP_URL/"
  COOKIE[apache]="$AP_COOKIE"
  PROXY_PID[apache]="$AP_PID"
  LABEL[apache]="Apache + mod_auth_openidc"
fi

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
say "machine: $(machine); load average $LOAD_START"
say "wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s, $ROUNDS round(s), targets: ${TARGETS[*]}"

warm_up "${TARGETS[@]}"

RESULTS="$TMP/results.tsv"
: >"$RESULTS"
n=${#TARGETS[@]}
for ((round = 1; round <= ROUNDS; round++)); do
  say "round $round of $ROUNDS"
  order=()
  for ((i = 0; i < n; i++)); do order+=("${TARGETS[$(((i + round - 1) % n))]}"); done
  for t in "${order[@]}"; do
    measure_run "$t" "$DURATION" "$TMP/wrk-$round-$t.txt" proxy "${PROXY_PID[$t]}" up "$UP_PID"
    valid=$M_VALID why=$M_WHY rps=$M_RPS p50=$M_P50 p99=$M_P99 soft=$M_SOFT requests=$M_REQUESTS
    cpu_us=${M_CPU[proxy]} up_us=${M_CPU[up]}
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$t" "$valid" "$rps" "$p50" "$p99" "$cpu_us" "$up_us" "$requests" >>"$RESULTS"
    if ((valid)); then
      printf '    %-26s %8s req/s  p50 %6s µs  p99 %6s µs  proxy CPU %6s µs/req  upstream CPU %5s µs/req%s\n' \
        "${LABEL[$t]}" "$rps" "$p50" "$p99" "$cpu_us" "$up_us" "$( ((soft)) && printf '  (%s socket read/write errors)' "$soft")" >&2
    else
      printf '    %-26s INVALID (%s): not counted; wrk output: %s\n' "${LABEL[$t]}" "$why" "$TMP/wrk-$round-$t.txt" >&2
      sed -n '1,20p' "$TMP/wrk-$round-$t.txt" >&2
    fi
  done
  # The same round's ratios to the direct upstream.
  awk -F'\t' -v round="$round" '
    $1 == round && $2 == "direct" && $3 == 1 { drps = $4; dp50 = $5; dp99 = $6 }
    $1 == round { rows[++k] = $0 }
    END {
      for (i = 1; i <= k; i++) {
        split(rows[i], f, "\t")
        if (f[2] == "direct" || f[3] != 1) continue
        if (drps == "") { printf "    %-12s no valid direct run in this round: no ratios\n", f[2]; continue }
        printf "    %-12s vs direct (round %s): req/s %.2fx  p50 %.2fx  p99 %.2fx\n", f[2], round, f[4] / drps, f[5] / dp50, f[6] / dp99
      }
    }' "$RESULTS" >&2
done

# ------------------------------------------------------------------ profile (optional)

if [[ -n "${BENCH_PERF:-}" ]]; then
  have perf || apt_install linux-perf || die "perf is needed for BENCH_PERF (Debian package linux-perf)"
  say "perf record of profilegate under wrk for ${DURATION}s -> $BENCH_PERF (perf report -i $BENCH_PERF)"
  perf record -q -g -F 999 -o "$BENCH_PERF" -p "$PG_PID" -- sleep "$DURATION" >/dev/null 2>&1 &
  PERF_PID=$!
  run_wrk profilegate "$DURATION" "$TMP/wrk-perf.txt"
  wait "$PERF_PID" || warn "perf record failed (see perf_event_paranoid)"
fi

# ------------------------------------------------------------------ instructions (optional)

# callgrind_run NAME READY_URL URL COOKIE COMMAND...: starts COMMAND under callgrind, waits for
# READY_URL to answer 200, warms it up, counts the instructions of a wrk run on URL and sets
# CG_IR and CG_REQ (instructions, requests). Not run in a subshell: what it starts is in PIDS,
# so the cleanup stops it whatever happens.
callgrind_run() {
  local name=$1 ready=$2 url=$3 cookie=$4 out="$TMP/callgrind.$1.out" pid args=() requests total
  shift 4
  [[ -n "$cookie" ]] && args=(-H "Cookie: $cookie")
  # env outside valgrind: valgrind does not follow an exec (profilegate gets no PROFILEGATE_*).
  start "$name-callgrind" "$TMP/callgrind.$name.log" env ${unset_pg[@]+"${unset_pg[@]}"} \
    valgrind --tool=callgrind --callgrind-out-file="$out" "$@"
  pid=$STARTED_PID
  wait_http "$name under callgrind" "$pid" "$ready" 120 200 >&2
  wrk -t1 -c8 -d3s ${args[@]+"${args[@]}"} "$url" >/dev/null 2>&1 9>&- # warm-up: pools, caches
  callgrind_control -z "$pid" >/dev/null 2>&1 || die "callgrind_control -z failed"
  requests=$(wrk -t1 -c8 -d"${DURATION}s" -s "$BENCH_DIR/status.lua" ${args[@]+"${args[@]}"} "$url" 9>&- |
    sed -n 's/^RESULT .*requests=\([0-9]*\).*non200=0 .*/\1/p')
  [[ -n "$requests" ]] || die "the wrk run of $name under callgrind had failures"
  callgrind_control -d "$pid" >/dev/null 2>&1 || die "callgrind_control -d failed"
  sleep 1
  total=$(callgrind_annotate "$(ls -t "$out".* | head -n1)" 2>/dev/null |
    awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }')
  kill -INT "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true
  [[ -n "$total" ]] || die "no instruction count from callgrind for $name"
  CG_IR=$total CG_REQ=$requests
}

CALLGRIND_LINES=""
if [[ "${BENCH_CALLGRIND:-0}" == 1 ]]; then
  have valgrind || apt_install valgrind || die "valgrind is needed for BENCH_CALLGRIND"
  say "instructions per request under callgrind (profilegate restarted under valgrind, same store)"
  kill -INT "$PG_PID" 2>/dev/null
  for _ in $(seq 100); do kill -0 "$PG_PID" 2>/dev/null || break; sleep 0.1; done
  callgrind_run profilegate "http://127.0.0.1:$PG_ADMIN_PORT/readyz" "$PG_URL/" "$PG_COOKIE" \
    "$BIN" --config "$TMP/profilegate/profilegate.toml"
  pg_ir=$CG_IR pg_req=$CG_REQ
  CALLGRIND_LINES+="| profilegate (signed in) | $((pg_ir / pg_req)) | $pg_req |"$'\n'
  if [[ -n "$BARE_PID" ]]; then
    kill -INT "$BARE_PID" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$BARE_PID" 2>/dev/null || break; sleep 0.1; done
    callgrind_run bare "$BARE_URL/" "$BARE_URL/" "" \
      "$BARE_BIN" "127.0.0.1:$BARE_PORT" "127.0.0.1:$UP_PORT" "${bare_threads:-$(nproc)}" "$BARE_ENGINE"
    bare_ir=$CG_IR bare_req=$CG_REQ
    CALLGRIND_LINES+="| bare pingora proxy (floor) | $((bare_ir / bare_req)) | $bare_req |"$'\n'
  fi
  say "profilegate's top functions (self instructions per request):"
  callgrind_annotate --threshold=100 --auto=no "$(ls -t "$TMP/callgrind.profilegate.out".* | head -n1)" 2>/dev/null |
    awk -v n="$pg_req" '/^ *[0-9,]+ \( *[0-9.]+%\)  [^*]/ && !/PROGRAM TOTALS|start_thread|clone.S|thread_start|call_once|block_on|enter_runtime|__rust_begin/ {
      v = $1; gsub(",", "", v); sub(/^ *[0-9,]+ \( *[0-9.]+%\)  /, ""); sub(/ \[.*$/, "")
      sub(/^.*\/(registry\/src\/[^\/]+|rustc\/[0-9a-f]+)\//, "")
      if (++k <= 15) printf "    %7.0f  %s\n", v / n, substr($0, 1, 140)
    }' >&2
  # The proxies are restarted normally for what follows.
  start profilegate "$TMP/profilegate/profilegate.log" env ${unset_pg[@]+"${unset_pg[@]}"} "$BIN" --config "$TMP/profilegate/profilegate.toml"
  PG_PID=$STARTED_PID
  wait_http profilegate "$PG_PID" "http://127.0.0.1:$PG_ADMIN_PORT/readyz" 30 200
fi

# ------------------------------------------------------------------ logins

# login_cost NAME PID URL STOP WANT: LOGINS logins of new users from URL up to the redirect that
# the OIDC callback (a URL containing STOP) answers with, which must contain WANT; prints the
# CPU milliseconds the proxy (PID and its children) used per login. The OP's CPU is not counted.
# For profilegate it then prints, per login, from its threads' run times (schedstat): the CPU
# milliseconds of the start redirect, of the callback, and of the rest (what the process did
# between them, while the browser was at the OP: timers, sled's background threads); "- - -"
# for Apache, whose work is spread over child processes.
login_cost() {
  local name=$1 pid=$2 url=$3 stop=$4 want=$5 before after i out ns0 ns1 s0 start_ns=0 loc
  local split=1
  [[ "$name" == profilegate ]] || split=0
  if [[ -n "${BENCH_LOGIN_PERF:-}" ]]; then
    have perf || apt_install linux-perf || die "perf is needed for BENCH_LOGIN_PERF (Debian package linux-perf)"
    # shellcheck disable=SC2086 # options, split on purpose
    perf record -q ${BENCH_LOGIN_PERF_ARGS:--g -F 4999} -o "$BENCH_LOGIN_PERF" -p "$pid" >/dev/null 2>&1 &
    PERF_PID=$!
    sleep 1
  fi
  : >"$TMP/stop.ns"
  before=$(cpu_ticks "$pid")
  ns0=$(cpu_ns "$pid")
  for ((i = 1; i <= LOGINS; i++)); do
    rm -f "$TMP/login.jar"
    loc=$url
    if ((split)); then
      # The start redirect by itself, timed; browse() goes on from where it points.
      s0=$(cpu_ns "$pid")
      out=$(curl -sS --max-time 20 -b "$TMP/login.jar" -c "$TMP/login.jar" -o /dev/null -w '%{http_code} %{redirect_url}' \
        -H 'Accept: text/html,application/xhtml+xml,*/*;q=0.8' "$url") || die "login $i through $name failed"
      start_ns=$((start_ns + $(cpu_ns "$pid") - s0))
      [[ "$out" == 30?" "?* ]] || die "login $i through $name: the start answered '$out'"
      loc=${out#* }
    fi
    out=$( ((split)) && export SPLIT_PID=$pid
      browse "$TMP/login.jar" "$loc" "login-$i" "$stop") || die "login $i through $name failed"
    [[ "$out" == *"$want"* ]] || die "login $i through $name: the callback redirected to '$out'"
  done
  after=$(cpu_ticks "$pid")
  ns1=$(cpu_ns "$pid")
  if [[ -n "${BENCH_LOGIN_PERF:-}" ]]; then
    kill -INT "$PERF_PID" 2>/dev/null
    wait "$PERF_PID" 2>/dev/null || true # perf exits non-zero on SIGINT
    [[ -s "$BENCH_LOGIN_PERF" ]] || warn "perf record failed (see perf_event_paranoid)"
    PERF_PID=""
    say "perf profile of the logins in $BENCH_LOGIN_PERF (perf report -i $BENCH_LOGIN_PERF)"
  fi
  awk -v d=$((after - before)) -v n="$LOGINS" -v hz="$CLK_TCK" -v sp="$split" \
    -v start=$start_ns -v all=$((ns1 - ns0)) '
    { stop += $1 }
    END {
      printf "%.2f ", d * 1000 / hz / n
      if (sp) printf "%.2f %.2f %.2f", start / 1e6 / n, stop / 1e6 / n, (all - start - stop) / 1e6 / n
      else printf "- - -"
      print ""
    }' "$TMP/stop.ns"
}

LOGIN_LINES=""
if ((LOGINS > 0)); then
  say "$LOGINS logins of new users through profilegate (start, OP forms, callback: session and question choice)"
  read -r ms start_ms callback_ms rest_ms < <(login_cost profilegate "$PG_PID" "$PG_URL/" /.profilegate/callback /.profilegate/profile) || true
  [[ -n "$ms" ]] || die "the login cost through profilegate was not measured"
  LOGIN_LINES+="| profilegate | $ms ms | $start_ms ms | $callback_ms ms | $rest_ms ms | $(awk -v m="$ms" 'BEGIN { print (m < 2 ? "met" : "MISSED") }') (target < 2 ms) |"$'\n'
  if ((WITH_APACHE)); then
    say "$LOGINS logins of new users through Apache + mod_auth_openidc"
    read -r ms _ _ _ < <(login_cost Apache "$AP_PID" "$AP_URL/" /redirect_uri "$AP_URL/") || true
    [[ -n "$ms" ]] || die "the login cost through Apache was not measured"
    LOGIN_LINES+="| Apache + mod_auth_openidc | $ms ms | — | — | — | — |"$'\n'
  fi
fi

# ------------------------------------------------------------------ the table

labels=""
for t in "${TARGETS[@]}"; do labels+="$t=${LABEL[$t]};"; done

TABLE=$(awk -F'\t' -v targets="${TARGETS[*]}" -v labels="$labels" -v rounds="$ROUNDS" '
  function median(list,    a, n, i, j, t) {
    n = split(list, a, " ")
    if (n == 0) return ""
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  function add(key, v) { vals[key] = vals[key] (vals[key] == "" ? "" : " ") v }
  function fmt(v, spec) { return v == "" ? "n/a" : sprintf(spec, v) }
  function ms(v) { return v == "" ? "n/a" : sprintf("%.2f ms", v / 1000) }
  {
    r = $1; t = $2
    if ($3 != 1) { invalid[t]++; next }
    valid[t]++
    rps[r, t] = $4; p50[r, t] = $5; p99[r, t] = $6
    add(t SUBSEP "rps", $4); add(t SUBSEP "p50", $5); add(t SUBSEP "p99", $6)
    if ($7 != "-") add(t SUBSEP "cpu", $7)
    add(t SUBSEP "up", $8)
  }
  END {
    split(labels, lp, ";")
    for (i in lp) { if (lp[i] == "") continue; split(lp[i], kv, "="); label[kv[1]] = kv[2] }
    nt = split(targets, ts, " ")
    # per-round ratios to direct, and profilegate / nginx
    for (r = 1; r <= rounds; r++) {
      for (i = 1; i <= nt; i++) {
        t = ts[i]
        if (((r, t) in rps) && ((r, "direct") in rps)) {
          add(t SUBSEP "xrps", rps[r, t] / rps[r, "direct"])
          add(t SUBSEP "xp50", p50[r, t] / p50[r, "direct"])
          add(t SUBSEP "xp99", p99[r, t] / p99[r, "direct"])
        }
      }
      if (((r, "profilegate") in rps) && ((r, "nginx") in rps)) {
        add("pgng" SUBSEP "rps", rps[r, "profilegate"] / rps[r, "nginx"])
        add("pgng" SUBSEP "p99", p99[r, "profilegate"] / p99[r, "nginx"])
      }
      if (((r, "bare") in rps) && ((r, "nginx") in rps)) {
        add("bare" SUBSEP "ngrps", rps[r, "bare"] / rps[r, "nginx"])
        add("bare" SUBSEP "ngp99", p99[r, "bare"] / p99[r, "nginx"])
      }
      if (((r, "profilegate") in rps) && ((r, "bare") in rps)) {
        add("pgbare" SUBSEP "rps", rps[r, "profilegate"] / rps[r, "bare"])
      }
    }
    print "| target | req/s | × direct | p50 | × direct | p99 | × direct | proxy CPU/req | upstream CPU/req | valid runs |"
    print "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for (i = 1; i <= nt; i++) {
      t = ts[i]
      cpu = median(vals[t, "cpu"])
      printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %d of %d |\n", label[t],
        fmt(median(vals[t, "rps"]), "%.0f"), fmt(median(vals[t, "xrps"]), "%.2f"),
        ms(median(vals[t, "p50"])), fmt(median(vals[t, "xp50"]), "%.2f"),
        ms(median(vals[t, "p99"])), fmt(median(vals[t, "xp99"]), "%.2f"),
        (t == "direct" ? "—" : fmt(cpu, "%.1f µs")), fmt(median(vals[t, "up"]), "%.1f µs"),
        valid[t] + 0, valid[t] + invalid[t]
    }
    x = median(vals["pgng", "rps"]); p = median(vals["pgng", "p99"]); c = median(vals["profilegate", "cpu"])
    print ""
    print "Issue 6 targets (profilegate signed in, medians of same-round ratios):"
    if (x == "") print "- req/s ≥ 0.8× the nginx proxy: n/a (no round with valid profilegate and nginx runs)"
    else printf "- req/s ≥ 0.8× the nginx proxy: %.2f× → %s\n", x, (x >= 0.8 ? "met" : "MISSED")
    if (c == "") print "- proxy CPU ≤ 40 µs per request: n/a"
    else printf "- proxy CPU ≤ 40 µs per request: %.1f µs → %s\n", c, (c <= 40 ? "met" : "MISSED")
    if (p == "") print "- p99 ≤ 1.2× the nginx proxy'"'"'s: n/a"
    else printf "- p99 ≤ 1.2× the nginx proxy'"'"'s: %.2f× → %s\n", p, (p <= 1.2 ? "met" : "MISSED")
    bx = median(vals["bare", "ngrps"]); bp = median(vals["bare", "ngp99"]); bc = median(vals["bare", "cpu"])
    px = median(vals["pgbare", "rps"])
    if (bx != "") {
      print ""
      print "The floor: a bare proxy on the same stack (engine '"$BARE_ENGINE"', no code of its own, same settings):"
      printf "- bare pingora: %.2f× the nginx proxy'"'"'s req/s, p99 %.2f× nginx'"'"'s, %s proxy CPU per request\n", bx, bp, fmt(bc, "%.1f µs")
      if (px != "" && bc != "" && c != "") printf "- profilegate: %.2f× the bare pingora proxy'"'"'s req/s, %+.1f µs CPU per request over it\n", px, c - bc
    }
  }' "$RESULTS")

((ROUNDS > 0)) || TABLE="No wrk rounds (ROUNDS=0)."
VERSIONS="$("$NGINX" -v 2>&1 | sed 's/^nginx version: //'), $({ wrk -v 2>&1 || true; } | head -n1 | cut -d' ' -f1-2)"
if ((WITH_APACHE)); then
  VERSIONS+=", $("$APACHE" -v | sed -n 's/^Server version: //p'), mod_auth_openidc $(dpkg-query -W -f='${Version}' libapache2-mod-auth-openidc 2>/dev/null || echo '?')"
fi
HEADER="profilegate benchmark: wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s, $ROUNDS round(s), median over valid rounds
machine: $(machine); load average at the start: $LOAD_START
versions: $VERSIONS"

if [[ -n "$CALLGRIND_LINES" ]]; then
  TABLE+=$'\n\n'"Instructions per signed-in request under callgrind (wrk -c8, ${DURATION}s, after a warm-up):"$'\n\n'
  TABLE+="| proxy | instructions per request | requests counted |"$'\n'"| --- | ---: | ---: |"$'\n'"${CALLGRIND_LINES%$'\n'}"
fi
if [[ -n "$LOGIN_LINES" ]]; then
  TABLE+=$'\n\n'"Proxy CPU per complete login ($LOGINS new users each; the OP's own CPU not counted;"
  TABLE+=" the split from the proxy's thread run times; rest: while the browser is at the OP):"$'\n\n'
  TABLE+="| proxy | CPU per login | start redirect | callback | rest | issue-6 target |"$'\n'
  TABLE+="| --- | ---: | ---: | ---: | ---: | --- |"$'\n'"${LOGIN_LINES%$'\n'}"
fi

printf '\n%s\n\n%s\n\n' "$HEADER" "$TABLE"
if [[ -n "${BENCH_OUT:-}" ]]; then
  printf '%s\n\n%s\n' "$HEADER" "$TABLE" >"$BENCH_OUT"
  say "table written to $BENCH_OUT"
fi
if awk -F'\t' '$3 != 1 { bad = 1 } END { exit !bad }' "$RESULTS"; then
  warn "some runs were INVALID (see above) and are not in the table"
fi
# A target with no valid run at all has no figures: the benchmark failed.
no_valid=$(awk -F'\t' '{ seen[$2] = 1; if ($3 == 1) ok[$2] = 1 } END { for (t in seen) if (!(t in ok)) printf "%s ", t }' "$RESULTS")
[[ -z "$no_valid" ]] || die "no valid run for: ${no_valid% } (see the INVALID lines above)"
