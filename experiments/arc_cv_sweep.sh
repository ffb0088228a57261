#!/usr/bin/env bash
# Behaviour of cache steering on the default model: greedy generation on the
# first N ARC-Challenge evaluation questions, unsteered and steered with a
# reasoning vector over a sweep of c_v (c_k = 0), reporting accuracy, mean
# generated tokens and a few answers side by side.
# usage: experiments/arc_cv_sweep.sh VEC.gguf [N=50] [MAX_NEW=256] [CVS="1 2 4 6 10"]
set -euo pipefail
cd "$(dirname "$0")/.."
VEC=${1:?usage: arc_cv_sweep.sh VEC.gguf [N] [MAX_NEW] [CVS]}
N=${2:-50}; MAXNEW=${3:-256}; CVS=${4:-"1 2 4 6 10"}
BIN=${KVS_BIN:-build/kvsteer}; M=${KVS_MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
OUT=out/arc_sweep; mkdir -p "$OUT"
common=(-m "$M" --task arc --limit "$N" --max-new "$MAXNEW" -q)
"$BIN" eval "${common[@]}" --method baseline -o "$OUT/baseline.jsonl"
"$BIN" eval "${common[@]}" --method cache --steer "$VEC" --ck 0 --cv 0 -o "$OUT/cv0.jsonl"
for cv in $CVS; do
  "$BIN" eval "${common[@]}" --method cache --steer "$VEC" --ck 0 --cv "$cv" -o "$OUT/cv$cv.jsonl"
done
MAXNEW=$MAXNEW python3 - "$OUT" "$CVS" <<'PY'
import json, sys, os
out, cvs = sys.argv[1], sys.argv[2].split()
runs = [("baseline (no offset)", "baseline")] + [("cache c_v=0 (offset only)", "cv0")] + [(f"cache c_v={c}", f"cv{c}") for c in cvs]
data = {}
maxnew = int(os.environ.get("MAXNEW", "256"))
print(f"| run | accuracy | mean generated tokens | hit {maxnew}-token cap | responses with 'step' | invalid |")
print("|---|---|---|---|---|---|")
for label, name in runs:
    rows = [json.loads(l) for l in open(os.path.join(out, name + ".jsonl"))]
    s = [r for r in rows if r.get("summary")][-1]
    samples = [r for r in rows if "response" in r]
    data[name] = samples
    steps = sum(1 for r in samples if "step" in r["response"].lower())
    inval = sum(1 for r in samples if (r.get("extracted") or {}).get("choice") == "invalid")
    cap = sum(1 for r in samples if r["generated_tokens"] >= maxnew)
    print(f"| {label} | {100*s['accuracy']['choice']:.1f}% | {s['mean_generated_tokens']:.1f} | {cap}/{len(samples)} | {steps}/{len(samples)} | {inval} |")
best = "cv" + cvs[len(cvs)//2]
for i in range(3):
    a, b = data["cv0"][i], data[best][i]
    print(f"\n--- question {a['id']} ---\n[c_v=0] ({a['generated_tokens']} tokens) {a['response'][:400]!r}\n[{best}] ({b['generated_tokens']} tokens) {b['response'][:400]!r}")
PY
