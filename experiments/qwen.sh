#!/bin/bash
# The issue-14 runs on the paper-class Qwen2.5-Coder files, one after another,
# each resumable (rerunning continues where it stopped) and shardable by
# question range.  Usage:
#   experiments/qwen.sh WHICH [--offset-start K --limit N]
#   WHICH: q15-base | q15-cot | q15-vectors | q15-choose | q15-cache | q15-sampling
#          | q05-base | q05-cot | q05-vectors | q05-cache | all-q15 | all-q05
# Environment: KVSTEER (default build/kvsteer), THREADS (default 1), CV15 / CV05
# (c_v for cache steering, chosen on held-out questions with experiments/choose_cv.sh;
# defaults are the values recorded in docs/RESULTS.md), ACT_LAYER15 / ACT_SCALE15.
# Run files go to out/q15/ and out/q05/; nice it: nice -n 10 experiments/qwen.sh all-q15
set -euo pipefail
cd "$(dirname "$0")/.."
KVSTEER=${KVSTEER:-build/kvsteer}
T=${THREADS:-1}
D=../shared/data
Q15=models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
Q05=models/qwen2.5-coder-0.5b-instruct.gguf
which=${1:?usage: experiments/qwen.sh WHICH [eval options]}; shift || true
mkdir -p out/q15 out/q05 out/logs
# similar-shot selection's question embeddings stay with the runs (out/cache), so an
# extraction cut short keeps them for the next attempt
export XDG_CACHE_HOME=${XDG_CACHE_HOME:-$PWD/out/cache}
ev() { local model=$1 dir=$2 name=$3; shift 3
  "$KVSTEER" eval -m "$model" --batch 32 -t "$T" "$@" -o "out/$dir/$name.jsonl" 2>>"out/logs/$dir-$name.log"; }
vec() { local model=$1 dir=$2 name=$3; shift 3
  [ -f "out/$dir/$name.gguf" ] || "$KVSTEER" extract -m "$model" -t "$T" -q "$@" -o "out/$dir/$name.gguf"; }
trace() { case $1 in arc) echo arc_challenge;; *) echo "$1";; esac; }
evalset() { case $1 in arc) echo arc_challenge_test;; csqa) echo csqa_validation;; piqa) echo piqa_validation;;
  gsm8k) echo gsm8k_test;; esac; }
[ -d out/holdout/eval ] || python3 tools/make_holdout.py --out out/holdout >/dev/null
# Vectors exclude the evaluation questions and the held-out ones (out/holdout,
# where c_v is chosen: experiments/choose_cv.sh checks it), so neither is a shot.
vecs() { local model=$1 dir=$2; shift 2
  for t in "$@"; do
    vec "$model" "$dir" "$t-100x5" --traces "$D/traces/$(trace "$t").jsonl" --exclude "$D/eval/$(evalset "$t").jsonl" \
      --exclude "out/holdout/eval/$(evalset "$t").jsonl" --pairs 100 --shots 5
  done; }
CV15=${CV15:-4}
CV05=${CV05:-4}
case $which in
  q15-base) for t in arc csqa; do ev $Q15 q15 "$t-baseline" --task $t --method baseline "$@"; done ;;
  q15-cot) for t in arc csqa; do ev $Q15 q15 "$t-cot" --task $t --method cot "$@"; done ;;
  q15-vectors) vecs $Q15 q15 arc csqa ;;
  q15-choose) vecs $Q15 q15 arc csqa  # c_v on 64 held-out questions per task, the paper's range
    for t in arc csqa; do MODEL=$Q15 THREADS=$T experiments/choose_cv.sh $t "out/q15/$t-100x5.gguf" "1 2 4 6 8 10" 64 out/q15/choose; done ;;
  q15-cache) vecs $Q15 q15 arc csqa
    for t in arc csqa; do ev $Q15 q15 "$t-cache-cv$CV15" --task $t --method cache --steer "out/q15/$t-100x5.gguf" --cv "$CV15" --ck 0 "$@"; done ;;
  q15-sampling) vecs $Q15 q15 arc
    ev $Q15 q15 arc-baseline-sampled --task arc --method baseline --sampling --seeds 5 "$@"
    ev $Q15 q15 "arc-cache-cv$CV15-sampled" --task arc --method cache --steer out/q15/arc-100x5.gguf --cv "$CV15" --ck 0 --sampling --seeds 5 "$@" ;;
  q05-base) for t in arc csqa piqa gsm8k; do ev $Q05 q05 "$t-baseline" --task $t --method baseline "$@"; done ;;
  q05-cot) for t in arc csqa piqa; do ev $Q05 q05 "$t-cot" --task $t --method cot "$@"; done ;;
  q05-vectors) vecs $Q05 q05 arc csqa piqa gsm8k ;;
  q05-cache) vecs $Q05 q05 arc csqa piqa gsm8k
    for t in arc csqa piqa gsm8k; do ev $Q05 q05 "$t-cache-cv$CV05" --task $t --method cache --steer "out/q05/$t-100x5.gguf" --cv "$CV05" --ck 0 "$@"; done ;;
  all-q15) for w in q15-base q15-vectors q15-cot q15-cache q15-sampling; do "$0" $w "$@"; done ;;
  all-q05) for w in q05-base q05-vectors q05-cot q05-cache; do "$0" $w "$@"; done ;;
  *) echo "experiments/qwen.sh: unknown run set '$which'" >&2; exit 2 ;;
esac
