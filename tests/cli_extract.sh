#!/usr/bin/env bash
# `kvsteer extract --pos FILE --neg FILE` and `--pair-file FILE.jsonl`: vectors of
# both kinds from one's own prompts, chat-rendered or raw, the same vectors from
# either file form, their settings in the file's metadata, and bad prompt files
# refused with one line naming the file.  usage: cli_extract.sh path/to/kvsteer
. "$(dirname "$0")/testutil/cli.sh"
X=("$BIN" extract -m "$MODEL" -t "$T" -q)
head -n 3 examples/concise.txt >"$tmp/pos.txt"
head -n 3 examples/rambling.txt >"$tmp/neg.txt"
# the same three pairs as JSON Lines (the texts hold no quotes or backslashes)
paste -d '\t' "$tmp/pos.txt" "$tmp/neg.txt" | sed 's/^\(.*\)\t\(.*\)$/{"pos": "\1", "neg": "\2"}/' >"$tmp/pairs.jsonl"

"${X[@]}" --pos "$tmp/pos.txt" --neg "$tmp/neg.txt" -o "$tmp/c.gguf" 2>"$tmp/err" || bad "pos/neg cache: $(cat "$tmp/err")"
"${X[@]}" --pair-file "$tmp/pairs.jsonl" -o "$tmp/cj.gguf" 2>"$tmp/err" || bad "pair-file cache: $(cat "$tmp/err")"
"${X[@]}" --pos "$tmp/pos.txt" --neg "$tmp/neg.txt" --kind act -o "$tmp/a.gguf" 2>"$tmp/err" || bad "pos/neg act: $(cat "$tmp/err")"
"${X[@]}" --pos "$tmp/pos.txt" --neg "$tmp/neg.txt" --raw -o "$tmp/r.gguf" 2>"$tmp/err" || bad "pos/neg raw: $(cat "$tmp/err")"
# the tensors sit at the end of the file: 30 layers x (K, V) x 3 heads x 64 floats
nb=$((30 * 2 * 3 * 64 * 4))
check "pair file == pos/neg files" cmp -s <(tail -c $nb "$tmp/c.gguf") <(tail -c $nb "$tmp/cj.gguf")
check "raw differs from chat-rendered" bash -c "! cmp -s <(tail -c $nb '$tmp/c.gguf') <(tail -c $nb '$tmp/r.gguf')"
check "metadata: pos/neg files, pairs, render" sh -c "grep -qa 'kvsteer.extract.pos' '$tmp/c.gguf' && grep -qa 'pos.txt' '$tmp/c.gguf' && grep -qa 'kvsteer.extract.render' '$tmp/c.gguf'"
check "metadata: act kind" grep -qa "act" "$tmp/a.gguf"
# the vectors load and steer (a run with them succeeds)
"$BIN" run -m "$MODEL" -t "$T" --chat -p "Why is grass green?" -n 8 --steer "$tmp/c.gguf" --cv 2 >/dev/null 2>"$tmp/err" || bad "run with it: $(cat "$tmp/err")"
"$BIN" run -m "$MODEL" -t "$T" --chat -p "Why is grass green?" -n 8 --act "$tmp/a.gguf" --act-layer 10 >/dev/null 2>"$tmp/err" || bad "run with act: $(cat "$tmp/err")"
# pairs --dump shows the prompts as extraction runs them
"$BIN" pairs -m "$MODEL" --pos "$tmp/pos.txt" --neg "$tmp/neg.txt" --dump >"$tmp/dump" 2>"$tmp/err" || bad "dump: $(cat "$tmp/err")"
check "dump: 3 pairs, chat-rendered" sh -c "[ \$(grep -c '^=== pair' '$tmp/dump') = 3 ] && grep -q 'im_start|>user' '$tmp/dump'"
"$BIN" pairs -m "$MODEL" --pos "$tmp/pos.txt" --neg "$tmp/neg.txt" --raw --pairs 1 --dump >"$tmp/dump" 2>"$tmp/err" || bad "dump raw: $(cat "$tmp/err")"
check "dump raw: the line alone" sh -c "[ \$(grep -c '^=== pair' '$tmp/dump') = 1 ] && ! grep -q 'im_start' '$tmp/dump'"

expect_error() { # name, needle, args...
  local name=$1 needle=$2; shift 2
  rm -f "$tmp/e.gguf"
  "$BIN" extract -m "$MODEL" -t "$T" -q -o "$tmp/e.gguf" "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q -- "$needle" "$tmp/err" && [ ! -e "$tmp/e.gguf" ]; then ok
  else bad "$name: rc=$rc stderr=[$(head -c 300 "$tmp/err")]"; fi
}
head -n 2 "$tmp/neg.txt" >"$tmp/neg2.txt"
printf 'one\n\nthree\n' >"$tmp/gap.txt"
printf '{"pos": "a", "neg": "b"}\n{"pos": "a"}\n' >"$tmp/bad.jsonl"
expect_error unequal "has 3 prompts but .*neg2.txt has 2" --pos "$tmp/pos.txt" --neg "$tmp/neg2.txt"
expect_error empty-line "gap.txt:2: empty line" --pos "$tmp/gap.txt" --neg "$tmp/gap.txt"
expect_error bad-jsonl "bad.jsonl:2" --pair-file "$tmp/bad.jsonl"
expect_error missing "nope.txt" --pos "$tmp/nope.txt" --neg "$tmp/neg.txt"
expect_error pos-alone "go together" --pos "$tmp/pos.txt"
expect_error two-sources "two sources" --pos "$tmp/pos.txt" --neg "$tmp/neg.txt" --traces data/demo/demo_traces.jsonl
expect_error shots "apply to --traces only" --pos "$tmp/pos.txt" --neg "$tmp/neg.txt" --shots 2
expect_error too-many "4 pairs requested" --pos "$tmp/pos.txt" --neg "$tmp/neg.txt" --pairs 4
finish
