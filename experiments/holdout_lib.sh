# holdout_lib.sh - sourced by the choose_*.sh scripts: settings, the held-out
# question set (tools/make_holdout.py) and one greedy run on it per call.
# Environment: MODEL (default models/SmolLM2-135M-Instruct.Q4_1.gguf), KVSTEER
# (default build/kvsteer), THREADS (default 1), HOLDOUT (default out/holdout).
MODEL=${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
KVSTEER=${KVSTEER:-build/kvsteer}
HOLDOUT=${HOLDOUT:-out/holdout}
[ -d "$HOLDOUT/eval" ] || python3 tools/make_holdout.py --out "$HOLDOUT"
files=()
# holdout_file TASK: the held-out question file of a task
holdout_file() {
  case $1 in
    arc) echo "$HOLDOUT/eval/arc_challenge_test.jsonl" ;;
    csqa) echo "$HOLDOUT/eval/csqa_validation.jsonl" ;;
    gsm8k) echo "$HOLDOUT/eval/gsm8k_test.jsonl" ;;
    piqa) echo "$HOLDOUT/eval/piqa_validation.jsonl" ;;
    *) echo "holdout_lib.sh: unknown task '$1'" >&2; return 1 ;;
  esac
}
# holdout_check_vector TASK VEC: a vector tuned on held-out questions must have
# been extracted with them excluded (extract --exclude "$(holdout_file TASK)"),
# else they may be few-shot examples inside its pairs and the tuning is not held out
holdout_check_vector() {
  local f; f=$(holdout_file "$1") || return 1
  if ! "$KVSTEER" inspect "$2" | grep -qF "$f"; then
    echo "$2: not extracted with --exclude $f: held-out questions may be shots of its pairs" >&2
    return 1
  fi
}
# holdout_run TASK N OUTFILE [eval options...]: first N held-out questions, greedy
holdout_run() {
  local task=$1 n=$2 file=$3; shift 3
  mkdir -p "$(dirname "$file")"
  "$KVSTEER" eval -m "$MODEL" --data "$HOLDOUT" --task "$task" --limit "$n" --batch 32 -t "${THREADS:-1}" \
    "$@" -o "$file"
  files+=("$file")
}
# holdout_pick OUTFILE PARAM [PARAM...]: of the steered runs so far (files), the
# setting with the best held-out accuracy (ties: the smaller values, the weaker
# edit) into OUTFILE as "PARAM=VALUE ..." (atomically), and say it
holdout_pick() {
  local outfile=$1; shift
  "$KVSTEER" report --json "${files[@]}" | python3 -c '
import json, sys
names = sys.argv[1:]
runs = [r for r in json.load(sys.stdin)["runs"] if r["method"] != "baseline" and all(p in r["params"] for p in names)]
if not runs:
    sys.exit("holdout_pick: no steered run with " + ", ".join(names))
best = max(runs, key=lambda r: (r["accuracy"], [-r["params"][p] for p in names]))
print(" ".join("%s=%g" % (p, best["params"][p]) for p in names))
' "$@" >"$outfile.tmp" || { rm -f "$outfile.tmp"; return 1; }
  mv "$outfile.tmp" "$outfile"
  echo "chosen on held-out questions: $(cat "$outfile") (in $outfile)"
}
