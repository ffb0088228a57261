# holdout_lib.sh - sourced by the choose_*.sh scripts: settings, the held-out
# question set (tools/make_holdout.py) and one greedy run on it per call.
# Environment: MODEL (default models/SmolLM2-135M-Instruct.Q4_1.gguf), KVSTEER
# (default build/kvsteer), THREADS (default 1), HOLDOUT (default out/holdout).
MODEL=${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
KVSTEER=${KVSTEER:-build/kvsteer}
HOLDOUT=${HOLDOUT:-out/holdout}
[ -d "$HOLDOUT/eval" ] || python3 tools/make_holdout.py --out "$HOLDOUT"
files=()
# holdout_run TASK N OUTFILE [eval options...]: first N held-out questions, greedy
holdout_run() {
  local task=$1 n=$2 file=$3; shift 3
  mkdir -p "$(dirname "$file")"
  "$KVSTEER" eval -m "$MODEL" --data "$HOLDOUT" --task "$task" --limit "$n" --batch 32 -t "${THREADS:-1}" \
    "$@" -o "$file"
  files+=("$file")
}
