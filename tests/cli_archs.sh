#!/usr/bin/env bash
# The command line on the tiny fixture of every architecture: inspect says it
# is runnable, logits prints its JSON line, a chat run works with the template named by the file, a file
# whose template is unrecognised is refused unless --chat-template names one,
# and a bad template name is a one-line error.  usage: cli_archs.sh path/to/kvsteer
set -u
BIN=$1
FIX=tests/fixtures
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
check() { # name, expected rc class (ok|err), needle (stdout for ok, stderr for err), command...
  local name=$1 want=$2 needle=$3; shift 3
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if [ "$want" = ok ] && [ $rc -eq 0 ] && { [ -z "$needle" ] || grep -q -- "$needle" "$tmp/out"; }; then
    pass=$((pass+1)); return
  fi
  if [ "$want" = err ] && [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] &&
     grep -q -- "$needle" "$tmp/err"; then pass=$((pass+1)); return; fi
  fail=$((fail+1)); echo "FAIL $name: rc=$rc stdout=[$(head -c 300 "$tmp/out")] stderr=[$(head -c 300 "$tmp/err")]"
}
for f in qwen2:qwen2 llama3:llama llama3_meta:llama phi3:phi3 gemma3:gemma3 gemma3_swa_list:gemma3; do
  file=$FIX/${f%%:*}.gguf arch=${f##*:}
  check "inspect $file" ok "model: arch $arch," "$BIN" inspect "$file"
  check "inspect-runnable $file" ok "runnable: yes" "$BIN" inspect "$file"
  check "logits $file" ok '"top":\[\[' "$BIN" logits -m "$file" -k 3 -t 1 "hello world"
  # a random model's text is arbitrary; the run must simply succeed
  check "chat $file" ok "" "$BIN" run -m "$file" -p "what is the capital" --chat -n 4 -t 1
  check "bad-template $file" err "unknown chat template name 'bogus'" \
    "$BIN" run -m "$file" -p hi --chat --chat-template bogus -n 2 -t 1
done
# the same gemma3 file with its turn marker renamed (same length, so the file
# stays valid): the template is no longer recognised
LC_ALL=C perl -pe 's/<start_of_turn>/<xtart_of_turn>/g' "$FIX/gemma3.gguf" >"$tmp/odd.gguf"
check unknown-template err "unknown chat template; pass --chat-template NAME" \
  "$BIN" run -m "$tmp/odd.gguf" -p hi --chat -n 2 -t 1
check named-template ok "" "$BIN" run -m "$tmp/odd.gguf" -p hi --chat --chat-template chatml -n 2 -t 1
echo "cli_archs: $pass passed, $fail failed"
[ $fail -eq 0 ]
