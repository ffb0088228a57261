#!/usr/bin/env bash
# `kvsteer report` on tiny real runs: Markdown tables and JSON, two shards of one
# configuration report exactly as one file, a c_v ablation is found, --plot
# writes PNGs, and malformed or foreign run files fail with one line naming the
# file; tools/paired.py takes a sharded run as one side; tools/strip_prompts.py's
# copies (results/) report, rescore and resume as the originals do.
# usage: cli_report.sh path/to/kvsteer
. "$(dirname "$0")/testutil/cli.sh"

EV=("$BIN" eval -m "$MODEL" --data "$DATA" -t "$T" --quiet --task arc --max-new 6)
mkdir -p "$tmp/runs" "$tmp/shards"
"${EV[@]}" --method baseline --offset-start 1167 --limit 3 -o "$tmp/runs/base.jsonl" >/dev/null 2>"$tmp/err" || bad "eval base: $(cat "$tmp/err")"
"${EV[@]}" --method cot --offset-start 1167 --limit 3 -o "$tmp/runs/cot.jsonl" >/dev/null 2>"$tmp/err" || bad "eval cot: $(cat "$tmp/err")"
# the same configuration in two shards of questions
"${EV[@]}" --method baseline --offset-start 1167 --limit 2 -o "$tmp/shards/a.jsonl" >/dev/null 2>"$tmp/err" || bad "shard a: $(cat "$tmp/err")"
"${EV[@]}" --method baseline --offset-start 1169 --limit 1 -o "$tmp/shards/b.jsonl" >/dev/null 2>"$tmp/err" || bad "shard b: $(cat "$tmp/err")"

"$BIN" report "$tmp/runs/base.jsonl" "$tmp/runs/cot.jsonl" >"$tmp/md" 2>"$tmp/err" || bad "report: $(cat "$tmp/err")"
check "md: accuracy table" grep -q '^| task | baseline | cot |$' "$tmp/md"
check "md: arc row, 95% intervals" grep -qE '^\| arc \| [0-9.]+ \[[0-9.]+, [0-9.]+\] \| [0-9.]+ \[[0-9.]+, [0-9.]+\] \|$' "$tmp/md"
check "md: tokens table" grep -q '^## Mean generated tokens, greedy' "$tmp/md"
check "md: speed table" grep -qE '^\| cot \| 1 \| [0-9]+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| 16 \|$' "$tmp/md"
check "md: paired table" grep -qE '^\| arc \| cot \| 3 \| [0-9.]+ \[[0-9.]+, [0-9.]+\] \| [0-9.]+% \| [0-9.]+ \| [-+][0-9.]+ \[[-+][0-9.]+, [-+][0-9.]+\] \| [0-9]+ / [0-9]+ \| [0-9.]+ \| [0-9.]+ \|$' "$tmp/md"
check "md: runs list" [ "$(grep -c '^| arc | ' "$tmp/md")" -ge 3 ]
# the numerics fingerprint: recorded, the same for both runs (no note); a run
# with another one is reported with a note, and its JSON row names it
check "numerics: recorded, equal for one binary" python3 -c "
import json,sys; a,b=(json.loads(open(f).readline()).get('numerics') for f in sys.argv[1:]); assert a and len(a)==16 and a==b" "$tmp/runs/base.jsonl" "$tmp/runs/cot.jsonl"
check "numerics: no note for one arithmetic" sh -c "! grep -q 'different arithmetic' '$tmp/md'"
"$BIN" inspect --numerics "$MODEL" >"$tmp/insp" 2>"$tmp/err" || bad "inspect --numerics: $(cat "$tmp/err")"
check "numerics: inspect --numerics prints the value run files record" python3 -c "
import json,re,sys; h=json.loads(open(sys.argv[1]).readline())['numerics']
m=re.search(r'^numerics: ([0-9a-f]{16}) ', open(sys.argv[2]).read(), re.M); assert m and m.group(1)==h, (h, m)" "$tmp/runs/base.jsonl" "$tmp/insp"
python3 -c "
import json,sys; L=open(sys.argv[1]).read().splitlines(); h=json.loads(L[0]); h['numerics']='0123456789abcdef'
open(sys.argv[2],'w').write('\n'.join([json.dumps(h)]+L[1:])+'\n')" "$tmp/runs/cot.jsonl" "$tmp/cot-other.jsonl"
"$BIN" report "$tmp/runs/base.jsonl" "$tmp/cot-other.jsonl" >"$tmp/md2" 2>"$tmp/err" || bad "report numerics: $(cat "$tmp/err")"
check "numerics: a note when two arithmetics are compared" grep -q 'computed with different arithmetic' "$tmp/md2"
refused=0
"${EV[@]}" --method cot --offset-start 1167 --limit 4 -o "$tmp/cot-other.jsonl" >/dev/null 2>"$tmp/e" || refused=1
check "numerics: a resumed file with another arithmetic is refused, naming it" sh -c \
  "[ $refused = 1 ] && grep -q 'cot-other.jsonl: begun by a binary with other arithmetic' '$tmp/e' && [ \$(wc -l <'$tmp/e') = 1 ]"
# a shard begun with another kernel set that computes the same bits (the header
# says so: same numerics) is one run with its sibling, in report and on resume
python3 -c "
import json,sys; L=open(sys.argv[1]).read().splitlines(); h=json.loads(L[0]); h['config']['kernels']='other-set'
open(sys.argv[2],'w').write('\n'.join([json.dumps(h)]+L[1:])+'\n')" "$tmp/shards/b.jsonl" "$tmp/b-kern.jsonl"
"$BIN" report --json "$tmp/shards/a.jsonl" "$tmp/b-kern.jsonl" >"$tmp/jk" 2>"$tmp/err" || bad "report kernels: $(cat "$tmp/err")"
check "kernels: a shard with another kernel set and the same numerics joins its run" python3 -c "
import json,sys; j=json.load(open(sys.argv[1])); assert len(j['runs'])==1 and j['runs'][0]['n']==3, j['runs']" "$tmp/jk"
"${EV[@]}" --method baseline --offset-start 1169 --limit 2 -o "$tmp/b-kern.jsonl" >/dev/null 2>"$tmp/err" ||
  bad "resume kernels: $(cat "$tmp/err")"
check "kernels: it resumes here" python3 -c "
import json,sys; assert sum('generated_tokens' in json.loads(l) for l in open(sys.argv[1]))==2" "$tmp/b-kern.jsonl"
# accuracy as the eval summary line computed it
acc=$(python3 -c "import json,sys; print('%.1f' % (100*[json.loads(l) for l in open(sys.argv[1])][-1]['accuracy']['choice']))" "$tmp/runs/base.jsonl")
check "md: accuracy = eval summary" grep -qE "^\| arc \| $acc \[" "$tmp/md"
"$BIN" report --json "$tmp/runs" -o "$tmp/r.json" >"$tmp/json" 2>"$tmp/err" || bad "report --json: $(cat "$tmp/err")"
check "json: -o = stdout" cmp -s "$tmp/json" "$tmp/r.json"
check "json: two runs" python3 -c "import json,sys; j=json.load(open(sys.argv[1])); assert sorted(r['method'] for r in j['runs'])==['baseline','cot'] and all(r['n']==3 for r in j['runs'])" "$tmp/json"
check "json: intervals, answered share, paired comparison" python3 -c "
import json,sys; j=json.load(open(sys.argv[1])); b,c=sorted(j['runs'], key=lambda r: r['method'])
for r in (b,c): lo,hi=r['accuracy_ci95']; assert 0<=lo<=r['accuracy']<=hi<=1, r
assert 'vs_baseline' not in b and c['vs_baseline']['questions']==3, c
v=c['vs_baseline']; lo,hi=v['difference_ci95']; assert lo<=v['difference']<=hi and abs(v['difference']-(c['accuracy']-b['accuracy']))<1e-9, v
assert v['test']=='exact McNemar' and 0<v['p']<=1 and v['p_holm']==v['p'], v" "$tmp/json"
# --shared: runs of different reach (the CoT run has 3 questions, the baseline
# shard 2) are described on the samples both have; none shared is an error
"$BIN" report --json --shared "$tmp/runs/cot.jsonl" "$tmp/shards/a.jsonl" >"$tmp/sh.json" 2>"$tmp/err" || bad "report --shared: $(cat "$tmp/err")"
check "shared: both runs on the same 2 questions, the CoT run's accuracy on them" python3 -c "
import json,sys; j=json.load(open(sys.argv[1])); runs={r['method']: r for r in j['runs']}
b,c=runs['baseline'],runs['cot']; assert b['n']==c['n']==2 and c['samples_left_out']==1 and b['samples_left_out']==0, j
keep={json.loads(l)['id'] for l in open(sys.argv[3]) if '\"id\"' in l}
s=[json.loads(l) for l in open(sys.argv[2]) if '\"id\"' in l]; s=[x for x in s if x['id'] in keep]
assert len(s)==2 and abs(c['accuracy']-sum(x['correct'] for x in s)/2)<1e-9, (c, s)" "$tmp/sh.json" "$tmp/runs/cot.jsonl" "$tmp/shards/a.jsonl"
"$BIN" report --shared "$tmp/runs/cot.jsonl" "$tmp/shards/a.jsonl" >"$tmp/sh.md" 2>"$tmp/err" || bad "report --shared md: $(cat "$tmp/err")"
check "shared: md says what was left out" grep -q '^Shared samples only: 1 samples' "$tmp/sh.md"
python3 -c "
import json,sys; L=open(sys.argv[1]).read().splitlines(); out=[]
for l in L:
    o=json.loads(l)
    if 'id' in o: o['id']='other-'+o['id']
    out.append(json.dumps(o))
open(sys.argv[2],'w').write('\n'.join(out)+'\n')" "$tmp/runs/cot.jsonl" "$tmp/cot-disjoint.jsonl"
"$BIN" report --shared "$tmp/cot-disjoint.jsonl" "$tmp/shards/a.jsonl" >"$tmp/out" 2>"$tmp/err" && bad "shared: nothing shared accepted"
check "shared: nothing shared is one line naming the file" sh -c "grep -q 'cot-disjoint.jsonl: no sample of this run' '$tmp/err' && [ \$(wc -l <'$tmp/err') = 1 ]"
python3 tools/paired.py --json "$tmp/runs/base.jsonl" "$tmp/runs/cot.jsonl" >"$tmp/pp" 2>"$tmp/err" || bad "paired.py: $(cat "$tmp/err")"
check "json: better/worse = tools/paired.py's flips" python3 -c "
import json,sys; v=[r for r in json.load(open(sys.argv[1]))['runs'] if r['method']=='cot'][0]['vs_baseline']; p=json.load(open(sys.argv[2]))
assert (v['better'],v['worse'])==(p['wrong_to_right'],p['right_to_wrong']), (v,p)" "$tmp/json" "$tmp/pp"
# tools/strip_prompts.py: the copy results/ keeps has no prompts, reports and
# rescores as the original does, and resumes (only the missing question runs);
# shards of one run merge, of two runs do not; a run without its summary (still
# going) is paired with its baseline
python3 tools/strip_prompts.py "$tmp/runs/base.jsonl" "$tmp/stripped.jsonl" 2>"$tmp/err" || bad "strip_prompts: $(cat "$tmp/err")"
check "stripped: no prompt, every record kept (the summary too)" python3 -c "
import json,sys; a=[json.loads(l) for l in open(sys.argv[1])]; b=[json.loads(l) for l in open(sys.argv[2])]
assert a[-1].get('summary') and b[-1].get('summary')
assert len(a)==len(b) and any('prompt' in r for r in a) and not any('prompt' in r for r in b)
assert all({k:v for k,v in x.items() if k!='prompt'}==y for x,y in zip(a,b))" "$tmp/runs/base.jsonl" "$tmp/stripped.jsonl"
for o in "" "--rescore --data $DATA"; do
  "$BIN" report --json $o "$tmp/runs/base.jsonl" 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin)['runs'][0]['accuracy'])" >"$tmp/acc1"
  "$BIN" report --json $o "$tmp/stripped.jsonl" 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin)['runs'][0]['accuracy'])" >"$tmp/acc2"
  check "stripped: report ${o:-plain} as the original" cmp -s "$tmp/acc1" "$tmp/acc2"
done
"${EV[@]}" --method baseline --offset-start 1167 --limit 4 -o "$tmp/stripped.jsonl" >/dev/null 2>"$tmp/err" || bad "resume stripped: $(cat "$tmp/err")"
check "stripped: resumes with the one missing question" python3 -c "
import json,sys; ids=[r['id'] for r in map(json.loads, open(sys.argv[1])) if 'id' in r]
assert len(ids)==4 and len(set(ids))==4, ids" "$tmp/stripped.jsonl"
# a run still going (no summary yet) is paired with its baseline all the same
grep -v '"summary"' "$tmp/runs/cot.jsonl" >"$tmp/going.jsonl"
"$BIN" report --json "$tmp/runs/base.jsonl" "$tmp/going.jsonl" 2>/dev/null >"$tmp/gj"
check "a run without its summary has its paired comparison" python3 -c "
import json,sys; r=[r for r in json.load(open(sys.argv[1]))['runs'] if r['method']=='cot'][0]
assert r['vs_baseline']['questions']==3, r" "$tmp/gj"
python3 tools/strip_prompts.py "$tmp/shards/a.jsonl" "$tmp/shards/b.jsonl" "$tmp/merged.jsonl" 2>"$tmp/err" || bad "merge: $(cat "$tmp/err")"
"$BIN" report --json "$tmp/shards" 2>/dev/null | python3 -c "import json,sys; r=json.load(sys.stdin)['runs'][0]; print(r['n'], r['accuracy'])" >"$tmp/acc1"
"$BIN" report --json "$tmp/merged.jsonl" 2>/dev/null | python3 -c "import json,sys; r=json.load(sys.stdin)['runs'][0]; print(r['n'], r['accuracy'])" >"$tmp/acc2"
check "stripped: two shards merge into one file that reports as both" cmp -s "$tmp/acc1" "$tmp/acc2"
check "stripped: a merged file has no summary" sh -c "! grep -q '\"summary\"' '$tmp/merged.jsonl'"
check "stripped: shards of two configurations do not merge" sh -c \
  "! python3 tools/strip_prompts.py '$tmp/runs/base.jsonl' '$tmp/runs/cot.jsonl' '$tmp/mix.jsonl' 2>'$tmp/e' && grep -q 'cot.jsonl: another configuration' '$tmp/e' && [ ! -e '$tmp/mix.jsonl' ]"
printf '{"header":true,"config":{}}\n{"id": 1,' >"$tmp/cut.jsonl"
python3 tools/strip_prompts.py "$tmp/cut.jsonl" "$tmp/cut2.jsonl" 2>/dev/null
check "stripped: a record cut off at the end is dropped" [ "$(wc -l <"$tmp/cut2.jsonl")" = 1 ]
printf '{"header":true,"config":{}}\n{"id": 1,\n{"id": 2}\n' >"$tmp/bad.jsonl"
check "stripped: a broken record inside fails, naming the line, leaving nothing" sh -c \
  "! python3 tools/strip_prompts.py '$tmp/bad.jsonl' '$tmp/bad2.jsonl' 2>'$tmp/e' && grep -q 'bad.jsonl:2' '$tmp/e' && [ ! -e '$tmp/bad2.jsonl' ] && [ ! -e '$tmp/bad2.jsonl.tmp' ]"
# tools/answer_form.py: one row per run, over the questions both answered; a missing file is one line
python3 tools/answer_form.py "$tmp/runs/base.jsonl" "$tmp/shards/a.jsonl,$tmp/shards/b.jsonl" >"$tmp/form" 2>"$tmp/err" || bad "answer_form: $(cat "$tmp/err")"
check "answer_form: a row per run, shards joined, 3 shared answers" sh -c "[ \$(grep -cE '^\| .* \| 3 \| [0-9.]+% \| [0-9.]+% \| [0-9.]+% \|$' '$tmp/form') = 2 ]"
check "answer_form: two shards of one run given apart share no question: one line, not a traceback" sh -c "! python3 tools/answer_form.py '$tmp/shards/a.jsonl' '$tmp/shards/b.jsonl' 2>'$tmp/e' && [ \$(wc -l <'$tmp/e') = 1 ] && grep -q 'share no question' '$tmp/e'"
check "answer_form: a missing file is one line naming it" sh -c "! python3 tools/answer_form.py '$tmp/none.jsonl' 2>'$tmp/e' && [ \$(wc -l <'$tmp/e') = 1 ] && grep -q 'none.jsonl' '$tmp/e'"
# a sweep folder stands for its runs/
mkdir -p "$tmp/sweepdir"; ln -s "$tmp/runs" "$tmp/sweepdir/runs"
"$BIN" report --json "$tmp/sweepdir" >"$tmp/sw.json" 2>"$tmp/err" || bad "report sweep folder: $(cat "$tmp/err")"
check "sweep folder: DIR/runs found" python3 -c "
import json,sys; a,b=(sorted((r['method'],r['n'],r['accuracy']) for r in json.load(open(f))['runs']) for f in sys.argv[1:]); assert a==b, (a,b)" "$tmp/json" "$tmp/sw.json"
# --rescore: a span that re-lists the choices is no answer; the file is not changed
python3 - "$tmp/runs/base.jsonl" "$tmp/relist.jsonl" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
s = lines[1]
s["response"], s["span"], s["correct"] = "", ":\nA: one\nB: two", True
s["extracted"] = {"choice": "A", "rule": "correct_choice_is", "stage": 1}
with open(sys.argv[2], "w") as f:
    for o in lines: f.write(json.dumps(o) + "\n")
PY
cp "$tmp/relist.jsonl" "$tmp/relist.orig"
"$BIN" report --json --rescore "$tmp/relist.jsonl" >"$tmp/rs.json" 2>"$tmp/err" || bad "rescore: $(cat "$tmp/err")"
check "rescore: the listed span counted as no answer" grep -q "relist.jsonl: 1 of 3 samples changed correctness" "$tmp/err"
check "rescore: the file is unchanged" cmp -s "$tmp/relist.jsonl" "$tmp/relist.orig"
"$BIN" report --json --rescore "$tmp/runs/base.jsonl" >"$tmp/rs2.json" 2>"$tmp/err" || bad "rescore unchanged: $(cat "$tmp/err")"
check "rescore: as scored at eval time" grep -q "base.jsonl: 0 of 3 samples changed correctness" "$tmp/err"
# shards merge losslessly: the same numbers as the single file
"$BIN" report --json "$tmp/shards" >"$tmp/sj" 2>"$tmp/err" || bad "report shards: $(cat "$tmp/err")"
check "shards = one file" python3 -c "
import json,sys
a=[r for r in json.load(open(sys.argv[1]))['runs'] if r['method']=='baseline'][0]
b=json.load(open(sys.argv[2]))['runs']
assert len(b)==1, b
b=b[0]
for k in ('n','n_questions','accuracy','invalid','mean_generated_tokens','params','config'): assert a[k]==b[k], k
assert len(b['files'])==2" "$tmp/json" "$tmp/sj"
# interleaved shards (--every 2 from questions 1167 and 1168): the same samples, and
# the same numbers, as the contiguous shards and the single file
mkdir -p "$tmp/every"
"${EV[@]}" --method baseline --offset-start 1167 --every 2 --limit 2 -o "$tmp/every/a.jsonl" >/dev/null 2>"$tmp/err" || bad "every a: $(cat "$tmp/err")"
"${EV[@]}" --method baseline --offset-start 1168 --every 2 -o "$tmp/every/b.jsonl" >/dev/null 2>"$tmp/err" || bad "every b: $(cat "$tmp/err")"
check "every: questions 1167, 1169 and 1168, 1170, 1171" python3 -c "
import json,sys
ids=[sorted(json.loads(l)['id'] for l in open(f) if '\"generated_tokens\"' in l) for f in sys.argv[1:]]
assert ids==[['arc_challenge_test-1167','arc_challenge_test-1169'],['arc_challenge_test-1168','arc_challenge_test-1170']], ids
" "$tmp/every/a.jsonl" "$tmp/every/b.jsonl"
"$BIN" report --json "$tmp/every/a.jsonl" "$tmp/every/b.jsonl" "$tmp/shards/a.jsonl" "$tmp/shards/b.jsonl" >"$tmp/ej" 2>"$tmp/err" || bad "report every: $(cat "$tmp/err")"
check "every: merges with the other shards, same responses" python3 -c "
import json,sys
r=json.load(open(sys.argv[1]))['runs']; assert len(r)==1 and r[0]['n']==4 and r[0]['duplicates_dropped']==3, r
resp=lambda f: {x['id']: x['response'] for x in map(json.loads, open(f)) if 'generated_tokens' in x}
ev={**resp(sys.argv[2]), **resp(sys.argv[3])}; sh={**resp(sys.argv[4]), **resp(sys.argv[5])}
assert all(ev[k]==sh[k] for k in sh), (ev, sh)" "$tmp/ej" "$tmp/every/a.jsonl" "$tmp/every/b.jsonl" "$tmp/shards/a.jsonl" "$tmp/shards/b.jsonl"
check "every: recorded in the summary's configuration" python3 -c "
import json,sys; s=[json.loads(l) for l in open(sys.argv[1])][-1]; assert s['config']['every']==2, s['config']" "$tmp/every/a.jsonl"
check "every 0 refused" sh -c "! '$BIN' eval -m '$MODEL' --task arc --method baseline --every 0 -o '$tmp/e0.jsonl' 2>'$tmp/e' && grep -q -- '--every' '$tmp/e' && [ ! -e '$tmp/e0.jsonl' ]"
"$BIN" report --json "$tmp/shards/b.jsonl" "$tmp/runs/cot.jsonl" "$tmp/shards/a.jsonl" >"$tmp/o1" 2>"$tmp/err" || bad "order 1: $(cat "$tmp/err")"
"$BIN" report --json "$tmp/shards/a.jsonl" "$tmp/shards/b.jsonl" "$tmp/runs/cot.jsonl" >"$tmp/o2" 2>"$tmp/err" || bad "order 2: $(cat "$tmp/err")"
check "argument order does not matter" cmp -s "$tmp/o1" "$tmp/o2"
# a shard given twice: duplicates counted once
"$BIN" report --json "$tmp/shards" "$tmp/shards/a.jsonl" >"$tmp/dj" 2>"$tmp/err" || bad "report dup: $(cat "$tmp/err")"
check "duplicates dropped" python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['runs'][0]; assert r['n']==3 and r['duplicates_dropped']==2" "$tmp/dj"
# an unfinished run (no summary, last line cut mid-write) still reports, marked
{ head -n 3 "$tmp/runs/base.jsonl"; sed -n 4p "$tmp/runs/base.jsonl" | head -c 50; } >"$tmp/unfinished.jsonl"
"$BIN" report "$tmp/unfinished.jsonl" >"$tmp/u" 2>"$tmp/err" || bad "unfinished: $(cat "$tmp/err")"
check "unfinished: two samples, marked" grep -qE '^\| arc \| baseline \| greedy \| 2 \| 2 \| .*\(unfinished\)' "$tmp/u"
# a shard that has only its header (just started) joins its run; alone it is refused (below)
head -n 1 "$tmp/runs/base.jsonl" >"$tmp/header-only.jsonl"
"$BIN" report "$tmp/unfinished.jsonl" "$tmp/header-only.jsonl" >"$tmp/u2" 2>"$tmp/err" || bad "header-only shard: $(cat "$tmp/err")"
check "header-only shard: same two samples, one run" grep -qE '^\| arc \| baseline \| greedy \| 2 \| 2 \| .*\(unfinished\)' "$tmp/u2"
# sampling: mean +- std over seeds in its own table
"${EV[@]}" --method cot --offset-start 1167 --limit 2 --sampling --seeds 2 -o "$tmp/samp.jsonl" >/dev/null 2>"$tmp/err" || bad "eval sampling: $(cat "$tmp/err")"
"$BIN" report "$tmp/runs/base.jsonl" "$tmp/samp.jsonl" >"$tmp/s" 2>"$tmp/err" || bad "report sampling: $(cat "$tmp/err")"
check "sampling: own table" grep -q '^## Accuracy (%), sampling: mean ± std over seeds' "$tmp/s"
check "sampling: mean +- std cell" grep -qE '^\| arc \| [0-9.]+ ± [0-9.]+ \|$' "$tmp/s"
check "sampling: seeds in the runs list" grep -q '| sampling, 2 seeds | 2 | 4 |' "$tmp/s"
check "sampling: accuracy seed by seed" grep -qE '^\| arc \| [^|]+ \| 0 1 \| [0-9.]+ [0-9.]+ \|$' "$tmp/s"
"$BIN" report --json "$tmp/samp.jsonl" >"$tmp/sj" 2>"$tmp/err" || bad "report sampling json: $(cat "$tmp/err")"
check "sampling json: per-seed accuracies average to the accuracy" python3 -c "
import json, sys
r = json.load(open(sys.argv[1]))['runs'][0]
assert r['seeds'] == [0, 1] and len(r['accuracy_per_seed']) == 2
assert abs(sum(r['accuracy_per_seed']) / 2 - r['accuracy']) < 1e-9" "$tmp/sj"
# an ablation over c_v
"$BIN" extract -m "$MODEL" --traces data/demo/demo_traces.jsonl --pairs 2 --shots 1 -t "$T" -q -o "$tmp/v.gguf" 2>"$tmp/err" || bad "extract: $(cat "$tmp/err")"
check "inspect: a vector's tokenizer hash prints as 16 hex digits" sh -c "'$BIN' inspect '$tmp/v.gguf' | grep -qE 'tokenizer_hash +[0-9a-f]{16}\$'"
for cv in 1 3; do
  "${EV[@]}" --method cache --steer "$tmp/v.gguf" --cv $cv --offset-start 1167 --limit 2 -o "$tmp/runs/cv$cv.jsonl" >/dev/null 2>"$tmp/err" || bad "eval cv$cv: $(cat "$tmp/err")"
done
"$BIN" report "$tmp/runs" >"$tmp/md2" 2>"$tmp/err" || bad "report ablation: $(cat "$tmp/err")"
check "ablation: labels" grep -q '| cache c_v=1 | cache c_v=3 |' "$tmp/md2"
check "ablation: series" grep -q 'accuracy against c_v' "$tmp/md2"
check "ablation: no baseline of other questions" sh -c "! grep -q 'Baseline on the same questions' '$tmp/md2'"
"$BIN" report "$tmp/runs/cv1.jsonl" "$tmp/runs/cv3.jsonl" "$tmp/shards/a.jsonl" >"$tmp/md5" 2>"$tmp/err" || bad "report ablation + baseline: $(cat "$tmp/err")"
bacc=$(python3 -c "import json,sys; print('%.1f' % (100*[json.loads(l) for l in open(sys.argv[1])][-1]['accuracy']['choice']))" "$tmp/shards/a.jsonl")
check "ablation: its baseline" grep -q "^Baseline on the same questions: $bacc%" "$tmp/md5"
check "ablation: each point's interval" grep -q '^| 95% CI | \[' "$tmp/md5"
check "ablation: each point against the baseline, with Holm's p" sh -c "grep -q '^| vs baseline, points \[95% CI\] | [+-]' '$tmp/md5' && grep -q '^| p (Holm) | [0-9<]' '$tmp/md5'"
check "ablation: no paired row without a baseline" sh -c "! grep -q '^| vs baseline, points' '$tmp/md2'"
# each task's vector comes from its own traces: the paper-shaped table keeps one
# cache column; between runs of one task, another trace file is a setting to show
"$BIN" extract -m "$MODEL" --traces "$DATA/traces/styles/arc_stepwise.jsonl" --pairs 2 --shots 1 -t "$T" -q \
  -o "$tmp/v2.gguf" 2>"$tmp/err" || bad "extract v2: $(cat "$tmp/err")"
"$BIN" eval -m "$MODEL" --data "$DATA" -t "$T" --quiet --task csqa --max-new 6 --method cache --steer "$tmp/v2.gguf" \
  --cv 1 --limit 1 -o "$tmp/csqa-cv1.jsonl" >/dev/null 2>"$tmp/err" || bad "eval csqa v2: $(cat "$tmp/err")"
"$BIN" report "$tmp/runs/cv1.jsonl" "$tmp/csqa-cv1.jsonl" >"$tmp/md3" 2>"$tmp/err" || bad "report two tasks: $(cat "$tmp/err")"
check "two tasks' vectors: one cache column" grep -q '^| task | cache |$' "$tmp/md3"
"${EV[@]}" --method cache --steer "$tmp/v2.gguf" --cv 1 --offset-start 1167 --limit 1 -o "$tmp/arc-v2.jsonl" >/dev/null 2>"$tmp/err" || bad "eval arc v2: $(cat "$tmp/err")"
"$BIN" report "$tmp/runs/cv1.jsonl" "$tmp/arc-v2.jsonl" >"$tmp/md4" 2>"$tmp/err" || bad "report two vectors: $(cat "$tmp/err")"
check "one task, two trace files: shown" sh -c "grep '^| task |' '$tmp/md4' | grep -q ' cache traces=demo_traces.jsonl |' &&
  grep '^| task |' '$tmp/md4' | grep -q ' cache traces=arc_stepwise.jsonl |'"
if command -v gnuplot >/dev/null; then
  "$BIN" report "$tmp/runs" --plot "$tmp/plots" >/dev/null 2>"$tmp/err" || bad "plot: $(cat "$tmp/err")"
  check "plot: ablation png" sh -c "head -c 4 '$tmp/plots/ablation_arc_greedy_cv.png' | grep -q PNG"
  check "plot: speed png" sh -c "head -c 4 '$tmp/plots/speed.png' | grep -q PNG"
  check "plot: script names its data" grep -qF "\"$tmp/plots/ablation_arc_greedy_cv.dat\"" "$tmp/plots/ablation_arc_greedy_cv.gp"
  check "plot: script names its chart, not a temporary file" sh -c "grep -qF 'out = \"$tmp/plots/ablation_arc_greedy_cv.png\"' '$tmp/plots/ablation_arc_greedy_cv.gp' && ! grep -qF '.png.tmp' '$tmp/plots/ablation_arc_greedy_cv.gp'"
  check "plot: 95% intervals drawn" grep -q 'using 1:2:4:5 with yerrorlines' "$tmp/plots/ablation_arc_greedy_cv.gp"
  rm -f "$tmp/plots/speed.png"
  check "plot: the saved script reruns as it is" sh -c "gnuplot '$tmp/plots/speed.gp' && head -c 4 '$tmp/plots/speed.png' | grep -q PNG"
  check "plot: no temp files" [ -z "$(find "$tmp/plots" -name '*.tmp*')" ]
  "$BIN" report "$tmp/runs/cv1.jsonl" "$tmp/runs/cv3.jsonl" "$tmp/shards/a.jsonl" --plot "$tmp/plots2" >/dev/null 2>"$tmp/err" || bad "plot + baseline: $(cat "$tmp/err")"
  check "plot: baseline level" grep -q "title 'baseline $bacc%'" "$tmp/plots2/ablation_arc_greedy_cv.gp"
  check "plot: the y-axis holds the baseline" python3 -c "
import re,sys; g=open(sys.argv[1]).read(); top=float(re.search(r'set yrange \[0:([0-9.]+)\]', g).group(1)); assert top > float(sys.argv[2]), (top, sys.argv[2])" \
    "$tmp/plots2/ablation_arc_greedy_cv.gp" "$bacc"
else
  echo "SKIP --plot: gnuplot is not installed (scripts/setup.sh installs gnuplot-nox)"
fi

expect_error() { # name, needle, args...
  local name=$1 needle=$2; shift 2
  rm -f "$tmp/o.md"
  "$BIN" report "$@" >"$tmp/o" 2>"$tmp/e"
  local rc=$?
  if [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ "$(wc -l <"$tmp/e")" -eq 1 ] && grep -q -- "$needle" "$tmp/e" && [ ! -s "$tmp/o" ] && [ ! -e "$tmp/o.md" ]; then ok
  else bad "$name: rc=$rc stderr=[$(head -c 300 "$tmp/e")]"; fi
}
echo '{"question": "q?", "answer": "A"}' >"$tmp/foreign.jsonl"
head -c 100 "$tmp/runs/base.jsonl" >"$tmp/cut.jsonl"; printf '\n{"id":"x","seed":null}\n' >>"$tmp/cut.jsonl"
{ head -n 1 "$tmp/runs/base.jsonl"; echo '{"what": 1}'; } >"$tmp/odd.jsonl"
head -n 1 "$tmp/runs/base.jsonl" >"$tmp/nosamples.jsonl"
: >"$tmp/empty.jsonl"
mkdir -p "$tmp/nodir"
expect_error none "no run files" -o "$tmp/o.md"
expect_error foreign "foreign.jsonl: not a kvsteer eval run file" "$tmp/foreign.jsonl" -o "$tmp/o.md"
expect_error cut "cut.jsonl: not a kvsteer eval run file" "$tmp/cut.jsonl" -o "$tmp/o.md"
expect_error odd "odd.jsonl:2: neither a sample nor a summary" "$tmp/runs/base.jsonl" "$tmp/odd.jsonl" -o "$tmp/o.md"
expect_error no-samples "nosamples.jsonl: holds no samples" "$tmp/nosamples.jsonl" -o "$tmp/o.md"
expect_error empty "empty.jsonl: empty" "$tmp/empty.jsonl" -o "$tmp/o.md"
expect_error missing "nothere.jsonl: cannot open" "$tmp/nothere.jsonl" -o "$tmp/o.md"
expect_error empty-dir "nodir: no .jsonl run files" "$tmp/nodir" -o "$tmp/o.md"
expect_error unknown "unknown option" --frobnicate "$tmp/runs"
expect_error data-alone "--data is used only with --rescore" --data "$DATA" "$tmp/runs"
mkdir -p "$tmp/otherdata/eval"; head -n 5 "$DATA/eval/arc_challenge_test.jsonl" >"$tmp/otherdata/eval/arc_challenge_test.jsonl"
expect_error rescore-other-data "is not the data file this run was made on" --rescore --data "$tmp/otherdata" "$tmp/runs/base.jsonl"
if "$BIN" report --help | grep -q "usage: kvsteer report"; then ok; else bad "--help"; fi

# tools/paired.py: a run in shards is one side; flips agree with the accuracies
# a repetition penalty is a setting: not merged with the run without it, and named
# in the label
mkdir -p "$tmp/pen"
"${EV[@]}" --method baseline --offset-start 1167 --limit 3 --repeat-penalty 1.3 -o "$tmp/pen/p.jsonl" >/dev/null 2>"$tmp/err" || bad "eval penalty: $(cat "$tmp/err")"
"$BIN" report --json "$tmp/runs/base.jsonl" "$tmp/pen/p.jsonl" >"$tmp/pj" 2>"$tmp/err" || bad "report penalty: $(cat "$tmp/err")"
check "penalty: two runs, labelled apart" python3 -c "
import json,sys; r=json.load(open(sys.argv[1]))['runs']
assert len(r)==2, r
labels=sorted(x['label'] for x in r)
assert labels==['baseline penalty=-','baseline penalty=1.3 over 64'], labels
assert [x['settings'].get('penalty') for x in r if 'penalty' in x['label'] and '1.3' in x['label']]==['1.3 over 64'], r" "$tmp/pj"

python3 tools/paired.py --json "$tmp/runs/base.jsonl" "$tmp/shards/a.jsonl,$tmp/shards/b.jsonl" >"$tmp/p1" 2>"$tmp/err" || bad "paired shards: $(cat "$tmp/err")"
check "paired: shards as one side" python3 -c "
import json,sys; r=json.load(open(sys.argv[1]))
assert r['shared']==3 and r['wrong_to_right']==0 and r['right_to_wrong']==0 and r['acc_a']==r['acc_b'], r" "$tmp/p1"
python3 tools/paired.py --json "$tmp/runs/base.jsonl" "$tmp/runs/cot.jsonl" >"$tmp/p2" 2>"$tmp/err" || bad "paired: $(cat "$tmp/err")"
check "paired: flips = accuracy difference" python3 -c "
import json,sys; r=json.load(open(sys.argv[1]))
assert r['shared']==3 and round(3*(r['acc_b']-r['acc_a']))==r['wrong_to_right']-r['right_to_wrong'], r" "$tmp/p2"
if python3 tools/paired.py "$tmp/runs/base.jsonl" "$tmp/empty.jsonl" 2>"$tmp/err"; then bad "paired: empty side accepted"
else check "paired: empty side named" grep -q "empty.jsonl: no samples" "$tmp/err"; fi
if python3 tools/paired.py "$tmp/runs/base.jsonl" "$tmp/nothere.jsonl" 2>"$tmp/err"; then bad "paired: missing file accepted"
else check "paired: missing file, one line" [ "$(wc -l <"$tmp/err")" -eq 1 ]
  check "paired: missing file named" grep -q "nothere.jsonl: cannot open" "$tmp/err"; fi

# tools/above_chance.py: one row per multiple-choice baseline, ranked by the lower end
# of the interval minus chance (from the evaluation file: ARC mixes choice counts);
# --best is the first row; a report with no baseline fails with one line
"$BIN" eval -m "$MODEL" --data "$DATA" -t "$T" --quiet --task csqa --max-new 6 --method baseline --limit 3 \
  -o "$tmp/csqa-base.jsonl" >/dev/null 2>"$tmp/err" || bad "eval csqa: $(cat "$tmp/err")"
"$BIN" report --json "$tmp/runs/base.jsonl" "$tmp/runs/cot.jsonl" "$tmp/csqa-base.jsonl" >"$tmp/ac.json" 2>"$tmp/err" || bad "report ac: $(cat "$tmp/err")"
python3 tools/above_chance.py --data "$DATA" <"$tmp/ac.json" >"$tmp/ac" 2>"$tmp/err" || bad "above_chance: $(cat "$tmp/err")"
check "above_chance: the two baselines, ranked, chance from the data" python3 -c "
import json,sys
rows=[l.split() for l in open(sys.argv[1]).read().splitlines()[1:]]
assert sorted(r[0] for r in rows)==['arc','csqa'], rows
margins=[float(r[5]) for r in rows]; assert margins==sorted(margins, reverse=True), rows
for r in rows:
    f={'arc':'arc_challenge_test','csqa':'csqa_validation'}[r[0]]
    qs=[json.loads(l) for l in open(sys.argv[2]+'/eval/'+f+'.jsonl') if l.strip()]
    c=100*sum(1/len(q['choices']) for q in qs)/len(qs)
    assert abs(float(r[4])-c)<0.06 and abs(float(r[3])-float(r[4])-float(r[5]))<0.11, (r, c)" "$tmp/ac" "$DATA"
check "above_chance: --best is the first row" sh -c \
  "[ \"\$(python3 tools/above_chance.py --data '$DATA' --best <'$tmp/ac.json')\" = \"\$(sed -n '2s/ .*//p' '$tmp/ac')\" ]"
"$BIN" report --json "$tmp/runs/cot.jsonl" >"$tmp/ac2.json" 2>/dev/null
check "above_chance: no baseline, one line" sh -c \
  "! python3 tools/above_chance.py --data '$DATA' <'$tmp/ac2.json' 2>'$tmp/e' && [ \$(wc -l <'$tmp/e') -eq 1 ] && grep -q 'no greedy baseline' '$tmp/e'"

finish
