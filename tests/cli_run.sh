#!/usr/bin/env bash
# `kvsteer run` as a generation tool: text streams to stdout while it is being
# generated; one stderr line gives the stop reason (end of turn, token limit,
# context full) and speeds; sampling without --seed draws a seed, prints it, and
# that seed repeats the run; the repetition penalty and min-p do what they say.  usage: cli_run.sh path/to/kvsteer
. "$(dirname "$0")/testutil/cli.sh"
R=("$BIN" run -m "$MODEL" -t "$T")

# streaming: the first text is on stdout before the process ends
"${R[@]}" -p "Once upon a time" -n 160 >"$tmp/out" 2>"$tmp/err" &
pid=$!
streamed=0
while kill -0 $pid 2>/dev/null; do
  if [ -s "$tmp/out" ]; then streamed=1; break; fi
  sleep 0.02
done
wait $pid || bad "stream run: $(cat "$tmp/err")"
check "text streams while generating" [ $streamed = 1 ]
check "token limit reported" grep -q "^\[token limit\] prompt [0-9]* tokens, [0-9.]* tokens/s; generated 160 tokens, [0-9.]* tokens/s$" "$tmp/err"
check "greedy: no seed printed" sh -c "! grep -q seed '$tmp/err'"
# streamed output equals the tokens' text: a shorter run is a prefix of it
"${R[@]}" -p "Once upon a time" -n 20 >"$tmp/short" 2>/dev/null || bad "short run"
n=$(( $(wc -c <"$tmp/short") - 1 ))  # its text without the final newline
check "streamed text is the generation" cmp -s <(head -c $n "$tmp/short") <(head -c $n "$tmp/out")

"${R[@]}" --chat -p "Say hello." -n 200 >"$tmp/out" 2>"$tmp/err" || bad "chat run: $(cat "$tmp/err")"
check "end of turn reported" grep -q "^\[end of turn\] prompt" "$tmp/err"
check "end-of-turn token not printed" sh -c "! grep -q 'im_end' '$tmp/out'"
"${R[@]}" -p "Once upon a time" -c 12 -n 100 >"$tmp/out" 2>"$tmp/err" || bad "ctx run: $(cat "$tmp/err")"
check "context full reported" grep -q "^\[context full\] prompt" "$tmp/err"
check "one stderr line" [ "$(wc -l <"$tmp/err")" = 1 ]

# a random seed unless given, printed, and repeatable
"${R[@]}" -p "My favourite animal is" -n 12 --temp 1.2 >"$tmp/s1" 2>"$tmp/e1" || bad "sampled run 1"
"${R[@]}" -p "My favourite animal is" -n 12 --temp 1.2 >"$tmp/s2" 2>"$tmp/e2" || bad "sampled run 2"
seed1=$(sed -n 's/.*; seed \([0-9]*\)$/\1/p' "$tmp/e1"); seed2=$(sed -n 's/.*; seed \([0-9]*\)$/\1/p' "$tmp/e2")
check "seed printed" [ -n "$seed1" ]
check "seeds differ between runs" [ "$seed1" != "$seed2" ]
"${R[@]}" -p "My favourite animal is" -n 12 --temp 1.2 --seed "$seed1" >"$tmp/s3" 2>"$tmp/e3" || bad "sampled run 3"
check "printed seed repeats the run" cmp -s "$tmp/s1" "$tmp/s3"
check "given seed printed too" grep -q "; seed $seed1$" "$tmp/e3"

# one vocabulary: --max-new is -n; special-token strings parsed as tokenize does
"${R[@]}" -p "Once upon a time" --max-new 3 >/dev/null 2>"$tmp/err" || bad "--max-new: $(cat "$tmp/err")"
check "--max-new is -n" grep -q "generated 3 tokens" "$tmp/err"
for sp in --special --no-special; do
  n=$("$BIN" tokenize -m "$MODEL" $sp "<|im_start|>user" | wc -w)
  "${R[@]}" $sp -p "<|im_start|>user" -n 1 >/dev/null 2>"$tmp/err" || bad "run $sp: $(cat "$tmp/err")"
  check "run $sp tokenizes as tokenize $sp ($n tokens)" grep -q "prompt $n tokens" "$tmp/err"
done
check "default is --special" sh -c "[ \"\$('$BIN' tokenize -m '$MODEL' '<|im_start|>')\" = \"\$('$BIN' tokenize -m '$MODEL' --special '<|im_start|>')\" ]"
"$BIN" logits -m "$MODEL" -t "$T" -k 1 --no-special "<|im_start|>" >"$tmp/out" 2>"$tmp/err" || bad "logits --no-special"
ids=$("$BIN" tokenize -m "$MODEL" --no-special "<|im_start|>" | tr ' ' ,)
check "logits --no-special" grep -qF "\"ids\":[$ids]" "$tmp/out"
# llama.cpp's repetition penalty and min-p: off spelt out is the default output;
# a strong penalty turns greedy away from a repetition; min-p 1 keeps only the
# top token, so sampling with it is greedy
P="red blue red blue red blue red blue"
"${R[@]}" -p "$P" -n 24 >"$tmp/r0" 2>/dev/null || bad "repetition run"
"${R[@]}" -p "$P" -n 24 --repeat-penalty 1 --min-p 0 >"$tmp/r1" 2>"$tmp/err" || bad "penalty 1: $(cat "$tmp/err")"
"${R[@]}" -p "$P" -n 24 --repeat-penalty 1.8 >"$tmp/r2" 2>"$tmp/err" || bad "penalty 1.8: $(cat "$tmp/err")"
"${R[@]}" -p "$P" -n 24 --temp 1.5 --seed 3 --min-p 1 >"$tmp/r3" 2>"$tmp/err" || bad "min-p 1: $(cat "$tmp/err")"
check "--repeat-penalty 1 --min-p 0 is the default output" cmp -s "$tmp/r0" "$tmp/r1"
check "greedy repeats itself here" grep -q "blue blue blue blue" "$tmp/r0"
check "--repeat-penalty 1.8 breaks the repetition" sh -c "! grep -q 'blue blue blue blue' '$tmp/r2'"
check "--min-p 1 sampling is greedy" cmp -s "$tmp/r0" "$tmp/r3"
for a in "--repeat-penalty 0" "--repeat-penalty -1" "--repeat-last-n -2" "--min-p 1.5" "--min-p -0.1"; do
  if "${R[@]}" -p x $a >/dev/null 2>"$tmp/err"; then bad "run $a accepted"; continue; fi
  check "run $a: one line naming the option" sh -c "[ \$(wc -l <'$tmp/err') = 1 ] && grep -q -- '${a% *}' '$tmp/err'"
done
# compare takes the sampling options and the half cache too, and prints its seed
"$BIN" compare -m "$MODEL" -t "$T" -p "Hi" --act "$tmp/nope.gguf" --act-layer 3 --temp 0.7 --top-k 5 --top-p 0.9 --kv-f16 -n 2 \
  --repeat-penalty 1.1 --repeat-last-n 8 --min-p 0.05 >/dev/null 2>"$tmp/err"
check "compare sampling options parsed" grep -q "nope.gguf" "$tmp/err"
finish
