#!/usr/bin/env bash
# Booking throughput and latency with the journal off, fsync = "interval" and
# fsync = "always", measured side by side: oha, unique users on one event of
# 10,000,000 tickets, rounds alternating between modes, medians reported.
#
#   bench/journal_modes.sh            # 3 rounds of 10 s, 64 connections
#   BENCH_DURATION=2s BENCH_ROUNDS=1 bench/journal_modes.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"

DURATION=${BENCH_DURATION:-10s}
ROUNDS=${BENCH_ROUNDS:-3}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
OUT="$ROOT/bench/results"
RAW=$(mktemp -d)
trap 'rm -rf "$RAW"' EXIT

ensure_tools
declare -A MODE_ENV=(
  [off]="BOXOFFICE__JOURNAL__ENABLED=false"
  [interval]="BOXOFFICE__JOURNAL__FSYNC=interval"
  [always]="BOXOFFICE__JOURNAL__FSYNC=always"
)
for round in $(seq 1 "$ROUNDS"); do
  for mode in off interval always; do
    start_boxoffice "$RAW/$mode-$round" ${MODE_ENV[$mode]} BOXOFFICE__SNAPSHOT__INTERVAL_SECS=86400
    create_event 10000000
    oha -z "$DURATION" -c "$CONNECTIONS" -m PUT --no-tui --output-format json \
      --rand-regex-url "http://$SERVER_ADDR/api/events/1/bookings/u[0-9]{12}" \
      >"$RAW/$mode-$round.json"
    stop_boxoffice TERM
    echo "round $round $mode done" >&2
  done
done

python3 "$ROOT/bench/summarise.py" journal-modes "$RAW" "$OUT/journal-modes.json" off interval always
