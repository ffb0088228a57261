#!/usr/bin/env bash
# scripts/fetch_data.sh on the real files, without a network: the local copy
# (../shared/data, or KVS_DATA) goes through the conversion's serialiser and the
# checksums into a new directory, byte for byte; a second run keeps what is
# there; a changed or missing file fails with one line naming it and writes
# nothing; `eval` finds the data through --data and KVS_DATA, and says how to
# get it when there is none.  usage: cli_fetch_data.sh path/to/kvsteer
. "$(dirname "$0")/testutil/cli.sh"
F=scripts/fetch_data.sh
if "$F" --from "$DATA" --dest "$tmp/d" --offline >"$tmp/out" 2>"$tmp/err"; then ok; else bad "local copy: $(cat "$tmp/err")"; fi
check "13 files from the local copy" grep -q "13 from" "$tmp/out"
same=1
for f in eval/arc_challenge_test.jsonl eval/csqa_validation.jsonl eval/gsm8k_test.jsonl eval/piqa_validation.jsonl \
         traces/arc_challenge.jsonl traces/csqa.jsonl traces/gsm8k.jsonl traces/piqa.jsonl \
         traces/styles/arc_stepwise.jsonl traces/styles/arc_strategy_execution.jsonl traces/styles/arc_causal_chain.jsonl \
         traces/styles/arc_annotated_deduction.jsonl traces/styles/arc_analogical_reasoning.jsonl; do
  cmp -s "$DATA/$f" "$tmp/d/$f" || { same=0; echo "differs: $f"; }
done
check "byte for byte the local copy" [ $same = 1 ]
check "no temporary files left" bash -c "[ -z \"\$(find '$tmp/d' -name '*.part')\" ]"
"$F" --from "$DATA" --dest "$tmp/d" --offline >"$tmp/out" 2>&1
check "second run keeps them" grep -q "13 already there" "$tmp/out"

expect_fail() { # name, needle, file that must not appear, args...
  local name=$1 needle=$2 out=$3; shift 3
  "$F" "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if [ $rc -ne 0 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q -- "$needle" "$tmp/err" && [ ! -e "$out" ]; then ok
  else bad "$name: rc=$rc stderr=[$(head -c 300 "$tmp/err")]"; fi
}
# a local copy with one changed row: refused by its checksum
mkdir -p "$tmp/bad"; cp -r "$DATA/eval" "$DATA/traces" "$tmp/bad/"; chmod -R u+w "$tmp/bad"
sed -i '1s/"answer": "E"/"answer": "D"/' "$tmp/bad/eval/csqa_validation.jsonl"
expect_fail "changed file" "eval/csqa_validation.jsonl: sha256" "$tmp/e/eval/csqa_validation.jsonl" --from "$tmp/bad" --dest "$tmp/e" --offline
# a local copy that lacks a file, offline: says which and how to get it
rm "$tmp/bad/eval/csqa_validation.jsonl"; cp "$DATA/eval/csqa_validation.jsonl" "$tmp/bad/eval/"
rm "$tmp/bad/traces/piqa.jsonl"
expect_fail "missing file offline" "traces/piqa.jsonl: not in a local copy and --offline" "$tmp/g/traces/piqa.jsonl" --from "$tmp/bad" --dest "$tmp/g" --offline
expect_fail "bad option" "unknown option" "" --nope
check "--help" sh -c "'$F' --help | grep -q -- '--dest DIR'"

# the commands find the data through --data and KVS_DATA
EV=(eval -m "$(cd "$(dirname "$MODEL")" && pwd)/$(basename "$MODEL")" --task arc --method baseline --limit 1 --max-new 4 -t "$T" --quiet)
"$BIN" "${EV[@]}" --data "$tmp/d" -o "$tmp/r1.jsonl" >/dev/null 2>"$tmp/err" || bad "eval --data: $(cat "$tmp/err")"
(cd "$tmp" && KVS_DATA="$tmp/d" "$BIN" "${EV[@]}" -o "$tmp/r2.jsonl" >/dev/null 2>"$tmp/err") || bad "eval KVS_DATA: $(cat "$tmp/err")"
answers() { grep '"id":' "$1" | sed -e 's/"seconds":[^,}]*//' -e 's/"span_seconds":[^,}]*//' -e 's/"wall_seconds":[^,}]*//'; }
check "same answers either way" cmp -s <(answers "$tmp/r1.jsonl") <(answers "$tmp/r2.jsonl")
# from a folder whose ../shared/data cannot exist (/tmp/shared might)
mkdir -p "$tmp/nodata/here"
(cd "$tmp/nodata/here" && env -u KVS_DATA "$BIN" "${EV[@]}" -o "$tmp/r3.jsonl" >/dev/null 2>"$tmp/err")
check "no data: says how to get it" grep -q "scripts/fetch_data.sh --dest DIR" "$tmp/err"
check "no data: no run file" [ ! -e "$tmp/r3.jsonl" ]
finish
