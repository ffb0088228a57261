#!/usr/bin/env bash
# The question-embedding cache of similar-shot selection (extract/pairs
# --embed-cache): the first run writes it, the second reads it, and the vector
# file is byte-identical with, without and from the cache; a truncated,
# bit-flipped, foreign or otherwise wrong file is named on one stderr line and
# recomputed to the same result (the file format's every damage: test_pairs); rows missing from the file are added; an
# unwritable folder only warns; the default folder is $XDG_CACHE_HOME/kvsteer,
# else ~/.cache/kvsteer; the kernel set is part of the key.
# usage: cli_embcache.sh path/to/kvsteer
. "$(dirname "$0")/testutil/cli.sh"
TR=data/demo/demo_traces.jsonl
C=$tmp/cache
X=("$BIN" extract -m "$MODEL" -t "$T" --traces "$TR" --pairs 1 --shots 2)
# the pairs (target and shot rows, prompt texts) without extracting: cheaper, and
# what the embeddings decide
P=("$BIN" pairs -m "$MODEL" -t "$T" --traces "$TR" --pairs 24 --shots 2 --dump)
cachefile() { ls "$1"/embed-*.bin 2>/dev/null; }
# flip(file, offset from the end): one byte complemented in place
flip() { python3 -c "
import sys; p, k = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, 'rb').read()); b[len(b) - k] ^= 0xff; open(p, 'wb').write(b)" "$1" "$2"; }

"${X[@]}" --no-embed-cache -q -o "$tmp/ref.gguf" 2>"$tmp/err" || bad "no cache: $(cat "$tmp/err")"
"${P[@]}" --no-embed-cache -q >"$tmp/ref.dump" 2>"$tmp/err" || bad "no cache dump: $(cat "$tmp/err")"
check "--no-embed-cache writes no cache" [ ! -e "$XDG_CACHE_HOME" ]

"${X[@]}" --embed-cache "$C" -o "$tmp/a.gguf" 2>"$tmp/err" || bad "cold: $(cat "$tmp/err")"
F=$(cachefile "$C")
check "cold: one cache file" sh -c "[ -n '$F' ] && [ \$(ls '$C' | wc -l) = 1 ]"
check "cold: says it computed" grep -q "embedding cache: 24 question embeddings computed, kept in $F" "$tmp/err"
check "cold: same vector as without the cache" cmp -s "$tmp/ref.gguf" "$tmp/a.gguf"
check "cold: header holds the key" sh -c "head -c 300 '$F' | grep -qa 'model [0-9a-f]\{16\}; traces [0-9a-f]\{16\}; recipe .*; kernels '"

cp "$F" "$tmp/good.bin"
"${X[@]}" --embed-cache "$C" -o "$tmp/b.gguf" 2>"$tmp/err" || bad "warm: $(cat "$tmp/err")"
check "warm: a hit" grep -q "embedding cache hit: 24 question embeddings from $F" "$tmp/err"
check "warm: nothing embedded" sh -c "! grep -q 'embedding questions' '$tmp/err'"
check "warm: file unchanged" cmp -s "$tmp/good.bin" "$F"
check "warm: same vector" cmp -s "$tmp/ref.gguf" "$tmp/b.gguf"
"${P[@]}" --embed-cache "$C" -q >/dev/null 2>"$tmp/err" || bad "warm -q: $(cat "$tmp/err")"
check "warm -q: silent" [ ! -s "$tmp/err" ]

# a damaged file: one line saying why, recomputed, the same pairs (and with
# extraction the same vector), the file repaired
damaged() { # name, needle, how (vec: extract; dump: pairs); the cache file already damaged
  local name=$1 needle=$2 rc same
  rm -f "$tmp/d.gguf"
  if [ "$3" = vec ]; then
    "${X[@]}" --embed-cache "$C" -q -o "$tmp/d.gguf" 2>"$tmp/err"; rc=$?
    cmp -s "$tmp/ref.gguf" "$tmp/d.gguf"; same=$?
  else
    "${P[@]}" --embed-cache "$C" -q >"$tmp/d.dump" 2>"$tmp/err"; rc=$?
    cmp -s "$tmp/ref.dump" "$tmp/d.dump"; same=$?
  fi
  if [ $rc -eq 0 ] && [ $same -eq 0 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] \
     && grep -q "embedding cache not used: $F: $needle.*; recomputed 24" "$tmp/err" && cmp -s "$tmp/good.bin" "$F"; then ok
  else bad "$name: rc=$rc same=$same stderr=[$(head -c 300 "$tmp/err")]"; fi
}
head -c 1000 "$tmp/good.bin" >"$F"; damaged truncated "truncated" vec
cp "$tmp/good.bin" "$F"; flip "$F" 100; damaged "flipped value byte" "checksum mismatch" vec
: >"$F"; damaged empty "not an embedding cache file" dump
cp "$tmp/good.bin" "$F"; printf '\x07' | dd of="$F" bs=1 seek=8 conv=notrunc status=none; damaged version "format version 7" dump
# (every other truncation and flipped byte: test_pairs' test_embcache_file)
# a folder in its place can be neither read nor replaced: said twice, no harm done
rm -f "$F"; mkdir "$F"
"${P[@]}" --embed-cache "$C" -q >"$tmp/d.dump" 2>"$tmp/err"
check "a folder in its place: succeeds, same pairs" sh -c "[ $? = 0 ] && cmp -s '$tmp/ref.dump' '$tmp/d.dump'"
check "a folder in its place: not used, not written" sh -c "grep -q 'embedding cache not used: $F' '$tmp/err' && grep -q 'warning: embedding cache not written' '$tmp/err'"
rmdir "$F"; cp "$tmp/good.bin" "$F"
# a file made for another trace file, under this one's name
tail -n +2 "$TR" >"$tmp/other.jsonl"
"$BIN" pairs -m "$MODEL" -t "$T" --traces "$tmp/other.jsonl" --pairs 1 --shots 1 --embed-cache "$tmp/oc" -q --dump >/dev/null 2>"$tmp/err" || bad "other traces: $(cat "$tmp/err")"
cp "$(cachefile "$tmp/oc")" "$F"; damaged "another trace file's cache" "made for other inputs" dump

# rows not in the file are embedded and added: a cache made with 4 questions
# excluded serves the run without exclusions (each row's embedding is its own,
# whatever shares its batch)
head -n 4 "$TR" >"$tmp/ex.jsonl"
"$BIN" pairs -m "$MODEL" -t "$T" --traces "$TR" --pairs 2 --shots 2 --dump --exclude "$tmp/ex.jsonl" --embed-cache "$tmp/pc" -q >/dev/null 2>"$tmp/err" || bad "partial 1: $(cat "$tmp/err")"
"${X[@]}" --embed-cache "$tmp/pc" -o "$tmp/p2.gguf" 2>"$tmp/err" || bad "partial 2: $(cat "$tmp/err")"
check "partial: 20 read, 4 added" grep -q "embedding cache: 20 question embeddings from .*, 4 computed and added" "$tmp/err"
check "partial: same vector" cmp -s "$tmp/ref.gguf" "$tmp/p2.gguf"
check "partial: the file is now whole" cmp -s "$tmp/good.bin" "$(cachefile "$tmp/pc")"

# an unwritable folder (a file where a folder should be) warns and changes nothing else
: >"$tmp/plain"
"${X[@]}" --embed-cache "$tmp/plain/sub" -q -o "$tmp/u.gguf" 2>"$tmp/err"
check "unwritable: succeeds" [ $? -eq 0 ]
check "unwritable: one warning line" sh -c "[ \$(wc -l <'$tmp/err') = 1 ] && grep -q 'warning: embedding cache not written: $tmp/plain/sub: cannot create directory' '$tmp/err'"
check "unwritable: same vector" cmp -s "$tmp/ref.gguf" "$tmp/u.gguf"

# the default folder
"${P[@]}" -q >/dev/null 2>"$tmp/err" || bad "default: $(cat "$tmp/err")"
check "default: \$XDG_CACHE_HOME/kvsteer" cmp -s "$tmp/good.bin" "$(cachefile "$XDG_CACHE_HOME/kvsteer")"
env -u XDG_CACHE_HOME HOME="$tmp/home" "${P[@]}" -q >/dev/null 2>"$tmp/err" || bad "default home: $(cat "$tmp/err")"
check "default: ~/.cache/kvsteer" cmp -s "$tmp/good.bin" "$(cachefile "$tmp/home/.cache/kvsteer")"
"${P[@]}" --select random -q --embed-cache "$tmp/rc" >/dev/null 2>"$tmp/err" || bad "random: $(cat "$tmp/err")"
check "random selection embeds nothing" [ ! -e "$tmp/rc" ]

# the kernel set is part of the key: another set, another file
KVS_KERNELS=scalar "${P[@]}" --embed-cache "$C" -q >/dev/null 2>"$tmp/err" || bad "scalar: $(cat "$tmp/err")"
check "scalar kernels: a second file" [ "$(ls "$C" | wc -l)" = 2 ]
check "scalar kernels: key names them" grep -qa "kernels scalar" "$C"/*.bin

expect_error() { # name, needle, args...
  local name=$1 needle=$2; shift 2
  "$BIN" extract -m "$MODEL" -t "$T" -q -o "$tmp/e.gguf" "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q -- "$needle" "$tmp/err" && [ ! -e "$tmp/e.gguf" ]; then ok
  else bad "$name: rc=$rc stderr=[$(head -c 300 "$tmp/err")]"; fi
}
expect_error both "contradict" --traces "$TR" --embed-cache "$C" --no-embed-cache
expect_error own-prompts "apply to --traces only" --pos examples/concise.txt --neg examples/rambling.txt --embed-cache "$C"
expect_error needs-value "needs a value" --traces "$TR" --embed-cache
expect_error empty-folder "expects a folder" --traces "$TR" --embed-cache ""
check "extract --help" sh -c "'$BIN' extract --help | grep -q -- '--embed-cache DIR' && '$BIN' extract --help | grep -q -- '--no-embed-cache'"
check "pairs --help" sh -c "'$BIN' pairs --help | grep -q -- '--embed-cache DIR'"
check "sweep --help" sh -c "'$BIN' sweep --help | grep -q -- '--embed-cache DIR, --no-embed-cache'"
finish
