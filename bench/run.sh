#!/usr/bin/env bash
# The benchmark harness: every scenario against boxoffice (journal off,
# fsync = "interval", fsync = "always") and against the speed limit,
# alternating within each round; medians over rounds; ratios to the limit.
# The limit is the lean server of ../shared/tools/limit-server (built from a
# copy in target/; see bench/README.md), except for s5, whose create and
# cancel routes it lacks: there bench/tools' limit server stands in. Without
# ../shared every ratio is to bench/tools' limit, and the report says so. Writes bench/results/latest.json, the table in bench/README.md and
# bench/results/connections.svg.
#
#   bench/run.sh                     # the full run: 10 s per measurement, 3 rounds (about 25 minutes)
#   BENCH_SMOKE=1 bench/run.sh       # 2 s, 1 round, small fixtures, results to a scratch dir (CI)
#
# Scenarios (64 connections unless said):
#   s1  PUT /api/events/1/bookings/{unique user}, event of 10,000,000 tickets
#   s2  the same on a sold-out event whose queue already holds BENCH_QUEUE_FILL bookings
#   s3  POST /api/book with unique bodies (oha -Z, one body per line)
#   s4a GET /api/status/1          s4b GET /api/booking-status/1/u1
#   s5  mixed: 1,000 events, 80% reads, 20% books and cancels (bench/tools mixed)
#   s6  s1 at 1, 16, 64 and 256 connections
set -euo pipefail
source "$(dirname "$0")/lib.sh"

if [ -n "${BENCH_SMOKE:-}" ]; then
  DURATION=${BENCH_DURATION:-2}; ROUNDS=${BENCH_ROUNDS:-1}; QUEUE_FILL=${BENCH_QUEUE_FILL:-2000}
  BODIES=10000; CURVE="1 64"; OUT=${BENCH_OUT:-$(mktemp -d)}
else
  DURATION=${BENCH_DURATION:-10}; ROUNDS=${BENCH_ROUNDS:-3}; QUEUE_FILL=${BENCH_QUEUE_FILL:-1000000}
  BODIES=2000000; CURVE="1 16 64 256"; OUT=${BENCH_OUT:-$ROOT/bench/results}
fi
SCENARIOS=${BENCH_SCENARIOS:-"s1 s2 s3 s4a s4b s5 s6"}
VARIANTS="limit off interval always"
WORK=$(mktemp -d)
trap 'kill "$SERVER_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
SERVER_PID=""

ensure_bench_tools
ensure_lean
mkdir -p "$OUT"

mode_env() {
  case $1 in
    off) echo BOXOFFICE__JOURNAL__ENABLED=false ;;
    interval) echo BOXOFFICE__JOURNAL__FSYNC=interval ;;
    always) echo BOXOFFICE__JOURNAL__FSYNC=always ;;
  esac
}

# The sold-out event for s2: one ticket, QUEUE_FILL people waiting; built once,
# copied for every run.
build_queue_fixture() {
  local dir=$WORK/fixture
  start_boxoffice "$dir" BOXOFFICE__JOURNAL__FSYNC=interval
  create_event 1
  "$OHA" -n "$((QUEUE_FILL + 1))" -c 64 -m PUT --no-tui --output-format quiet \
    --rand-regex-url "http://$SERVER_ADDR/api/events/1/bookings/q[0-9]{14}"
  stop_boxoffice TERM
  rm -f "$dir/server.log"
}

# s3's bodies: one unique booking request per line.
python3 - "$WORK/bodies.txt" "$BODIES" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        f.write('{"eventId": 1, "userId": "b%d"}\n' % i)
PY
[[ " $SCENARIOS " == *" s2 "* ]] && build_queue_fixture

# measure SCENARIO VARIANT CONNECTIONS RESULT_FILE
measure() {
  local scenario=$1 variant=$2 conns=$3 result=$4
  local dir="$WORK/run/$scenario-$variant-$conns"
  rm -rf "$dir"
  if [ "$variant" = limit ]; then
    # The lean server has no routes for the mixed scenario (create, cancel):
    # there bench/tools' limit server stands in.
    if [ -n "$LEAN_BIN" ] && [ "$scenario" != s5 ]; then start_lean "$dir"; else start_limit "$dir"; fi
  else
    [ "$scenario" = s2 ] && { mkdir -p "$dir"; cp "$WORK"/fixture/* "$dir"/; }
    start_boxoffice "$dir" $(mode_env "$variant")
  fi
  local base="http://$SERVER_ADDR" oha=("$OHA" -z "${DURATION}s" -c "$conns" --no-tui --output-format json)
  # The lean limit server holds no state: nothing to create there.
  local prepare=true
  [ "$variant" = limit ] && [ "$scenario" != s5 ] && prepare=false
  if $prepare; then
    case $scenario in
      s1|s3|s4a|s6) create_event 10000000 ;;
      s4b) create_event 10000000
           curl -sf -o /dev/null -X PUT "$base/api/events/1/bookings/u1" ;;
    esac
  fi
  case $scenario in
    s1|s6|s2) "${oha[@]}" -m PUT --rand-regex-url "$base/api/events/1/bookings/u[0-9]{12}" >"$result" ;;
    s3) "${oha[@]}" -m POST -T application/json -Z "$WORK/bodies.txt" "$base/api/book" >"$result" ;;
    s4a) "${oha[@]}" "$base/api/status/1" >"$result" ;;
    s4b) "${oha[@]}" "$base/api/booking-status/1/u1" >"$result" ;;
    s5) "$OHA" -n 1000 -c 1 -m POST -T application/json -d '{"totalTickets": 1000000}' --no-tui \
          --output-format quiet "$base/api/initialize"
       "$MIXED_BIN" "$base" 1000 "$conns" "$DURATION" >"$result" ;;
  esac
  stop_boxoffice TERM
}

RAW="$WORK/raw"
for round in $(seq 1 "$ROUNDS"); do
  for scenario in $SCENARIOS; do
    conns_list=64
    [ "$scenario" = s6 ] && conns_list=$CURVE
    for conns in $conns_list; do
      # s6 at 64 connections is s1: measured once, reported in both.
      [ "$scenario" = s6 ] && [ "$conns" = 64 ] && [[ " $SCENARIOS " == *" s1 "* ]] && continue
      mkdir -p "$RAW/$scenario/$conns"
      # Each round starts with a different variant, so whatever the order
      # costs (the run right after another) is spread over all of them.
      read -r -a order <<<"$VARIANTS"
      shift_by=$(( (round - 1) % ${#order[@]} ))
      for variant in "${order[@]:shift_by}" "${order[@]:0:shift_by}"; do
        measure "$scenario" "$variant" "$conns" "$RAW/$scenario/$conns/$variant-$round.json"
        echo "round $round $scenario c=$conns $variant done" >&2
      done
    done
  done
done

python3 "$ROOT/bench/report.py" "$RAW" "$OUT" ${BENCH_SMOKE:+--smoke} ${LEAN_BIN:+--lean}
