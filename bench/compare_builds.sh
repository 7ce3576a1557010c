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
# bench/results/compare-SCENARIO.json. Scenarios: s1 PUT booking for unique users on an event of
# 10,000,000 tickets with the journal off and with fsync "always"; s4a GET
# status with the journal off. Within a round the variants take turns, and
# the starting one rotates from round to round.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

REV=${1:?usage: bench/compare_builds.sh REV}
DURATION=${BENCH_DURATION:-10s}
ROUNDS=${BENCH_ROUNDS:-3}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
SCENARIOS=${BENCH_SCENARIOS:-s1-off s1-always s4a}
RAW=$(mktemp -d)
trap 'rm -rf "$RAW"' EXIT

ensure_tools
OLD_SRC="$ROOT/target/compare/src-$REV"
if [ ! -d "$OLD_SRC" ]; then
  # A worktree whose folder went with a `cargo clean` is still registered.
  git -C "$ROOT" worktree prune
  git -C "$ROOT" worktree add --detach "$OLD_SRC" "$REV" >/dev/null
fi
(cd "$OLD_SRC" && CARGO_TARGET_DIR="$ROOT/target/compare/target" cargo build --release --locked --quiet --bin boxoffice)
OLD_BIN="$ROOT/target/compare/target/release/boxoffice"
NEW_BIN="$BIN"

LEAN_SRC="$ROOT/../shared/tools/limit-server"
LEAN_BIN=""
if [ -d "$LEAN_SRC" ]; then
  mkdir -p "$ROOT/target/compare/lean"
  cp -r "$LEAN_SRC/." "$ROOT/target/compare/lean/"
  # A copy inside this repository must not join its workspace.
  grep -q "^\[workspace\]" "$ROOT/target/compare/lean/Cargo.toml" || printf "\n[workspace]\n" >>"$ROOT/target/compare/lean/Cargo.toml"
  (cd "$ROOT/target/compare/lean" && cargo build --release --locked --quiet)
  LEAN_BIN="$ROOT/target/compare/lean/target/release/limit-server"
fi

start_lean() {
  local dir=$1
  mkdir -p "$dir"
  "$LEAN_BIN" 0 >"$dir/server.log" 2>&1 &
  SERVER_PID=$!
  SERVER_ADDR=""
  for _ in $(seq 1 100); do
    SERVER_ADDR=$(sed -n 's/.*listening on http:\/\/\([0-9.:]*\).*/\1/p' "$dir/server.log" | head -1)
    [ -n "$SERVER_ADDR" ] && return 0
    sleep 0.1
  done
  echo "lean limit server did not start" >&2
  return 1
}

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
  [ "$variant" = lean ] || create_event 10000000
  case $scenario in
    s1-*) oha -z "$DURATION" -c "$CONNECTIONS" -m PUT --no-tui --output-format json \
            --rand-regex-url "http://$SERVER_ADDR/api/events/1/bookings/u[0-9]{12}" ;;
    s4a) oha -z "$DURATION" -c "$CONNECTIONS" --no-tui --output-format json \
            "http://$SERVER_ADDR/api/status/1" ;;
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
      [ "$variant" = lean ] && [ "$scenario" = s1-always ] && continue
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
    $( [ -n "$LEAN_BIN" ] && [ "$scenario" != s1-always ] && echo lean ) old new
done
