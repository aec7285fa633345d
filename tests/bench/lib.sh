# shellcheck shell=bash
# Shared by the benchmark scripts (run.sh, memory.sh): messages, Debian packages, and the
# processes a benchmark starts. Sourced, not run. The script sets BENCH_NAME (the prefix of its
# warnings and errors) before sourcing, then calls `bench_tmp PREFIX` once: from then on every
# process started with `start` is stopped on any exit, Ctrl-C or failure, and a watchdog stops
# them even when the script itself is killed with SIGKILL.

say() { printf '==> %s\n' "$*" >&2; }
warn() { printf '%s: warning: %s\n' "${BENCH_NAME:-bench}" "$*" >&2; }
die() {
  printf '%s: error: %s\n' "${BENCH_NAME:-bench}" "$*" >&2
  exit 1
}

# ------------------------------------------------------------------ dependencies

SUDO=""
[[ "$(id -u)" -eq 0 ]] || SUDO="sudo"

apt_install() { # packages... -> 0 when installed
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null 2>&1 && return 0
  $SUDO apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

have() { command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" ]]; }

# ------------------------------------------------------------------ processes and cleanup

TMP=""
WATCHDOG_PID=""
WRK_PID=""
PIDS=()
NAMES=()

stop_children() {
  local i deadline alive
  for i in "${!PIDS[@]}"; do
    if [[ "${NAMES[$i]}" == profilegate ]]; then
      kill -INT "${PIDS[$i]}" 2>/dev/null # pingora: SIGINT is the fast shutdown
    else
      kill -TERM "${PIDS[$i]}" 2>/dev/null
    fi
  done
  deadline=$((SECONDS + 5))
  while :; do
    alive=0
    for i in "${!PIDS[@]}"; do
      kill -0 "${PIDS[$i]}" 2>/dev/null && alive=1
    done
    if ((alive == 0 || SECONDS >= deadline)); then break; fi
    sleep 0.2
  done
  for i in "${!PIDS[@]}"; do
    # Each child leads its own process group (setsid): workers go with their master.
    if kill -0 "${PIDS[$i]}" 2>/dev/null; then
      say "${NAMES[$i]} (pid ${PIDS[$i]}) did not stop in 5 s: killing it"
    fi
    kill -KILL -- "-${PIDS[$i]}" 2>/dev/null || kill -KILL "${PIDS[$i]}" 2>/dev/null
    wait "${PIDS[$i]}" 2>/dev/null
  done
}

cleanup() {
  local rc=$?
  set +e
  trap - EXIT
  trap '' INT TERM # a second Ctrl-C must not cut the cleanup short
  if [[ -n "$WATCHDOG_PID" ]]; then
    kill -TERM "$WATCHDOG_PID" 2>/dev/null
    wait "$WATCHDOG_PID" 2>/dev/null
  fi
  if [[ -n "$WRK_PID" ]]; then
    kill -TERM "$WRK_PID" 2>/dev/null
    wait "$WRK_PID" 2>/dev/null
  fi
  exec 9>&- # close the lifeline
  if ((${#PIDS[@]})); then
    say "stopping ${NAMES[*]}"
    exec 8>&2 2>/dev/null # keep bash's "Killed" notices off the terminal
    stop_children 2>&8
    exec 2>&8 8>&-
  fi
  # A PostgreSQL server the script started (tests/pg_server.sh).
  declare -F pg_server_stop >/dev/null && pg_server_stop
  if [[ -n "$TMP" && -d "$TMP" ]]; then
    if [[ "${BENCH_KEEP_TMP:-0}" == 1 ]]; then
      say "kept $TMP"
    else
      rm -rf "$TMP"
    fi
  fi
  exit "$rc"
}

# bench_tmp PREFIX: the temporary directory (TMP), the cleanup traps, the lifeline (fd 9: the
# children's stdin; the test OP stops when it closes) and the watchdog. A short-lived helper
# process the script starts itself writes its pid to "$TMP/NAME.pid" for the watchdog.
bench_tmp() {
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  TMP=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
  # nginx workers and Apache children drop root: they must reach their own directories.
  chmod 711 "$TMP"
  mkfifo "$TMP/lifeline"
  exec 9<>"$TMP/lifeline"
  # If the script dies without its cleanup (kill -9), the lifeline closes and the watchdog stops
  # every process group the script started (their leaders are in $TMP/pids).
  (
    set +e
    trap '' INT # Ctrl-C reaches the whole process group: it is for the script, not for us
    exec 9>&-
    cat <"$TMP/lifeline" >/dev/null 2>&1 || true
    for f in "$TMP"/*.pid; do
      [[ -f "$f" ]] && kill -TERM "$(<"$f")" 2>/dev/null
    done
    if [[ -f "$TMP/pids" ]]; then
      while read -r pid; do kill -INT -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null; done <"$TMP/pids"
      sleep 3
      while read -r pid; do kill -KILL -- "-$pid" 2>/dev/null; done <"$TMP/pids"
      sleep 0.5
    fi
    rm -rf "$TMP" || { sleep 1 && rm -rf "$TMP"; }
  ) </dev/null >/dev/null 2>&1 &
  WATCHDOG_PID=$!
}

if command -v setsid >/dev/null 2>&1; then DETACH=(setsid); else DETACH=(); fi

# start NAME LOG COMMAND... : starts a long-running child in its own session, stdin on the
# lifeline; sets STARTED_PID.
start() {
  local name=$1 log=$2
  shift 2
  ${DETACH[@]+"${DETACH[@]}"} "$@" <"$TMP/lifeline" >"$log" 2>&1 9>&- &
  STARTED_PID=$!
  PIDS+=("$STARTED_PID")
  NAMES+=("$name")
  echo "$STARTED_PID" >>"$TMP/pids"
}

log_tail() { # name file
  if [[ -s "$2" ]]; then
    printf -- '---- last lines of %s (%s) ----\n' "$1" "$2" >&2
    tail -n 30 "$2" >&2
    printf -- '----\n' >&2
  fi
}

# wait_http NAME PID URL TIMEOUT_S [WANT]: until URL answers (WANT: a status, default any).
# Dies when PID exits first or time runs out; run it in a subshell to show a log before exiting.
wait_http() {
  local name=$1 pid=$2 url=$3 deadline=$((SECONDS + $4)) want=${5:-any} code
  while :; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" 2>/dev/null || true)
    if [[ "$want" == any && -n "$code" && "$code" != 000 ]] || [[ "$code" == "$want" ]]; then
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      die "$name exited before it was ready"
    fi
    ((SECONDS < deadline)) || die "$name did not answer $url within $4 s (last status: ${code:-none})"
    sleep 0.2
  done
}

# free_ports COUNT: COUNT different loopback ports free right now, on one line. They come from
# below the kernel's ephemeral range, so no outgoing connection takes one before the server that
# is given it binds it. python3, or node when python3 is missing.
free_ports() {
  python3 - "$1" 2>/dev/null <<'PY' || node - "$1" <<'JS'
import random, socket, sys
try:
    low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except (OSError, ValueError, IndexError):
    low = 32768
candidates = list(range(10000, max(low, 11000)))
random.shuffle(candidates)
ports = []
for port in candidates:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    ports.append(port)
    if len(ports) == int(sys.argv[1]):
        break
print(" ".join(map(str, ports)))
PY
const net = require("net");
const fs = require("fs");
let low = 32768;
try { low = Number(fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").split(/\s+/)[0]) || low; } catch (e) {}
const candidates = [];
for (let p = 10000; p < Math.max(low, 11000); p++) candidates.push(p);
for (let i = candidates.length - 1; i > 0; i--) {
  const j = Math.floor(Math.random() * (i + 1));
  [candidates[i], candidates[j]] = [candidates[j], candidates[i]];
}
const free = (port) => new Promise((resolve) => {
  const s = net.createServer();
  s.once("error", () => resolve(false));
  s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
});
(async () => {
  const want = Number(process.argv[2]);
  const out = [];
  for (const p of candidates) {
    if (out.length === want) break;
    if (await free(p)) out.push(p);
  }
  console.log(out.join(" "));
})();
JS
}

# nginx_main DIR [WORKERS]: the top of an nginx.conf for a server living in DIR (pid, logs and
# temporary files there; WORKERS worker processes, default one per CPU), up to the open `http {`
# block, where the caller adds its servers and closes it.
nginx_main() {
  mkdir -p "$1/tmp"
  chmod 755 "$1" "$1/tmp"
  cat <<EOF
daemon off;
master_process on;
worker_processes ${2:-auto};
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $1/tmp/body;
  proxy_temp_path $1/tmp/proxy;
  fastcgi_temp_path $1/tmp/fastcgi;
  uwsgi_temp_path $1/tmp/uwsgi;
  scgi_temp_path $1/tmp/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
EOF
}

# upstream_nginx_conf DIR PORT: the nginx.conf of the benchmarks' upstream, listening on PORT:
# a fixed `200 ok\n` for every path, and /_bench/identity echoing what it was told about the user.
upstream_nginx_conf() {
  nginx_main "$1"
  cat <<EOF
  server {
    listen 127.0.0.1:$2;
    # mod_auth_openidc passes claims as OIDC_CLAIM_<name> headers.
    underscores_in_headers on;
    default_type text/plain;
    # What the upstream was told about the user (checked once before measuring).
    location = /_bench/identity {
      return 200 "user=\$http_x_forwarded_user company=\$http_x_profile_company jwt=\$http_x_profile_jwt oidc_sub=\$http_oidc_claim_sub\n";
    }
    location / { return 200 "ok\n"; }
  }
}
EOF
}

# profilegate_toml ISSUER CLIENT_SECRET STORE_PATH: a benchmark's profilegate configuration on
# stdout, from PG_PORT, PG_URL, PG_ADMIN_PORT, UP_URL, SESSION_SECRET and the extra lines in
# BENCH_PG_SERVER ([server]) and BENCH_PG_STORE ([store]): defaults everywhere else (threads =
# CPUs, caches, log level info) and one required question. The caller may add tables after it.
profilegate_toml() {
  cat <<TOML
[server]
listen = "127.0.0.1:$PG_PORT"
public_url = "$PG_URL"
admin_listen = "127.0.0.1:$PG_ADMIN_PORT"
${BENCH_PG_SERVER:-}

[upstream]
url = "$UP_URL"

[oidc]
issuer = "$1"
client_id = "profilegate"
client_secret = "$2"

[session]
secret = "$SESSION_SECRET"

[store]
$(if [[ "$3" == postgres://* ]]; then printf 'backend = "postgres"\nurl = "%s"' "$3"; else printf 'path = "%s"' "$3"; fi)
${BENCH_PG_STORE:-}

[profiling]
questions_per_login = 1

[[profiling.questions]]
id = "company"
label = "Which company do you work for?"
type = "text"
required = true
min_length = 2
max_length = 100
TOML
  if [[ "${BENCH_POLICY:-0}" == 1 ]]; then bench_policy_toml; fi
  printf '%s\n' "${BENCH_PG_EXTRA:-}"
}

# BENCH_POLICY=1: an [access] rule and 20 routes (10 public, 5 for a group, 5 never blocked by
# questions), none of which the measured path `/` matches: every request tries all 20.
bench_policy_toml() {
  cat <<'TOML'

[access]
allowed_email_domains = ["example.com"]
require_email_verified = true
TOML
  local path
  for path in /healthz /static/ /assets/ /favicon.ico /robots.txt /public/ /webhooks/stripe /docs/ /status /.well-known/; do
    printf '\n[[routes]]\npath = "%s"\npublic = true\n' "$path"
  done
  for path in /admin /billing/admin /reports /internal/ /ops/; do
    printf '\n[[routes]]\npath = "%s"\nallowed_groups = ["admins"]\n' "$path"
  done
  for path in /api/ /graphql /ws/ /events/ /uploads/; do
    printf '\n[[routes]]\npath = "%s"\nquestions = "skip"\n' "$path"
  done
}
