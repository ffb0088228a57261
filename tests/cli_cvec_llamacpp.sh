#!/usr/bin/env bash
# A control vector written by kvsteer, loaded in llama.cpp: steered next-token
# logits of both agree as closely as unsteered ones (tests/cvec_llamacpp.py).
# llama.cpp is the peer that bench/build_llamacpp.sh builds into bench/.peer
# (not built by the test command); without it the test is skipped (exit 77).
# usage: cli_cvec_llamacpp.sh path/to/kvsteer
. "$(dirname "$0")/testutil/cli.sh"
PEER=${KVS_PEER:-bench/.peer}
if [ ! -f "$PEER/build/bin/libllama.so" ] || [ ! -d "$PEER/src/llama_cpp" ]; then
  echo "SKIPPED: llama.cpp peer not built ($PEER/build/bin/libllama.so; run bench/build_llamacpp.sh)"; exit 77
fi
export PYTHONPATH="$PEER/src${PYTHONPATH:+:$PYTHONPATH}" LLAMA_CPP_LIB_PATH="$(cd "$PEER/build/bin" && pwd)"
if ! python3 -c "import numpy, llama_cpp" 2>"$tmp/err"; then
  echo "SKIPPED: llama-cpp-python from $PEER/src does not import: $(tail -1 "$tmp/err")"; exit 77
fi
"$BIN" extract -m "$MODEL" --traces data/demo/demo_traces.jsonl --pairs 8 --shots 1 --kind act \
  --format controlvector -t "$T" -q -o "$tmp/cv.gguf" 2>"$tmp/err" || bad "extract: $(cat "$tmp/err")"
if python3 "$(dirname "$0")/cvec_llamacpp.py" "$BIN" "$MODEL" "$tmp/cv.gguf"; then ok; else bad "llama.cpp parity"; fi
finish
