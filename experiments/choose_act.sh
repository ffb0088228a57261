#!/bin/bash
# Choose the activation-steering layer and scale on held-out trace questions
# (tools/make_holdout.py), never on the evaluation set: one greedy run per
# (layer, scale), then a table.  Usage:
#   experiments/choose_act.sh TASK ACT_VECTOR.gguf "12 15 18" "0.5 1 3" [N questions, default 100] [out dir]
# Environment: MODEL, KVSTEER, THREADS, HOLDOUT as for choose_cv.sh.
set -euo pipefail
task=$1 vec=$2 layers=$3 scales=$4 n=${5:-100} out=${6:-out/choose_act}
MODEL=${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
KVSTEER=${KVSTEER:-build/kvsteer}
HOLDOUT=${HOLDOUT:-out/holdout}
[ -d "$HOLDOUT/eval" ] || python3 tools/make_holdout.py --out "$HOLDOUT"
mkdir -p "$out"
files=()
"$KVSTEER" eval -m "$MODEL" --data "$HOLDOUT" --task "$task" --method baseline --limit "$n" \
  --batch 32 -t "${THREADS:-1}" -o "$out/$task-baseline.jsonl"
files+=("$out/$task-baseline.jsonl")
for l in $layers; do
  for s in $scales; do
    "$KVSTEER" eval -m "$MODEL" --data "$HOLDOUT" --task "$task" --method act --act "$vec" --act-layer "$l" \
      --act-scale "$s" --limit "$n" --batch 32 -t "${THREADS:-1}" -o "$out/$task-l$l-c$s.jsonl"
    files+=("$out/$task-l$l-c$s.jsonl")
  done
done
"$KVSTEER" report "${files[@]}"
