#!/usr/bin/env bash
# llama.cpp control vectors through the command line: `extract --format
# controlvector` writes one, `--act` reads it back with the same vectors as the
# kvsteer act file of the same extraction (one layer, or all of them at once),
# and bad requests fail with one line and no output file.  llama.cpp's own view
# of the file is checked by cli_cvec_llamacpp.sh.  usage: cli_controlvector.sh path/to/kvsteer
. "$(dirname "$0")/testutil/cli.sh"
TR=data/demo/demo_traces.jsonl
X=("$BIN" extract -m "$MODEL" --traces "$TR" --pairs 2 --shots 1 --kind act -t "$T" -q)
"${X[@]}" -o "$tmp/act.gguf" 2>"$tmp/err" || bad "extract act: $(cat "$tmp/err")"
"${X[@]}" --format controlvector -o "$tmp/cv.gguf" 2>"$tmp/err" || bad "extract cv: $(cat "$tmp/err")"
"${X[@]}" --format controlvector --layers 12 -o "$tmp/cv12.gguf" 2>"$tmp/err" || bad "extract cv 12: $(cat "$tmp/err")"
check "header keys" sh -c "'$BIN' inspect '$tmp/cv.gguf' | grep -q 'general.architecture *\"controlvector\"'"
nl=$("$BIN" inspect "$MODEL" | sed -n 's/.*block_count *\([0-9]*\).*/\1/p' | head -1)
check "layers 1..n-1 written" sh -c "'$BIN' inspect '$tmp/cv.gguf' | grep -q 'controlvector.layer_count *$((nl - 1))\$'"
check "--layers 12: one tensor" sh -c "'$BIN' inspect '$tmp/cv12.gguf' | grep -q 'controlvector.layer_count *1\$'"

R=("$BIN" run -m "$MODEL" --chat -p "Why do leaves change colour?" -n 12 -t "$T")
"${R[@]}" >"$tmp/plain" 2>"$tmp/err" || bad "plain: $(cat "$tmp/err")"
for f in act cv cv12; do
  "${R[@]}" --act "$tmp/$f.gguf" --act-layer 12 --act-scale 6 >"$tmp/$f.out" 2>"$tmp/err" || bad "run $f: $(cat "$tmp/err")"
done
check "act file and control vector steer alike at one layer" cmp -s "$tmp/act.out" "$tmp/cv.out"
check "--layers 12 file: the same" cmp -s "$tmp/act.out" "$tmp/cv12.out"
check "steering changed the text" bash -c "! cmp -s '$tmp/plain' '$tmp/act.out'"
# without --act-layer: every layer of the file, so the one-layer file is layer 12 alone
"${R[@]}" --act "$tmp/cv12.gguf" --act-scale 6 >"$tmp/cv12all.out" 2>"$tmp/err" || bad "run cv12 all: $(cat "$tmp/err")"
check "all layers of a one-layer file = that layer" cmp -s "$tmp/act.out" "$tmp/cv12all.out"
"${R[@]}" --act "$tmp/cv.gguf" --act-scale 0.25 >"$tmp/all.out" 2>"$tmp/err" || bad "run all: $(cat "$tmp/err")"
check "all layers differ from one" bash -c "! cmp -s '$tmp/all.out' '$tmp/cv.out'"
"$BIN" compare -m "$MODEL" --act "$tmp/cv.gguf" --act-scale 0.25 -p "Why is the sky blue?" -n 8 -t "$T" >"$tmp/cmp" 2>"$tmp/err" || bad "compare: $(cat "$tmp/err")"
check "compare names all layers" grep -q "act all layers x0.25" "$tmp/cmp"
# the columns hold characters, not bytes: accented answers and a header longer
# than the column keep every row of the table the same width, in valid UTF-8
"$BIN" compare -m "$MODEL" --act "$tmp/cv.gguf" --act-scale 0.25 -p "Écris une phrase en français sur le café." -n 40 -w 24 \
  -t "$T" >"$tmp/cmp" 2>"$tmp/err" || bad "compare accents: $(cat "$tmp/err")"
check "compare: accented answer" grep -q "é" "$tmp/cmp"
check "compare: rows of one width" python3 -c "
import sys
rows = [l for l in open(sys.argv[1], encoding='utf-8').read().splitlines() if l.startswith(('|', '+'))]
sys.exit(not (len(rows) > 6 and all(len(r) == 2 * 24 + 7 for r in rows)))" "$tmp/cmp"

expect_error() { # name, needle, output file that must not appear, command...
  local name=$1 needle=$2 out=$3; shift 3
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$? lines; lines=$(wc -l <"$tmp/err")
  if [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ "$lines" -eq 1 ] && grep -q -- "$needle" "$tmp/err" && [ ! -s "$tmp/out" ] && [ ! -e "$out" ]; then
    ok
  else
    bad "$name: rc=$rc stderr=[$(head -c 300 "$tmp/err")] stdout=[$(head -c 200 "$tmp/out")]"
  fi
}
expect_error "cache kind" "needs --kind act" "$tmp/x.gguf" "$BIN" extract -m "$MODEL" --traces "$TR" --format controlvector -o "$tmp/x.gguf"
expect_error "layer 0" "cannot hold layer 0" "$tmp/x.gguf" "${X[@]}" --format controlvector --layers 0-3 -o "$tmp/x.gguf"
expect_error "layer past the model" "control-vector layers are 1-" "$tmp/x.gguf" "${X[@]}" --format controlvector --layers 5-999 -o "$tmp/x.gguf"
expect_error "--layers without the format" "needs --format controlvector" "$tmp/x.gguf" "${X[@]}" --layers 3 -o "$tmp/x.gguf"
expect_error "bad format" "expects kvsteer or controlvector" "$tmp/x.gguf" "${X[@]}" --format onnx -o "$tmp/x.gguf"
expect_error "layer the file lacks" "holds no vector for that layer" "" "${R[@]}" --act "$tmp/cv12.gguf" --act-layer 3
expect_error "layer 0 of a control vector" "holds no vector for that layer" "" "${R[@]}" --act "$tmp/cv.gguf" --act-layer 0
expect_error "kvsteer act file needs a layer" "choose one with --act-layer" "" "${R[@]}" --act "$tmp/act.gguf"
expect_error "control vector as --steer" "holds activation vectors" "" "${R[@]}" --steer "$tmp/cv.gguf"
check "extract --help names the format" sh -c "'$BIN' extract --help | grep -q -- '--format F'"
check "run --help: control vector" sh -c "'$BIN' run --help | grep -q 'llama.cpp'"
finish
