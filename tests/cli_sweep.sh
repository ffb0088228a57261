#!/usr/bin/env bash
# `kvsteer sweep` on a 2-configuration grid (c_v 1 and 4), 2 ARC questions:
# two shards give the same report as one unsharded sweep, the vector is
# extracted once and reused, a rerun resumes, --dry-run lists the shard, bad
# input fails with one line; an act grid's report names each scale.
# usage: cli_sweep.sh path/to/kvsteer
. "$(dirname "$0")/testutil/cli.sh"

SW=("$BIN" sweep -m "$MODEL" --data "$DATA" --task arc --traces data/demo/demo_traces.jsonl --pairs 2 --shots 1
    --cv 1,4 --limit 2 --offset-start 1167 --max-new 6 -t "$T" -q)
"${SW[@]}" --dry-run --shard 1/2 >"$tmp/dry" 2>"$tmp/err" || bad "dry-run: $(cat "$tmp/err")"
check "dry-run: count" grep -q '^2 configurations; shard 1/2' "$tmp/dry"
check "dry-run: marks its config" grep -qE '^\*    1  arc-cache-p2-s1-ck0-cv4-L1-end$' "$tmp/dry"
check "dry-run: writes nothing" [ ! -e "$tmp/sh" ]

"${SW[@]}" -o "$tmp/sh" --shard 0/2 >"$tmp/s0" 2>"$tmp/err" || bad "shard 0: $(cat "$tmp/err")"
"${SW[@]}" -o "$tmp/sh" --shard 1/2 >"$tmp/s1" 2>"$tmp/err" || bad "shard 1: $(cat "$tmp/err")"
check "shards: two run files" [ "$(ls "$tmp/sh/runs" | wc -l)" = 2 ]
check "shards: one vector file" [ "$(ls "$tmp/sh/vectors" | wc -l)" = 1 ]
check "shard prints its report" grep -q '^## Accuracy' "$tmp/s0"
check "extraction keeps embeddings in the default cache" [ "$(ls "$XDG_CACHE_HOME/kvsteer/"embed-*.bin | wc -l)" = 1 ]
check "runs: self-describing config" grep -q '"cv":4' "$tmp/sh/runs/arc-cache-p2-s1-ck0-cv4-L1-end.jsonl"
check "runs: vector settings recorded" grep -q '"extract":{"traces":"demo_traces.jsonl","pairs":2,"shots":1' "$tmp/sh/runs/arc-cache-p2-s1-ck0-cv1-L1-end.jsonl"

"${SW[@]}" -o "$tmp/all" >"$tmp/sall" 2>"$tmp/err" || bad "unsharded: $(cat "$tmp/err")"
"$BIN" report --json "$tmp/sh/runs" >"$tmp/j1" 2>"$tmp/err" || bad "report shards: $(cat "$tmp/err")"
"$BIN" report --json "$tmp/all/runs" >"$tmp/j2" 2>"$tmp/err" || bad "report all: $(cat "$tmp/err")"
check "shards = unsharded" python3 -c "
import json,sys
a,b=(json.load(open(f))['runs'] for f in sys.argv[1:3])
key=lambda r: r['label']
a,b=sorted(a,key=key),sorted(b,key=key)
assert len(a)==len(b)==2
for x,y in zip(a,b):
    for k in ('label','n','accuracy','invalid','mean_generated_tokens','params','config'): assert x[k]==y[k], k
" "$tmp/j1" "$tmp/j2"
check "report: c_v ablation" python3 -c "import json,sys; j=json.load(open(sys.argv[1])); assert [a['param'] for a in j['ablations']]==['cv']" "$tmp/j1"

# a rerun resumes: nothing is extracted or generated again
cp -r "$tmp/sh" "$tmp/before"
"${SW[@]}" -o "$tmp/sh" >/dev/null 2>"$tmp/err" || bad "rerun: $(cat "$tmp/err")"
check "rerun: vector kept" cmp -s "$tmp/before/vectors/"*.gguf "$tmp/sh/vectors/"*.gguf
check "rerun: same samples" cmp -s <(cat "$tmp/before/runs/"*.jsonl | grep '"id":') <(cat "$tmp/sh/runs/"*.jsonl | grep '"id":')

# activation steering at two scales: the report names the scale once
"$BIN" sweep -m "$MODEL" --data "$DATA" --task arc --traces data/demo/demo_traces.jsonl --pairs 2 --shots 1 \
  --methods act --act-layer 1 --act-scale 0.5,1 --limit 1 --offset-start 1167 --max-new 6 -t "$T" -q \
  --embed-cache "$tmp/ec" -o "$tmp/act" >"$tmp/act.md" 2>"$tmp/err" || bad "act sweep: $(cat "$tmp/err")"
check "--embed-cache reaches the extraction" [ "$(ls "$tmp/ec/"embed-*.bin | wc -l)" = 1 ]
check "act: columns by scale" grep -q '^| task | act scale=0.5 | act scale=1 |$' "$tmp/act.md"

expect_error() { # name, needle, args...
  local name=$1 needle=$2; shift 2
  "$BIN" sweep "$@" >"$tmp/o" 2>"$tmp/e"
  local rc=$?
  if [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ "$(wc -l <"$tmp/e")" -eq 1 ] && grep -q -- "$needle" "$tmp/e" && [ ! -s "$tmp/o" ] && [ ! -e "$tmp/x" ]; then ok
  else bad "$name: rc=$rc stderr=[$(head -c 300 "$tmp/e")]"; fi
}
A=(-m "$MODEL" --data "$DATA" --task arc -o "$tmp/x")
expect_error shard "\-\-shard expects I/N" "${A[@]}" --methods baseline --shard 2/2
expect_error cv-list "\-\-cv expects a number" "${A[@]}" --traces data/demo/demo_traces.jsonl --cv 1,x
expect_error dup "'4' given twice" "${A[@]}" --traces data/demo/demo_traces.jsonl --cv 4,4
expect_error no-traces "\-\-traces FILE is needed" "${A[@]}" --methods cache
expect_error method "unknown method 'magic'" "${A[@]}" --methods baseline,magic
expect_error act-layer "needs --act-layer" "${A[@]}" --traces data/demo/demo_traces.jsonl --methods act
expect_error layers "layer ranges" "${A[@]}" --traces data/demo/demo_traces.jsonl --layers 5-2
expect_error task "unknown --task" -m "$MODEL" --task mmlu -o "$tmp/x" --methods baseline
expect_error traces-missing "nope.jsonl" "${A[@]}" --traces "$tmp/nope.jsonl" --limit 1
if "$BIN" sweep --help | grep -q "usage: kvsteer sweep"; then ok; else bad "--help"; fi

finish
