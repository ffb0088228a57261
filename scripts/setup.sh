#!/usr/bin/env bash
# Install what kvsteer needs on Debian/Ubuntu (build tools and libraries from
# Debian's packages), then fetch the default model.  Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS=(build-essential cmake pkg-config libpcre2-dev libcjson-dev libcmocka-dev libmicrohttpd-dev curl gnuplot-nox
      python3 python3-pip python3-venv python3-setuptools python3-wheel python3-numpy python3-pytest
      chromium chromium-driver)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Python packages for the tests (tests/requirements.txt) in the project's own
# virtual environment: Debian's Python refuses packages installed system-wide
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv || { echo "setup: cannot create .venv (install python3-venv)" >&2; exit 1; }
fi
.venv/bin/pip install -q --disable-pip-version-check -r tests/requirements.txt
./scripts/fetch_model.sh
