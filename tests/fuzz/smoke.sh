#!/usr/bin/env bash
# Runs each of profilegate's fuzz targets briefly and reports how many inputs each executed
# without a crash (libFuzzer through cargo-fuzz; the fuzz crate lives here, outside the main
# workspace, with its own target directory).
#
#   tests/fuzz/smoke.sh                          # every target, 20 s each
#   tests/fuzz/smoke.sh redirect_check           # one target
#   FUZZ_SECONDS=3600 tests/fuzz/smoke.sh        # longer runs (see SECURITY.md)
#   FUZZ_SANITIZER=address tests/fuzz/smoke.sh   # with AddressSanitizer (slower; default: none)
#
# cargo-fuzz passes nightly-only compiler flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain
# accept them. The first run builds profilegate and its dependencies once more, instrumented
# (several minutes on 2 cores); later runs reuse tests/fuzz/target (or CARGO_TARGET_DIR, which
# also holds the logs, fuzz-smoke-<target>.log). Corpora grow in
# tests/fuzz/corpus/<target>, crashes land in tests/fuzz/artifacts/<target> (both ignored by git).
set -euo pipefail
cd "$(dirname "$0")/../.."

export RUSTC_BOOTSTRAP=1
seconds="${FUZZ_SECONDS:-20}"
sanitizer="${FUZZ_SANITIZER:-none}"
fuzz_dir=tests/fuzz
all=(cookie_unseal redirect_check answer_form config_toml route_match)
if (($#)); then targets=("$@"); else targets=("${all[@]}"); fi

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

# Seed corpora (idempotent): real inputs make the first seconds count.
seed_dir() { mkdir -p "$fuzz_dir/corpus/$1" && echo "$fuzz_dir/corpus/$1"; }
dir=$(seed_dir redirect_check)
if [ ! -e "$dir/seed-0" ]; then
  n=0
  for f in tests/fixtures/redirect_attacks.txt tests/fixtures/redirect_legit.txt; do
    while IFS= read -r line; do
      printf '%s' "$line" >"$dir/seed-$n"
      n=$((n + 1))
    done <"$f"
  done
fi
dir=$(seed_dir config_toml)
cp config.toml "$dir/seed-config"
# The shipped example secret is a configuration error: a copy with a real one reaches the
# accepted path (and its Debug) from the first input.
sed 's|^secret = .*|secret = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="|' config.toml >"$dir/seed-config-own-secret"
cp examples/kubernetes/profilegate.toml "$dir/seed-kubernetes"
cp examples/minimal/profilegate.toml "$dir/seed-minimal"
dir=$(seed_dir answer_form)
printf '%s' 'q_text=Acme+Corp&q_select=Product&q_multiselect=Sales%2C+EMEA&q_multiselect=Zo%C3%AB' >"$dir/seed-1"
printf '%s' 'q_number=-12.5e2&q_integer=42&q_date=2024-02-29&q_boolean=true&q_consent=on' >"$dir/seed-2"
printf '%s' 'q_email=a%40example.com&q_url=https%3A%2F%2Fexample.com%2Fx&q_tel=%2B1+%28555%29+010-0000' >"$dir/seed-3"
printf '%s' 'q_textarea=line+1%0D%0Aline+2&q_text=%00%0A' >"$dir/seed-4"
dir=$(seed_dir cookie_unseal)
printf '%s' 'theme=dark; profilegate_session=AAAA; lang=en' >"$dir/seed-1"
printf '%s' 'profilegate_session="YWJj"; profilegate_session_login_abc=x' >"$dir/seed-2"

echo "==> building fuzz targets (sanitizer: $sanitizer)"
cargo fuzz build --fuzz-dir "$fuzz_dir" -s "$sanitizer"

# The logs go where cargo put the build: CARGO_TARGET_DIR when set (relative to the repository
# root, where this script runs cargo), else the fuzz crate's own target directory.
log_dir="${CARGO_TARGET_DIR:-$fuzz_dir/target}"
mkdir -p "$log_dir"
summary=()
status=0
for t in "${targets[@]}"; do
  echo "==> fuzzing $t for ${seconds}s"
  log="$log_dir/fuzz-smoke-$t.log"
  if cargo fuzz run --fuzz-dir "$fuzz_dir" -s "$sanitizer" "$t" -- \
    -max_total_time="$seconds" -max_len=8192 -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    summary+=("$t: ${runs:-?} executions, no crash")
  else
    status=1
    summary+=("$t: FAILED (see $log and $fuzz_dir/artifacts/$t)")
    tail -40 "$log"
  fi
done

echo "==> fuzz smoke summary (${seconds}s per target)"
printf '  %s\n' "${summary[@]}"
exit "$status"
