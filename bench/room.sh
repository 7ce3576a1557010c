#!/usr/bin/env bash
# The waiting room (issue 22), in one run against the release build:
# ROOM_ENTRIES (1,000,000) people join one event's room before its sales
# start (memory per entry), the draw of all of them (time, and status reads
# meanwhile), join throughput against booking throughput on that event
# (alternately, ROOM_ROUNDS each), and admissions at 60,000 a minute while
# ROOM_STREAMS (10,000) entry streams watch (bookings on another event
# meanwhile, against none). Rate limit and access log off, fsync "always".
#   bench/room.sh                       # full size; bench/results/room.json
#   ROOM_ENTRIES=100000 ROOM_STREAMS=1000 ROOM_LOAD_SECS=2 ROOM_ROUNDS=1 ROOM_OUT=/tmp/r.json bench/room.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ensure_bench_tools
# Every stream is a connection of its own, from loopback.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
WORK=$(mktemp -d)
trap 'stop_boxoffice; rm -rf "$WORK"' EXIT
start_boxoffice "$WORK" BOXOFFICE__LIVE__MAX_STREAMS_PER_IP=0 BOXOFFICE__SERVER__MAX_CONNECTIONS_PER_IP=0 \
  BOXOFFICE__LIVE__MAX_STREAMS=20000 BOXOFFICE__LIMITS__MAX_BOOKINGS_PER_EVENT=100000000
"$TARGET/room" "http://$SERVER_ADDR" "$SERVER_PID" | tee "${ROOM_OUT:-$ROOT/bench/results/room.json}"
