#!/usr/bin/env bash
# `kvsteer eval` end to end on a few ARC/GSM8K questions: batching does not
# change results (greedy and sampled), resuming continues without duplicates,
# a truncated last line is repaired, a config mismatch is refused, steering
# methods run, and bad input fails with one line.  usage: cli_eval.sh path/to/kvsteer
. "$(dirname "$0")/testutil/cli.sh"
# four short ARC questions (rows 1167-1170) and a short GSM8K one keep this fast
EV=("$BIN" eval -m "$MODEL" --data "$DATA" -t "$T" --quiet)
ARC=(--task arc --offset-start 1167)
GSM=(--task gsm8k --offset-start 462)
# sample lines without their timings, for comparing runs; sorted, because slots
# are refilled as answers finish, so lines come in the order answers finish
samples() { grep '"id":' "$1" | sed -e 's/"seconds":[^,}]*//' -e 's/"span_seconds":[^,}]*//' -e 's/"wall_seconds":[^,}]*//' | sort; }
nlines() { wc -l <"$1" | tr -d ' '; }
nsamples() { grep -c '"id":' "$1"; }

# --- batch 4 equals batch 1 (greedy) ---------------------------------------
"${EV[@]}" "${ARC[@]}" --method baseline --limit 4 --max-new 24 --batch 4 -o "$tmp/b4.jsonl" >"$tmp/out" 2>"$tmp/err" || bad "b4 run: $(cat "$tmp/err")"
"${EV[@]}" "${ARC[@]}" --method baseline --limit 4 --max-new 24 --batch 1 -o "$tmp/b1.jsonl" >/dev/null 2>"$tmp/err" || bad "b1 run: $(cat "$tmp/err")"
check "b4 has header, 4 samples, summary" [ "$(nlines "$tmp/b4.jsonl")" = 6 ]
check "b4 summary last" sh -c "tail -1 '$tmp/b4.jsonl' | grep -q '^{\"summary\":true'"
check "stdout summary line" grep -q "^arc baseline: n=4" "$tmp/out"
check "batch 4 == batch 1" cmp -s <(samples "$tmp/b4.jsonl") <(samples "$tmp/b1.jsonl")
# two slots for four questions: slots are refilled as answers finish
"${EV[@]}" "${ARC[@]}" --method baseline --limit 4 --max-new 24 --batch 2 -o "$tmp/b2.jsonl" >/dev/null 2>"$tmp/err" || bad "b2 run: $(cat "$tmp/err")"
check "batch 2 (refilled slots) == batch 1" cmp -s <(samples "$tmp/b2.jsonl") <(samples "$tmp/b1.jsonl")
# AMX tiles (where this machine has them): batch 4 == batch 1 there too
if KVS_KERNELS=amx "$BIN" version >/dev/null 2>&1; then
  KVS_KERNELS=amx "${EV[@]}" "${ARC[@]}" --method baseline --limit 4 --max-new 24 --batch 4 -o "$tmp/amx4.jsonl" >/dev/null 2>"$tmp/err" || bad "amx b4: $(cat "$tmp/err")"
  KVS_KERNELS=amx "${EV[@]}" "${ARC[@]}" --method baseline --limit 4 --max-new 24 --batch 1 -o "$tmp/amx1.jsonl" >/dev/null 2>"$tmp/err" || bad "amx b1: $(cat "$tmp/err")"
  check "amx: batch 4 == batch 1" cmp -s <(samples "$tmp/amx4.jsonl") <(samples "$tmp/amx1.jsonl")
fi
check "header first" sh -c "head -1 '$tmp/b4.jsonl' | grep -q '^{\"header\":true'"
check "sample fields" sh -c "grep '\"id\":' '$tmp/b4.jsonl' | head -1 | grep '\"span\":' | grep '\"extracted\":{\"choice\":' | grep -q '\"generated_tokens\":'"

# --- resume: --limit 2, then --limit 4 --------------------------------------
"${EV[@]}" "${ARC[@]}" --method baseline --limit 2 --max-new 24 --batch 4 -o "$tmp/r.jsonl" >/dev/null 2>"$tmp/err" || bad "resume 1: $(cat "$tmp/err")"
check "resume: 2 samples" [ "$(nsamples "$tmp/r.jsonl")" = 2 ]
"${EV[@]}" "${ARC[@]}" --method baseline --limit 4 --max-new 24 --batch 4 -o "$tmp/r.jsonl" >"$tmp/out" 2>"$tmp/err" || bad "resume 2: $(cat "$tmp/err")"
check "resume: 4 samples, one summary" [ "$(nsamples "$tmp/r.jsonl")" = 4 ] && [ "$(grep -c '"summary":true' "$tmp/r.jsonl")" = 1 ]

# --- one writer per run file: a second process is refused, the file untouched ---
python3 - "$tmp/r.jsonl.lock" "$tmp/locked" <<'PY' &
import fcntl, sys, time
f = open(sys.argv[1], "w")
fcntl.flock(f, fcntl.LOCK_EX)
open(sys.argv[2], "w").close()
time.sleep(60)
PY
holder=$!
for _ in $(seq 100); do [ -e "$tmp/locked" ] && break; sleep 0.1; done
cp "$tmp/r.jsonl" "$tmp/r.before"
"${EV[@]}" "${ARC[@]}" --method baseline --limit 4 --max-new 24 --batch 4 --overwrite -o "$tmp/r.jsonl" >/dev/null 2>"$tmp/err"
rc=$?
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
check "second writer: refused with one line" sh -c "[ $rc -ne 0 ] && [ \$(wc -l <'$tmp/err') -eq 1 ] && grep -q 'r.jsonl: another process is writing this run file' '$tmp/err'"
check "second writer: the file untouched, even with --overwrite" cmp -s "$tmp/r.jsonl" "$tmp/r.before"
check "a finished run leaves no lock file" [ ! -e "$tmp/b4.jsonl.lock" ]
check "resume: no duplicate ids" [ "$(grep -o '"id":"[^"]*"' "$tmp/r.jsonl" | sort | uniq -d | wc -l)" = 0 ]
check "resume: same samples as one run" cmp -s <(samples "$tmp/r.jsonl") <(samples "$tmp/b4.jsonl")
check "resume: summary n=4" grep -q "n=4" "$tmp/out"
# nothing left to do: the summary is rewritten, nothing generated
"${EV[@]}" "${ARC[@]}" --method baseline --limit 4 --max-new 24 -o "$tmp/r.jsonl" >/dev/null 2>"$tmp/err" || bad "resume 3: $(cat "$tmp/err")"
check "resume: complete file stays" [ "$(nlines "$tmp/r.jsonl")" = 6 ]
# a smaller --limit on that file: the summary counts exactly the 2 asked for
"${EV[@]}" "${ARC[@]}" --method baseline --limit 2 --max-new 24 -o "$tmp/r.jsonl" >"$tmp/out" 2>"$tmp/err" || bad "limit 2 of 4: $(cat "$tmp/err")"
check "limit 2 of 4: result line n=2" grep -q "n=2 (of 4 in the file)" "$tmp/out"
check "limit 2 of 4: summary n=2, limit 2" sh -c "tail -1 '$tmp/r.jsonl' | grep '\"n\":2,' | grep '\"samples_in_file\":4' | grep -q '\"limit\":2'"
check "limit 2 of 4: samples kept" [ "$(nsamples "$tmp/r.jsonl")" = 4 ]

# --- a truncated last line is dropped and redone ----------------------------
head -n 5 "$tmp/b4.jsonl" >"$tmp/t.jsonl"           # header + 4 samples, no summary
len=$(wc -c <"$tmp/t.jsonl"); head -c $((len - 40)) "$tmp/t.jsonl" >"$tmp/t2.jsonl"; mv "$tmp/t2.jsonl" "$tmp/t.jsonl"
"$BIN" eval -m "$MODEL" --data "$DATA" -t "$T" "${ARC[@]}" --method baseline --limit 4 --max-new 24 -o "$tmp/t.jsonl" >/dev/null 2>"$tmp/err" || bad "truncated: $(cat "$tmp/err")"
check "truncated: reported" grep -q "truncated" "$tmp/err"
check "truncated: repaired" [ "$(nsamples "$tmp/t.jsonl")" = 4 ] && [ "$(nlines "$tmp/t.jsonl")" = 6 ]
check "truncated: redone identically" cmp -s <(samples "$tmp/t.jsonl") <(samples "$tmp/b4.jsonl")
check "truncated: no temp file left" [ -z "$(ls "$tmp" | grep '\.tmp')" ]

# --- config mismatch ---------------------------------------------------------
cp "$tmp/b4.jsonl" "$tmp/m.jsonl"
"${EV[@]}" "${ARC[@]}" --method baseline --limit 4 --max-new 16 -o "$tmp/m.jsonl" >"$tmp/out" 2>"$tmp/err"
rc=$?
check "mismatch: refused with one line" [ $rc -ne 0 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "m.jsonl" "$tmp/err" && grep -q "max_new" "$tmp/err"
check "mismatch: file untouched" cmp -s "$tmp/m.jsonl" "$tmp/b4.jsonl"
"${EV[@]}" "${ARC[@]}" --method baseline --limit 1 --max-new 4 --overwrite -o "$tmp/m.jsonl" >/dev/null 2>"$tmp/err" || bad "overwrite: $(cat "$tmp/err")"
check "overwrite: fresh file" [ "$(nsamples "$tmp/m.jsonl")" = 1 ]

# --- half KV cache: batching still exact, recorded, not mixed with float -----
"${EV[@]}" "${ARC[@]}" --method baseline --limit 4 --max-new 24 --batch 4 --kv-f16 -o "$tmp/h4.jsonl" >/dev/null 2>"$tmp/err" || bad "f16 b4: $(cat "$tmp/err")"
"${EV[@]}" "${ARC[@]}" --method baseline --limit 4 --max-new 24 --batch 1 --kv-f16 -o "$tmp/h1.jsonl" >/dev/null 2>"$tmp/err" || bad "f16 b1: $(cat "$tmp/err")"
check "f16: batch 4 == batch 1" cmp -s <(samples "$tmp/h4.jsonl") <(samples "$tmp/h1.jsonl")
check "f16: in config" grep -q '"kv_cache":"f16"' "$tmp/h4.jsonl"
check "f32: no kv_cache key (older files resume)" sh -c "! grep -q kv_cache '$tmp/b4.jsonl'"
"${EV[@]}" "${ARC[@]}" --method baseline --limit 4 --max-new 24 -o "$tmp/h4.jsonl" >/dev/null 2>"$tmp/err"
check "f16 file, float run: refused" [ $? -ne 0 ] && grep -q "kv_cache" "$tmp/err"
# --- repetition penalty (greedy): batch 4 == batch 1, recorded only when on ---
PEN=(--repeat-penalty 1.3 --repeat-last-n 32)
"${EV[@]}" "${ARC[@]}" --method baseline --limit 4 --max-new 24 --batch 4 "${PEN[@]}" -o "$tmp/p4.jsonl" >/dev/null 2>"$tmp/err" || bad "penalty b4: $(cat "$tmp/err")"
"${EV[@]}" "${ARC[@]}" --method baseline --limit 4 --max-new 24 --batch 1 "${PEN[@]}" -o "$tmp/p1.jsonl" >/dev/null 2>"$tmp/err" || bad "penalty b1: $(cat "$tmp/err")"
check "penalty: batch 4 == batch 1" cmp -s <(samples "$tmp/p4.jsonl") <(samples "$tmp/p1.jsonl")
check "penalty: in config" grep -q '"repeat_penalty":1.3,"repeat_last_n":32' "$tmp/p4.jsonl"
check "penalty off: no repeat_penalty key (older files resume)" sh -c "! grep -q repeat_penalty '$tmp/b4.jsonl'"
responses() { grep '"id":' "$1" | sed -e 's/.*"response"://' -e 's/,"[a-z_]*":.*//' | sort; }
if cmp -s <(responses "$tmp/p4.jsonl") <(responses "$tmp/b4.jsonl"); then bad "penalty: answers as without it"; else ok; fi
"${EV[@]}" "${ARC[@]}" --method baseline --limit 4 --max-new 24 -o "$tmp/p4.jsonl" >/dev/null 2>"$tmp/err"
check "penalty file, run without: refused" [ $? -ne 0 ] && grep -q "repeat_penalty" "$tmp/err"

# --- sampling: seeds per question, independent of batching ------------------
"${EV[@]}" "${ARC[@]}" --method cot --limit 2 --max-new 12 --sampling --seeds 2 --batch 4 -o "$tmp/s4.jsonl" >/dev/null 2>"$tmp/err" || bad "s4: $(cat "$tmp/err")"
"${EV[@]}" "${ARC[@]}" --method cot --limit 2 --max-new 12 --sampling --seeds 2 --batch 1 -o "$tmp/s1.jsonl" >/dev/null 2>"$tmp/err" || bad "s1: $(cat "$tmp/err")"
check "sampling: 4 samples" [ "$(nsamples "$tmp/s4.jsonl")" = 4 ]
check "sampling: batch 4 == batch 1" cmp -s <(samples "$tmp/s4.jsonl") <(samples "$tmp/s1.jsonl")
check "sampling: std in summary" grep -q '"accuracy_std"' "$tmp/s4.jsonl"
check "cot: prompt ends with the CoT text" grep -q "step by step.\",\"response\"" "$tmp/s4.jsonl"

# --- GSM8K extractors --------------------------------------------------------
"${EV[@]}" "${GSM[@]}" --method baseline --limit 1 --max-new 16 -o "$tmp/g.jsonl" >"$tmp/out" 2>"$tmp/err" || bad "gsm8k: $(cat "$tmp/err")"
check "gsm8k: extractors" grep -q '"correct":{"last_number":\(true\|false\),"strict":\(true\|false\)}' "$tmp/g.jsonl"
check "gsm8k: summary" grep -q "last_number" "$tmp/out"

# --- steering methods ---------------------------------------------------------
TR=data/demo/demo_traces.jsonl
"$BIN" extract -m "$MODEL" --traces "$TR" --pairs 2 --shots 1 -t "$T" -q -o "$tmp/vc.gguf" 2>"$tmp/err" || bad "extract cache: $(cat "$tmp/err")"
"$BIN" extract -m "$MODEL" --traces "$TR" --pairs 2 --shots 1 -t "$T" -q --kind act -o "$tmp/va.gguf" 2>"$tmp/err" || bad "extract act: $(cat "$tmp/err")"
# c_k = c_v = 0 is plain generation with the same offset token
"${EV[@]}" "${ARC[@]}" --method cache --steer "$tmp/vc.gguf" --ck 0 --cv 0 --limit 2 --max-new 16 -o "$tmp/c0.jsonl" >/dev/null 2>"$tmp/err" || bad "cache 0: $(cat "$tmp/err")"
"${EV[@]}" "${ARC[@]}" --method baseline --offset-token newline --limit 2 --max-new 16 -o "$tmp/o.jsonl" >/dev/null 2>"$tmp/err" || bad "offset: $(cat "$tmp/err")"
strip_method() { samples "$1" | sed 's/"method":"[^"]*"//'; }
check "cache c=0 == baseline with offset" cmp -s <(strip_method "$tmp/c0.jsonl") <(strip_method "$tmp/o.jsonl")
"${EV[@]}" "${ARC[@]}" --method cache --steer "$tmp/vc.gguf" --cv 4 --limit 2 --max-new 16 --batch 2 -o "$tmp/c.jsonl" >/dev/null 2>"$tmp/err" || bad "cache: $(cat "$tmp/err")"
check "cache: offset in config" grep -q '"offset":"\\n"' "$tmp/c.jsonl"
"${EV[@]}" "${ARC[@]}" --method cache --steer "$tmp/vc.gguf" --cv 4 --limit 2 --max-new 16 --batch 1 -o "$tmp/c1.jsonl" >/dev/null 2>"$tmp/err" || bad "cache b1: $(cat "$tmp/err")"
check "cache: batch 2 == batch 1" cmp -s <(samples "$tmp/c.jsonl") <(samples "$tmp/c1.jsonl")
# sampling shares a question's prompt between its seeds: the later seeds copy
# the cached prompt (from another slot, or their own slot's previous seed) and
# prefill only its last token and the held offset token, on which the edit
# lands.  Batch 6 starts all six samples at once (nothing to share); batch 2
# shares both ways.  The results must be the same bits.
SS=(--method cache --steer "$tmp/vc.gguf" --cv 4 --limit 2 --max-new 10 --sampling --seeds 3)
"${EV[@]}" "${ARC[@]}" "${SS[@]}" --batch 6 -o "$tmp/ss6.jsonl" >/dev/null 2>"$tmp/err" || bad "share b6: $(cat "$tmp/err")"
"$BIN" eval -m "$MODEL" --data "$DATA" -t "$T" "${ARC[@]}" "${SS[@]}" --batch 2 -o "$tmp/ss2.jsonl" >/dev/null 2>"$tmp/err2" || bad "share b2: $(cat "$tmp/err2")"
check "sampling: batch 2 shared prompts" grep -q "samples took their prompt from another seed's cache" "$tmp/err2"
check "sampling, cache steering: shared prompts == full prefills" cmp -s <(samples "$tmp/ss6.jsonl") <(samples "$tmp/ss2.jsonl")
check "sampling: 6 samples" [ "$(nsamples "$tmp/ss2.jsonl")" = 6 ]
"${EV[@]}" "${GSM[@]}" --method cache+cot --steer "$tmp/vc.gguf" --limit 1 --max-new 8 -o "$tmp/cg.jsonl" >/dev/null 2>"$tmp/err" || bad "cache+cot: $(cat "$tmp/err")"
check "cache gsm8k: offset is a space" grep -q '"offset":" "' "$tmp/cg.jsonl"
"${EV[@]}" "${ARC[@]}" --method act --act "$tmp/va.gguf" --act-layer 10 --act-scale 2 --limit 2 --max-new 12 --batch 2 -o "$tmp/a.jsonl" >/dev/null 2>"$tmp/err" || bad "act: $(cat "$tmp/err")"
"${EV[@]}" "${ARC[@]}" --method act --act "$tmp/va.gguf" --act-layer 10 --act-scale 2 --limit 2 --max-new 12 --batch 1 -o "$tmp/a1.jsonl" >/dev/null 2>"$tmp/err" || bad "act b1: $(cat "$tmp/err")"
check "act: batch 2 == batch 1" cmp -s <(samples "$tmp/a.jsonl") <(samples "$tmp/a1.jsonl")
check "act: settings in config" grep -q '"act":{"fingerprint":"[0-9a-f]*","layer":10,"scale":2}' "$tmp/a.jsonl"

# --- bad input: non-zero exit, one line on stderr, no stdout, no run file ----
expect_error() { # name, needle, args...
  local name=$1 needle=$2; shift 2
  rm -f "$tmp/e.jsonl"
  "$BIN" eval "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$? lines; lines=$(wc -l <"$tmp/err")
  if [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ "$lines" -eq 1 ] && grep -q -- "$needle" "$tmp/err" && [ ! -s "$tmp/out" ] && [ ! -e "$tmp/e.jsonl" ]; then
    ok
  else
    bad "$name: rc=$rc stderr=[$(head -c 300 "$tmp/err")] stdout=[$(head -c 200 "$tmp/out")]"
  fi
}
A=(-m "$MODEL" --data "$DATA" -t "$T" -o "$tmp/e.jsonl")
mkdir -p "$tmp/bad/eval"
{ head -n 2 "$DATA/eval/arc_challenge_test.jsonl"; echo '{"id": "x", "question": "q?", "choices": [{"label": "A"'; } >"$tmp/bad/eval/arc_challenge_test.jsonl"
expect_error unknown-task "unknown --task 'mmlu'" "${A[@]}" --task mmlu --method baseline
expect_error unknown-method "unknown --method 'magic'" "${A[@]}" --task arc --method magic
expect_error limit-zero "\-\-limit expects" "${A[@]}" --task arc --method baseline --limit 0
expect_error cache-no-steer "needs --steer" "${A[@]}" --task arc --method cache
expect_error steer-missing "nope.gguf" "${A[@]}" --task arc --method cache --steer "$tmp/nope.gguf"
expect_error act-incomplete "--act-layer" "${A[@]}" --task arc --method act --act "$tmp/va.gguf"
expect_error act-missing "nope.gguf" "${A[@]}" --task arc --method act --act "$tmp/nope.gguf" --act-layer 3 --act-scale 1
expect_error steer-on-baseline "only by --method cache" "${A[@]}" --task arc --method baseline --steer "$tmp/vc.gguf"
expect_error malformed-jsonl "arc_challenge_test.jsonl:3" -m "$MODEL" --data "$tmp/bad" -o "$tmp/e.jsonl" --task arc --method baseline
expect_error no-data "nothing/eval/gsm8k_test.jsonl" -m "$MODEL" --data "$tmp/nothing" -o "$tmp/e.jsonl" --task gsm8k --method baseline
expect_error ctx-too-small "longer than the context" "${A[@]}" --task arc --method baseline --limit 2 --ctx 16
expect_error seeds-without-sampling "need --sampling" "${A[@]}" --task arc --method baseline --seeds 3
expect_error no-output "required" -m "$MODEL" --task arc --method baseline
expect_error offset-start "\-\-offset-start 5000" "${A[@]}" --task arc --method baseline --offset-start 5000
expect_error offset-two-tokens "exactly one" "${A[@]}" --task arc --method baseline --offset-token "text:two words"
# --offset once sat one prefix from --offset-start: refused, never taken as either
expect_error offset-ambiguous "\-\-offset is ambiguous" "${A[@]}" --task arc --method baseline --offset 5 --limit 1
expect_error offset-token-number "\-\-offset-token '5' is ambiguous" "${A[@]}" --task arc --method baseline --offset-token 5
expect_error offset-token-word "text:ab" "${A[@]}" --task arc --method baseline --offset-token ab
expect_error output-dir "nodir/e.jsonl" -m "$MODEL" --data "$DATA" -o "$tmp/nodir/e.jsonl" "${ARC[@]}" --method baseline --limit 1
expect_error missing-model "nope.gguf" -m "$tmp/nope.gguf" --data "$DATA" -o "$tmp/e.jsonl" --task arc --method baseline
if "$BIN" eval --help >/dev/null 2>&1; then ok; else bad "eval --help"; fi

finish
