#!/usr/bin/env bash
# One command for the local healgrid stack: builds the release binaries once,
# starts the ledger (embedded SQLite under ./.healgrid/) and the trader on the
# paper exchange with a synthetic market at 600x speed, waits until both answer
# gRPC health, starts the gateway (REST API + dashboard) in front of them,
# prints the dashboard URL, and stops all three on Ctrl-C / SIGTERM.
#
# Every start is a fresh paper demo: the paper exchange lives inside the trader
# process, so its orders end with it; the state of the previous run is wiped.
#
# Settings (environment): LEDGER_LISTEN (127.0.0.1:50051), TRADER_LISTEN
# (127.0.0.1:50052), GATEWAY_LISTEN (127.0.0.1:8080), SIM_SPEED (600), ORDER_SIZE_USD (unset: the pair minimum + 5 %; XDGUSD's ordermin is
# 50 DOGE), SLOTS (3), RUST_LOG (info), GATEWAY_TOKEN (unset: actions open
# on loopback); any other trader setting (see `trader-service run --help`) is
# passed through as well.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STATE="$ROOT/.healgrid"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET/release"

export LEDGER_LISTEN="${LEDGER_LISTEN:-127.0.0.1:50051}"
export TRADER_LISTEN="${TRADER_LISTEN:-127.0.0.1:50052}"
export GATEWAY_LISTEN="${GATEWAY_LISTEN:-127.0.0.1:8080}"
export SIM_SPEED="${SIM_SPEED:-600}"
export SLOTS="${SLOTS:-3}"
export RUST_LOG="${RUST_LOG:-info}"

echo "==> building release binaries (once; later runs are incremental)"
cargo build --release -p ledger-service -p trader-service -p gateway

rm -rf "$STATE"
mkdir -p "$STATE"

PIDS=()
stop() { # exit-code
  trap - INT TERM EXIT
  echo
  echo "==> stopping (SIGTERM: the trader finishes its loop and flushes its outbox)"
  # Trader first, so its last ledger writes reach a running ledger.
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill -TERM "${PIDS[$i]}" 2>/dev/null || true
    wait "${PIDS[$i]}" 2>/dev/null || true
  done
  echo "==> stopped; logs and databases are in $STATE"
  exit "$1"
}
trap 'stop 0' INT TERM
trap 'stop $?' EXIT

LEDGER_DATABASE_URL="sqlite://$STATE/ledger.db" \
  "$BIN/ledger-service" >"$STATE/ledger.log" 2>&1 &
PIDS+=($!)

LEDGER_URL="http://$LEDGER_LISTEN" \
TRADER_DATABASE_URL="sqlite://$STATE/trader.db" \
  "$BIN/trader-service" run --exchange paper --market synthetic --sim-speed "$SIM_SPEED" \
  >"$STATE/trader.log" 2>&1 &
PIDS+=($!)

TRADER_URL="http://$TRADER_LISTEN" LEDGER_URL="http://$LEDGER_LISTEN" \
  "$BIN/gateway" >"$STATE/gateway.log" 2>&1 &
PIDS+=($!)

wait_healthy() { # name url pid log
  local deadline=$((SECONDS + 60))
  until "$BIN/trader-service" ctl --url "$2" health >/dev/null 2>&1; do
    if ! kill -0 "$3" 2>/dev/null; then
      echo "!! $1 exited; last lines of $4:" >&2
      tail -n 20 "$4" >&2
      exit 1
    fi
    if ((SECONDS > deadline)); then
      echo "!! $1 not healthy after 60 s; see $4" >&2
      exit 1
    fi
    sleep 0.2
  done
  echo "    $1 healthy at $2"
}
echo "==> waiting for health"
wait_healthy ledger "http://$LEDGER_LISTEN" "${PIDS[0]}" "$STATE/ledger.log"
wait_healthy trader "http://$TRADER_LISTEN" "${PIDS[1]}" "$STATE/trader.log"
deadline=$((SECONDS + 30))
until curl -fsS "http://$GATEWAY_LISTEN/healthz" >/dev/null 2>&1; do
  if ! kill -0 "${PIDS[2]}" 2>/dev/null || ((SECONDS > deadline)); then
    echo "!! gateway not up; last lines of $STATE/gateway.log:" >&2
    tail -n 20 "$STATE/gateway.log" >&2
    exit 1
  fi
  sleep 0.2
done
echo "    gateway healthy at http://$GATEWAY_LISTEN"

cat <<INFO

healgrid is running (paper exchange, synthetic XDGUSD market at ${SIM_SPEED}x):
  ledger  gRPC  $LEDGER_LISTEN   db  $STATE/ledger.db   log  $STATE/ledger.log
  trader  gRPC  $TRADER_LISTEN   db  $STATE/trader.db   log  $STATE/trader.log
  gateway HTTP  $GATEWAY_LISTEN   log  $STATE/gateway.log

Dashboard: http://$GATEWAY_LISTEN/

Look at it:
  $BIN/trader-service ctl status          # slots, orders, positions with bands
  $BIN/trader-service ctl pause           # and: ctl resume
  grpcurl -plaintext $TRADER_LISTEN list
  grpcurl -plaintext $TRADER_LISTEN healgrid.trader.v1.TraderService/GetStatus
  grpcurl -plaintext -d '{"reason":"look"}' $TRADER_LISTEN healgrid.trader.v1.TraderService/Pause
  grpcurl -plaintext -d '{"bot_id":"paper:XDGUSD:main"}' $LEDGER_LISTEN healgrid.ledger.v1.LedgerService/ListOpenPositions
  curl -s http://$GATEWAY_LISTEN/api/v1/status
  curl -s -X POST -H 'Idempotency-Key: pause-1' http://$GATEWAY_LISTEN/api/v1/pause
  curl -s http://$GATEWAY_LISTEN/api/v1/openapi.json
  tail -f $STATE/trader.log

Ctrl-C stops all three.
INFO

# Wait until a service dies or we are told to stop.
wait -n "${PIDS[@]}" || true
echo "!! a service exited on its own; see the logs in $STATE" >&2
exit 1
