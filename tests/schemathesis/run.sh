#!/usr/bin/env bash
# Schemathesis against the gateway's OpenAPI document: builds the three
# services, starts the ledger (SQLite in a temporary directory), the trader
# on the paper exchange and the gateway, all on loopback, makes a venv with
# schemathesis (cached in the target dir), and fuzzes every operation of
# /api/v1/openapi.json: no answer may be a 5xx and every answer must match
# the schema. Examples per operation are bounded so the run takes about two
# minutes; SCHEMATHESIS_EXAMPLES and SCHEMATHESIS_SEED change that.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
target="${CARGO_TARGET_DIR:-$repo/target}"
venv="$target/schemathesis-venv"
# Pinned so a new release cannot change the verdict unannounced.
requirements=(schemathesis==4.32.5)
examples="${SCHEMATHESIS_EXAMPLES:-250}"
seed="${SCHEMATHESIS_SEED:-20261129}"

. tests/scripts/bins.sh
build_bins dev ledger-service trader-service gateway

if ! "$venv/bin/schemathesis" --version >/dev/null 2>&1; then
  echo "Creating the schemathesis venv in $venv"
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

bin="$target/debug"
work="$(mktemp -d)"
pids=()
cleanup() {
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[$i]}" 2>/dev/null || true
    wait "${pids[$i]}" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
ledger_addr="127.0.0.1:$(free_port)"
trader_addr="127.0.0.1:$(free_port)"
gateway_addr="127.0.0.1:$(free_port)"
token="schemathesis-$RANDOM$RANDOM"

LEDGER_LISTEN="$ledger_addr" LEDGER_DATABASE_URL="sqlite://$work/ledger.db" RUST_LOG=warn \
  "$bin/ledger-service" >"$work/ledger.log" 2>&1 &
pids+=($!)
env -i PATH="$PATH" RUST_LOG=warn "$bin/trader-service" run \
  --listen "$trader_addr" --ledger-url "http://$ledger_addr" \
  --exchange paper --market synthetic --sim-speed 600 --slots 3 \
  --store "sqlite://$work/trader.db" >"$work/trader.log" 2>&1 &
pids+=($!)
GATEWAY_LISTEN="$gateway_addr" TRADER_URL="http://$trader_addr" LEDGER_URL="http://$ledger_addr" \
  GATEWAY_TOKEN="$token" RUST_LOG=warn "$bin/gateway" >"$work/gateway.log" 2>&1 &
pids+=($!)

# Ready means both backends answer through the gateway.
deadline=$((SECONDS + 90))
until curl -fsS "http://$gateway_addr/readyz" >/dev/null 2>&1; do
  for pid in "${pids[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "a service exited before the stack was ready" >&2
      tail -n 20 "$work"/*.log >&2
      exit 1
    fi
  done
  if ((SECONDS > deadline)); then
    echo "stack not ready in 90 s" >&2
    tail -n 20 "$work"/*.log >&2
    exit 1
  fi
  sleep 0.5
done
echo "stack ready: gateway http://$gateway_addr"

status=0
"$venv/bin/schemathesis" run "http://$gateway_addr/api/v1/openapi.json" \
  --url "http://$gateway_addr" \
  --checks not_a_server_error,response_schema_conformance \
  --max-examples "$examples" --seed "$seed" \
  --header "Authorization: Bearer $token" \
  --request-timeout 10 --workers 2 \
  --generation-database none --no-color || status=$?
if [ "$status" -ne 0 ]; then
  echo "schemathesis failed (exit $status); service logs:" >&2
  tail -n 30 "$work"/*.log >&2
fi
exit "$status"
