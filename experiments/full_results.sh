#!/bin/bash
# The full-set runs behind docs/RESULTS.md, one after another on one thread each
# (run two of these in parallel on a 2-core machine).  Every run is resumable:
# rerunning this script continues where it stopped.  Usage:
#   experiments/full_results.sh [which]   which: baselines | cot | arc-cache | all
# Environment: MODEL, KVSTEER (default build/kvsteer), THREADS (default 1),
# CV_ARC (c_v for ARC cache steering; choose it with experiments/choose_cv.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
KVSTEER=${KVSTEER:-build/kvsteer}
T=${THREADS:-1}
D=../shared/data
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
  for t in gsm8k csqa piqa; do ev "$t-baseline" --task "$t" --method baseline; done
fi
if [ "$which" = cot ] || [ "$which" = all ]; then
  for t in arc gsm8k csqa piqa; do ev "$t-cot" --task "$t" --method cot; done
fi
if [ "$which" = arc-cache ] || [ "$which" = all ]; then
  vec arc-100x5 --traces $D/traces/arc_challenge.jsonl --exclude $D/eval/arc_challenge_test.jsonl --pairs 100 --shots 5
  ev "arc-cache-cv${CV_ARC:?set CV_ARC}" --task arc --method cache --steer out/arc-100x5.gguf --cv "$CV_ARC" --ck 0
fi
