#!/usr/bin/env bash
# Bad input at the command line: each case must exit non-zero with exactly one
# line on stderr that names the file or option at fault, and print nothing on
# stdout.  usage: cli_errors.sh path/to/kvsteer
set -u
BIN=$1
MODEL=${KVS_MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
expect_error() { # name, needle, command...
  local name=$1 needle=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$? lines; lines=$(wc -l <"$tmp/err")
  if [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ "$lines" -eq 1 ] && grep -q -- "$needle" "$tmp/err" && [ ! -s "$tmp/out" ]; then
    pass=$((pass+1))
  else
    fail=$((fail+1)); echo "FAIL $name: rc=$rc stderr=[$(head -c 400 "$tmp/err")] stdout=[$(head -c 200 "$tmp/out")]"
  fi
}
head -c 5000000 "$MODEL" >"$tmp/trunc.gguf"
head -c 20 "$MODEL" >"$tmp/tiny.gguf"
{ printf 'GGUX'; tail -c +5 "$MODEL" | head -c 100000; } >"$tmp/magic.gguf"
{ head -c 4 "$MODEL"; printf '\x63\x00\x00\x00'; tail -c +9 "$MODEL" | head -c 100000; } >"$tmp/version.gguf"
: >"$tmp/empty.gguf"
printf 'not a model at all, just text\n%.0s' {1..10} >"$tmp/text.gguf"

expect_error missing-model "nope.gguf" "$BIN" run -m "$tmp/nope.gguf" -p hi
expect_error truncated "trunc.gguf" "$BIN" run -m "$tmp/trunc.gguf" -p hi
expect_error truncated-msg "outside the file\|truncated" "$BIN" run -m "$tmp/trunc.gguf" -p hi
expect_error tiny "tiny.gguf" "$BIN" run -m "$tmp/tiny.gguf" -p hi
expect_error bad-magic "bad magic" "$BIN" run -m "$tmp/magic.gguf" -p hi
expect_error bad-version "version 99" "$BIN" run -m "$tmp/version.gguf" -p hi
expect_error empty "empty.gguf" "$BIN" run -m "$tmp/empty.gguf" -p hi
expect_error text "text.gguf" "$BIN" inspect "$tmp/text.gguf"
expect_error directory "not a regular file" "$BIN" run -m "$tmp" -p hi
expect_error ctx-too-small "longer than the context" "$BIN" run -m "$MODEL" -c 8 -p "this prompt has clearly more than eight tokens in it, surely"
expect_error n-negative "\-n expects" "$BIN" run -m "$MODEL" -p hi -n -1
expect_error top-p "\-\-top-p expects" "$BIN" run -m "$MODEL" -p hi --top-p 2
expect_error temp-text "\-\-temp expects" "$BIN" run -m "$MODEL" -p hi --temp warm
expect_error unknown-opt "unknown option" "$BIN" run -m "$MODEL" -p hi --frobnicate
expect_error missing-value "needs a value" "$BIN" run -m "$MODEL" -p
expect_error no-prompt "required" "$BIN" run -m "$MODEL"
expect_error offset-two "exactly one" "$BIN" run -m "$MODEL" -p hi --offset-token "text:two words"
expect_error offset-bare "\-\-offset is ambiguous" "$BIN" run -m "$MODEL" -p hi --offset x
expect_error offset-number "ambiguous" "$BIN" run -m "$MODEL" -p hi --offset-token 7
expect_error sweep-offset "\-\-offset is ambiguous" "$BIN" sweep -m "$MODEL" --task arc --offset 5 --dry-run
expect_error styles-offset "\-\-offset is ambiguous" "$BIN" styles -m "$MODEL" --vec x.gguf -o "$tmp/st" --offset 5
expect_error unknown-cmd "unknown command" "$BIN" frobnicate
expect_error tokenize-missing "nope.gguf" "$BIN" tokenize -m "$tmp/nope.gguf" hello
# an output that cannot be written is refused before any work (one stderr line:
# no progress was printed, no model or input read)
: >"$tmp/afile"
expect_error extract-nodir "nodir/v.gguf" "$BIN" extract -m "$MODEL" --traces data/demo/demo_traces.jsonl --pairs 2 --shots 0 -o "$tmp/nodir/v.gguf"
expect_error extract-to-dir "is a directory" "$BIN" extract -m "$MODEL" --traces data/demo/demo_traces.jsonl --pairs 2 --shots 0 -o "$tmp"
expect_error report-nodir "nodir/r.md" "$BIN" report -o "$tmp/nodir/r.md" "$tmp/no-such-run.jsonl"
expect_error report-plot-file "afile" "$BIN" report --plot "$tmp/afile/plots" "$tmp/no-such-run.jsonl"
expect_error styles-out-file "afile" "$BIN" styles -m "$MODEL" --vec "$tmp/nope.gguf" -o "$tmp/afile"
expect_error sweep-out-file "afile" "$BIN" sweep -m "$MODEL" --task arc --methods baseline --data ../shared/data -o "$tmp/afile"
# help works and exits 0 for every command
for c in run tokenize inspect; do
  if "$BIN" $c --help >/dev/null 2>&1; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL $c --help"; fi
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
