#!/usr/bin/env bash
# `cmake --install` into a scratch prefix, then build examples/generate.c
# against what was installed, as a user would: with pkg-config (shared library,
# and the archive with the .pc's private libraries) and with find_package
# (examples/CMakeLists.txt).  Every program must print what the installed
# `kvsteer run --chat -n N` prints for the same prompt.
# usage: install.sh BUILD_DIR path/to/kvsteer  (from the source root; extra
# compile/link flags for the programs in KVS_CONSUMER_FLAGS, e.g. sanitizers)
BUILD=$1
. "$(dirname "$0")/testutil/cli.sh" "$2"
read -r -a XF <<<"${KVS_CONSUMER_FLAGS:-}"
P=$tmp/prefix
cmake --install "$BUILD" --prefix "$P" >"$tmp/log" 2>&1 || bad "cmake --install: $(tail -n 3 "$tmp/log")"
LIBDIR=$(dirname "$(find "$P" -name kvsteer.pc)")/..
for f in include/kvsteer.h bin/kvsteer; do check "installed $f" [ -f "$P/$f" ]; done
for f in libkvsteer.a libkvsteer.so pkgconfig/kvsteer.pc cmake/kvsteer/kvsteerConfig.cmake \
         cmake/kvsteer/kvsteerConfigVersion.cmake cmake/kvsteer/kvsteerTargets.cmake; do
  check "installed lib/$f" [ -e "$LIBDIR/$f" ]
done
# the shared library exports the kvs_ API and nothing else
nm -D --defined-only "$LIBDIR/libkvsteer.so" | awk '{print $3}' >"$tmp/syms"
check "exports kvs_version" grep -qx kvs_version "$tmp/syms"
check "exports only kvs_ names: $(grep -v '^kvs_' "$tmp/syms" | head -n 3 | tr '\n' ' ')" \
  [ -z "$(grep -v '^kvs_' "$tmp/syms")" ]

PROMPT="What is the capital of France?"; N=12
"$P/bin/kvsteer" run -m "$MODEL" --chat -p "$PROMPT" -n $N -t "$T" >"$tmp/ref" 2>"$tmp/err" || bad "kvsteer run: $(cat "$tmp/err")"
check "reference is not empty" [ -n "$(tr -d '[:space:]' <"$tmp/ref")" ]
same_as_run() { # name, program
  OMP_NUM_THREADS=$T "$2" "$MODEL" "$PROMPT" $N >"$tmp/out" 2>"$tmp/err" || { bad "$1: run: $(cat "$tmp/err")"; return; }
  if cmp -s "$tmp/ref" "$tmp/out"; then ok; else bad "$1: printed [$(cat "$tmp/out")], kvsteer run [$(cat "$tmp/ref")]"; fi
}
linked_to_so() { readelf -d "$1" | grep -q 'NEEDED.*libkvsteer\.so'; }
not_linked_to_so() { ! linked_to_so "$1"; }

export PKG_CONFIG_PATH=$LIBDIR/pkgconfig
check "pkg-config version" [ "$(pkg-config --modversion kvsteer)" = "$("$P/bin/kvsteer" --version 2>/dev/null | grep -o '[0-9][0-9.]*' | head -n 1)" ]
read -r -a PC <<<"$(pkg-config --cflags --libs kvsteer)"
cc -std=c11 -Wall -Wextra -Werror "${XF[@]}" examples/generate.c "${PC[@]}" -Wl,-rpath,"$(pkg-config --variable=libdir kvsteer)" \
  -o "$tmp/gen_pc" 2>"$tmp/err" || bad "pkg-config build: $(cat "$tmp/err")"
check "pkg-config build uses libkvsteer.so" linked_to_so "$tmp/gen_pc"
same_as_run "pkg-config, shared" "$tmp/gen_pc"
# static: the archive in place of -lkvsteer, the rest from the .pc (Requires.private, Libs.private)
read -r -a PCS <<<"$(pkg-config --static --cflags --libs kvsteer | sed 's/ -lkvsteer / /')"
cc -std=c11 -Wall -Wextra -Werror "${XF[@]}" examples/generate.c "$LIBDIR/libkvsteer.a" "${PCS[@]}" \
  -o "$tmp/gen_pcs" 2>"$tmp/err" || bad "pkg-config static build: $(cat "$tmp/err")"
check "static build does not need libkvsteer.so" not_linked_to_so "$tmp/gen_pcs"
same_as_run "pkg-config, static" "$tmp/gen_pcs"
# a library error reaches the program with the file named
"$tmp/gen_pc" "$tmp/nope.gguf" x 1 >/dev/null 2>"$tmp/err"
rc=$?
check "missing model: exit 1, one line naming the file" [ $rc -eq 1 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q nope.gguf "$tmp/err"

# CMake package, both targets
cmake -S examples -B "$tmp/ex" -DCMAKE_PREFIX_PATH="$P" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_C_FLAGS="${XF[*]}" -DCMAKE_EXE_LINKER_FLAGS="${XF[*]}" >"$tmp/log" 2>&1 \
  && cmake --build "$tmp/ex" >>"$tmp/log" 2>&1 || bad "find_package build: $(grep -m 3 -i error "$tmp/log")"
check "kvsteer::kvsteer is the shared library" linked_to_so "$tmp/ex/generate"
check "kvsteer::kvsteer_static is the archive" not_linked_to_so "$tmp/ex/generate_static"
same_as_run "find_package, shared" "$tmp/ex/generate"
same_as_run "find_package, static" "$tmp/ex/generate_static"

# the prefix is relocatable: the .pc finds its files from where it lies
mv "$P" "$tmp/moved"
export PKG_CONFIG_PATH=$tmp/moved/${LIBDIR#"$P"/}/pkgconfig
check "moved prefix: header found through pkg-config" [ -f "$(pkg-config --variable=includedir kvsteer)/kvsteer.h" ]
finish
