#!/usr/bin/env bash
# The main job: install what is needed, build kvsteer, build a reasoning vector
# from the bundled demo set (once), and show the default model answering a few
# questions unsteered and steered, side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh release >/dev/null
BIN=build/kvsteer
MODEL=models/SmolLM2-135M-Instruct.Q4_1.gguf
VEC=out/demo-reasoning.gguf
mkdir -p out
if [ ! -f "$VEC" ]; then
  echo "== extracting a reasoning vector from data/demo/demo_traces.jsonl (one-off) ==" >&2
  "$BIN" extract -m "$MODEL" --traces data/demo/demo_traces.jsonl --pairs 16 --shots 3 -o "$VEC"
fi
CV=${KVS_DEMO_CV:-4}
echo "== SmolLM2-135M-Instruct, greedy: unsteered vs cache-steered (c_v=$CV, c_k=0, layers 1-) =="
"$BIN" compare -m "$MODEL" --steer "$VEC" --cv "$CV" -n 160 \
  -p "Which is heavier, a kilogram of iron or a kilogram of feathers?" \
  -p "A farmer has 12 cows and buys 5 more, then sells 3. How many cows does he have?" \
  -p "Why does ice float on water?" \
  -p "Which gas do plants take in from the air to make food?"
