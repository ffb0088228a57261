#!/bin/bash
# The issue-14 runs on the paper-class Qwen2.5-Coder files, one after another,
# each resumable (rerunning continues where it stopped) and shardable by
# question range.  Usage:
#   experiments/qwen.sh WHICH [--offset-start K --limit N]   (a shard: its own file, NAME-fromK)
#   WHICH: q15-base | q15-cot | q15-vectors | q15-choose | q15-cache | q15-random
#          | q15-cachecot | q15-act | q15-sampling | q15-more (PIQA and GSM8K: baseline, CoT,
#            cache steering at c_v chosen on held-out questions)
#          | q05-base | q05-cot | q05-vectors | q05-choose | q05-choose300 | q05-cache | q05-ablate
#          | all-q15 | all-q05 | all (everything, in the order results matter most:
#            the 1.5B's ARC and CSQA cells, the 0.5B's, the ablations, sampling, then
#            the 1.5B's PIQA and GSM8K)
#          | status (how far every run file is)
#          | save [--commit] (copy every run file, vector and choice to results/,
#            prompts stripped; --commit: and commit results/ alone. Sessions do not
#            keep out/) | restore (the reverse, done before every run set: a file
#            already in out/ is kept)
# Environment: KVSTEER (default build/kvsteer), KVS_KERNELS (default: the set whose
# numerics match the runs' on this CPU, see pin), THREADS (default 1, per process),
# PARTS (default 1): run each evaluation as PARTS shards at once, one process each
# (PARTS=2 on a 2-core machine; files NAME-everyP and NAME-fromK-everyP, or NAME and
# NAME-fromK for runs begun as contiguous shards), and extract with
# PARTS x THREADS threads; SHARD (I/N, for q05-ablate: every N-th configuration),
# CV15 / CV05 (c_v for cache steering on every task; by default each task's own,
# chosen on held-out questions by the q15-choose / q05-choose step:
# out/q15/choose/TASK-chosen.txt).
# A session on the 2-core machine: PARTS=2 nice -n 19 experiments/qwen.sh all, and
# now and then experiments/qwen.sh save --commit.
set -euo pipefail
cd "$(dirname "$0")/.."
KVSTEER=${KVSTEER:-build/kvsteer}
T=${THREADS:-1}
P=${PARTS:-1}
D=../shared/data
Q15=models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
Q05=models/qwen2.5-coder-0.5b-instruct.gguf
which=${1:?usage: experiments/qwen.sh WHICH [eval options]}; shift || true
mkdir -p out/q15 out/q05 out/logs
# Run files live in out/ while they grow; results/ keeps them between sessions
# without the prompts (the evaluation questions are others' text)
files() { local f; for f in "$1"/q15/*.jsonl "$1"/q05/*.jsonl "$1"/q15/choose/*.jsonl "$1"/q05/choose/*.jsonl \
  "$1"/q15/*.gguf "$1"/q05/*.gguf "$1"/q15/numerics.txt "$1"/q05/numerics.txt \
  "$1"/q15/choose/*-chosen.txt "$1"/q05/choose/*-chosen.txt \
  "$1"/q15/choose_act/*.jsonl "$1"/q15/choose_act/*-chosen.txt "$1"/q05/choose300/*.jsonl \
  "$1"/q05/choose300/*-chosen.txt "$1"/logs/extract-times.log "$1"/q05/ablate-*/runs/*.jsonl \
  "$1"/q05/ablate-*/vectors/*.gguf; do
  [ -f "$f" ] && echo "${f#"$1"/}"; done; true; }
# pin DIR MODEL: every run of DIR is computed with one arithmetic, the numerics
# fingerprint in DIR/numerics.txt (kept in results/ too).  A binary that computes
# other bits on MODEL (a kernel change moving a float rounding) stops here rather
# than add runs that paired comparisons with the earlier ones would mix
pin() { local dir=$1 model=$2 want got k
  numerics() { "$KVSTEER" inspect --numerics "$model" | sed -n 's/^numerics: \([0-9a-f]*\).*/\1/p'; }
  got=$(numerics)
  [ -n "$got" ] || { echo "experiments/qwen.sh: $KVSTEER gives no numerics fingerprint for $model" >&2; exit 1; }
  if [ -f "out/$dir/numerics.txt" ]; then want=$(cat "out/$dir/numerics.txt")
    # another CPU picks another kernel set (AMX where the runs had AVX-512): a set
    # this CPU also runs may compute the runs' bits, so try those before giving up
    if [ "$want" != "$got" ] && [ -z "${KVS_KERNELS:-}" ]; then
      for k in avx512vnni avx2 scalar; do
        [ "$(KVS_KERNELS=$k numerics 2>/dev/null)" = "$want" ] || continue
        export KVS_KERNELS=$k; got=$want
        echo "experiments/qwen.sh: $dir: kernels $k (KVS_KERNELS) compute the runs' bits ($want) on this CPU" >&2; break
      done
    fi
    [ "$want" = "$got" ] || { echo "experiments/qwen.sh: $KVSTEER computes other bits on $model (numerics $got) than the runs in out/$dir and results/$dir ($want); use a binary with their arithmetic, or start another results set" >&2; exit 1; }
  else echo "$got" >"out/$dir/numerics.txt"; fi; }
restore() { local f; for f in $(files results); do
  [ -f "out/$f" ] || { mkdir -p "$(dirname "out/$f")"; cp "results/$f" "out/$f"; }; done; }
save() { local f; for f in $(files out); do mkdir -p "$(dirname "results/$f")"
  case $f in *.jsonl) python3 tools/strip_prompts.py "out/$f" "results/$f" ;;
    *) cmp -s "out/$f" "results/$f" || cp "out/$f" "results/$f" ;; esac; done
  if [ "${1:-}" = --commit ]; then git add results && { git diff --cached --quiet -- results ||
    git commit -q -m "results: the Qwen runs so far ($(date -u +%Y-%m-%d\ %H:%M) UTC)" -- results; }; fi; }
[ "$which" = save ] || restore
# similar-shot selection's question embeddings stay with the runs (out/cache), so an
# extraction cut short keeps them for the next attempt
export XDG_CACHE_HOME=${XDG_CACHE_HOME:-$PWD/out/cache}
# wait_all PID...: wait for every one; fail if any failed
wait_all() { local p rc=0; for p in "$@"; do wait "$p" || rc=1; done; return $rc; }
# A shard that starts at question K (--offset-start K) has its own file, NAME-fromK
# (NAME-fromK-everyN when it takes every N-th question), so that two shards of one run
# can go on at once (one per core)
ev() { local model=$1 dir=$2 name=$3 a prev= task= sharded=; shift 3
  for a in "$@"; do case $prev in --task) task=$a ;; --offset-start|--limit|--every) sharded=1 ;; esac; prev=$a; done
  if [ "$P" -gt 1 ] && [ -z "$sharded" ] && ! ls "out/$dir/$name"-from[0-9]*.jsonl 2>/dev/null | grep -vq -- -every; then
    # PARTS interleaved shards at once (every PARTS-th question: the same mix of short
    # and long answers, so both cores stay busy to the end); fail if any fails
    local k pids=()
    for ((k = 0; k < P; k++)); do ev "$model" "$dir" "$name" "$@" --offset-start $k --every "$P" & pids+=($!); done
    wait_all "${pids[@]}"; return
  fi
  if [ "$P" -gt 1 ] && [ -z "$sharded" ]; then
    # a run begun before interleaving: PARTS contiguous shards, as it was started
    local n per k pids=()
    n=$(grep -c . "$D/eval/$(evalset "$task").jsonl"); per=$(( (n + P - 1) / P ))
    for ((k = 0; k < P; k++)); do
      if [ $k -lt $((P - 1)) ]; then ev "$model" "$dir" "$name" "$@" --offset-start $((k * per)) --limit "$per" &
      else ev "$model" "$dir" "$name" "$@" --offset-start $((k * per)) & fi
      pids+=($!)
    done
    wait_all "${pids[@]}"; return
  fi
  prev=
  for a in "$@"; do [ "$prev" = --offset-start ] && [ "$a" != 0 ] && name="$name-from$a"
    [ "$prev" = --every ] && name="$name-every$a"; prev=$a; done
  "$KVSTEER" eval -m "$model" --batch 32 -t "$T" "$@" -o "out/$dir/$name.jsonl" 2>>"out/logs/$dir-$name.log"; }
vec() { local model=$1 dir=$2 name=$3; shift 3
  [ -f "out/$dir/$name.gguf" ] || "$KVSTEER" extract -m "$model" -t $((T * P)) -q "$@" -o "out/$dir/$name.gguf"; }
trace() { case $1 in arc) echo arc_challenge;; *) echo "$1";; esac; }
evalset() { case $1 in arc) echo arc_challenge_test;; csqa) echo csqa_validation;; piqa) echo piqa_validation;;
  gsm8k) echo gsm8k_test;; esac; }
[ -d out/holdout/eval ] || python3 tools/make_holdout.py --out out/holdout >/dev/null
# Vectors exclude the evaluation questions and the held-out ones (out/holdout,
# where c_v is chosen: experiments/choose_cv.sh checks it), so neither is a shot.
# tvec MODEL DIR TASK NAME [extract options]: one such vector, 100 pairs x 5 shots
tvec() { local model=$1 dir=$2 t=$3 name=$4; shift 4
  vec "$model" "$dir" "$name" --traces "$D/traces/$(trace "$t").jsonl" --exclude "$D/eval/$(evalset "$t").jsonl" \
    --exclude "out/holdout/eval/$(evalset "$t").jsonl" --pairs 100 --shots 5 "$@"; }
vecs() { local model=$1 dir=$2 t; shift 2; for t in "$@"; do tvec "$model" "$dir" "$t" "$t-100x5"; done; }
# vecs_cot MODEL DIR TASK...: the same vectors measured with the CoT prompt as the
# assistant prefix, where cache + CoT applies them (extract --prefix)
COT="Let's think step by step."
vecs_cot() { local model=$1 dir=$2 t; shift 2
  for t in "$@"; do tvec "$model" "$dir" "$t" "$t-100x5-cot" --prefix "$COT"; done; }
# vecs_act MODEL DIR TASK...: residual-stream vectors for activation steering (--kind act)
vecs_act() { local model=$1 dir=$2 t; shift 2
  for t in "$@"; do tvec "$model" "$dir" "$t" "$t-act-100x5" --kind act; done; }
# cv DIR TASK: the c_v of cache steering for TASK (see Environment)
cv() { local over; [ "$1" = q15 ] && over=${CV15:-} || over=${CV05:-}
  if [ -n "$over" ]; then echo "$over"; return; fi
  local f="out/$1/choose/$2-chosen.txt"
  [ -f "$f" ] || { echo "experiments/qwen.sh: no c_v chosen for $1 $2 ($f): run the ${1}-choose step or set CV${1#q}" >&2; return 1; }
  sed -n 's/^cv=//p' "$f"; }
# choose MODEL DIR TASK...: c_v in the paper's range on 64 held-out questions per task
choose() { local model=$1 dir=$2; shift 2
  # a task whose choice is made keeps it (delete TASK-chosen.txt to choose again)
  for t in "$@"; do [ -f "out/$dir/choose/$t-chosen.txt" ] && continue
    MODEL=$model THREADS=$((T * P)) experiments/choose_cv.sh "$t" "out/$dir/$t-100x5.gguf" "1 2 4 6 8 10" 64 "out/$dir/choose"; done; }
# cache MODEL DIR TASK [eval options]: cache steering at the chosen c_v
cache() { local model=$1 dir=$2 t=$3 c; shift 3; c=$(cv "$dir" "$t")
  ev "$model" "$dir" "$t-cache-cv$c" --task "$t" --method cache --steer "out/$dir/$t-100x5.gguf" --cv "$c" --ck 0 "$@"; }
case $which in q15-*) pin q15 $Q15 ;; q05-*) pin q05 $Q05 ;; esac
case $which in
  q15-base) for t in arc csqa; do ev $Q15 q15 "$t-baseline" --task $t --method baseline "$@"; done ;;
  q15-cot) for t in arc csqa; do ev $Q15 q15 "$t-cot" --task $t --method cot "$@"; done ;;
  q15-vectors) vecs $Q15 q15 arc csqa ;;
  q15-choose) vecs $Q15 q15 arc csqa; choose $Q15 q15 arc csqa ;;
  q15-cache) vecs $Q15 q15 arc csqa
    for t in arc csqa; do cache $Q15 q15 $t "$@"; done ;;
  q15-random) # the control: random directions with the real vector's per-layer K and V
    # norms (extract --random-like), applied the same way at the same c_v
    vecs $Q15 q15 arc csqa
    for t in arc csqa; do c=$(cv q15 "$t")
      [ -f "out/q15/$t-random-like-100x5.gguf" ] || "$KVSTEER" extract -m $Q15 --random-like "out/q15/$t-100x5.gguf" \
        --seed 1 -q -o "out/q15/$t-random-like-100x5.gguf"
      ev $Q15 q15 "$t-random-cv$c" --task "$t" --method cache --steer "out/q15/$t-random-like-100x5.gguf" --cv "$c" --ck 0 "$@"
    done ;;
  q15-cachecot) vecs_cot $Q15 q15 arc csqa
    for t in arc csqa; do c=$(cv q15 "$t")
      ev $Q15 q15 "$t-cache+cot-cv$c" --task "$t" --method cache+cot --steer "out/q15/$t-100x5-cot.gguf" --cv "$c" --ck 0 "$@"
    done ;;
  q15-act) # layer and scale on 64 held-out questions per task (the paper's scales, three
    # middle layers of the 28), then the full set at the chosen pair
    vecs_act $Q15 q15 arc csqa
    for t in arc csqa; do
      f=out/q15/choose_act/$t-chosen.txt
      [ -f "$f" ] || MODEL=$Q15 THREADS=$((T * P)) experiments/choose_act.sh "$t" "out/q15/$t-act-100x5.gguf" "10 14 18" "0.5 1 3" 64 out/q15/choose_act
      L=$(sed -n 's/.*act_layer=\([0-9]*\).*/\1/p' "$f"); S=$(sed -n 's/.*act_scale=\([0-9.]*\).*/\1/p' "$f")
      ev $Q15 q15 "$t-act-l$L-c$S" --task "$t" --method act --act "out/q15/$t-act-100x5.gguf" --act-layer "$L" --act-scale "$S" "$@"
    done ;;
  q15-sampling) vecs $Q15 q15 arc; c=$(cv q15 arc); seeds=5
    B=(arc-baseline-sampled --task arc --method baseline --sampling --seeds $seeds "$@")
    S=("arc-cache-cv$c-sampled" --task arc --method cache --steer out/q15/arc-100x5.gguf --cv "$c" --ck 0 --sampling --seeds $seeds "$@")
    if [ "$P" -ne 2 ]; then ev $Q15 q15 "${B[@]}"; ev $Q15 q15 "${S[@]}"
    else
      # Two cores run baseline and steering side by side, each over the even questions
      # first, so a session that ends midway leaves a paired comparison (the even
      # questions both have reached) instead of a finished baseline alone. A worker
      # whose list is done takes the other's remaining half; a piece whose run file
      # another process is writing (its flock) is left to that process.
      # A half (questions K0, K0+2, ...) is the run file NAME[-fromK0]-every2, or a chain
      # of pieces NAME-fromK-every2, each ending where the next begins (--limit): when a
      # run starts with one piece left to do, that piece is split where half its
      # remaining questions are left, so both cores finish it.
      n=$(grep -c . "$D/eval/$(evalset arc).jsonl")
      pfile() { echo "out/q15/$1$( (($2)) && echo "-from$2" || true)-every2.jsonl"; }
      # pieces NAME K0 [M]: "K LIMIT" per piece of the half (LIMIT empty for the last); M
      # adds a split not yet on disk
      pieces() { local prev= k
        for k in $( { echo "$2"; [ -n "${3:-}" ] && echo "$3"
          for f in out/q15/"$1"-from*-every2.jsonl; do [ -f "$f" ] && echo "$f"; done |
            sed -n 's/.*-from\([0-9]*\)-every2\.jsonl$/\1/p'; } | awk -v k="$2" '$1 == k || ($1 % 2 == k % 2 && $1 > k)' | sort -nu); do
          [ -n "$prev" ] && echo "$prev $(((k - prev) / 2))"; prev=$k; done
        echo "$prev"; }
      # left FILE K LIMIT: the questions of a piece not done for every seed, in order
      left() { PYTHONPATH=tools python3 - "$@" "$n" "$seeds" <<'PY'
import os, sys
from strip_prompts import records  # the run-file reader (a record cut off at the end is dropped)
path, k, lim, n, seeds = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
want = list(range(k, n, 2))[: int(lim) if lim else None]
seen = {}
for o in records(path) if os.path.exists(path) else ():
    if "generated_tokens" in o: seen.setdefault(o["index"], set()).add(o["seed"])
print(" ".join(str(q) for q in want if len(seen.get(q, ())) < seeds))
PY
      }
      split=() todo=()
      for r in B S; do for k in 0 1; do
        [ $r = B ] && name=${B[0]} || name=${S[0]}
        while read -r K L; do q=$(left "$(pfile "$name" "$K")" "$K" "$L"); [ -n "$q" ] && todo+=("$name $K $L|$q"); done < <(pieces "$name" $k)
      done; done
      if [ ${#todo[@]} = 1 ]; then
        read -r name K L <<<"${todo[0]%%|*}"; q=(${todo[0]#*|})
        if [ ${#q[@]} -ge 64 ]; then
          M=${q[$((${#q[@]} / 2))]}
          echo "q15-sampling: one piece left ($name from $K, ${#q[@]} questions): split at question $M" >&2
          split=("$name" "$M"); fi
      fi
      half() { local k=$1 K L f; shift
        while read -r K L; do
          f=$(pfile "$1" "$K")
          locked() { [ -f "$f.lock" ] && ! flock -n "$f.lock" true; }
          locked && continue
          ev $Q15 q15 "$@" --offset-start "$K" --every 2 ${L:+--limit "$L"} </dev/null || locked || return 1
        done < <(pieces "$1" "$k" $([ "${split[0]:-}" = "$1" ] && echo "${split[1]}")); }
      (half 0 "${B[@]}" && half 1 "${B[@]}" && half 1 "${S[@]}" && half 0 "${S[@]}") & pa=$!
      (half 0 "${S[@]}" && half 1 "${S[@]}" && half 1 "${B[@]}" && half 0 "${B[@]}") & pb=$!
      wait_all $pa $pb
    fi ;;
  q15-more) # the issue's "then GSM8K and PIQA as compute allows": baseline, CoT and cache
    # steering, the three methods the 0.5B runs on every task
    # task by task, so that a session that ends mid-way keeps PIQA's runs (resumable)
    # instead of a GSM8K extraction begun before them (which starts over)
    for t in piqa gsm8k; do
      vecs $Q15 q15 $t; choose $Q15 q15 $t
      ev $Q15 q15 "$t-baseline" --task $t --method baseline "$@"
      ev $Q15 q15 "$t-cot" --task $t --method cot "$@"
      cache $Q15 q15 $t "$@"
    done ;;
  q05-base) for t in arc csqa piqa gsm8k; do ev $Q05 q05 "$t-baseline" --task $t --method baseline "$@"; done ;;
  q05-cot) for t in arc csqa piqa gsm8k; do ev $Q05 q05 "$t-cot" --task $t --method cot "$@"; done ;;
  q05-choose300) # the paper's ARC vector size (300 pairs x 10 shots) beside 100 x 5, on the
    # same 64 held-out questions and c_v grid (out/q05/choose300); the extraction's
    # wall time goes to out/logs/extract-times.log (issue 17 asks for it)
    f=out/q05/arc-300x10.gguf
    if [ ! -f $f ]; then s=$(date +%s)
      tvec $Q05 q05 arc arc-300x10 --pairs 300 --shots 10
      echo "$(date -u +%FT%TZ) $Q05 arc 300x10, $((T * P)) threads: $(($(date +%s) - s)) s" >>out/logs/extract-times.log; fi
    [ -f out/q05/choose300/arc-chosen.txt ] ||
      MODEL=$Q05 THREADS=$((T * P)) experiments/choose_cv.sh arc $f "1 2 4 6 8 10" 64 out/q05/choose300 ;;
  q05-vectors) vecs $Q05 q05 arc csqa piqa gsm8k ;;
  q05-choose) vecs $Q05 q05 arc csqa piqa gsm8k; choose $Q05 q05 arc csqa piqa gsm8k ;;
  q05-cache) vecs $Q05 q05 arc csqa piqa gsm8k
    for t in arc csqa piqa gsm8k; do cache $Q05 q05 $t "$@"; done ;;
  q05-ablate) # the paper's Figure 2 on the 0.5B: one setting varied at a time around
    # 100 pairs x 5 similar shots, c_k 0, c_v CV05 (or the task's chosen c_v), on the first
    # ABL_N questions (default 300) of ABL_TASK (default: the multiple-choice task whose
    # q05-base accuracy is furthest above chance, tools/above_chance.py); random shot
    # selection in its own folder (the sweep's vector cache does not key on it)
    t=${ABL_TASK:-}
    if [ -z "$t" ]; then
      ls out/q05/{arc,csqa,piqa}-baseline*.jsonl >/dev/null 2>&1 ||
        { echo "experiments/qwen.sh: q05-ablate needs the q05-base runs to pick its task (or set ABL_TASK)" >&2; exit 1; }
      t=$("$KVSTEER" report --json out/q05/{arc,csqa,piqa}-baseline*.jsonl 2>/dev/null | python3 tools/above_chance.py --data "$D" --best)
      echo "q05-ablate: task $t (furthest above chance: tools/above_chance.py)"; fi
    c=$(cv q05 "$t"); n=${ABL_N:-300}
    sw1() { local dir=$1; shift
      "$KVSTEER" sweep -m $Q05 --task "$t" --traces "$D/traces/$(trace "$t").jsonl" -o "out/q05/$dir" -t "$T" -q \
        --batch 32 --limit "$n" ${SHARD:+--shard "$SHARD"} "$@" >>"out/logs/q05-$dir.log" 2>&1; }
    # PARTS sweep shards at once (each configuration in one of them) unless SHARD is given
    sw() { local k pids=()
      if [ "$P" -le 1 ] || [ -n "${SHARD:-}" ]; then sw1 "$@"; return; fi
      for ((k = 0; k < P; k++)); do SHARD=$k/$P sw1 "$@" & pids+=($!); done
      wait_all "${pids[@]}"; }
    sw "ablate-$t" --methods cache --pairs 10,50,100,300 --shots 5 --cv "$c" --ck 0
    sw "ablate-$t" --methods cache --pairs 100 --shots 1,5,10 --cv "$c" --ck 0
    sw "ablate-$t" --methods cache --pairs 100 --shots 5 --cv "$c" --ck 0,0.2,0.4
    sw "ablate-$t" --methods baseline,cache --pairs 100 --shots 5 --cv 1,2,4,6,8,10 --ck 0
    # one configuration: a shard each would leave a core idle, so one process on them all
    if [ -n "${SHARD:-}" ]; then sw1 "ablate-$t-random" --methods cache --pairs 100 --shots 5 --cv "$c" --ck 0 --select random
    else T=$((T * P)) sw1 "ablate-$t-random" --methods cache --pairs 100 --shots 5 --cv "$c" --ck 0 --select random; fi ;;
  all-q15) for w in q15-base q15-vectors q15-choose q15-cot q15-cache q15-random q15-cachecot q15-act q15-sampling; do "$0" $w "$@"; done ;;
  all) for w in q15-base q15-vectors q15-choose q15-cache q15-random q15-cot q15-cachecot q15-act \
      q05-base q05-vectors q05-choose q05-choose300 q05-cot q05-cache q05-ablate q15-sampling q15-more; do
      "$0" $w "$@"; done ;;
  all-q05) for w in q05-base q05-vectors q05-choose q05-cot q05-cache; do "$0" $w "$@"; done ;;
  save) save "$@" ;;
  restore) ;;
  status) # answered samples per run file (shards of one run are listed apart), the
    # vectors, and the choices made: what save keeps
    for f in $(files out); do case $f in
      *.jsonl) printf '%-44s %6d answered\n' "out/$f" "$(grep -c '"generated_tokens"' "out/$f" || true)" ;;
      *.txt) printf '%-44s %s\n' "out/$f" "$(cat "out/$f")" ;;
      *.log) printf '%-44s %s\n' "out/$f" "$(wc -l <"out/$f") entries" ;;
      *) printf '%-44s %s\n' "out/$f" vector ;;
    esac; done ;;
  *) echo "experiments/qwen.sh: unknown run set '$which'" >&2; exit 2 ;;
esac
