#!/usr/bin/env bash
# The README's short tour, run as written: the sh block after the line
# "<!-- readme-test: begin -->" in README.md, with only the binary (B=...) set to
# the build under test and out/tour/ moved to a temporary folder.  Every command
# must succeed, and the outputs must be what the tour promises.
# usage: readme_examples.sh path/to/kvsteer
set -u
BIN=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
check() { local name=$1; shift; if "$@"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL $name"; fi; }
awk '/<!-- readme-test: begin -->/{on=1; next} on && /^```sh/{inb=1; next} inb && /^```/{exit} inb{print}' README.md >"$tmp/tour.sh"
check "the tour block is there" test "$(grep -c '\$B ' "$tmp/tour.sh")" -ge 8
check "the tour starts with B=build/kvsteer" grep -q '^B=build/kvsteer;' "$tmp/tour.sh"
sed -e "s|^B=build/kvsteer;|B='$BIN';|" -e "s|out/tour|$tmp/tour|g" "$tmp/tour.sh" >"$tmp/run.sh"
(set -e; . "$tmp/run.sh") >"$tmp/out" 2>"$tmp/err"
rc=$?
check "every command of the tour succeeds" test $rc -eq 0
[ $rc -eq 0 ] || { echo "--- stderr:"; tail -5 "$tmp/err"; }
check "run answers" grep -qi "tokyo" "$tmp/out"
check "tokenize --pieces shows the special token" grep -qF '<|im_start|>' "$tmp/out"
check "inspect: the model is runnable" grep -q '^runnable: yes' "$tmp/out"
check "inspect: the vector is described" grep -q '^runnable: no (a steering vector file' "$tmp/out"
check "the evaluations wrote their run files" test -s "$tmp/tour/arc-base.jsonl" -a -s "$tmp/tour/arc-cache.jsonl"
check "report prints the accuracy table" grep -q '^| arc |' "$tmp/out"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
