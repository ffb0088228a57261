#!/bin/bash
# Choose the cache-steering value coefficient on held-out trace questions
# (tools/make_holdout.py), never on the evaluation set: one greedy run per c_v,
# then a table.  Usage:
#   experiments/choose_cv.sh TASK VECTOR.gguf "0 1 2 4 6" [N questions, default 100] [out dir]
# Environment: MODEL (default models/SmolLM2-135M-Instruct.Q4_1.gguf), KVSTEER
# (default build/kvsteer), THREADS (default 1), HOLDOUT (default out/holdout).
set -euo pipefail
task=$1 vec=$2 cvs=$3 n=${4:-100} out=${5:-out/choose_cv}
MODEL=${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
KVSTEER=${KVSTEER:-build/kvsteer}
HOLDOUT=${HOLDOUT:-out/holdout}
[ -d "$HOLDOUT/eval" ] || python3 tools/make_holdout.py --out "$HOLDOUT"
mkdir -p "$out"
files=()
"$KVSTEER" eval -m "$MODEL" --data "$HOLDOUT" --task "$task" --method baseline --limit "$n" \
  --batch 32 -t "${THREADS:-1}" -o "$out/$task-baseline.jsonl"
files+=("$out/$task-baseline.jsonl")
for cv in $cvs; do
  "$KVSTEER" eval -m "$MODEL" --data "$HOLDOUT" --task "$task" --method cache --steer "$vec" --cv "$cv" --ck 0 \
    --limit "$n" --batch 32 -t "${THREADS:-1}" -o "$out/$task-cv$cv.jsonl"
  files+=("$out/$task-cv$cv.jsonl")
done
"$KVSTEER" report "${files[@]}"
