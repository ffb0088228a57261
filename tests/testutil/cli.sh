# cli.sh - sourced by the tests/cli_*.sh scripts after their header comment:
# the binary under test ($1), the model and data they run on (KVS_MODEL,
# KVS_DATA, KVS_TEST_THREADS override), a scratch directory removed on exit
# (also the cache folder, so no test writes the user's ~/.cache), and the
# pass/fail counters with the closing "N passed, N failed" line.
set -u
BIN=$1
MODEL=${KVS_MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
DATA=${KVS_DATA:-../shared/data}
T=${KVS_TEST_THREADS:-1}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export XDG_CACHE_HOME=$tmp/xdg
pass=0; fail=0
ok() { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL $*"; }
check() { # name, condition command...
  local name=$1; shift
  if "$@"; then ok; else bad "$name"; fi
}
finish() { echo "$pass passed, $fail failed"; [ $fail -eq 0 ]; }
