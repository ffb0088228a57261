#!/usr/bin/env bash
# The research workloads, timed, beside the engine's own prompt-processing rate
# measured in the same run:
#   extraction  N pairs x n shots from the ARC-Challenge traces (similar selection)
#   evaluation  greedy ARC-Challenge baseline on L questions (all with L=0)
# usage: bench/bench_workloads.sh [PAIRS] [SHOTS] [LIMIT] [THREADS]
# The issue's full sizes are: bench/bench_workloads.sh 300 10 0
set -euo pipefail
cd "$(dirname "$0")/.."
P=${1:-20}
S=${2:-10}
L=${3:-64}
T=${4:-$(nproc)}
DATA=${KVS_DATA:-../shared/data}
MODEL=${KVS_MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
KVS=${KVS_BIN:-build/kvsteer}
[ -x "$KVS" ] || ./scripts/build.sh release >/dev/null
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
echo "# machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; threads $T"
echo "# kvsteer commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown); model: $MODEL"
pp=$("$KVS" bench -m "$MODEL" -t "$T" -r 2 --pp 2048 --tg 0 2>/dev/null | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["tokens_per_s"])')
echo "prompt processing, 2048-token prompt: $pp tokens/s"
t0=$(date +%s.%N)
"$KVS" extract -m "$MODEL" --traces "$DATA/traces/arc_challenge.jsonl" --exclude "$DATA/eval/arc_challenge_test.jsonl" \
  --pairs "$P" --shots "$S" -t "$T" -o "$OUT/vec.gguf" 2>"$OUT/extract.log"
t1=$(date +%s.%N)
rate=$(grep -o '([0-9.]* tokens/s)' "$OUT/extract.log" | tr -d '()' | cut -d' ' -f1)
echo "extraction $P pairs x $S shots: $(python3 -c "print('%.0f' % ($t1-$t0))") s wall (embedding included); decoding $rate tokens/s = $(python3 -c "print('%.2f' % ($rate/$pp))") x prompt processing"
lim=()
[ "$L" -gt 0 ] && lim=(--limit "$L")
t0=$(date +%s.%N)
"$KVS" eval -m "$MODEL" --task arc --method baseline --data "$DATA" "${lim[@]}" -t "$T" -q -o "$OUT/run.jsonl"
t1=$(date +%s.%N)
tail -1 "$OUT/run.jsonl" | python3 -c "
import json,sys
s=json.loads(sys.stdin.readline())
print('evaluation arc baseline (%s questions): %.0f s wall; %s' % ('$L' if $L > 0 else 'all', $t1-$t0,
      ', '.join('%s %s' % (k, s[k]) for k in ('n', 'accuracy', 'mean_generated_tokens', 'ms_per_token') if k in s)))"
