#!/usr/bin/env bash
# Runs a command with a wall-clock limit (coreutils `timeout`) and, past it, stops it and says
# which command ran too long. tests/run.sh runs every step that could wait forever through it,
# and cargo test runs every test binary through it (it is their `runner`).
#
#   tests/bounded.sh SECONDS COMMAND [ARGS...]                # COMMAND and all its children
#   tests/bounded.sh --foreground SECONDS COMMAND [ARGS...]   # COMMAND only (see below)
#
# Without --foreground, COMMAND runs in a process group of its own and the whole group is
# stopped (SIGTERM, then SIGKILL 15 s later): a test binary killed mid-test runs no destructor,
# so the processes it started (profilegate, node) must go with it. Ctrl-C and a SIGTERM to this
# script are passed on to that group, which is not the terminal's foreground group.
# --foreground keeps COMMAND in the terminal's foreground group (it may ask for a sudo password,
# and Ctrl-C reaches it directly) and stops only COMMAND: for scripts that stop their own
# children on SIGTERM (the benchmarks) or whose children end by themselves.
#
# Exit status: COMMAND's, or 124 when the limit was reached (as `timeout`).
set -u

foreground=()
if [[ "${1:-}" == --foreground ]]; then
  foreground=(--foreground)
  shift
fi
if (($# < 2)) || ! [[ "$1" =~ ^[0-9]+$ ]]; then
  echo "usage: tests/bounded.sh [--foreground] SECONDS COMMAND [ARGS...]" >&2
  exit 2
fi
limit=$1
shift

# The name in the message: a test binary as cargo names its target
# (target/debug/deps/login-0123456789abcdef -> "test binary login"), anything else as given.
name="$*"
if [[ "$(basename "$1")" =~ ^(.+)-[0-9a-f]{16}$ ]]; then
  name="test binary ${BASH_REMATCH[1]} ($1)"
fi

started=$SECONDS
if ((${#foreground[@]})); then
  timeout "${foreground[@]}" --kill-after=15 "$limit" "$@"
  status=$?
else
  timeout --kill-after=15 "$limit" "$@" &
  child=$!
  # timeout passes a SIGTERM or SIGINT on to the whole group it leads.
  trap 'kill -TERM "$child" 2>/dev/null' INT TERM HUP
  while :; do
    wait "$child"
    status=$?
    # A trapped signal ends `wait` early; the child is reaped only when it has really ended.
    kill -0 "$child" 2>/dev/null || break
  done
fi

# 124: stopped by SIGTERM at the limit; 137: it ignored that and was killed 15 s later.
if ((status == 124 || (status == 137 && SECONDS - started >= limit))); then
  printf '\n*** TIME LIMIT: %s ran longer than %s s and was stopped ***\n' "$name" "$limit" >&2
  exit 124
fi
exit "$status"
