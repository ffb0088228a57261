#!/usr/bin/env bash
# kvsteer vs llama.cpp on the same GGUF files and thread count, in one run, with
# the ratios, as one table for all the models given.  Tests (as llama-bench names
# them):
#   pp512        prompt processing, 512-token prompt
#   tg128        generation, batch 1, 128 tokens after a 128-token prompt (depth 128)
#   batched      kvsteer only: 32 sequences decoding together vs its own batch-1 rate
#   steering     kvsteer only: tg with a one-shot cache edit / an activation hook
#   amx          where the CPU has AMX-INT8: pp512, tg128 and batch 32 again with
#                kvsteer's AMX tiles (KVS_KERNELS=amx); the rows above then use
#                avx512vnni, like the peer (KVS_KERNELS, when set, picks their set)
# usage: bench/bench_speed.sh [-t THREADS] [-r REPS] [--no-steer] [MODEL.gguf ...]
#        bench/bench_speed.sh MODEL.gguf THREADS REPS     (the older form)
# Default: the default model, all cores, 5 repetitions.
set -euo pipefail
cd "$(dirname "$0")/.."
T=$(nproc); R=5; STEER=1; MODELS=()
while [ $# -gt 0 ]; do
  case "$1" in
    -t) T=$2; shift 2 ;;
    -r) R=$2; shift 2 ;;
    --no-steer) STEER=0; shift ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "bench_speed.sh: unknown option $1" >&2; exit 2 ;;
    *) MODELS+=("$1"); shift ;;
  esac
done
# the older positional form: MODEL THREADS REPS
if [ ${#MODELS[@]} -eq 3 ] && [[ ${MODELS[1]} =~ ^[0-9]+$ ]] && [[ ${MODELS[2]} =~ ^[0-9]+$ ]]; then
  T=${MODELS[1]}; R=${MODELS[2]}; MODELS=("${MODELS[0]}")
fi
[ ${#MODELS[@]} -gt 0 ] || MODELS=(models/SmolLM2-135M-Instruct.Q4_1.gguf)
for m in "${MODELS[@]}"; do [ -f "$m" ] || { echo "bench_speed.sh: $m: no such model file" >&2; exit 2; }; done
KVS=${KVS_BIN:-build/kvsteer}
[ -x "$KVS" ] || ./scripts/build.sh release >/dev/null
LB=$(./bench/build_llamacpp.sh)
# On a CPU with AMX the default kernel set is amx. The main rows then use avx512vnni,
# the instruction families of the peer (built without AMX), and the amx rows amx.
HAS_AMX=0; KVS_KERNELS=amx "$KVS" version >/dev/null 2>&1 && HAS_AMX=1
MAIN_K=${KVS_KERNELS:-}; [ "$HAS_AMX" = 1 ] && [ -z "$MAIN_K" ] && MAIN_K=avx512vnni
KSET=$MAIN_K
echo "# machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; threads $T; reps $R"
echo "# kvsteer kernels (main rows): $(env ${KSET:+KVS_KERNELS=$KSET} "$KVS" bench -m "${MODELS[0]}" -t 1 -r 1 --pp 8 --tg 0 2>/dev/null | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["kernels"])')"
echo "# kvsteer kernels (default): $("$KVS" bench -m "${MODELS[0]}" -t 1 -r 1 --pp 8 --tg 0 2>/dev/null | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["kernels"])')"
echo "# kvsteer commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
lb() { # model args -> tokens/s of the single test
  local m=$1; shift
  "$LB" -m "$m" -t "$T" -r "$R" -o json "$@" 2>/dev/null | python3 -c 'import json,sys; print("%.2f" % json.load(sys.stdin)[0]["avg_ts"])'
}
kvj() { env ${KSET:+KVS_KERNELS=$KSET} "$KVS" bench -t "$T" -r "$R" "$@" 2>/dev/null; }
pick() { # test-name < json lines -> tokens/s
  python3 -c "import json,sys
for l in sys.stdin:
    o=json.loads(l)
    if o['test']=='$1': print('%.2f' % o['tokens_per_s'])"
}
kv() { local name=$1; shift; kvj "$@" | pick "$name"; }
ratio() { python3 -c "print('%.2f' % ($1/$2))"; }
row() { printf "| %s | %s | %s | %s | **%s** |\n" "$@"; }
echo
echo "| model | test | kvsteer | peer | ratio |"
echo "|---|---|---|---|---|"
for M in "${MODELS[@]}"; do
  name=$(basename "$M" .gguf)
  # Alternate the two engines so slow drifts of the machine hit both alike.
  pp_l=$(lb "$M" -p 512 -n 0); pp_k=$(kv pp -m "$M" --pp 512 --tg 0)
  tg_l=$(lb "$M" -p 0 -n 128 -d 128); tg_k=$(kv tg -m "$M" --pp 0 --tg 128 --depth 128)
  row "$name" "pp512 (tokens/s) vs llama.cpp" "$pp_k" "$pp_l" "$(ratio "$pp_k" "$pp_l")"
  row "$name" "tg128 @ depth 128 (tokens/s) vs llama.cpp" "$tg_k" "$tg_l" "$(ratio "$tg_k" "$tg_l")"
  b1=$(kv tg -m "$M" --pp 0 --tg 64); b32=$(kv tg_batched -m "$M" --pp 0 --tg 64 --batch 32)
  row "$name" "batch 32 vs kvsteer batch 1 (tokens/s)" "$b32" "$b1" "$(ratio "$b32" "$b1")"
  if [ "$STEER" = 1 ]; then
    out=$(kvj -m "$M" --pp 0 --tg 128 --depth 128 --steer)
    p=$(echo "$out" | pick tg); c=$(echo "$out" | pick tg_cache_steer); a=$(echo "$out" | pick tg_act_steer)
    row "$name" "tg, cache steering vs plain" "$c" "$p" "$(ratio "$c" "$p")"
    row "$name" "tg, activation steering vs plain" "$a" "$p" "$(ratio "$a" "$p")"
  fi
  if [ "$HAS_AMX" = 1 ]; then
    pp_a=$(KSET=amx kv pp -m "$M" --pp 512 --tg 0); tg_a=$(KSET=amx kv tg -m "$M" --pp 0 --tg 128 --depth 128)
    b1_a=$(KSET=amx kv tg -m "$M" --pp 0 --tg 64); b32_a=$(KSET=amx kv tg_batched -m "$M" --pp 0 --tg 64 --batch 32)
    row "$name" "amx: pp512 vs llama.cpp" "$pp_a" "$pp_l" "$(ratio "$pp_a" "$pp_l")"
    row "$name" "amx: tg128 @ depth 128 vs llama.cpp" "$tg_a" "$tg_l" "$(ratio "$tg_a" "$tg_l")"
    row "$name" "amx: batch 32 vs amx batch 1" "$b32_a" "$b1_a" "$(ratio "$b32_a" "$b1_a")"
  fi
done
