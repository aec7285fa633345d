# shellcheck shell=bash
# A temporary PostgreSQL server for profilegate's tests and benchmarks. Source this file, then:
#
#   pg_server_start      # installs Debian's postgresql when missing, starts a cluster in its own
#                        # directory on a free loopback port with password authentication, and
#                        # exports PG_SERVER_URL (postgres://profilegate:<random>@127.0.0.1:<port>/postgres)
#                        # and PG_SERVER_CA: the server also takes TLS, with a certificate for
#                        # 127.0.0.1 and localhost signed by a throwaway CA (that file, PEM)
#   pg_server_stop       # stops it and removes its directory (safe to call twice)
#
# As root, initdb and postgres run as the package's `postgres` user (they refuse root). The
# caller sets its own EXIT trap to call pg_server_stop.

pg_server_start() {
  PG_SERVER_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
  if [ ! -x "${PG_SERVER_BIN:-/nonexistent}/initdb" ]; then
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
    PG_SERVER_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
  fi
  PG_SERVER_DIR=$(mktemp -d /tmp/profilegate-pg.XXXXXX)
  PG_SERVER_AS=()
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$PG_SERVER_DIR"
    PG_SERVER_AS=(runuser -u postgres --)
  fi
  local password port
  password=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
  printf '%s\n' "$password" >"$PG_SERVER_DIR/pw"
  [ "$(id -u)" -ne 0 ] || chown postgres: "$PG_SERVER_DIR/pw"
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "${PG_SERVER_AS[@]}" "$PG_SERVER_BIN/initdb" -D "$PG_SERVER_DIR/data" -U profilegate \
    --pwfile="$PG_SERVER_DIR/pw" -A scram-sha-256 -E UTF8 --locale=C >"$PG_SERVER_DIR/initdb.log" 2>&1 ||
    { cat "$PG_SERVER_DIR/initdb.log" >&2; return 1; }
  # A throwaway CA and a server certificate for 127.0.0.1 / localhost (TLS tests).
  (
    cd "$PG_SERVER_DIR" &&
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=profilegate test CA" -keyout ca.key -out ca.crt &&
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
        -keyout server.key -out server.csr &&
      printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >server.ext &&
      openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
        -extfile server.ext -out server.crt
  ) >"$PG_SERVER_DIR/tls.log" 2>&1 || { cat "$PG_SERVER_DIR/tls.log" >&2; return 1; }
  chmod 600 "$PG_SERVER_DIR/server.key"
  [ "$(id -u)" -ne 0 ] || chown postgres: "$PG_SERVER_DIR/server.key" "$PG_SERVER_DIR/server.crt"
  # -w -t 60: wait for the server at most 60 s (pg_ctl's default, written out), then fail with
  # its log.
  "${PG_SERVER_AS[@]}" "$PG_SERVER_BIN/pg_ctl" -D "$PG_SERVER_DIR/data" -l "$PG_SERVER_DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_SERVER_DIR -c ssl=on -c ssl_cert_file=$PG_SERVER_DIR/server.crt -c ssl_key_file=$PG_SERVER_DIR/server.key" \
    start >/dev/null ||
    { cat "$PG_SERVER_DIR/server.log" >&2; return 1; }
  export PG_SERVER_URL="postgres://profilegate:$password@127.0.0.1:$port/postgres"
  export PG_SERVER_CA="$PG_SERVER_DIR/ca.crt"
  echo "PostgreSQL $("$PG_SERVER_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
}

pg_server_stop() {
  [ -n "${PG_SERVER_DIR:-}" ] || return 0
  "${PG_SERVER_AS[@]}" "$PG_SERVER_BIN/pg_ctl" -D "$PG_SERVER_DIR/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
    "${PG_SERVER_AS[@]}" "$PG_SERVER_BIN/pg_ctl" -D "$PG_SERVER_DIR/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
  rm -rf "$PG_SERVER_DIR"
  PG_SERVER_DIR=""
}
