#!/bin/bash
# The full-set runs behind docs/RESULTS.md, one after another on one thread each
# (run two of these in parallel on a 2-core machine).  Every run is resumable:
# rerunning this script continues where it stopped.  Usage:
#   experiments/full_results.sh [which]
#   which: baselines | cot | cache | cache+cot | cache-task | act | act-task | gsm8k | sampling | all
# Environment: MODEL, KVSTEER (default build/kvsteer), THREADS (default 1),
# CV (c_v for cache steering on the multiple-choice tasks, chosen on held-out ARC
# questions with experiments/choose_cv.sh: 2), ACT_LAYER / ACT_SCALE (chosen with
# experiments/choose_act.sh: 18 / 1), HOLDOUT (default out/holdout).
# Vectors exclude the evaluation questions and the held-out questions their
# settings are chosen on (choose_cv.sh checks it); cache+cot has its own vectors,
# extracted with the CoT text as assistant prefix.  A vector file already in out/
# is kept as it is: delete it to make it again with these settings.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
KVSTEER=${KVSTEER:-build/kvsteer}
T=${THREADS:-1}
D=../shared/data
H=${HOLDOUT:-out/holdout}
[ -d "$H/eval" ] || python3 tools/make_holdout.py --out "$H"
COT="Let's think step by step."
mkdir -p out/results out/logs
ev() { local name=$1; shift
  /usr/bin/time -v "$KVSTEER" eval -m "$MODEL" --batch 32 -t "$T" "$@" -o "out/results/$name.jsonl" \
    >"out/logs/eval-$name.log" 2>&1; }
vec() { local name=$1; shift
  [ -f "out/$name.gguf" ] || /usr/bin/time -v "$KVSTEER" extract -m "$MODEL" -t "$T" "$@" -o "out/$name.gguf" \
    >"out/logs/extract-$name.log" 2>&1; }
which=${1:-all}
if [ "$which" = baselines ] || [ "$which" = all ]; then
  # arc-baseline.jsonl is an older avx512vnni run: the amx one has its own file
  ev arc-baseline-amx --task arc --method baseline
  for t in csqa piqa; do ev "$t-baseline" --task "$t" --method baseline; done
  # gsm8k-baseline.jsonl (made at 574ee7e) predates the kernel set in the resume key:
  # kept as it is; made afresh only when missing
  [ -f out/results/gsm8k-baseline.jsonl ] || KVS_KERNELS=avx512vnni ev gsm8k-baseline --task gsm8k --method baseline
fi
if [ "$which" = cot ] || [ "$which" = all ]; then
  for t in arc csqa piqa; do ev "$t-cot" --task "$t" --method cot; done
fi
# one vector per task: 100 pairs, 5 similar-question shots, evaluation questions excluded
# (and with the held-out questions excluded); vecs_cot: the same with the CoT prefix
vecs() {
  vec arc-100x5 --traces $D/traces/arc_challenge.jsonl --exclude $D/eval/arc_challenge_test.jsonl \
    --exclude $H/eval/arc_challenge_test.jsonl --pairs 100 --shots 5
  vec csqa-100x5 --traces $D/traces/csqa.jsonl --exclude $D/eval/csqa_validation.jsonl \
    --exclude $H/eval/csqa_validation.jsonl --pairs 100 --shots 5
  vec piqa-100x5 --traces $D/traces/piqa.jsonl --exclude $D/eval/piqa_validation.jsonl \
    --exclude $H/eval/piqa_validation.jsonl --pairs 100 --shots 5
}
vecs_cot() {
  vec arc-100x5-cot --traces $D/traces/arc_challenge.jsonl --exclude $D/eval/arc_challenge_test.jsonl \
    --exclude $H/eval/arc_challenge_test.jsonl --pairs 100 --shots 5 --prefix "$COT"
  vec csqa-100x5-cot --traces $D/traces/csqa.jsonl --exclude $D/eval/csqa_validation.jsonl \
    --exclude $H/eval/csqa_validation.jsonl --pairs 100 --shots 5 --prefix "$COT"
  vec piqa-100x5-cot --traces $D/traces/piqa.jsonl --exclude $D/eval/piqa_validation.jsonl \
    --exclude $H/eval/piqa_validation.jsonl --pairs 100 --shots 5 --prefix "$COT"
}
CV=${CV:-2}
if [ "$which" = cache ] || [ "$which" = all ]; then
  vecs
  for t in arc csqa piqa; do ev "$t-cache-cv$CV" --task "$t" --method cache --steer "out/$t-100x5.gguf" --cv "$CV" --ck 0; done
  # the paper's ARC vector size: 300 pairs, 10 shots (about 2 h of one core to extract)
  vec arc-300x10 --traces $D/traces/arc_challenge.jsonl --exclude $D/eval/arc_challenge_test.jsonl \
    --exclude $H/eval/arc_challenge_test.jsonl --pairs 300 --shots 10
  ev "arc-cache-300x10-cv$CV" --task arc --method cache --steer out/arc-300x10.gguf --cv "$CV" --ck 0
fi
if [ "$which" = cache+cot ] || [ "$which" = all ]; then
  vecs_cot
  for t in arc csqa piqa; do
    ev "$t-cache+cot-cv$CV" --task "$t" --method cache+cot --steer "out/$t-100x5-cot.gguf" --cv "$CV" --ck 0
  done
fi
# c_v chosen per task on held-out trace questions (experiments/choose_cv.sh csqa|piqa):
# 1 for both (no steered setting beat the baseline there; 1 lost least)
if [ "$which" = cache-task ] || [ "$which" = all ]; then
  vecs
  for t in csqa piqa; do ev "$t-cache-cv1" --task "$t" --method cache --steer "out/$t-100x5.gguf" --cv 1 --ck 0; done
fi
if [ "$which" = act ] || [ "$which" = all ]; then
  vec arc-act-100x5 --kind act --traces $D/traces/arc_challenge.jsonl --exclude $D/eval/arc_challenge_test.jsonl \
    --exclude $H/eval/arc_challenge_test.jsonl --pairs 100 --shots 5
  L=${ACT_LAYER:-18} S=${ACT_SCALE:-1}
  ev "arc-act-l$L-c$S" --task arc --method act --act out/arc-act-100x5.gguf --act-layer "$L" --act-scale "$S"
fi
# activation steering on CommonsenseQA and PIQA with the ARC setting (layer 18, scale 1)
if [ "$which" = act-task ] || [ "$which" = all ]; then
  vec csqa-act-100x5 --kind act --traces $D/traces/csqa.jsonl --exclude $D/eval/csqa_validation.jsonl \
    --exclude $H/eval/csqa_validation.jsonl --pairs 100 --shots 5
  vec piqa-act-100x5 --kind act --traces $D/traces/piqa.jsonl --exclude $D/eval/piqa_validation.jsonl \
    --exclude $H/eval/piqa_validation.jsonl --pairs 100 --shots 5
  L=${ACT_LAYER:-18} S=${ACT_SCALE:-1}
  for t in csqa piqa; do
    ev "$t-act-l$L-c$S" --task "$t" --method act --act "out/$t-act-100x5.gguf" --act-layer "$L" --act-scale "$S"
  done
fi
# GSM8K: the baseline was made with the avx512vnni kernel set, so its comparisons
# are too (results are identical to that run's, see docs/RESULTS.md)
if [ "$which" = gsm8k ] || [ "$which" = all ]; then
  vec gsm8k-100x5 --traces $D/traces/gsm8k.jsonl --exclude $D/eval/gsm8k_test.jsonl \
    --exclude $H/eval/gsm8k_test.jsonl --pairs 100 --shots 5
  vec gsm8k-100x5-cot --traces $D/traces/gsm8k.jsonl --exclude $D/eval/gsm8k_test.jsonl \
    --exclude $H/eval/gsm8k_test.jsonl --pairs 100 --shots 5 --prefix "$COT"
  KVS_KERNELS=avx512vnni ev gsm8k-cot-vnni --task gsm8k --method cot
  KVS_KERNELS=avx512vnni ev gsm8k-cache-cv1-vnni --task gsm8k --method cache --steer out/gsm8k-100x5.gguf --cv 1 --ck 0
  KVS_KERNELS=avx512vnni ev gsm8k-cache+cot-cv1-vnni --task gsm8k --method cache+cot --steer out/gsm8k-100x5-cot.gguf \
    --cv 1 --ck 0
fi
# 5-seed sampling on the whole ARC-Challenge set (the paper's sampling protocol)
if [ "$which" = sampling ] || [ "$which" = all ]; then
  ev arc-baseline-sampling --task arc --method baseline --sampling --seeds 5
  ev "arc-cache-cv$CV-sampling" --task arc --method cache --steer out/arc-100x5.gguf --cv "$CV" --ck 0 --sampling --seeds 5
fi
