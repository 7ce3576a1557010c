#!/usr/bin/env bash
# Throughput of this checkout against an older revision, measured side by
# side in one run, with the lean speed-limit server of ../shared/tools as the
# reference when it is there (optional: the comparison runs without it).
#
#   bench/compare_builds.sh REV            # 3 rounds of 10 s, 64 connections
#   BENCH_DURATION=2s BENCH_ROUNDS=1 bench/compare_builds.sh REV
#   BENCH_SCENARIOS="s1-always" bench/compare_builds.sh REV
#
# REV is built from a git worktree in target/compare/ (nothing is
# committed); medians and each round's figure go to
# bench/results/compare-SCENARIO.json. Scenarios (journal off unless said;
# the default is the first three, BENCH_SCENARIOS=all runs every one):
#   s1-off, s1-always   PUT booking for unique users, 10,000,000 tickets
#   s4a                 GET /api/status/1
#   s2                  PUT booking on a sold-out event with 100,000 waiting
#                       (filled through the API before each measurement)
#   s3                  POST /api/book with unique bodies
#   s4b                 GET /api/booking-status/1/u1
#   s5                  mixed: 1,000 events, 80% reads, 20% books and cancels
#                       (bench/tools mixed; the lean server lacks its routes)
#   s1-c1, s1-c256      s1-off at 1 and at 256 connections
# Within a round the variants take turns, and the starting one rotates from
# round to round.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

REV=${1:?usage: bench/compare_builds.sh REV}
DURATION=${BENCH_DURATION:-10s}
ROUNDS=${BENCH_ROUNDS:-3}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
SCENARIOS=${BENCH_SCENARIOS:-s1-off s1-always s4a}
[ "$SCENARIOS" = all ] && SCENARIOS="s1-off s1-always s4a s2 s3 s4b s5 s1-c1 s1-c256"
RAW=$(mktemp -d)
trap 'rm -rf "$RAW"' EXIT
# Unique bodies for s3, one per line (oha -Z).
BODIES="$RAW/bodies.txt"
[[ " $SCENARIOS " == *" s3 "* ]] && python3 - "$BODIES" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(2_000_000):
        f.write('{"eventId": 1, "userId": "b%d"}\n' % i)
PY

ensure_bench_tools
OLD_SRC="$ROOT/target/compare/src-$REV"
if [ ! -d "$OLD_SRC" ]; then
  # A worktree whose folder went with a `cargo clean` is still registered.
  git -C "$ROOT" worktree prune
  git -C "$ROOT" worktree add --detach "$OLD_SRC" "$REV" >/dev/null
fi
(cd "$OLD_SRC" && CARGO_TARGET_DIR="$ROOT/target/compare/target" cargo build --release --locked --quiet --bin boxoffice)
OLD_BIN="$ROOT/target/compare/target/release/boxoffice"
NEW_BIN="$BIN"

ensure_lean

# run VARIANT SCENARIO ROUND: one measurement.
run() {
  local variant=$1 scenario=$2 round=$3 dir="$RAW/$2-$1-$3"
  local journal="BOXOFFICE__JOURNAL__ENABLED=false"
  [ "$scenario" = s1-always ] && journal="BOXOFFICE__JOURNAL__FSYNC=always"
  case $variant in
    lean) start_lean "$dir" ;;
    # Each build reads the config.toml of its own tree (an older one
    # refuses keys added since).
    old) pushd "$OLD_SRC" >/dev/null
         BIN=$OLD_BIN start_boxoffice "$dir" "$journal" BOXOFFICE__SNAPSHOT__INTERVAL_SECS=86400
         popd >/dev/null ;;
    new) BIN=$NEW_BIN start_boxoffice "$dir" "$journal" BOXOFFICE__SNAPSHOT__INTERVAL_SECS=86400 ;;
  esac
  local base="http://$SERVER_ADDR" conns=$CONNECTIONS
  local oha_run=(oha -z "$DURATION" --no-tui --output-format json)
  case $scenario in
    s1-c1) conns=1 ;;
    s1-c256) conns=256 ;;
  esac
  if [ "$variant" != lean ]; then
    case $scenario in
      s2) create_event 1
          oha -n 100001 -c 64 -m PUT --no-tui --output-format quiet \
            --rand-regex-url "$base/api/events/1/bookings/q[0-9]{12}" ;;
      s5) oha -n 1000 -c 1 -m POST -T application/json -d '{"totalTickets": 1000000}' --no-tui \
            --output-format quiet "$base/api/initialize" ;;
      *) create_event 10000000 ;;
    esac
    [ "$scenario" = s4b ] && curl -sf -o /dev/null -X PUT "$base/api/events/1/bookings/u1"
  fi
  case $scenario in
    s1-*|s2) "${oha_run[@]}" -c "$conns" -m PUT --rand-regex-url "$base/api/events/1/bookings/u[0-9]{12}" ;;
    s3) "${oha_run[@]}" -c "$conns" -m POST -T application/json -Z "$BODIES" "$base/api/book" ;;
    s4a) "${oha_run[@]}" -c "$conns" "$base/api/status/1" ;;
    s4b) "${oha_run[@]}" -c "$conns" "$base/api/booking-status/1/u1" ;;
    s5) "$MIXED_BIN" "$base" 1000 "$conns" "${DURATION%s}" ;;
  esac >"$RAW/$scenario.$variant-$round.json"
  stop_boxoffice TERM
}

variants=(old new)
[ -n "$LEAN_BIN" ] && variants=(lean old new)
for round in $(seq 1 "$ROUNDS"); do
  # Rotate who goes first, so no variant always follows the same one.
  shift_by=$(( (round - 1) % ${#variants[@]} ))
  order=("${variants[@]:$shift_by}" "${variants[@]:0:$shift_by}")
  for scenario in $SCENARIOS; do
    for variant in "${order[@]}"; do
      [ "$variant" = lean ] && { [ "$scenario" = s1-always ] || [ "$scenario" = s5 ]; } && continue
      run "$variant" "$scenario" "$round"
      echo "round $round $scenario $variant done" >&2
    done
  done
done

for scenario in $SCENARIOS; do
  mkdir -p "$RAW/$scenario"
  mv "$RAW/$scenario".*.json "$RAW/$scenario/" 2>/dev/null || true
  for f in "$RAW/$scenario"/*.json; do mv "$f" "$RAW/$scenario/$(basename "$f" | sed "s/^$scenario\.//")"; done
  echo
  echo "### $scenario: $REV (old) against this checkout (new)"
  python3 "$ROOT/bench/summarise.py" "compare-$scenario" "$RAW/$scenario" \
    "$ROOT/bench/results/compare-$scenario.json" \
    $( [ -n "$LEAN_BIN" ] && [[ ! " s1-always s5 " == *" $scenario "* ]] && echo lean ) old new
done
