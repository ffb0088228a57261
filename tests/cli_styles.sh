#!/usr/bin/env bash
# `kvsteer styles` end to end on two ARC questions: two style vectors from the
# real style traces, the table on stdout and in styles.md/json, --runs over the
# same run files gives the same table, rerunning resumes, bad input fails with
# one line.  usage: cli_styles.sh path/to/kvsteer
. "$(dirname "$0")/testutil/cli.sh"

S=$DATA/traces/styles
for s in stepwise causal_chain; do
  "$BIN" extract -m "$MODEL" --traces "$S/arc_$s.jsonl" --pairs 2 --shots 1 -t "$T" -q -o "$tmp/$s.gguf" 2>"$tmp/err" || bad "extract $s: $(cat "$tmp/err")"
done
ST=("$BIN" styles -m "$MODEL" --data "$DATA" -t "$T" -q --limit 2 --offset-start 1167 --max-new 12 --cv 4)
"${ST[@]}" --vec "$tmp/stepwise.gguf" --vec "$tmp/causal_chain.gguf" -o "$tmp/out" >"$tmp/table" 2>"$tmp/err" || bad "styles: $(cat "$tmp/err")"
check "tables: structure and markers, header + 3 rows each" [ "$(grep -c '^|' "$tmp/table")" = 10 ]
check "table: rows labelled by style" grep -q '^| stepwise | 2 | \*\*' "$tmp/table"
check "table: control row" grep -q '^| none (unsteered) | 2 |' "$tmp/table"
check "styles.md = stdout" cmp -s "$tmp/table" "$tmp/out/styles.md"
check "styles.json parses" python3 -c "import json,sys; j=json.load(open(sys.argv[1])); assert len(j['rows'])==3 and j['rows'][1]['intended']=='stepwise' and set(j['rows'][0]['share'])==set(j['structures']) and set(j['rows'][0]['marker_share'])==set(j['structures'])" "$tmp/out/styles.json"
check "run files" [ -s "$tmp/out/runs/baseline.jsonl" ] && [ -s "$tmp/out/runs/stepwise.jsonl" ] && [ -s "$tmp/out/runs/causal_chain.jsonl" ]
check "cv in the run config" grep -q '"cv":4' "$tmp/out/runs/stepwise.jsonl"
check "no temp files" [ -z "$(find "$tmp/out" -name '*.tmp*')" ]
# the runs are complete: a rerun resumes them (same samples) and prints the same table
cp "$tmp/out/runs/stepwise.jsonl" "$tmp/before.jsonl"
"${ST[@]}" --vec "$tmp/stepwise.gguf" --vec "$tmp/causal_chain.gguf" -o "$tmp/out" >"$tmp/table2" 2>"$tmp/err" || bad "rerun: $(cat "$tmp/err")"
check "rerun: same table" cmp -s "$tmp/table" "$tmp/table2"
check "rerun: samples kept" cmp -s <(grep '"id":' "$tmp/before.jsonl") <(grep '"id":' "$tmp/out/runs/stepwise.jsonl")
# --runs tabulates existing files
"$BIN" styles --runs "$tmp/out/runs/stepwise.jsonl" "$tmp/out/runs/causal_chain.jsonl" -o "$tmp/r" >"$tmp/table3" 2>"$tmp/err" || bad "--runs: $(cat "$tmp/err")"
check "--runs: same rows" cmp -s <(grep -v unsteered "$tmp/table") "$tmp/table3"

expect_error() { # name, needle, args...
  local name=$1 needle=$2; shift 2
  "$BIN" styles "$@" >"$tmp/o" 2>"$tmp/e"
  local rc=$?
  if [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ "$(wc -l <"$tmp/e")" -eq 1 ] && grep -q -- "$needle" "$tmp/e" && [ ! -s "$tmp/o" ]; then ok
  else bad "$name: rc=$rc stderr=[$(head -c 300 "$tmp/e")]"; fi
}
echo '{"hello": 1}' >"$tmp/foreign.jsonl"
printf '{"header":true,"config":{}}\nnot json\n{"id":"x","seed":null}\n' >"$tmp/broken.jsonl"
expect_error no-out "required" -m "$MODEL" --vec "$tmp/stepwise.gguf"
expect_error no-vec "at least one --vec" -m "$MODEL" -o "$tmp/x"
expect_error missing-vec "nope.gguf" -m "$MODEL" --data "$DATA" --vec "$tmp/nope.gguf" --no-baseline -o "$tmp/x" --limit 1
expect_error foreign "foreign.jsonl: not a kvsteer eval run file" --runs "$tmp/foreign.jsonl" -o "$tmp/x"
expect_error broken "broken.jsonl:2: not valid JSON" --runs "$tmp/broken.jsonl" -o "$tmp/x"
expect_error missing-run "nothere.jsonl: cannot open" --runs "$tmp/nothere.jsonl" -o "$tmp/x"
expect_error bad-limit "\-\-limit expects" -m "$MODEL" --vec "$tmp/stepwise.gguf" -o "$tmp/x" --limit 0
expect_error unknown "unknown option" --frobnicate
if "$BIN" styles --help | grep -q "usage: kvsteer styles"; then ok; else bad "--help"; fi

finish
