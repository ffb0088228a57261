#!/usr/bin/env bash
# The fidelity controls of the command line: a random-direction control vector
# with the per-layer norms of a real one (extract --random-like), the cache+cot
# warning when a vector was measured without the CoT prefix, pairs rendered in
# their task's evaluation format (extract/pairs --task), and several --exclude
# files (held-out questions kept out of pairs and shots); kvsteer report labels
# a control vector's run apart from the real vector's.
# usage: cli_controls.sh path/to/kvsteer
. "$(dirname "$0")/testutil/cli.sh"

X=("$BIN" extract -m "$MODEL" --traces data/demo/demo_traces.jsonl --pairs 2 --shots 1 -t "$T" -q)
"${X[@]}" -o "$tmp/v.gguf" 2>"$tmp/err" || bad "extract: $(cat "$tmp/err")"
"${X[@]}" --prefix "Let's think step by step." -o "$tmp/vcot.gguf" 2>"$tmp/err" || bad "extract --prefix: $(cat "$tmp/err")"

# random directions, the same norms, metadata saying so
"$BIN" extract -m "$MODEL" --random-like "$tmp/v.gguf" --seed 3 -q -o "$tmp/r.gguf" 2>"$tmp/err" || bad "random-like: $(cat "$tmp/err")"
"$BIN" inspect "$tmp/r.gguf" >"$tmp/ri" 2>&1
check "random-like: says what it is" grep -q 'kvsteer.extract.control .*random directions' "$tmp/ri"
# inspect describes a vector file as a vector (kind, the model it fits, norms), not as an unrunnable model
check "inspect: a vector is described as one" sh -c "grep -q '^vector: KV-cache steering' '$tmp/ri' && grep -q '^made for: arch llama, 30 layers' '$tmp/ri' && grep -q 'runnable: no (a steering vector file' '$tmp/ri'"
check "inspect: per-layer K / V norms" sh -c "grep -cE '^ +[0-9]+ +[0-9.]+ / +[0-9.]+$' '$tmp/ri' | grep -qx 30"
check "inspect: one tokenizer fingerprint format" sh -c "grep -qE 'kvsteer.model.tokenizer_hash +[0-9a-f]{16}$' '$tmp/ri'"
check "random-like: names its source and seed" sh -c "grep -q 'kvsteer.extract.random_like .*\"v.gguf\"' '$tmp/ri' && grep -q 'kvsteer.extract.random_seed .*\"3\"' '$tmp/ri'"
check "random-like: per-layer norms of the source" python3 - "$tmp/v.gguf" "$tmp/r.gguf" <<'PY'
import struct, sys
def tensors(path):
    # minimal GGUF v3 reader: the F32 tensors of a kvsteer vector file
    b = open(path, "rb").read(); o = 4
    ver, nt, nkv = struct.unpack_from("<IQQ", b, o); o += 20
    def s(o):
        n, = struct.unpack_from("<Q", b, o); return b[o + 8:o + 8 + n].decode(), o + 8 + n
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    def val(t, o):
        if t == 8: return s(o)[1]
        if t == 9:
            et, n = struct.unpack_from("<IQ", b, o); o += 12
            for _ in range(n): o = val(et, o)
            return o
        return o + sizes[t]
    align = 32
    for _ in range(nkv):
        k, o = s(o); t, = struct.unpack_from("<I", b, o); o += 4
        if k == "general.alignment": align, = struct.unpack_from("<I", b, o)
        o = val(t, o)
    info = []
    for _ in range(nt):
        name, o = s(o); nd, = struct.unpack_from("<I", b, o); o += 4
        ne = struct.unpack_from("<%dQ" % nd, b, o); o += 8 * nd
        t, off = struct.unpack_from("<IQ", b, o); o += 12
        info.append((name, ne, off))
    base = (o + align - 1) // align * align
    out = {}
    for name, ne, off in info:
        n = 1
        for x in ne: n *= x
        out[name] = struct.unpack_from("<%df" % n, b, base + off)
    return out
a, r = tensors(sys.argv[1]), tensors(sys.argv[2])
assert a.keys() == r.keys() and a
for k in a:
    na, nr = sum(x * x for x in a[k]) ** 0.5, sum(x * x for x in r[k]) ** 0.5
    assert abs(na - nr) <= 1e-5 * max(na, 1e-30), (k, na, nr)
    if na > 0: assert abs(sum(x * y for x, y in zip(a[k], r[k]))) < 0.5 * na * nr, k
PY
# kvsteer report tells the control's run from the real vector's
E=("$BIN" eval -m "$MODEL" --data "$DATA" -t "$T" --quiet --task arc --method cache --limit 2 --max-new 4)
"${E[@]}" --steer "$tmp/v.gguf" --cv 2 -o "$tmp/real.jsonl" >/dev/null 2>"$tmp/err" || bad "eval real: $(cat "$tmp/err")"
"${E[@]}" --steer "$tmp/r.gguf" --cv 2 -o "$tmp/rand.jsonl" >/dev/null 2>"$tmp/err" || bad "eval random: $(cat "$tmp/err")"
"$BIN" report --json "$tmp/real.jsonl" "$tmp/rand.jsonl" >"$tmp/rj" 2>"$tmp/err" || bad "report: $(cat "$tmp/err")"
check "report: the control's run is labelled by its directions" python3 -c "
import json,sys; l=sorted(r['label'] for r in json.load(open(sys.argv[1]))['runs'])
assert l==['cache directions=extracted','cache directions=random'], l" "$tmp/rj"
# the model check still applies, pair options are refused
if ls models/*[Qq]wen*0.5*.gguf >/dev/null 2>&1; then
  Q=$(ls models/*[Qq]wen*0.5*.gguf | head -1)
  if "$BIN" extract -m "$Q" --random-like "$tmp/v.gguf" -q -o "$tmp/rq.gguf" 2>"$tmp/err"; then bad "random-like: other model accepted"
  else check "random-like: other model refused, one line" sh -c "[ \$(wc -l <'$tmp/err') -eq 1 ] && grep -q 'built for another model' '$tmp/err' && [ ! -e '$tmp/rq.gguf' ]"; fi
else
  echo "SKIP random-like model check: no Qwen 0.5B file in models/"
fi
if "$BIN" extract -m "$MODEL" --random-like "$tmp/v.gguf" --pairs 3 -o "$tmp/rx.gguf" 2>"$tmp/err"; then bad "random-like: --pairs accepted"
else check "random-like: pair options refused" grep -q -- "--random-like takes only" "$tmp/err"; fi
check "random-like: in --help" sh -c "'$BIN' extract --help | grep -q -- --random-like"

# cache+cot: warned when the vector was measured without the CoT prefix, not with it
EV=("$BIN" eval -m "$MODEL" --data "$DATA" -t "$T" --quiet --task arc --max-new 4 --limit 1)
"${EV[@]}" --method cache+cot --steer "$tmp/v.gguf" --cv 1 -o "$tmp/cc.jsonl" >/dev/null 2>"$tmp/err" || bad "eval cache+cot: $(cat "$tmp/err")"
check "cache+cot: prefix mismatch warned" grep -q "warning: .*v.gguf was extracted with assistant prefix \"\" .*--prefix" "$tmp/err"
"${EV[@]}" --method cache+cot --steer "$tmp/vcot.gguf" --cv 1 -o "$tmp/cc2.jsonl" >/dev/null 2>"$tmp/err" || bad "eval cache+cot 2: $(cat "$tmp/err")"
check "cache+cot: matching prefix, no warning" sh -c "! grep -q warning '$tmp/err'"
check "cache+cot: the run records the vector's prefix" python3 -c "
import json,sys; s=[json.loads(l) for l in open(sys.argv[1])][-1]
assert s['config']['steer'][0]['extract']['prefix']==\"Let's think step by step.\", s['config']['steer']" "$tmp/cc2.jsonl"
"${EV[@]}" --method cache --steer "$tmp/vcot.gguf" --cv 1 -o "$tmp/c3.jsonl" >/dev/null 2>"$tmp/err" || bad "eval cache: $(cat "$tmp/err")"
check "cache with a CoT-prefix vector: warned" grep -q "warning: .*vcot.gguf" "$tmp/err"

# pairs take their task's evaluation format: CSQA has no "Choices:" header
P=("$BIN" pairs -m "$MODEL" --pairs 1 --shots 1 --select random --dump -t "$T" -q)
"${P[@]}" --traces "$DATA/traces/csqa.jsonl" >"$tmp/csqa" 2>"$tmp/err" || bad "pairs csqa: $(cat "$tmp/err")"
check "pairs: csqa as its evaluation prompt" sh -c "! grep -q 'Choices:' '$tmp/csqa' && grep -q '^A: ' '$tmp/csqa'"
"${P[@]}" --traces "$DATA/traces/csqa.jsonl" --task arc >"$tmp/csqa-arc" 2>"$tmp/err" || bad "pairs --task: $(cat "$tmp/err")"
check "pairs: --task overrides" grep -q 'Choices:' "$tmp/csqa-arc"
if "${P[@]}" --traces "$DATA/traces/csqa.jsonl" --task nope >/dev/null 2>"$tmp/err"; then bad "pairs: unknown task accepted"
else check "pairs: unknown task named" grep -q "unknown --task 'nope'" "$tmp/err"; fi

# several --exclude files: an excluded question is neither a pair's question nor a shot
python3 - data/demo/demo_traces.jsonl "$tmp/ex1.jsonl" "$tmp/ex2.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for path, part in ((sys.argv[2], rows[0:3]), (sys.argv[3], rows[3:6])):
    with open(path, "w") as f:
        for r in part: f.write(json.dumps({"id": "x", "question": r["question"], "answer": str(r["answer"])}) + "\n")
PY
"$BIN" pairs -m "$MODEL" --traces data/demo/demo_traces.jsonl --pairs 4 --shots 3 --select random --dump -t "$T" -q \
  --exclude "$tmp/ex1.jsonl" --exclude "$tmp/ex2.jsonl" >"$tmp/exd" 2>"$tmp/err" || bad "pairs --exclude x2: $(cat "$tmp/err")"
check "exclude x2: rows 0-5 unused" python3 -c "
import re,sys; t=open(sys.argv[1]).read(); used=set()
for m in re.finditer(r'=== pair \d+: target row (\d+) \([^)]*\); shots:((?: \d+)*)', t): used |= {int(m.group(1))} | {int(x) for x in m.group(2).split()}
assert used and not used & set(range(6)), used" "$tmp/exd"
"${X[@]}" --exclude "$tmp/ex1.jsonl" --exclude "$tmp/ex2.jsonl" -o "$tmp/vx.gguf" 2>"$tmp/err" || bad "extract --exclude x2: $(cat "$tmp/err")"
check "exclude x2: both recorded" sh -c "'$BIN' inspect '$tmp/vx.gguf' | grep -qF '$tmp/ex1.jsonl,$tmp/ex2.jsonl'"

finish
