#!/bin/bash
# Choose the activation-steering layer and scale on held-out trace questions
# (tools/make_holdout.py), never on the evaluation set: one greedy run per
# (layer, scale), then a table, and the chosen pair in OUT/TASK-chosen.txt as
# "act_layer=L act_scale=S".  The vector must have been extracted with the
# held-out questions excluded too (see choose_cv.sh); checked.  Usage:
#   experiments/choose_act.sh TASK ACT_VECTOR.gguf "12 15 18" "0.5 1 3" [N questions, default 100] [out dir]
# Environment: see experiments/holdout_lib.sh.
set -euo pipefail
task=$1 vec=$2 layers=$3 scales=$4 n=${5:-100} out=${6:-out/choose_act}
. "$(dirname "$0")/holdout_lib.sh"
holdout_check_vector "$task" "$vec"
holdout_run "$task" "$n" "$out/$task-baseline.jsonl" --method baseline
for l in $layers; do
  for s in $scales; do
    holdout_run "$task" "$n" "$out/$task-l$l-c$s.jsonl" --method act --act "$vec" --act-layer "$l" --act-scale "$s"
  done
done
"$KVSTEER" report "${files[@]}"
holdout_pick "$out/$task-chosen.txt" act_layer act_scale
