#!/usr/bin/env bash
# The test command: installs dependencies, fetches the model, builds kvsteer
# normally and with ASan+UBSan, and runs the whole suite under both.
# Ends with one line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }
# the paper-class model whose parity with llama.cpp tests/test_real_parity.c checks
./scripts/fetch_model.sh qwen2.5-coder-0.5b || { echo "0 passed, 1 failed"; exit 1; }
total_pass=0; total_fail=0
run_suite() { # $1 = build kind, rest = extra ctest args
  local kind=$1; shift
  local dir
  if ! dir=$(./scripts/build.sh "$kind"); then
    echo "test.sh: $kind build failed" >&2; total_fail=$((total_fail+1)); return
  fi
  local log; log=$(mktemp)
  (cd "$dir" && ctest --output-on-failure "$@") 2>&1 | tee "$log"
  local line; line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -1)
  if [ -z "$line" ]; then total_fail=$((total_fail+1)); rm -f "$log"; return; fi
  local failed total
  failed=$(echo "$line" | sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/')
  total=$(echo "$line" | sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\2/')
  total_pass=$((total_pass + total - failed)); total_fail=$((total_fail + failed))
  rm -f "$log"
}
echo "== release build ==" >&2
run_suite release
echo "== ASan+UBSan build ==" >&2
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  KVS_SANITIZED=1 run_suite asan
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
