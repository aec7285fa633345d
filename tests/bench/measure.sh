# shellcheck shell=bash
# The measuring half shared by the benchmark scripts (run.sh, edge.sh), sourced after lib.sh:
# the test OP, real logins through a proxy with curl (browse), CPU accounting from /proc, one
# wrk run and its validity (measure_run), and the machine line. The scripts set BENCH_DIR,
# OP_DIR, BENCH_USER, BENCH_COMPANY and TMP (bench_tmp) before calling these; run_wrk reads the
# caller's URL and COOKIE arrays (indexed by target name). BENCH_CURL (an array, default empty)
# holds extra curl options for browse, e.g. `--cacert FILE` for an https proxy.

BENCH_CURL=()
CLK_TCK=$(getconf CLK_TCK)

# start_test_op CLIENTS_JSON: starts the test OpenID Provider (tests/op/server.js) on OP_PORT
# with these clients (a JSON array), waits for it; sets OP_PID and ISSUER.
start_test_op() {
  local config deadline
  config=$(CLIENTS="$1" OP_PORT="$OP_PORT" node -e '
    console.log(JSON.stringify({ host: "localhost", port: Number(process.env.OP_PORT),
      clients: JSON.parse(process.env.CLIENTS) }));')
  say "starting the test OpenID Provider"
  # Given in the environment, not on the command line: ps shows arguments to every user.
  start op "$TMP/op.out" env TEST_OP_CONFIG="$config" node "$OP_DIR/server.js"
  OP_PID=$STARTED_PID
  deadline=$((SECONDS + 20))
  until [[ -s "$TMP/op.out" ]] && grep -q '"issuer"' "$TMP/op.out"; do
    kill -0 "$OP_PID" 2>/dev/null || { log_tail "the test OP" "$TMP/op.out"; die "the test OP exited"; }
    ((SECONDS < deadline)) || { log_tail "the test OP" "$TMP/op.out"; die "the test OP was not ready in 20 s"; }
    sleep 0.1
  done
  ISSUER=$(grep -m1 '"issuer"' "$TMP/op.out" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).issuer))')
}

# profilegate reads PROFILEGATE_<SECTION>_<KEY> overrides (and refuses other PROFILEGATE_*
# names, PROFILEGATE_BIN included): the benchmarks give it none, only the configuration file.
unset_pg=()
while read -r name; do unset_pg+=(-u "$name"); done < <(compgen -e | grep '^PROFILEGATE_' || true)

# start_profilegate NAME DIR ADMIN_PORT: starts $BIN with DIR/profilegate.toml (log in
# DIR/profilegate.log), waits for its admin /readyz; sets PG_PID.
start_profilegate() {
  say "starting $1 ($BIN)"
  start profilegate "$2/profilegate.log" env ${unset_pg[@]+"${unset_pg[@]}"} "$BIN" --config "$2/profilegate.toml"
  PG_PID=$STARTED_PID
  if ! (wait_http "$1" "$PG_PID" "http://127.0.0.1:$3/readyz" 30 200); then
    log_tail "$1" "$2/profilegate.log"
    exit 1
  fi
}

# cpu_ns PID: nanoseconds on CPU of PID's live threads so far (schedstat: precise, unlike the
# ticks of /proc/PID/stat, enough to time one request).
cpu_ns() {
  # A thread may end between the glob and the read (tokio's idle blocking threads do): cat then
  # fails, which must not end the script (set -e, pipefail); the others are still summed.
  { cat /proc/"$1"/task/*/schedstat 2>/dev/null || true; } | awk '{ s += $1 } END { printf "%.0f", s }'
}

# browse JAR URL [LOGIN [STOP]]: walks like a browser from URL (redirects by hand, the OP's
# login and consent forms as LOGIN, profilegate's question page) until a 200 answer that is not
# a form; prints its body. With STOP (a piece of a URL) it stops as soon as a URL containing STOP
# answers with a redirect, and prints where to.
browse() {
  local jar=$1 next=$2 login=${3:-$BENCH_USER} stop=${4:-} page="$TMP/page.html"
  local out code loc action fields origin _
  for _ in $(seq 1 25); do
    # With SPLIT_PID (login_cost), the CPU that process spends on the STOP request is added up
    # in $TMP/stop.ns.
    local t0=""
    [[ -n "$stop" && -n "${SPLIT_PID:-}" && "$next" == *"$stop"* ]] && t0=$(cpu_ns "$SPLIT_PID")
    out=$(curl -sS --max-time 20 ${BENCH_CURL[@]+"${BENCH_CURL[@]}"} -b "$jar" -c "$jar" -o "$page" \
      -w '%{http_code} %{redirect_url}' -H 'Accept: text/html,application/xhtml+xml,*/*;q=0.8' "$next") || return 1
    [[ -n "$t0" ]] && echo $(($(cpu_ns "$SPLIT_PID") - t0)) >>"$TMP/stop.ns"
    code=${out%% *}
    loc=${out#* }
    case "$code" in
      301 | 302 | 303 | 307)
        if [[ -n "$stop" && "$next" == *"$stop"* ]]; then
          echo "$loc"
          return 0
        fi
        next=$loc
        continue
        ;;
      200) ;;
      *)
        printf 'bench: %s answered %s during the login\n' "$next" "$code" >&2
        head -c 2000 "$page" >&2
        return 1
        ;;
    esac
    if grep -q 'name="password"' "$page"; then
      fields=(--data-urlencode prompt=login --data-urlencode "login=$login" --data-urlencode password=any)
    elif grep -q 'value="consent"' "$page"; then
      fields=(--data-urlencode prompt=consent)
    elif grep -q 'name="_csrf"' "$page"; then
      # profilegate's question page: answer the pending question.
      local csrf question rd
      csrf=$(sed -n 's/.*name="_csrf" value="\([^"]*\)".*/\1/p' "$page" | head -n1)
      question=$(sed -n 's/.*name="_question" value="\([^"]*\)".*/\1/p' "$page" | head -n1)
      rd=$(sed -n 's/.*name="_rd" value="\([^"]*\)".*/\1/p' "$page" | head -n1 | sed 's/&#x2f;/\//g; s/&#47;/\//g; s/&amp;/\&/g')
      [[ "$question" == company ]] || {
        printf 'bench: unexpected profile question "%s"\n' "$question" >&2
        return 1
      }
      fields=(--data-urlencode "company=$BENCH_COMPANY" --data-urlencode "_csrf=$csrf"
        --data-urlencode "_question=$question" --data-urlencode "_rd=$rd" --data-urlencode _action=answer)
    else
      cat "$page"
      return 0
    fi
    action=$(sed -n 's/.*<form[^>]*action="\([^"]*\)".*/\1/p' "$page" | head -n1)
    if [[ -n "$action" ]]; then
      case "$action" in
        http://* | https://*) next=$action ;;
        /*)
          origin=${next#*://}
          next="${next%%://*}://${origin%%/*}$action"
          ;;
      esac
    fi
    out=$(curl -sS --max-time 20 ${BENCH_CURL[@]+"${BENCH_CURL[@]}"} -b "$jar" -c "$jar" -o "$page" \
      -w '%{http_code} %{redirect_url}' -H 'Accept: text/html' "${fields[@]}" "$next") || return 1
    code=${out%% *}
    loc=${out#* }
    if [[ "$code" != 30? || -z "$loc" ]]; then
      printf 'bench: the form at %s answered %s\n' "$next" "$code" >&2
      head -c 2000 "$page" >&2
      return 1
    fi
    next=$loc
  done
  printf 'bench: the login did not finish in 25 steps\n' >&2
  return 1
}

# cookie_header JAR HOST: the cookies a browser would send to HOST, as one Cookie value.
cookie_header() {
  awk -F'\t' -v host="$2" '
    NF >= 7 { d = $1; sub(/^#HttpOnly_/, "", d); if (d == host && $7 != "") printf "%s%s=%s", (n++ ? "; " : ""), $6, $7 }
  ' "$1"
}

# cpu_ticks PID...: CPU ticks (user + system) used so far by each PID, its live children and
# the children it has reaped.
cpu_ticks() {
  local roots=" $* " total=0 stat rest f
  for stat in /proc/[0-9]*/stat; do
    rest=$(<"$stat") 2>/dev/null || continue
    local pid=${stat#/proc/}
    pid=${pid%/stat}
    rest=${rest##*) }
    read -ra f <<<"$rest"
    # f[1] ppid, f[11] utime, f[12] stime, f[13] cutime, f[14] cstime
    if [[ "$roots" == *" $pid "* ]]; then
      total=$((total + f[11] + f[12] + f[13] + f[14]))
    elif [[ "$roots" == *" ${f[1]} "* ]]; then
      total=$((total + f[11] + f[12]))
    fi
  done 2>/dev/null
  echo "$total"
}

# run_wrk TARGET SECONDS OUTFILE: one wrk run, its output in OUTFILE.
run_wrk() {
  local t=$1 secs=$2 out=$3 args=()
  [[ -n "${COOKIE[$t]}" ]] && args=(-H "Cookie: ${COOKIE[$t]}")
  # In the background, so that a signal to this script is handled at once (bash runs traps
  # only between commands); the cleanup stops it.
  wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${secs}s" --latency -s "$BENCH_DIR/status.lua" \
    ${args[@]+"${args[@]}"} "${URL[$t]}" >"$out" 2>&1 9>&- &
  WRK_PID=$!
  echo "$WRK_PID" >"$TMP/wrk.pid"
  wait "$WRK_PID" || true
  WRK_PID=""
  rm -f "$TMP/wrk.pid"
}

# wrk_result OUTFILE: prints "requests non200 connect+timeout_errors read+write_errors p50_us
# p99_us req/s".
wrk_result() {
  local line
  line=$(grep -m1 '^RESULT ' "$1" || true)
  if [[ -z "$line" ]]; then
    echo "0 0 1 0 0 0 0"
    return
  fi
  awk '{
    for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    printf "%d %d %d %d %d %d %.0f\n", v["requests"], v["non200"], v["connect"] + v["timeout"], v["read"] + v["write"], v["p50_us"], v["p99_us"],
      (v["duration_us"] > 0 ? v["requests"] * 1e6 / v["duration_us"] : 0)
  }' <<<"$line"
}

machine() {
  local model
  model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
  printf '%s CPUs (nproc), %s, Linux %s' "$(nproc)" "${model:-unknown CPU}" "$(uname -r)"
}


# measure_run TARGET SECONDS OUTFILE [NAME PID]...: one wrk run on TARGET (run_wrk), with the
# CPU of each named process tree (cpu_ticks of PID: its workers and reaped children too) over the
# run. Sets M_REQUESTS, M_RPS, M_P50, M_P99 (µs), M_SOFT (read/write socket errors), M_VALID
# (1 or 0), M_WHY (why not valid) and M_CPU[NAME] (µs of CPU per completed request; "-" when
# PID is empty or nothing completed). A run is not valid when no request completed, any
# response was not a 200 (a lost session gives fast redirects or 401s), any connection failed
# or timed out, or more than 1 request in 1000 met a connection the server had closed.
declare -A M_CPU=()
measure_run() {
  local t=$1 secs=$2 out=$3 i
  shift 3
  local names=() pids=() before=() after=() non200 hard
  while (($#)); do
    names+=("$1") pids+=("$2")
    shift 2
  done
  for i in "${!pids[@]}"; do
    before[i]=0
    [[ -n "${pids[i]}" ]] && before[i]=$(cpu_ticks "${pids[i]}")
  done
  run_wrk "$t" "$secs" "$out"
  for i in "${!pids[@]}"; do
    after[i]=0
    [[ -n "${pids[i]}" ]] && after[i]=$(cpu_ticks "${pids[i]}")
  done
  read -r M_REQUESTS non200 hard M_SOFT M_P50 M_P99 M_RPS < <(wrk_result "$out")
  M_VALID=1 M_WHY=""
  if ((M_REQUESTS == 0)); then
    M_VALID=0 M_WHY="no requests completed"
  elif ((non200 > 0)); then
    M_VALID=0 M_WHY="$non200 responses were not 200"
  elif ((hard > 0)); then
    M_VALID=0 M_WHY="$hard connect errors or timeouts"
  elif ((M_SOFT * 1000 > M_REQUESTS)); then
    # A server closing a keep-alive connection shows as a read error; wrk reconnects and
    # sends the request again. A few are tolerated (and shown), more than 1 in 1000 are not.
    M_VALID=0 M_WHY="$M_SOFT read/write socket errors"
  fi
  M_CPU=()
  for i in "${!names[@]}"; do
    M_CPU[${names[i]}]=$(awk -v d=$((after[i] - before[i])) -v r="$M_REQUESTS" -v hz="$CLK_TCK" -v p="${pids[i]}" \
      'BEGIN { if (p == "" || r == 0) print "-"; else printf "%.1f", d * 1e6 / hz / r }')
  done
}

# warm_up TARGET...: WARMUP seconds of unmeasured load on each target (nothing when WARMUP is 0);
# a warm-up that would not be a valid run is shown with wrk's output, and the benchmark goes on.
warm_up() {
  ((WARMUP > 0)) || return 0
  local t
  for t in "$@"; do
    measure_run "$t" "$WARMUP" "$TMP/wrk-warmup-$t.txt"
    ((M_VALID)) || { warn "warm-up of $t: $M_WHY"; sed -n '1,20p' "$TMP/wrk-warmup-$t.txt" >&2; }
  done
}
