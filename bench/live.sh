#!/usr/bin/env bash
# Live updates under load (issue: live updates): LIVE_STREAMS booking streams
# (default 10,000) on one event whose queue holds LIVE_QUEUE users (100,000),
# then LIVE_CANCELS cancels at the head (10,000), which move every watched
# place. Reports the time until every stream showed its final state, the
# server's CPU seconds over it, and booking throughput with the streams open
# against none. Release build, rate limit and access log off, fsync "always".
#   bench/live.sh                  # full size; results in bench/results/live.json
#   LIVE_STREAMS=1000 LIVE_QUEUE=10000 LIVE_CANCELS=1000 bench/live.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ensure_bench_tools
(cd "$ROOT" && cargo build --release --locked --quiet -p boxoffice-bench --bin live)
WORK=$(mktemp -d)
trap 'stop_boxoffice; rm -rf "$WORK"' EXIT
# Every stream comes from loopback: lift the per-address shares.
start_boxoffice "$WORK" BOXOFFICE__LIVE__MAX_STREAMS_PER_IP=0 BOXOFFICE__SERVER__MAX_CONNECTIONS_PER_IP=0
OUT="$ROOT/bench/results/live.json"
"$ROOT/target/release/live" "http://$SERVER_ADDR" "$SERVER_PID" | tee "$OUT"
