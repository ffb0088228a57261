#!/usr/bin/env bash
# Style transfer (docs/STYLES.md): one cache-steering vector per reasoning
# style from its style traces (5-shot; 19 pairs: the paper says 20, but one of
# the 20 questions of each file is also an ARC evaluation question and is dropped), then steered greedy answers
# to N ARC-Challenge questions per vector (and unsteered), tabulated as vector
# used x structure detected.  Writes out/styles/{vectors,runs}/, styles.md/json.
# usage: experiments/style_transfer.sh [N=50] [MAX_NEW=256] [CV=6] [CK=0]
# env: KVS_BIN, KVS_MODEL, KVS_DATA, KVS_THREADS, KVS_OUT
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-50}; MAXNEW=${2:-256}; CV=${3:-6}; CK=${4:-0}
BIN=${KVS_BIN:-build/kvsteer}; M=${KVS_MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
DATA=${KVS_DATA:-../shared/data}; OUT=${KVS_OUT:-out/styles}
T=(); [ -n "${KVS_THREADS:-}" ] && T=(-t "$KVS_THREADS")
mkdir -p "$OUT/vectors"
vecs=()
for s in stepwise strategy_execution causal_chain annotated_deduction analogical_reasoning; do
  v="$OUT/vectors/$s.gguf"
  if [ ! -s "$v" ]; then
    "$BIN" extract -m "$M" --traces "$DATA/traces/styles/arc_$s.jsonl" \
      --exclude "$DATA/eval/arc_challenge_test.jsonl" --pairs 19 --shots 5 "${T[@]}" -q -o "$v"
  fi
  vecs+=(--vec "$v")
done
"$BIN" styles -m "$M" --data "$DATA" "${vecs[@]}" --limit "$N" --max-new "$MAXNEW" \
  --cv "$CV" --ck "$CK" "${T[@]}" -q -o "$OUT"
