#!/usr/bin/env bash
# Help and behaviour agree on every default: each value a command's --help states
# as its default ("(default 256)"; not descriptions such as "default: all cores")
# is what the command does without the option.  For each command one run leaves
# those options out and one spells every documented default out; they must agree
# (output, vector file, run file, report).  A documented default that no probe
# below covers fails the test, so new help text gets checked.
# usage: cli_defaults.sh path/to/kvsteer
# It checks behaviour, not memory: in the sanitizer build (KVS_SANITIZED=1) it
# is skipped (exit 77), since it runs every command twice and took over 20
# minutes there; the release build runs it.
if [ "${KVS_SANITIZED:-0}" = 1 ]; then echo "SKIPPED: cli_defaults runs in the release build only"; exit 77; fi
. "$(dirname "$0")/testutil/cli.sh"
TR=data/demo/demo_traces.jsonl

# "COMMAND --opt value" for every documented default of a command
defaults() {
  "$BIN" "$1" --help | awk '
    /^ +-/ { if (e) print e; e = $0; next }          # an option entry starts
    /^       +[^ -]/ && e { e = e " " $0; next }     # its continuation lines
    { if (e) print e; e = "" }
    END { if (e) print e }' |
    sed -n 's/^ *\(-[a-zA-Z], \)\{0,1\}\(--[a-z0-9-]*\) .*\((\|; \)default \([^:;), ][^;), ]*\)[;), ].*$/\2 \4/p' |
    sed "s/^/$1 /"
}
ALL=$(for c in run tokenize logits pairs extract compare eval sweep styles bench; do defaults $c; done)
[ -n "$ALL" ] || bad "no documented defaults found"
# a default documented as the environment's value is that value (or its fallback) here
ALL=$(echo "$ALL" | sed "s|[$]KVS_DATA|${KVS_DATA:-../shared/data}|")
covered=""
# the documented defaults of COMMAND among OPTS, as arguments
args_for() { # command, opts...
  local c=$1; shift
  for o in "$@"; do
    local v; v=$(echo "$ALL" | awk -v c="$c" -v o="$o" '$1 == c && $2 == o { print $3; exit }')
    [ -n "$v" ] || { bad "$c $o: expected a documented default"; continue; }
    printf '%s\n%s\n' "$o" "$v"
  done
}
mark() { local c=$1; shift; for o in "$@"; do covered="$covered|$c $o"; done; }
# run a probe twice: as given, then with OPTS' documented defaults appended
twice() { # name, compare-filter, opts (space-separated), command...
  local name=$1 filter=$2 opts=$3; shift 3
  local c=$2 extra=()
  mapfile -t extra < <(args_for "$c" $opts); mark "$c" $opts
  "$@" >"$tmp/a.out" 2>"$tmp/a.err" || { bad "$name: $(tail -1 "$tmp/a.err")"; return; }
  "$@" "${extra[@]}" >"$tmp/b.out" 2>"$tmp/b.err" || { bad "$name with ${extra[*]}: $(tail -1 "$tmp/b.err")"; return; }
  if cmp -s <($filter <"$tmp/a.out") <($filter <"$tmp/b.out"); then ok; else bad "$name: ${extra[*]} changes the output"; fi
}
same() { cat; }
no_time() { sed -e 's/[0-9.]* s ([0-9.]* tokens\/s[^)]*)//' -e 's/[0-9.]* ms\/token//' -e 's/"[a-z_]*seconds":[^,}]*//g' \
            -e 's/"ms_per_token":[^,}]*//' -e 's/"[a-z_]*tokens_per[a-z_]*":[^,}]*//g'; }

"$BIN" extract -m "$MODEL" --traces "$TR" --pairs 2 --shots 0 -t "$T" -q -o "$tmp/vc.gguf" || bad "extract cache vector"
"$BIN" extract -m "$MODEL" --traces "$TR" --pairs 2 --shots 0 -t "$T" -q --kind act -o "$tmp/va.gguf" || bad "extract act vector"
Q="Name one colour."

twice run no_time "--n-predict --temp --top-k --top-p --min-p --repeat-penalty --repeat-last-n --ck --cv --layers --offset-token --act-scale" \
  "$BIN" run -m "$MODEL" -t "$T" --chat -p "$Q" --act "$tmp/va.gguf" --act-layer 10 --steer "$tmp/vc.gguf"
twice compare no_time "--n-predict --temp --top-k --top-p --min-p --repeat-penalty --repeat-last-n --width --ck --cv --layers --offset-token" \
  "$BIN" compare -m "$MODEL" -t "$T" -p "$Q" --steer "$tmp/vc.gguf"
twice compare-act no_time "--act-scale" "$BIN" compare -m "$MODEL" -t "$T" -n 16 -p "$Q" --act "$tmp/va.gguf" --act-layer 10
twice logits same "--top" "$BIN" logits -m "$MODEL" -t "$T" "The capital of France is"
twice logits-act same "--act-scale" "$BIN" logits -m "$MODEL" -t "$T" --act "$tmp/va.gguf" --act-layer 10 "The capital of France is"
# 100 pairs need 100 usable trace rows: the first 110 of the ARC traces
head -n 110 "$DATA/traces/arc_challenge.jsonl" >"$tmp/tr110.jsonl"
twice pairs same "--pairs --shots --select --seed" "$BIN" pairs -m "$MODEL" -t "$T" -q --traces "$tmp/tr110.jsonl" --dump
twice sweep same "--methods --pairs --shots --ck --cv --layers --act-scale --data --select" \
  "$BIN" sweep -m "$MODEL" --task arc --traces "$TR" --dry-run
twice bench no_time "--pp --tg --depth --batch --reps" "$BIN" bench -m "$MODEL" -t "$T"

# extract: the vector files (settings are in their metadata) must be identical.
# Its pair options are parsed by the code `pairs` runs (checked above); 100
# pairs of 5 shots would take many minutes here
mark extract --pairs --shots --select --seed
mapfile -t extra < <(args_for extract --position --batch); mark extract --position --batch
X=(--pairs 6 --shots 1)
"$BIN" extract -m "$MODEL" --traces "$TR" "${X[@]}" -t "$T" -q -o "$tmp/x1.gguf" 2>"$tmp/err" || bad "extract: $(cat "$tmp/err")"
"$BIN" extract -m "$MODEL" --traces "$TR" "${X[@]}" -t "$T" -q -o "$tmp/x2.gguf" "${extra[@]}" 2>"$tmp/err" || bad "extract defaults: $(cat "$tmp/err")"
check "extract: ${extra[*]} changes nothing" cmp -s "$tmp/x1.gguf" "$tmp/x2.gguf"

# eval: the second run resumes the first one's file; a default that differed would
# be refused as another configuration, or add samples, or change the summary
eval_twice() { # name, opts, eval args...
  local name=$1 opts=$2; shift 2
  local extra=(); mapfile -t extra < <(args_for eval $opts); mark eval $opts
  rm -f "$tmp/e.jsonl"
  "$BIN" eval -m "$MODEL" -t "$T" -q -o "$tmp/e.jsonl" "$@" >"$tmp/a.out" 2>"$tmp/err" || { bad "$name: $(cat "$tmp/err")"; return; }
  tail -1 "$tmp/e.jsonl" >"$tmp/a.sum"; local n; n=$(wc -l <"$tmp/e.jsonl")
  "$BIN" eval -m "$MODEL" -t "$T" -q -o "$tmp/e.jsonl" "$@" "${extra[@]}" >"$tmp/b.out" 2>"$tmp/err" || { bad "$name with ${extra[*]}: $(cat "$tmp/err")"; return; }
  tail -1 "$tmp/e.jsonl" >"$tmp/b.sum"
  if [ "$(wc -l <"$tmp/e.jsonl")" = "$n" ] && cmp -s <(no_time <"$tmp/a.sum") <(no_time <"$tmp/b.sum") &&
     cmp -s <(no_time <"$tmp/a.out") <(no_time <"$tmp/b.out"); then ok; else bad "$name: ${extra[*]} changes the run"; fi
}
eval_twice eval-cache "--data --offset-start --every --max-new --batch --repeat-penalty --repeat-last-n --ck --cv --layers --offset-token" \
  --task arc --method cache --steer "$tmp/vc.gguf" --limit 1
eval_twice eval-act "--act-scale" --task arc --method act --act "$tmp/va.gguf" --act-layer 10 --limit 1 --max-new 32
eval_twice eval-seeds "--seeds --min-p" --task arc --method baseline --sampling --limit 1 --max-new 8

# styles: likewise resumes its runs; the tables and settings must not change
"$BIN" styles -m "$MODEL" -t "$T" -q --vec "$tmp/vc.gguf" -o "$tmp/st" >/dev/null 2>"$tmp/err" || bad "styles: $(cat "$tmp/err")"
cp "$tmp/st/styles.json" "$tmp/st1.json"
mapfile -t extra < <(args_for styles --limit --offset-start --cv --ck --layers --max-new --data --batch)
mark styles --limit --offset-start --cv --ck --layers --max-new --data --batch
"$BIN" styles -m "$MODEL" -t "$T" -q --vec "$tmp/vc.gguf" -o "$tmp/st" "${extra[@]}" >/dev/null 2>"$tmp/err" || bad "styles defaults: $(cat "$tmp/err")"
check "styles: ${extra[*]} changes nothing" cmp -s "$tmp/st1.json" "$tmp/st/styles.json"

# every documented default was checked above
while read -r c o _; do
  case "$covered|" in *"|$c $o|"*) ok ;; *) bad "$c $o: documented default not checked by this test" ;; esac
done <<<"$ALL"
finish
