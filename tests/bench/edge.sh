#!/usr/bin/env bash
# profilegate behind an edge proxy and with its own TLS (issue 20): two side-by-side benchmarks
# on the harness of run.sh (lib.sh, measure.sh: the same logins, wrk rounds, CPU accounting and
# INVALID rules), everything on loopback.
#
#   tests/bench/edge.sh                              # both: 3 rounds of 10 s per target
#   BENCH_SCENARIO=forward_auth tests/bench/edge.sh  # or tls: one of them
#   DURATION=1 ROUNDS=1 WARMUP=0 tests/bench/edge.sh # a short smoke run
#
# forward_auth: an edge nginx with `auth_request` in front of the upstream: the README's server
#   block, verbatim but for its addresses and keep-alive (`{prefix}/auth` internal,
#   X-Original-URI/-Method, client identity headers cleared with headers-more, the identity and
#   profile headers copied upstream, 401 turned into the sign-in redirect); the auth subrequest
#   goes to
#     (a) profilegate in `server.mode = "forward_auth"`, for a user who signed in through the
#         edge (401 -> /.profilegate/start -> the OP -> the question page -> back), the question
#         answered: every request is a 200 with X-Forwarded-User, X-Profile-Company and
#         X-Profile-Jwt copied to the upstream (checked once before measuring);
#     (b) the floor: a second nginx answering every auth subrequest with an empty 200.
#   Both edges are server blocks of one edge nginx, identical but for where the subrequest goes
#   (a third one, without auth_request, is the reference: the edge's own cost);
#   the subrequests use a keep-alive pool (EDGE_AUTH_KEEPALIVE=0: a new connection each, as the
#   README's block has it), the upstream one in every chain. Reported: requests/s of the whole chain, the auth
#   service's CPU per request (profilegate's process; the floor nginx's master and workers) and
#   the edge nginx's CPU per request separately.
# tls: profilegate with a TLS listener (server.tls_cert_file/tls_key_file) in front of the
#   upstream, for a signed-in user, vs nginx terminating TLS (`listen ... ssl`, HTTP/1.1 only)
#   with proxy_pass to the same upstream (keep-alive pool); the same self-signed P-256
#   certificate (openssl). wrk speaks HTTP/1.1 over TLS on keep-alive connections: what is
#   measured is the encrypted hot path, not handshakes (32 per run).
#
# Each round runs every target in turn, the order rotating; a figure is the median over valid
# rounds, a ratio the median of the same round's ratios. CPU per request: utime + stime from
# /proc of the process and its children over the wrk run, divided by the requests completed.
#
# Environment (all optional): DURATION=10, ROUNDS=3, CONNECTIONS=32, WRK_THREADS=1, WARMUP=2
# (as run.sh), BENCH_SCENARIO=all|forward_auth|tls, EDGE_AUTH_KEEPALIVE=1, BENCH_PG_SERVER /
# BENCH_PG_STORE / BENCH_PG_EXTRA (extra profilegate TOML, as run.sh), PROFILEGATE_BIN (else
# `cargo build --release`), BENCH_OUT=FILE (the tables in markdown), BENCH_KEEP_TMP=1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH_DIR="$ROOT/tests/bench"
OP_DIR="$ROOT/tests/op"

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-32}
WRK_THREADS=${WRK_THREADS:-1}
WARMUP=${WARMUP:-2}
BENCH_SCENARIO=${BENCH_SCENARIO:-all}
EDGE_AUTH_KEEPALIVE=${EDGE_AUTH_KEEPALIVE:-1}
BENCH_USER=bench
BENCH_COMPANY="Bench Corp"

BENCH_NAME=edge-bench
# shellcheck source=tests/bench/lib.sh
source "$BENCH_DIR/lib.sh"
# shellcheck source=tests/bench/measure.sh
source "$BENCH_DIR/measure.sh"

for v in DURATION ROUNDS CONNECTIONS WRK_THREADS WARMUP; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a whole number (got '${!v}')"
done
((DURATION >= 1 && ROUNDS >= 1 && CONNECTIONS >= WRK_THREADS && WRK_THREADS >= 1)) ||
  die "DURATION, ROUNDS and WRK_THREADS must be at least 1, CONNECTIONS at least WRK_THREADS"
WITH_FA=0 WITH_TLS=0
case "$BENCH_SCENARIO" in
  all) WITH_FA=1 WITH_TLS=1 ;;
  forward_auth) WITH_FA=1 ;;
  tls) WITH_TLS=1 ;;
  *) die "BENCH_SCENARIO must be all, forward_auth or tls (got '$BENCH_SCENARIO')" ;;
esac
[[ "$EDGE_AUTH_KEEPALIVE" == [01] ]] || die "EDGE_AUTH_KEEPALIVE must be 0 or 1"

# ------------------------------------------------------------------ dependencies

missing=()
have nginx || missing+=(nginx)
have wrk || missing+=(wrk)
have curl || missing+=(curl)
have openssl || missing+=(openssl)
have node || missing+=(nodejs)
have npm || missing+=(npm)
if [[ -z "${PROFILEGATE_BIN:-}" ]]; then have cmake || missing+=(cmake); fi
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  apt_install "${missing[@]}" || die "apt-get install ${missing[*]} failed"
fi
NGINX=/usr/sbin/nginx
[[ -x "$NGINX" ]] || NGINX=$(command -v nginx)
if [[ ! -d "$OP_DIR/node_modules/oidc-provider" ]]; then
  say "installing the test OP's dependencies (npm ci in tests/op)"
  (cd "$OP_DIR" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed in $OP_DIR"
fi
if [[ -n "${PROFILEGATE_BIN:-}" ]]; then
  BIN=$PROFILEGATE_BIN
  [[ -x "$BIN" ]] || die "PROFILEGATE_BIN=$BIN is not an executable file"
else
  say "building profilegate in release mode (a clean build takes several minutes)"
  (cd "$ROOT" && cargo build --release --locked --bin profilegate) || die "cargo build --release failed"
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/profilegate"
fi
[[ "$BIN" == /* ]] || BIN="$PWD/$BIN"

bench_tmp profilegate-edge-bench
rand() { node -p "require('crypto').randomBytes($1).toString('$2')"; }

read -r UP_PORT OP_PORT EDGE_PORT FLOOR_EDGE_PORT FLOOR_PORT FA_PORT FA_ADMIN_PORT \
  TLS_PORT TLS_ADMIN_PORT NGX_TLS_PORT NOAUTH_EDGE_PORT < <(free_ports 11) || true
[[ -n "${NOAUTH_EDGE_PORT:-}" ]] || die "could not pick free ports"
UP_URL="http://127.0.0.1:$UP_PORT"
EDGE_URL="http://127.0.0.1:$EDGE_PORT"
FLOOR_EDGE_URL="http://127.0.0.1:$FLOOR_EDGE_PORT"
TLS_URL="https://127.0.0.1:$TLS_PORT"
NGX_TLS_URL="https://127.0.0.1:$NGX_TLS_PORT"
PG_SECRET=$(rand 24 base64url)
SESSION_SECRET=$(rand 32 base64)

# ------------------------------------------------------------------ upstream, OP

mkdir -p "$TMP/upstream"
upstream_nginx_conf "$TMP/upstream" "$UP_PORT" >"$TMP/upstream/nginx.conf"
start upstream "$TMP/upstream/stdout.log" "$NGINX" -p "$TMP/upstream" -c "$TMP/upstream/nginx.conf"
UP_PID=$STARTED_PID
wait_http "the upstream nginx" "$UP_PID" "$UP_URL/" 10 200

# One client for both profilegates (the same client_id, each its own callback).
start_test_op "[{\"client_id\":\"profilegate\",\"client_secret\":\"$PG_SECRET\",
  \"redirect_uris\":[\"$EDGE_URL/.profilegate/callback\",\"$TLS_URL/.profilegate/callback\"]}]"

# pg_config DIR PORT PUBLIC_URL ADMIN_PORT SERVER_LINES: DIR/profilegate.toml (lib.sh's
# profilegate_toml: one required question) with these extra [server] lines.
pg_config() {
  mkdir -p "$1"
  (
    umask 077
    PG_PORT=$2 PG_URL=$3 PG_ADMIN_PORT=$4 BENCH_PG_SERVER="$5"$'\n'"${BENCH_PG_SERVER:-}" \
      profilegate_toml "$ISSUER" "$PG_SECRET" "$1/data" >"$1/profilegate.toml"
  )
}

# sign_in NAME URL: a new user's login through URL (the OP's forms, the question answered);
# sets SIGNED_IN_COOKIE, then checks that the upstream receives the identity and the answer.
sign_in() {
  local body seen
  say "signing in at the test OP through $1 (login, consent, profile question)"
  body=$(browse "$TMP/$1.jar" "$2/") || die "the login through $1 failed"
  [[ "$body" == ok ]] || die "after the login $1 showed: $body"
  SIGNED_IN_COOKIE=$(cookie_header "$TMP/$1.jar" 127.0.0.1)
  [[ -n "$SIGNED_IN_COOKIE" && "$SIGNED_IN_COOKIE" != *profilegate_session_login_* ]] ||
    die "after the login through $1 the jar holds no session cookie, or still the login cookie"
  seen=$(curl -sS --max-time 20 ${BENCH_CURL[@]+"${BENCH_CURL[@]}"} -H "Cookie: $SIGNED_IN_COOKIE" "$2/_bench/identity")
  [[ "$seen" == *"user=$BENCH_USER company=$BENCH_COMPANY jwt=ey"* ]] ||
    die "the upstream did not receive the identity and profile through $1: $seen"
  say "$1: the upstream receives X-Forwarded-User, X-Profile-Company and X-Profile-Jwt"
}

TARGETS=()
declare -A URL=() COOKIE=() LABEL=() CPU_ARGS=()

# ------------------------------------------------------------------ forward-auth

if ((WITH_FA)); then
  mkdir -p "$TMP/floor" "$TMP/edge"
  {
    nginx_main "$TMP/floor"
    printf '  server {\n    listen 127.0.0.1:%s;\n    location / { return 200; }\n  }\n}\n' "$FLOOR_PORT"
  } >"$TMP/floor/nginx.conf"
  start auth-floor "$TMP/floor/stdout.log" "$NGINX" -p "$TMP/floor" -c "$TMP/floor/nginx.conf"
  FLOOR_PID=$STARTED_PID
  wait_http "the auth floor nginx" "$FLOOR_PID" "http://127.0.0.1:$FLOOR_PORT/" 10 200

  # The README's nginx server block, verbatim (the one tests/forward_auth.rs runs), its addresses
  # replaced: edge_server PORT AUTH_POOL prints it listening on PORT, asking AUTH_POOL.
  README_NGINX=$(awk '/^<!-- tested: tests\/forward_auth.rs nginx -->$/ { on = 1; next }
    on && /^```nginx$/ { body = 1; next }
    body && /^```$/ { exit }
    body { print }' "$ROOT/README.md")
  for needle in 'listen 127.0.0.1:8000;' 'proxy_pass http://127.0.0.1:4180;' 'proxy_pass http://127.0.0.1:3000;' more_clear_input_headers; do
    [[ "$README_NGINX" == *"$needle"* ]] || die "the README's nginx block (<!-- tested: tests/forward_auth.rs nginx -->) lacks '$needle'"
  done
  HEADERS_MORE=/usr/lib/nginx/modules/ngx_http_headers_more_filter_module.so
  if [[ ! -f "$HEADERS_MORE" ]]; then
    say "installing Debian packages: libnginx-mod-http-headers-more-filter (the README's nginx block uses it)"
    apt_install libnginx-mod-http-headers-more-filter || die "apt-get install libnginx-mod-http-headers-more-filter failed"
  fi
  # Keep-alive to the upstream in every chain (as the reference's); to the auth service unless
  # EDGE_AUTH_KEEPALIVE=0 (the README's block as it is: a new connection per subrequest).
  KEEPALIVE='proxy_http_version 1.1; proxy_set_header Connection "";'
  edge_server() {
    local auth="proxy_pass http://$2;"
    ((EDGE_AUTH_KEEPALIVE)) && auth+=" $KEEPALIVE"
    sed -e "s|listen 127.0.0.1:8000;|listen 127.0.0.1:$1;|" \
      -e "s|proxy_pass http://127.0.0.1:4180;|$auth|" \
      -e "s|proxy_pass http://127.0.0.1:3000;|proxy_pass http://app; $KEEPALIVE|" <<<"$README_NGINX"
  }
  {
    echo "load_module $HEADERS_MORE;"
    nginx_main "$TMP/edge"
    printf '  upstream app { server 127.0.0.1:%s; keepalive 64; }\n' "$UP_PORT"
    printf '  upstream profilegate_auth { server 127.0.0.1:%s; keepalive 64; }\n' "$FA_PORT"
    printf '  upstream floor_auth { server 127.0.0.1:%s; keepalive 64; }\n' "$FLOOR_PORT"
    edge_server "$EDGE_PORT" profilegate_auth
    edge_server "$FLOOR_EDGE_PORT" floor_auth
    # The reference: the same edge without auth_request.
    printf '  server {\n    listen 127.0.0.1:%s;\n    location / {\n      proxy_pass http://app;\n' "$NOAUTH_EDGE_PORT"
    printf '      proxy_http_version 1.1;\n      proxy_set_header Connection "";\n    }\n  }\n'
    echo "}"
  } >"$TMP/edge/nginx.conf"
  start edge-nginx "$TMP/edge/stdout.log" "$NGINX" -p "$TMP/edge" -c "$TMP/edge/nginx.conf"
  EDGE_PID=$STARTED_PID
  if ! (wait_http "the edge nginx" "$EDGE_PID" "$FLOOR_EDGE_URL/" 10 200); then
    log_tail "the edge nginx" "$TMP/edge/error.log"
    exit 1
  fi
  pg_config "$TMP/fa" "$FA_PORT" "$EDGE_URL" "$FA_ADMIN_PORT" \
    $'mode = "forward_auth"\ntrusted_proxies = ["127.0.0.1/32"]'
  start_profilegate "profilegate (forward_auth)" "$TMP/fa" "$FA_ADMIN_PORT"
  FA_PID=$PG_PID
  code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 "$EDGE_URL/api/x")
  [[ "$code" == 401 ]] || die "an anonymous API call through the edge to profilegate answered $code, not 401"

  sign_in "the nginx edge + profilegate (forward_auth)" "$EDGE_URL"
  TARGETS+=(fa_noauth fa_floor fa_profilegate)
  URL[fa_noauth]="http://127.0.0.1:$NOAUTH_EDGE_PORT/" COOKIE[fa_noauth]="" CPU_ARGS[fa_noauth]="edge $EDGE_PID"
  LABEL[fa_noauth]="nginx proxy_pass, no auth (reference)"
  URL[fa_floor]="$FLOOR_EDGE_URL/" COOKIE[fa_floor]="" LABEL[fa_floor]="nginx auth_request → static 200 (floor)"
  URL[fa_profilegate]="$EDGE_URL/" COOKIE[fa_profilegate]="$SIGNED_IN_COOKIE"
  LABEL[fa_profilegate]="nginx auth_request → profilegate (signed in)"
  CPU_ARGS[fa_floor]="edge $EDGE_PID auth $FLOOR_PID"
  CPU_ARGS[fa_profilegate]="edge $EDGE_PID auth $FA_PID"
fi

# ------------------------------------------------------------------ TLS

if ((WITH_TLS)); then
  mkdir -p "$TMP/cert"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$TMP/cert/key.pem" -out "$TMP/cert/cert.pem" >"$TMP/cert/openssl.log" 2>&1 ||
    { log_tail openssl "$TMP/cert/openssl.log"; die "openssl could not make the certificate"; }
  chmod 644 "$TMP/cert/key.pem" # the nginx workers may run as another user
  BENCH_CURL=(--cacert "$TMP/cert/cert.pem")

  mkdir -p "$TMP/nginx-tls"
  {
    nginx_main "$TMP/nginx-tls"
    cat <<EOF
  upstream app { server 127.0.0.1:$UP_PORT; keepalive 64; }
  server {
    listen 127.0.0.1:$NGX_TLS_PORT ssl;
    ssl_certificate $TMP/cert/cert.pem;
    ssl_certificate_key $TMP/cert/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
  } >"$TMP/nginx-tls/nginx.conf"
  start nginx-tls "$TMP/nginx-tls/stdout.log" "$NGINX" -p "$TMP/nginx-tls" -c "$TMP/nginx-tls/nginx.conf"
  NGX_TLS_PID=$STARTED_PID
  deadline=$((SECONDS + 10))
  until curl -fsS -o /dev/null --max-time 2 --cacert "$TMP/cert/cert.pem" "$NGX_TLS_URL/"; do
    kill -0 "$NGX_TLS_PID" 2>/dev/null && ((SECONDS < deadline)) ||
      { log_tail "the TLS nginx" "$TMP/nginx-tls/error.log"; die "the TLS nginx did not answer"; }
    sleep 0.2
  done

  pg_config "$TMP/tls" "$TLS_PORT" "$TLS_URL" "$TLS_ADMIN_PORT" \
    "tls_cert_file = \"$TMP/cert/cert.pem\""$'\n'"tls_key_file = \"$TMP/cert/key.pem\""
  start_profilegate "profilegate (TLS)" "$TMP/tls" "$TLS_ADMIN_PORT"
  TLS_PID=$PG_PID

  sign_in "profilegate (TLS)" "$TLS_URL"
  TARGETS+=(tls_nginx tls_profilegate)
  URL[tls_nginx]="$NGX_TLS_URL/" COOKIE[tls_nginx]="" LABEL[tls_nginx]="nginx TLS proxy_pass"
  URL[tls_profilegate]="$TLS_URL/" COOKIE[tls_profilegate]="$SIGNED_IN_COOKIE"
  LABEL[tls_profilegate]="profilegate TLS (signed in)"
  CPU_ARGS[tls_nginx]="proxy $NGX_TLS_PID"
  CPU_ARGS[tls_profilegate]="proxy $TLS_PID"
fi

# ------------------------------------------------------------------ rounds

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
say "machine: $(machine); load average $LOAD_START"
say "wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s, $ROUNDS round(s), targets: ${TARGETS[*]}"
warm_up "${TARGETS[@]}"

# results.tsv: round target valid req/s p50 p99 requests cpu_edge cpu_auth cpu_proxy cpu_upstream
RESULTS="$TMP/results.tsv"
: >"$RESULTS"
n=${#TARGETS[@]}
for ((round = 1; round <= ROUNDS; round++)); do
  say "round $round of $ROUNDS"
  for ((i = 0; i < n; i++)); do
    t=${TARGETS[$(((i + round - 1) % n))]}
    # shellcheck disable=SC2086 # "name pid" pairs, split on purpose
    measure_run "$t" "$DURATION" "$TMP/wrk-$round-$t.txt" ${CPU_ARGS[$t]} up "$UP_PID"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$t" "$M_VALID" "$M_RPS" "$M_P50" "$M_P99" \
      "$M_REQUESTS" "${M_CPU[edge]:--}" "${M_CPU[auth]:--}" "${M_CPU[proxy]:--}" "${M_CPU[up]}" >>"$RESULTS"
    if ((M_VALID)); then
      printf '    %-44s %8s req/s  p50 %6s µs  p99 %6s µs  CPU µs/req: edge %5s  auth %5s  proxy %5s  upstream %5s%s\n' \
        "${LABEL[$t]}" "$M_RPS" "$M_P50" "$M_P99" "${M_CPU[edge]:--}" "${M_CPU[auth]:--}" "${M_CPU[proxy]:--}" "${M_CPU[up]}" \
        "$( ((M_SOFT)) && printf '  (%s socket read/write errors)' "$M_SOFT")" >&2
    else
      printf '    %-44s INVALID (%s): not counted; wrk output: %s\n' "${LABEL[$t]}" "$M_WHY" "$TMP/wrk-$round-$t.txt" >&2
      sed -n '1,20p' "$TMP/wrk-$round-$t.txt" >&2
    fi
  done
done

# ------------------------------------------------------------------ tables

labels=""
for t in "${TARGETS[@]}"; do labels+="$t=${LABEL[$t]};"; done
TABLE=$(awk -F'\t' -v labels="$labels" -v rounds="$ROUNDS" -v fa="$WITH_FA" -v tls="$WITH_TLS" '
  function median(list,    a, n, i, j, t) {
    n = split(list, a, " ")
    if (n == 0) return ""
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  function add(key, v) { vals[key] = vals[key] (vals[key] == "" ? "" : " ") v }
  function fmt(v, spec) { return v == "" ? "n/a" : sprintf(spec, v) }
  function ms(v) { return v == "" ? "n/a" : sprintf("%.2f ms", v / 1000) }
  function m(t, k) { return median(vals[t, k]) }
  function diff(a, b) { return (a == "" || b == "") ? "" : a - b }
  function ratio(a, b, k,    r) {   # same-round ratio a/b of column k, median over rounds
    for (r = 1; r <= rounds; r++) if (((r, a, k) in v) && ((r, b, k) in v) && v[r, b, k] > 0) add(a "/" b SUBSEP k, v[r, a, k] / v[r, b, k])
    return median(vals[a "/" b, k])
  }
  function row(t, cols) {
    printf "| %s | %s | %s | %s |%s %s | %d of %d |\n", label[t], fmt(m(t, "rps"), "%.0f"), ms(m(t, "p50")), ms(m(t, "p99")),
      cols, fmt(m(t, "up"), "%.1f µs"), valid[t] + 0, valid[t] + invalid[t]
  }
  {
    r = $1; t = $2
    if ($3 != 1) { invalid[t]++; next }
    valid[t]++
    split("rps p50 p99 req edge auth proxy up", names, " ")
    for (i = 1; i <= 8; i++) if ($(i + 3) != "-") { add(t SUBSEP names[i], $(i + 3)); v[r, t, names[i]] = $(i + 3) }
  }
  END {
    split(labels, lp, ";")
    for (i in lp) { if (lp[i] == "") continue; split(lp[i], kv, "="); label[kv[1]] = kv[2] }
    if (fa) {
      print "Forward-auth: the whole chain (edge nginx → auth subrequest → upstream):"
      print ""
      print "| chain | req/s | p50 | p99 | auth service CPU/req | edge nginx CPU/req | upstream CPU/req | valid runs |"
      print "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
      row("fa_noauth", sprintf(" — | %s |", fmt(m("fa_noauth", "edge"), "%.1f µs")))
      row("fa_floor", sprintf(" %s | %s |", fmt(m("fa_floor", "auth"), "%.1f µs"), fmt(m("fa_floor", "edge"), "%.1f µs")))
      row("fa_profilegate", sprintf(" %s | %s |", fmt(m("fa_profilegate", "auth"), "%.1f µs"), fmt(m("fa_profilegate", "edge"), "%.1f µs")))
      print ""
      printf "- profilegate / floor: req/s %s×, auth CPU per request %s× (%s µs), edge CPU per request %s×\n",
        fmt(ratio("fa_profilegate", "fa_floor", "rps"), "%.2f"), fmt(ratio("fa_profilegate", "fa_floor", "auth"), "%.2f"),
        fmt(diff(m("fa_profilegate", "auth"), m("fa_floor", "auth")), "%+.1f"), fmt(ratio("fa_profilegate", "fa_floor", "edge"), "%.2f")
      if (tls) print ""
    }
    if (tls) {
      print "HTTPS hot path (TLS terminated by the proxy, HTTP/1.1 keep-alive, proxy → upstream in plain HTTP/1.1):"
      print ""
      print "| proxy | req/s | p50 | p99 | proxy CPU/req | upstream CPU/req | valid runs |"
      print "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
      row("tls_nginx", sprintf(" %s |", fmt(m("tls_nginx", "proxy"), "%.1f µs")))
      row("tls_profilegate", sprintf(" %s |", fmt(m("tls_profilegate", "proxy"), "%.1f µs")))
      print ""
      printf "- profilegate / nginx: req/s %s×, p99 %s×, proxy CPU per request %s× (%s µs)\n",
        fmt(ratio("tls_profilegate", "tls_nginx", "rps"), "%.2f"), fmt(ratio("tls_profilegate", "tls_nginx", "p99"), "%.2f"),
        fmt(ratio("tls_profilegate", "tls_nginx", "proxy"), "%.2f"), fmt(diff(m("tls_profilegate", "proxy"), m("tls_nginx", "proxy")), "%+.1f")
    }
  }' "$RESULTS")

HEADER="profilegate edge benchmark ($BENCH_SCENARIO): wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s, $ROUNDS round(s), median over valid rounds
machine: $(machine); load average at the start: $LOAD_START
versions: $("$NGINX" -v 2>&1 | sed 's/^nginx version: //'), $({ wrk -v 2>&1 || true; } | head -n1 | cut -d' ' -f1-2), $(openssl version | cut -d' ' -f1-2); auth subrequest keep-alive: $( ((EDGE_AUTH_KEEPALIVE)) && echo on || echo off)"
printf '\n%s\n\n%s\n\n' "$HEADER" "$TABLE"
if [[ -n "${BENCH_OUT:-}" ]]; then
  printf '%s\n\n%s\n' "$HEADER" "$TABLE" >"$BENCH_OUT"
  say "tables written to $BENCH_OUT"
fi
if awk -F'\t' '$3 != 1 { bad = 1 } END { exit !bad }' "$RESULTS"; then
  warn "some runs were INVALID (see above) and are not in the tables"
fi
no_valid=$(awk -F'\t' '{ seen[$2] = 1; if ($3 == 1) ok[$2] = 1 } END { for (t in seen) if (!(t in ok)) printf "%s ", t }' "$RESULTS")
[[ -z "$no_valid" ]] || die "no valid run for: ${no_valid% } (see the INVALID lines above)"
