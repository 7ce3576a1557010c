#!/usr/bin/env bash
# The on-sale audience (issue 20): booking throughput on an event while
# WATCHERS clients (default 2,000) watch its public live stream, against the
# same bookings with nobody watching, in one run. Release build, rate limit
# and access log off, journal off (the cost measured is the streams', not
# the disk's). Prints one JSON object; results in bench/results/watchers.json.
#   bench/watchers.sh
#   WATCHERS=10000 bench/watchers.sh     # needs ulimit -n above 2 x WATCHERS
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ensure_bench_tools
(cd "$ROOT" && cargo build --release --locked --quiet -p boxoffice-bench --bin watchers)
WORK=$(mktemp -d)
trap 'stop_boxoffice; rm -rf "$WORK"' EXIT
# Every stream comes from loopback: lift the per-address shares.
# Room for every watcher (live.max_streams is 10,000 by default).
STREAMS=$(( ${WATCHERS:-2000} + 100 ))
start_boxoffice "$WORK" BOXOFFICE__LIVE__MAX_STREAMS_PER_IP=0 BOXOFFICE__SERVER__MAX_CONNECTIONS_PER_IP=0 \
  BOXOFFICE__LIVE__MAX_STREAMS=$(( STREAMS > 10000 ? STREAMS : 10000 )) \
  BOXOFFICE__JOURNAL__ENABLED=false
OUT="$ROOT/bench/results/watchers.json"
"$ROOT/target/release/watchers" "http://$SERVER_ADDR" | tee "$OUT"
