#!/bin/bash
# Choose the cache-steering value coefficient on held-out trace questions
# (tools/make_holdout.py), never on the evaluation set: one greedy run per c_v,
# then a table, and the chosen c_v (the best held-out accuracy, ties to the
# smaller) in OUT/TASK-chosen.txt as "cv=V".  The vector must have been extracted with the held-out questions
# excluded too (extract --exclude EVAL_FILE --exclude HOLDOUT/eval/EVAL_FILE), so
# none of them is a few-shot example inside its pairs; checked.  Usage:
#   experiments/choose_cv.sh TASK VECTOR.gguf "0 1 2 4 6" [N questions, default 100] [out dir]
# Environment: see experiments/holdout_lib.sh.
set -euo pipefail
task=$1 vec=$2 cvs=$3 n=${4:-100} out=${5:-out/choose_cv}
. "$(dirname "$0")/holdout_lib.sh"
holdout_check_vector "$task" "$vec"
holdout_run "$task" "$n" "$out/$task-baseline.jsonl" --method baseline
for cv in $cvs; do
  holdout_run "$task" "$n" "$out/$task-cv$cv.jsonl" --method cache --steer "$vec" --cv "$cv" --ck 0
done
"$KVSTEER" report "${files[@]}"
holdout_pick "$out/$task-chosen.txt" cv
