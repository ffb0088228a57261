#!/usr/bin/env bash
# kvsteer vs llama.cpp on the same GGUF and thread count, in one run, with the
# ratio.  Tests (as llama-bench names them):
#   pp512        prompt processing, 512-token prompt
#   tg128        generation, batch 1, 128 tokens after a 128-token prompt (depth 128)
#   batched      kvsteer only: 32 sequences decoding together vs its own batch-1 rate
#   steering     kvsteer only: tg with a one-shot cache edit / an activation hook
#   amx          where the CPU has AMX-INT8: pp512, tg128 and batch 32 again with
#                kvsteer's AMX tiles (KVS_KERNELS=amx), against the same figures
# usage: bench/bench_speed.sh [MODEL.gguf] [THREADS] [REPS]
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
T=${2:-$(nproc)}
R=${3:-5}
KVS=${KVS_BIN:-build/kvsteer}
[ -x "$KVS" ] || ./scripts/build.sh release >/dev/null
LB=$(./bench/build_llamacpp.sh)
echo "# machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; threads $T; reps $R"
echo "# kvsteer kernels (default): $("$KVS" bench -m "$MODEL" -t 1 -r 1 --pp 8 --tg 0 2>/dev/null | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["kernels"])')"
echo "# kvsteer commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown); model: $MODEL"
lb() { # args -> tokens/s of the single test
  "$LB" -m "$MODEL" -t "$T" -r "$R" -o json "$@" 2>/dev/null | python3 -c 'import json,sys; print("%.2f" % json.load(sys.stdin)[0]["avg_ts"])'
}
kv() { # test-name args -> tokens/s
  local name=$1; shift
  "$KVS" bench -m "$MODEL" -t "$T" -r "$R" "$@" 2>/dev/null | python3 -c "import json,sys
for l in sys.stdin:
    o=json.loads(l)
    if o['test']=='$name': print('%.2f' % o['tokens_per_s'])"
}
ratio() { python3 -c "print('%.2f' % ($1/$2))"; }
# Alternate the two engines so slow drifts of the machine hit both alike.
pp_l=$(lb -p 512 -n 0); pp_k=$(kv pp --pp 512 --tg 0)
tg_l=$(lb -p 0 -n 128 -d 128); tg_k=$(kv tg --pp 0 --tg 128 --depth 128)
printf "%-28s %12s %12s %8s\n" test kvsteer llama.cpp ratio
printf "%-28s %12s %12s %8s\n" "pp512 (tokens/s)" "$pp_k" "$pp_l" "$(ratio "$pp_k" "$pp_l")"
printf "%-28s %12s %12s %8s\n" "tg128 @ depth 128 (tokens/s)" "$tg_k" "$tg_l" "$(ratio "$tg_k" "$tg_l")"
b1=$(kv tg --pp 0 --tg 64); b32=$(kv tg_batched --pp 0 --tg 64 --batch 32)
printf "%-28s %12s %12s %8s\n" "batch 32 vs batch 1 (tok/s)" "$b32" "$b1 (b=1)" "$(ratio "$b32" "$b1")"
out=$("$KVS" bench -m "$MODEL" -t "$T" -r "$R" --pp 0 --tg 128 --depth 128 --steer 2>/dev/null)
get() { echo "$out" | python3 -c "import json,sys
for l in sys.stdin:
    o=json.loads(l)
    if o['test']=='$1': print('%.2f' % o['tokens_per_s'])"; }
p=$(get tg); c=$(get tg_cache_steer); a=$(get tg_act_steer)
printf "%-28s %12s %12s %8s\n" "tg, cache steering" "$c" "$p (plain)" "$(ratio "$c" "$p")"
printf "%-28s %12s %12s %8s\n" "tg, activation steering" "$a" "$p (plain)" "$(ratio "$a" "$p")"
if KVS_KERNELS=amx "$KVS" version >/dev/null 2>&1; then
  pp_a=$(KVS_KERNELS=amx kv pp --pp 512 --tg 0); tg_a=$(KVS_KERNELS=amx kv tg --pp 0 --tg 128 --depth 128)
  b1_a=$(KVS_KERNELS=amx kv tg --pp 0 --tg 64); b32_a=$(KVS_KERNELS=amx kv tg_batched --pp 0 --tg 64 --batch 32)
  printf "%-28s %12s %12s %8s\n" "amx: pp512 (tokens/s)" "$pp_a" "$pp_l" "$(ratio "$pp_a" "$pp_l")"
  printf "%-28s %12s %12s %8s\n" "amx: tg128 @ depth 128" "$tg_a" "$tg_l" "$(ratio "$tg_a" "$tg_l")"
  printf "%-28s %12s %12s %8s\n" "amx: batch 32 vs amx b=1" "$b32_a" "$b1_a (b=1)" "$(ratio "$b32_a" "$b1_a")"
  printf "%-28s %12s %12s %8s\n" "amx b=32 vs default b=1" "$b32_a" "$b1 (b=1)" "$(ratio "$b32_a" "$b1")"
fi
