#!/usr/bin/env bash
# Build llama.cpp's llama-bench (the speed peer) or llama-server (the serving
# peer: bench/build_llamacpp.sh server) from the PyPI source distribution of
# llama-cpp-python (which vendors llama.cpp), into bench/.peer/ (ignored by
# git); prints the program's path.  Nothing of llama.cpp is committed.
#
# AMX is switched off: on the virtual machines used here the kernel does not
# grant AMX tile state and llama.cpp's AMX path crashes; the AVX-512/VNNI
# paths it then uses are the same instruction families kvsteer uses.
set -euo pipefail
cd "$(dirname "$0")"
VER=${LLAMA_CPP_PYTHON_VERSION:-0.3.36}
PEER=.peer
case "${1:-bench}" in
  bench) TARGET=llama-bench; SERVER=OFF ;;
  server) TARGET=llama-server; SERVER=ON ;;
  *) echo "build_llamacpp.sh: unknown target '$1' (bench|server)" >&2; exit 2 ;;
esac
BIN=$(pwd)/$PEER/build/bin/$TARGET
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi
mkdir -p "$PEER"
if [ ! -d "$PEER/src" ]; then
  python3 -m pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==$VER" -d "$PEER" >&2
  mkdir -p "$PEER/src"
  tar xzf "$PEER/llama_cpp_python-$VER.tar.gz" -C "$PEER/src" --strip-components=1
fi
cmake -S "$PEER/src/vendor/llama.cpp" -B "$PEER/build" -DCMAKE_BUILD_TYPE=Release \
  -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
  -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_BF16=ON \
  -DGGML_AMX_INT8=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_SERVER=$SERVER >&2
cmake --build "$PEER/build" --target "$TARGET" -j "$(nproc)" >&2
echo "$BIN"
