#!/usr/bin/env bash
# ccxt conformance: builds `trader-service`, makes a venv with ccxt and
# pytest (cached in the target dir), and runs tests/ccxt against
# `trader-service kraken-sim`. Exits non-zero on any failure, including
# pytest finding no tests at all (its exit code 5).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
target="${CARGO_TARGET_DIR:-$repo/target}"
venv="$target/ccxt-venv"
# Pinned so a new ccxt release cannot change the verdict unannounced.
requirements=(ccxt==4.5.90 pytest==9.2.0)

. tests/scripts/bins.sh
build_bins dev trader-service

if ! "$venv/bin/python" -c 'import ccxt, pytest' >/dev/null 2>&1; then
  echo "Creating the ccxt venv in $venv"
  if ! python3 -m venv "$venv" 2>/dev/null; then
    # Debian splits venv support out of python3.
    if command -v apt-get >/dev/null 2>&1; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    rm -rf "$venv"
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${requirements[@]}"
fi

export HEALGRID_TRADER_BIN="$target/debug/trader-service"
status=0
"$venv/bin/python" -m pytest -q -p no:cacheprovider tests/ccxt || status=$?
if [ "$status" -eq 5 ]; then
  echo "ccxt conformance: pytest collected no tests" >&2
  exit 1
fi
exit "$status"
