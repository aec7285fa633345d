#!/usr/bin/env bash
# profilegate quickstart: one command starts a test OpenID Provider, a demo upstream app and
# profilegate in front of it, all on this machine. Ctrl-C stops everything and removes the
# temporary directory.
#
#   examples/demo/run.sh
#
# Needs cargo (Rust, to build profilegate). Installs what else it needs when missing, as the
# test command (tests/run.sh) does: the Debian packages cmake (pingora's build), nodejs and npm
# (the test OP and the demo app) with apt-get, as root or through sudo; then the test OP's npm
# packages (npm ci in tests/op).
#
# Environment overrides (all optional):
#   DEMO_PORT            profilegate's public port           (default: a free port)
#   DEMO_ADMIN_PORT      profilegate's admin port (/readyz)  (default: a free port)
#   DEMO_OP_PORT         the test OP's port                  (default: a free port)
#   DEMO_UPSTREAM_PORT   the demo upstream app's port        (default: a free port)
#   DEMO_READY_TIMEOUT   seconds to wait for profilegate's /readyz (default: 30)
#   DEMO_KEEP_TMP=1      keep the temporary directory (config, logs, data) on exit
#   DEMO_BIN=PATH        use this profilegate binary and skip `cargo build` (and cmake)
#   RUST_LOG             profilegate's log filter, written to its log.level (default: info),
#                        e.g. RUST_LOG=profilegate=debug,info
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DEMO_DIR="$ROOT/examples/demo"
OP_DIR="$ROOT/tests/op"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'run.sh: error: %s\n' "$*" >&2; exit 1; }

need() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' was not found on PATH. $2"
}

if [[ -z "${DEMO_BIN:-}" ]]; then
  need cargo "Install Rust (https://rustup.rs) to build profilegate, or set DEMO_BIN to a built binary."
fi

# Debian packages, installed when missing (as tests/run.sh does).
missing=()
if [[ -z "${DEMO_BIN:-}" ]]; then
  command -v cmake >/dev/null 2>&1 || missing+=(cmake)
fi
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if ((${#missing[@]})); then
  command -v apt-get >/dev/null 2>&1 ||
    die "missing: ${missing[*]}; install them with your system's package manager (apt-get was not found)."
  SUDO=()
  if [[ "$(id -u)" -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 ||
      die "missing: ${missing[*]}; run as root or install sudo (or install them yourself)."
    SUDO=(sudo)
  fi
  say "installing Debian packages: ${missing[*]}"
  ${SUDO[@]+"${SUDO[@]}"} apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive ${SUDO[@]+"${SUDO[@]}"} apt-get install -y -qq "${missing[@]}" >/dev/null ||
    die "apt-get install ${missing[*]} failed"
fi
need node "Install Node.js 20 or later (it runs the test OpenID Provider and the demo app)."
need npm "Install npm (it comes with Node.js) to fetch the test OP's dependencies."

node_major=$(node -p 'process.versions.node.split(".")[0]')
(( node_major >= 20 )) || die "Node.js 20 or later is needed (found $(node --version))."

# ------------------------------------------------------------------ state and cleanup

TMP=""
WATCHDOG_PID=""
PIDS=()
NAMES=()

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  if [[ -n "$WATCHDOG_PID" ]]; then
    kill -TERM "$WATCHDOG_PID" 2>/dev/null
    wait "$WATCHDOG_PID" 2>/dev/null
  fi
  exec 9>&- # close the lifeline: children watching their stdin stop on their own
  if ((${#PIDS[@]})); then
    say "stopping ${NAMES[*]}"
    local i
    for i in "${!PIDS[@]}"; do
      if [[ "${NAMES[$i]}" == profilegate ]]; then
        kill -INT "${PIDS[$i]}" 2>/dev/null # pingora: SIGINT is the fast shutdown
      else
        kill -TERM "${PIDS[$i]}" 2>/dev/null
      fi
    done
    # Keep bash's own "Killed" job notices off the terminal while the children go.
    exec 8>&2 2>/dev/null
    local deadline=$((SECONDS + 5)) alive
    while :; do
      alive=0
      for i in "${!PIDS[@]}"; do
        kill -0 "${PIDS[$i]}" 2>/dev/null && alive=1
      done
      if ((alive == 0 || SECONDS >= deadline)); then break; fi
      sleep 0.2
    done
    for i in "${!PIDS[@]}"; do
      if kill -0 "${PIDS[$i]}" 2>/dev/null; then
        say "${NAMES[$i]} (pid ${PIDS[$i]}) did not stop in 5 s: killing it" 2>&8
        kill -KILL "${PIDS[$i]}" 2>/dev/null
      fi
      wait "${PIDS[$i]}" 2>/dev/null
    done
    exec 2>&8 8>&-
  fi
  if [[ -n "$TMP" && -d "$TMP" ]]; then
    if [[ "${DEMO_KEEP_TMP:-0}" == 1 ]]; then
      say "kept $TMP"
    else
      rm -rf "$TMP"
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log_tail() { # name file
  if [[ -s "$2" ]]; then
    printf -- '---- last lines of %s (%s) ----\n' "$1" "$2" >&2
    tail -n 30 "$2" >&2
    printf -- '----\n' >&2
  else
    printf -- '(%s wrote nothing to %s)\n' "$1" "$2" >&2
  fi
}

# Wait for a child's one-line JSON ready message on its stdout file; print that line.
wait_line() { # name pid file timeout_s
  local name=$1 pid=$2 file=$3 deadline=$((SECONDS + $4))
  while :; do
    if [[ -s "$file" ]] && (( $(wc -l <"$file") >= 1 )); then
      head -n 1 "$file"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      printf 'run.sh: error: %s exited before it was ready\n' "$name" >&2
      log_tail "$name" "${file%.out}.log"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      printf 'run.sh: error: %s was not ready after %s s\n' "$name" "$4" >&2
      log_tail "$name" "${file%.out}.log"
      return 1
    fi
    sleep 0.1
  done
}

# Start a child in its own session when `setsid` exists, so the terminal's Ctrl-C reaches only
# this script, which then stops the children in order. (Without job control, setsid does not
# fork here, so $! is still the child's pid.)
if command -v setsid >/dev/null 2>&1; then DETACH=(setsid); else DETACH=(); fi

json_get() { # json key
  node -e 'const v = JSON.parse(process.argv[1])[process.argv[2]]; if (v === undefined) process.exit(1); console.log(v)' "$1" "$2"
}

http_ok() { # url -> 0 when it answers 200
  if command -v curl >/dev/null 2>&1; then
    [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" 2>/dev/null || true)" == 200 ]]
  else
    node -e '
      const req = require("http").get(process.argv[1], (r) => process.exit(r.statusCode === 200 ? 0 : 1));
      req.on("error", () => process.exit(1));
      req.setTimeout(2000, () => req.destroy(new Error("timeout")));' "$1"
  fi
}

toml_str() { # a TOML basic string
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

# ------------------------------------------------------------------ dependencies and build

if [[ ! -d "$OP_DIR/node_modules/oidc-provider" ]]; then
  say "installing the test OP's dependencies (npm ci in tests/op)"
  (cd "$OP_DIR" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed in $OP_DIR"
fi

if [[ -n "${DEMO_BIN:-}" ]]; then
  BIN=$DEMO_BIN
  [[ -x "$BIN" ]] || die "DEMO_BIN=$BIN is not an executable file"
  say "using $BIN (DEMO_BIN set: not building)"
else
  say "building profilegate (cargo build; the first build takes a few minutes)"
  (cd "$ROOT" && cargo build --bin profilegate) || die "cargo build failed"
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/profilegate"
  [[ "$BIN" == /* ]] || BIN="$ROOT/$BIN"
  [[ -x "$BIN" ]] || die "cargo build finished but $BIN is missing"
fi

# ------------------------------------------------------------------ ports and secrets

TMP=$(mktemp -d "${TMPDIR:-/tmp}/profilegate-demo.XXXXXX")

# Pick every port not given, all in one go so that they differ from each other and from the
# given ones.
read -r PROXY_PORT ADMIN_PORT OP_PORT UPSTREAM_PORT < <(node -e '
  const net = require("net");
  const given = process.argv.slice(1).map(Number);
  const taken = new Set(given.filter((p) => p > 0));
  const held = [];
  const grab = () => new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => { held.push(s); resolve(s.address().port); });
  });
  (async () => {
    const out = [];
    for (const p of given) {
      if (p > 0) { out.push(p); continue; }
      let q;
      do { q = await grab(); } while (taken.has(q));
      taken.add(q);
      out.push(q);
    }
    held.forEach((s) => s.close());
    console.log(out.join(" "));
  })().catch((e) => { console.error(e.message); process.exit(1); });
' "${DEMO_PORT:-0}" "${DEMO_ADMIN_PORT:-0}" "${DEMO_OP_PORT:-0}" "${DEMO_UPSTREAM_PORT:-0}") || true
[[ -n "${UPSTREAM_PORT:-}" ]] || die "could not pick free ports"

PUBLIC_URL="http://127.0.0.1:$PROXY_PORT"
CLIENT_SECRET=$(node -p 'require("crypto").randomBytes(24).toString("base64url")')
SESSION_SECRET=$(node -p 'require("crypto").randomBytes(32).toString("base64")')

# Children read their stdin from this FIFO, whose only writer is this script (fd 9): if the
# script dies, even by SIGKILL, they see end-of-file and stop.
mkfifo "$TMP/lifeline"
exec 9<>"$TMP/lifeline"

# ------------------------------------------------------------------ test OP

# shellcheck disable=SC2016 # JavaScript template literals, not shell
OP_CONFIG=$(PUBLIC_URL="$PUBLIC_URL" OP_PORT="$OP_PORT" CLIENT_SECRET="$CLIENT_SECRET" node -e '
  const e = process.env;
  console.log(JSON.stringify({
    host: "localhost",
    port: Number(e.OP_PORT),
    clients: [{
      client_id: "profilegate",
      client_secret: e.CLIENT_SECRET,
      redirect_uris: [`${e.PUBLIC_URL}/.profilegate/callback`],
      post_logout_redirect_uris: [`${e.PUBLIC_URL}/.profilegate/signed-out`],
    }],
    claims: { carol: { company: "Initech" } },
    extra_scope_claims: { profile: ["company"] },
  }));')

say "starting the test OpenID Provider"
${DETACH[@]+"${DETACH[@]}"} node "$OP_DIR/server.js" "$OP_CONFIG" <"$TMP/lifeline" >"$TMP/op.out" 2>"$TMP/op.log" 9>&- &
OP_PID=$!
PIDS+=("$OP_PID")
NAMES+=(op)
OP_LINE=$(wait_line "the test OP" "$OP_PID" "$TMP/op.out" 20) || exit 1
ISSUER=$(json_get "$OP_LINE" issuer) || die "the test OP printed an unexpected line: $OP_LINE"

# ------------------------------------------------------------------ demo upstream

say "starting the demo upstream app"
${DETACH[@]+"${DETACH[@]}"} node "$DEMO_DIR/upstream.js" "$UPSTREAM_PORT" <"$TMP/lifeline" >"$TMP/upstream.out" 2>"$TMP/upstream.log" 9>&- &
UP_PID=$!
PIDS+=("$UP_PID")
NAMES+=(upstream)
UP_LINE=$(wait_line "the demo upstream" "$UP_PID" "$TMP/upstream.out" 10) || exit 1
UPSTREAM_PORT=$(json_get "$UP_LINE" port) || die "the demo upstream printed an unexpected line: $UP_LINE"

# ------------------------------------------------------------------ profilegate

CONFIG="$TMP/profilegate.toml"
cat >"$CONFIG" <<EOF
# Written by examples/demo/run.sh
[server]
listen = $(toml_str "127.0.0.1:$PROXY_PORT")
public_url = $(toml_str "$PUBLIC_URL")
admin_listen = $(toml_str "127.0.0.1:$ADMIN_PORT")

[upstream]
url = $(toml_str "http://127.0.0.1:$UPSTREAM_PORT")

[oidc]
issuer = $(toml_str "$ISSUER")
client_id = "profilegate"
client_secret = $(toml_str "$CLIENT_SECRET")

[session]
secret = $(toml_str "$SESSION_SECRET")

[store]
path = $(toml_str "$TMP/data")

[log]
level = $(toml_str "${RUST_LOG:-info}")
format = "text"

[theme]
title = "Acme Workspace"
primary_color = "#0b7a75"

[profiling]
questions_per_login = 1

[[profiling.questions]]
id = "company"
label = "Which company do you work for?"
help = "We use it to set up your workspace."
placeholder = "Acme Inc."
type = "text"
required = true
min_length = 2
max_length = 100

[[profiling.questions]]
id = "role"
label = "What best describes your role?"
type = "select"
options = ["Engineering", "Product", "Design", "Sales", "Other"]

[[profiling.questions]]
id = "newsletter"
label = "Send me the monthly product newsletter."
type = "consent"
EOF

say "starting profilegate"
${DETACH[@]+"${DETACH[@]}"} "$BIN" --config "$CONFIG" <"$TMP/lifeline" >"$TMP/profilegate.log" 2>&1 9>&- &
PG_PID=$!
PIDS+=("$PG_PID")
NAMES+=(profilegate)

# Watchdog: profilegate need not watch its stdin, so if this script dies without running its
# cleanup (kill -9), this subshell sees the lifeline close and stops profilegate. The
# script's own cleanup ends the watchdog first.
(
  exec 9>&-
  cat <"$TMP/lifeline" >/dev/null 2>&1 || true
  kill -INT "$PG_PID" 2>/dev/null || exit 0
  for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28; do
    kill -0 "$PG_PID" 2>/dev/null || exit 0
    sleep 0.25
  done
  kill -KILL "$PG_PID" 2>/dev/null || true
) </dev/null >/dev/null 2>&1 &
WATCHDOG_PID=$!

READY_URL="http://127.0.0.1:$ADMIN_PORT/readyz"
TIMEOUT=${DEMO_READY_TIMEOUT:-30}
deadline=$((SECONDS + TIMEOUT))
until http_ok "$READY_URL"; do
  if ! kill -0 "$PG_PID" 2>/dev/null; then
    printf 'run.sh: error: profilegate exited before it was ready\n' >&2
    log_tail profilegate "$TMP/profilegate.log"
    exit 1
  fi
  if ((SECONDS >= deadline)); then
    printf 'run.sh: error: %s did not answer 200 within %s s\n' "$READY_URL" "$TIMEOUT" >&2
    log_tail profilegate "$TMP/profilegate.log"
    exit 1
  fi
  sleep 0.3
done

# ------------------------------------------------------------------ ready

box() {
  local lines=("$@") width=0 line
  for line in "${lines[@]}"; do ((${#line} > width)) && width=${#line}; done
  local rule
  rule=$(printf '%*s' $((width + 4)) '' | tr ' ' '=')
  printf '\n%s\n' "$rule"
  for line in "${lines[@]}"; do # pad by characters, not bytes (the text may hold non-ASCII)
    printf '| %s%*s |\n' "$line" $((width - ${#line})) ''
  done
  printf '%s\n\n' "$rule"
}

box \
  "profilegate demo is running." \
  "" \
  "Open $PUBLIC_URL/ — sign in with any username (e.g. alice) and any password." \
  "You are asked one profile question per sign-in; the app shows your answers." \
  "(User carol's company comes from the OP, so she is never asked for it.)" \
  "Press Ctrl-C to stop." \
  "" \
  "test OP (issuer):  $ISSUER" \
  "upstream app:      http://127.0.0.1:$UPSTREAM_PORT/ (direct, no sign-in)" \
  "admin (readyz):    $READY_URL" \
  "config:            $CONFIG" \
  "logs:              $TMP/{profilegate,op,upstream}.log"

# Stay in the foreground until Ctrl-C, or until a child dies.
while :; do
  for i in "${!PIDS[@]}"; do
    if ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
      sleep 0.5 # a Ctrl-C that also reached the child gets its trap run first
      printf 'run.sh: error: %s (pid %s) stopped unexpectedly\n' "${NAMES[$i]}" "${PIDS[$i]}" >&2
      case "${NAMES[$i]}" in
        profilegate) log_tail profilegate "$TMP/profilegate.log" ;;
        op) log_tail "the test OP" "$TMP/op.log" ;;
        upstream) log_tail "the demo upstream" "$TMP/upstream.log" ;;
      esac
      exit 1
    fi
  done
  sleep 1
done
