#!/usr/bin/env bash
# The Python package as a user gets it: `cmake --install` into a scratch
# prefix, `pip install ./python` into a scratch venv (offline: no build
# isolation, numpy and pytest from the system, see scripts/setup.sh), the
# library found through pkg-config, then the pytest suite in python/tests,
# which compares the package with the installed `kvsteer` command.
# usage: python.sh BUILD_DIR path/to/kvsteer  (from the source root;
# KVS_PYTHON picks the interpreter; KVS_SANITIZE=1 for a sanitizer build)
BUILD=$1
. "$(dirname "$0")/testutil/cli.sh" "$2"
# the first interpreter with what the test needs: python3 on the PATH may be
# another installation than the system's, which scripts/setup.sh provisions
PY=""
for py in ${KVS_PYTHON:-python3 /usr/bin/python3}; do
  if "$py" -c 'import numpy, pytest, setuptools, wheel, venv' 2>"$tmp/err"; then PY=$py; break; fi
  echo "$py: $(tail -n 1 "$tmp/err")" >>"$tmp/why"
done
if [ -z "$PY" ]; then
  echo "FAIL no Python with numpy, pytest, setuptools, wheel and venv ($(paste -sd';' "$tmp/why")): run scripts/setup.sh"
  exit 1
fi
P=$tmp/prefix
cmake --install "$BUILD" --prefix "$P" >"$tmp/log" 2>&1 || { bad "cmake --install: $(tail -n 3 "$tmp/log")"; finish; exit 1; }
"$PY" -m venv --system-site-packages "$tmp/venv" 2>"$tmp/err" || { bad "venv: $(cat "$tmp/err")"; finish; exit 1; }
# setuptools builds in the package's folder: a copy keeps the source tree clean
# (and two builds' tests from racing on it)
cp -r python "$tmp/python"
"$tmp/venv/bin/python" -m pip install -q --no-build-isolation --no-deps --no-index "$tmp/python" >"$tmp/log" 2>&1 \
  || { bad "pip install ./python: $(grep -v -i warn "$tmp/log" | tail -n 5)"; finish; exit 1; }
ok
SRC=$PWD
export PKG_CONFIG_PATH=$(dirname "$(find "$P" -name kvsteer.pc)")
unset KVSTEER_LIB
export KVS_CLI=$P/bin/kvsteer KVS_SOURCE_DIR=$SRC KVS_MODEL=$SRC/$MODEL KVS_DATA=$SRC/$DATA KVS_TEST_THREADS=$T
case $MODEL in /*) KVS_MODEL=$MODEL ;; esac
case $DATA in /*) KVS_DATA=$DATA ;; esac
PRELOAD=""
if [ "${KVS_SANITIZE:-0}" = 1 ]; then
  # the interpreter is not instrumented: the sanitizer runtimes must be loaded
  # first; Python's own allocations are not ours to leak-check
  PRELOAD="$(cc -print-file-name=libasan.so) $(cc -print-file-name=libubsan.so)"
  export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
fi
# from the scratch folder, so that python/ of the source tree cannot shadow the installed package
cd "$tmp" && LD_PRELOAD=$PRELOAD PYTHONDONTWRITEBYTECODE=1 "$tmp/venv/bin/python" -m pytest -q -p no:cacheprovider \
  "$SRC/python/tests" 2>&1 | tail -n 40
[ "${PIPESTATUS[0]}" -eq 0 ] && ok || bad "pytest python/tests"
finish
