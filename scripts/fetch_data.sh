#!/usr/bin/env bash
# Get the four evaluation sets and the paper's teacher traces into kvsteer's JSON
# Lines layout (eval/*.jsonl, traces/*.jsonl, traces/styles/*.jsonl; see
# docs/EVALUATION.md), each file checked against the sha256 this project expects.
#
# usage: scripts/fetch_data.sh [--dest DIR] [--from DIR] [--offline]
#   --dest DIR   where to put the data (default: $KVS_DATA, else ../shared/data)
#   --from DIR   a local copy in the same layout (default: ../shared/data when it
#                exists and is not DIR): its files are re-serialised by
#                tools/convert_data.py and checked, with no network
#   --offline    never download; fail, naming the file, where no copy has it
# Files already in DIR with the expected checksum are kept.  Everything else is
# downloaded from its public source and converted (python3, standard library):
#   traces    github.com/MaxBelitsky/cache-steering, local_data/ at $TRACES_COMMIT
#   gsm8k     github.com/openai/grade-school-math, test.jsonl
#   arc       AI2's ARC-V1-Feb2018.zip, ARC-Challenge-Test.jsonl
#   csqa      CommonsenseQA's dev_rand_split.jsonl
#   piqa      yonatanbisk.com/piqa, valid.jsonl and valid-labels.lst
# Every file is written to a temporary name and renamed once its checksum is right.
# Then: kvsteer eval --data DIR ... (or export KVS_DATA=DIR).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CONV="$ROOT/tools/convert_data.py"
DEST=${KVS_DATA:-../shared/data}
FROM=
OFFLINE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --dest) DEST=${2:?--dest needs a directory}; shift 2 ;;
    --from) FROM=${2:?--from needs a directory}; shift 2 ;;
    --offline) OFFLINE=1; shift ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fetch_data.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$FROM" ] && [ -d ../shared/data ] && [ "$(cd ../shared/data && pwd)" != "$(mkdir -p "$DEST" && cd "$DEST" && pwd)" ]; then
  FROM=../shared/data
fi
TRACES_COMMIT=583d6c9efc31d796eecb6620e4f4a3a640e74e91
# what this project expects: sha256 of each file of the layout
SUMS="3619d976fcd23f56b73289428d5b6cb37e9c63cf7accf91c4b8a97158bb69c27  eval/arc_challenge_test.jsonl
c9caf6b311e1c4e930c71398875b538f4d32998ef5ef5d0d07579764d1be0c31  eval/csqa_validation.jsonl
db4c1e6b2684e96c7cd5f79fa2286389a1ca559527b2b10c091a7a44b2828268  eval/gsm8k_test.jsonl
820e47ea92207e3f3ffc058dd045eb7d7642fd056be577829166f0a768e40dde  eval/piqa_validation.jsonl
8dc25bc52fc7841c29e2be4127eab707277395b134446a0254f1f863a6bb89b2  traces/arc_challenge.jsonl
9874ac88523e8e587e64051efe20ca32d2a2d8d5c6d6c0a5cd4aad7c4e28fa02  traces/csqa.jsonl
0d58b23975a2794e2b0004933fc2e75e76a675acbd0198e4b4488dfe4a27d51f  traces/gsm8k.jsonl
471c04cb47850f4a897992b72d94ea1e25a9c0afec2f74abb80b8f5aa7abb0ac  traces/piqa.jsonl
f6a6d525873a4aecba6ec2af63b9ac0d288794628419393a53da83b6b5891e28  traces/styles/arc_analogical_reasoning.jsonl
dad48d6e5ebc7de00ec78496788d443b13a5d819b747226e91bce6ddfab04a5c  traces/styles/arc_annotated_deduction.jsonl
8b741c1672c785f0d0266a1d8f69a37db489cabbc9cb66fae157341f44bf6684  traces/styles/arc_causal_chain.jsonl
b3c6e581d0f0fc84a10308b36f79b22b6b7143caa8f06872eab3247e50800d96  traces/styles/arc_stepwise.jsonl
d915d2a25edf2b98fc41bf8aec28f83a6b10ab2b9bb57ab654765938c152541f  traces/styles/arc_strategy_execution.jsonl"

die() { echo "fetch_data.sh: $*" >&2; exit 1; }
sum_of() { sha256sum "$1" | cut -d' ' -f1; }
mkdir -p "$DEST/eval" "$DEST/traces/styles" || die "$DEST: cannot create"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# install FILE (converted, in $work) as REL when its checksum is the expected one
install_checked() {
  local tmp=$1 rel=$2 want=$3 got; got=$(sum_of "$tmp")
  [ "$got" = "$want" ] || die "$rel: sha256 $got, expected $want (source changed or conversion wrong; nothing written)"
  cp "$tmp" "$DEST/$rel.part" && mv -f "$DEST/$rel.part" "$DEST/$rel"
}
get() { # URL FILE
  curl -fsSL --retry 3 -o "$2" "$1" || die "$1: download failed"
}
n_ok=0 n_local=0 n_net=0
need=()
while read -r want rel; do
  if [ -f "$DEST/$rel" ] && [ "$(sum_of "$DEST/$rel")" = "$want" ]; then n_ok=$((n_ok+1)); continue; fi
  if [ -n "$FROM" ] && [ -f "$FROM/$rel" ]; then
    python3 "$CONV" normalize "$FROM/$rel" "$work/x.jsonl" || die "$FROM/$rel: not JSON Lines"
    install_checked "$work/x.jsonl" "$rel" "$want"; n_local=$((n_local+1)); continue
  fi
  need+=("$want $rel")
done <<<"$SUMS"
if [ ${#need[@]} -gt 0 ]; then
  src="$work/src"; mkdir -p "$src"
  for item in "${need[@]}"; do
    want=${item%% *}; rel=${item#* }
    [ "$OFFLINE" = 0 ] || die "$rel: not in a local copy and --offline given (run scripts/fetch_data.sh --dest DIR where the network is reachable, or pass --from DIR)"
    case "$rel" in
      traces/*)
        if [ ! -d "$src/local_data" ]; then
          get "https://codeload.github.com/MaxBelitsky/cache-steering/tar.gz/$TRACES_COMMIT" "$src/t.tgz"
          tar xzf "$src/t.tgz" -C "$src" --strip-components=1 --wildcards '*/local_data/*' || die "traces archive: cannot unpack"
          python3 "$CONV" traces "$src/local_data" "$src/out"
        fi
        install_checked "$src/out/$rel" "$rel" "$want" ;;
      eval/gsm8k_test.jsonl)
        get https://raw.githubusercontent.com/openai/grade-school-math/master/grade_school_math/data/test.jsonl "$src/g.jsonl"
        python3 "$CONV" gsm8k "$src/g.jsonl" "$src/x.jsonl" && install_checked "$src/x.jsonl" "$rel" "$want" ;;
      eval/arc_challenge_test.jsonl)
        get https://ai2-public-datasets.s3.amazonaws.com/arc/ARC-V1-Feb2018.zip "$src/arc.zip"
        python3 -c "import zipfile,sys; z=zipfile.ZipFile(sys.argv[1]); n=[x for x in z.namelist() if x.endswith('ARC-Challenge-Test.jsonl')][0]; open(sys.argv[2],'wb').write(z.read(n))" "$src/arc.zip" "$src/a.jsonl"
        python3 "$CONV" arc "$src/a.jsonl" "$src/x.jsonl" && install_checked "$src/x.jsonl" "$rel" "$want" ;;
      eval/csqa_validation.jsonl)
        get https://s3.amazonaws.com/commensenseqa/dev_rand_split.jsonl "$src/c.jsonl"
        python3 "$CONV" csqa "$src/c.jsonl" "$src/x.jsonl" && install_checked "$src/x.jsonl" "$rel" "$want" ;;
      eval/piqa_validation.jsonl)
        get https://yonatanbisk.com/piqa/data/valid.jsonl "$src/p.jsonl"
        get https://yonatanbisk.com/piqa/data/valid-labels.lst "$src/p.lst"
        python3 "$CONV" piqa "$src/p.jsonl" "$src/p.lst" "$src/x.jsonl" && install_checked "$src/x.jsonl" "$rel" "$want" ;;
    esac
    n_net=$((n_net+1))
  done
fi
echo "fetch_data.sh: $DEST: $n_ok already there, $n_local from ${FROM:-no local copy}, $n_net downloaded; all checksums match"
