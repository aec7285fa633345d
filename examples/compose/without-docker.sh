#!/usr/bin/env bash
# The compose example without a container runtime: what compose.yaml sets up, run as plain
# processes in a private network namespace (unshare --net --mount), to check its configuration
# where Docker is not available. Not a substitute for `docker compose up`: no image is built.
#
#   sudo examples/compose/without-docker.sh     # root: namespaces, PostgreSQL as its user
#
# In the namespace: loopback only, /etc/hosts naming `postgres` (compose's DNS name); PostgreSQL
# (Debian's, as the postgres service: user, password and database `profilegate`) on port 5432;
# the test OP with compose.yaml's TEST_OP_CONFIG on 9000; the demo app on 3000; profilegate with
# examples/compose/profilegate.toml and compose.yaml's PROFILEGATE_ADMIN_TOKEN, as uid/gid 65532
# and an otherwise empty environment, as the image runs it. Then: /readyz; the Dockerfile's
# HEALTHCHECK command; a sign-in as alice at the OP through profilegate, the company answered,
# the app showing it; the admin API and dashboard taking the token; the answer read from
# PostgreSQL.
#
# Needs: root, unshare and mount (util-linux), ip (iproute2), curl, python3, node and the test
# OP's npm packages (npm ci in tests/op), Debian's postgresql, a built profilegate
# (COMPOSE_CHECK_BIN, default target/debug/profilegate). Every wait has a deadline; on a
# failure the script prints the logs.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/examples/compose"

if [[ "${1:-}" != --inside ]]; then
  [[ "$(id -u)" -eq 0 ]] || { echo "without-docker.sh: run as root (network and mount namespaces)" >&2; exit 2; }
  exec timeout 300 unshare --net --mount --fork "$0" --inside
fi

BIN=${COMPOSE_CHECK_BIN:-$ROOT/target/debug/profilegate}
[[ "$BIN" == /* ]] || BIN="$ROOT/$BIN"
[[ -x "$BIN" ]] || { echo "without-docker.sh: no profilegate at $BIN (cargo build --bin profilegate)" >&2; exit 2; }
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
[[ -x "${PGBIN:-/nonexistent}/initdb" ]] || { echo "without-docker.sh: Debian's postgresql is not installed" >&2; exit 2; }

TMP=$(mktemp -d /tmp/profilegate-compose.XXXXXX)
chmod 755 "$TMP"
PIDS=()
cleanup() {
  local rc=$?
  set +e
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$TMP/pg/data" -m fast -t 10 stop >/dev/null 2>&1
  if ((rc != 0)); then
    for log in profilegate.log op.log app.log pg/server.log; do
      [[ -s "$TMP/$log" ]] && { echo "---- $log" >&2; tail -n 30 "$TMP/$log" >&2; }
    done
  fi
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
say() { printf '==> %s\n' "$*"; }

# A value from compose.yaml: the block under `KEY: >-` (folded: its lines joined), or `KEY: value`.
compose_value() {
  python3 - "$HERE/compose.yaml" "$1" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
key = sys.argv[2] + ":"
for i, line in enumerate(lines):
    text = line.strip()
    if not text.startswith(key):
        continue
    rest = text[len(key):].strip()
    if rest != ">-":
        print(rest.strip('"'))
        sys.exit(0)
    indent = len(line) - len(line.lstrip())
    block = []
    for more in lines[i + 1:]:
        if more.strip() and len(more) - len(more.lstrip()) <= indent:
            break
        block.append(more.strip())
    print(" ".join(block))
    sys.exit(0)
sys.exit("no " + key + " in compose.yaml")
PY
}

ip link set lo up
printf '127.0.0.1 localhost\n::1 localhost\n127.0.0.1 postgres\n' >"$TMP/hosts"
mount --bind "$TMP/hosts" /etc/hosts

say "PostgreSQL as the postgres service (user, password, database: profilegate)"
mkdir -p "$TMP/pg"
echo profilegate >"$TMP/pg/pw"
chown -R postgres: "$TMP/pg"
runuser -u postgres -- "$PGBIN/initdb" -D "$TMP/pg/data" -U profilegate --pwfile="$TMP/pg/pw" \
  -A scram-sha-256 -E UTF8 --locale=C >"$TMP/pg/initdb.log" 2>&1
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$TMP/pg/data" -l "$TMP/pg/server.log" -w -t 30 \
  -o "-c listen_addresses=127.0.0.1 -c port=5432 -c unix_socket_directories=$TMP/pg" start >/dev/null
psql() { PGPASSWORD=profilegate "$PGBIN/psql" -h postgres -U profilegate "$@"; }
psql -d postgres -qc 'CREATE DATABASE profilegate'

say "the test OP (compose.yaml's TEST_OP_CONFIG) and the demo app"
OP_CONFIG=$(compose_value TEST_OP_CONFIG)
(cd "$ROOT" && TEST_OP_CONFIG="$OP_CONFIG" exec node tests/op/server.js </dev/null >"$TMP/op.out" 2>"$TMP/op.log") &
PIDS+=($!)
(cd "$ROOT" && exec node examples/demo/upstream.js 3000 </dev/null >"$TMP/app.out" 2>"$TMP/app.log") &
PIDS+=($!)
for _ in $(seq 100); do [[ -s "$TMP/op.out" ]] && break; sleep 0.2; done
grep -q '"issuer":"http://localhost:9000"' "$TMP/op.out" || { echo "the OP is not http://localhost:9000" >&2; exit 1; }

say "profilegate as the image runs it (uid/gid 65532, empty environment but the admin token)"
install -m 0755 "$BIN" "$TMP/profilegate"
install -m 0644 "$HERE/profilegate.toml" "$TMP/config.toml"
TOKEN=$(compose_value PROFILEGATE_ADMIN_TOKEN)
env -i PATH=/usr/bin:/bin PROFILEGATE_ADMIN_TOKEN="$TOKEN" \
  setpriv --reuid 65532 --regid 65532 --clear-groups \
  "$TMP/profilegate" --config "$TMP/config.toml" </dev/null >"$TMP/profilegate.log" 2>&1 &
GATE_PID=$!
PIDS+=("$GATE_PID")
ready=""
for _ in $(seq 150); do
  ready=$(curl -s --max-time 2 http://127.0.0.1:9091/readyz || true)
  [[ "$ready" == ready ]] && break
  kill -0 "$GATE_PID" 2>/dev/null || { echo "profilegate exited before it was ready" >&2; exit 1; }
  sleep 0.2
done
[[ "$ready" == ready ]] || { echo "/readyz: ${ready:-no answer} after 30 s" >&2; exit 1; }
say "/readyz: ready (the OP discovered at http://localhost:9000, PostgreSQL at postgres:5432)"

HEALTHCHECK=$(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    if line.strip().startswith("CMD [\"bash\""):
        print(json.loads(line.strip()[4:])[2])' "$ROOT/Dockerfile")
timeout 5 bash -c "$HEALTHCHECK" || { echo "the Dockerfile's HEALTHCHECK failed" >&2; exit 1; }
say "the Dockerfile's HEALTHCHECK passes"

say "sign-in as alice, the company answered"
timeout 60 python3 - <<'PY'
import html, re, urllib.parse, urllib.request, http.cookiejar
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
def send(url, fields=None):
    data = urllib.parse.urlencode(fields).encode() if fields is not None else None
    r = opener.open(urllib.request.Request(url, data=data, headers={"Accept": "text/html"}), timeout=10)
    return r.geturl(), r.read().decode()
url, page = send("http://127.0.0.1:8080/")
for _ in range(4):
    if not url.startswith("http://localhost:9000/interaction/"):
        break
    form = {"prompt": "login", "login": "alice", "password": "any"} if 'name="password"' in page else {"prompt": "consent"}
    url, page = send(url, form)
assert url.startswith("http://127.0.0.1:8080/.profilegate/profile"), (url, page[:300])
value = lambda name: html.unescape(re.search('name="%s" value="([^"]*)"' % name, page).group(1))
url, page = send("http://127.0.0.1:8080/.profilegate/profile",
                 {"company": "Compose Ltd", "_csrf": value("_csrf"), "_question": "company", "_rd": value("_rd")})
assert url == "http://127.0.0.1:8080/" and "x-profile-company" in page and "Compose Ltd" in page, (url, page[:300])
print("    the app shows x-profile-company: Compose Ltd")
PY

with=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer ${TOKEN#*:}" http://127.0.0.1:9091/admin/stats)
without=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:9091/admin/stats)
dashboard=$(curl -s -o /dev/null -w '%{http_code}' -u "admin:${TOKEN#*:}" http://127.0.0.1:9091/admin/)
[[ "$with" == 200 && "$without" == 401 && "$dashboard" == 200 ]] ||
  { echo "admin API: /admin/stats $with with the token, $without without; /admin/ $dashboard with Basic" >&2; exit 1; }
say "admin API: /admin/stats 200 with compose.yaml's token, 401 without; the dashboard /admin/ 200 (Basic)"

row=$(psql -d profilegate -Atc "SELECT convert_from(subject, 'UTF8') || ' ' || issuer || ' ' || (record #>> '{answers,company,value,text}') FROM profilegate_users")
[[ "$row" == "alice http://localhost:9000 Compose Ltd" ]] || { echo "PostgreSQL holds: $row" >&2; exit 1; }
say "PostgreSQL: $row"
say "OK: the compose example's configuration works (without Docker)"
