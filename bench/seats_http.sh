#!/usr/bin/env bash
# Reserved seating over HTTP (issue 37): bench/tools' `seats_http` against
# one release server with `fsync = "always"` (seated against unseated
# bookings, `GET .../seats` of a 100,000-seat hall, WATCHERS streams of its
# live map), then the restart of a server holding one 95%-sold hall: from
# the journal alone (SIGKILL) and from the final snapshot (SIGTERM), each
# as the service's own "restored ... in N ms" and the wall time from exec
# to listening. Results in bench/results/seats_http.json.
#   bench/seats_http.sh
#   WATCHERS=2000 ROUNDS=1 SEATS_LOAD_SECS=2 bench/seats_http.sh   # quicker
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ensure_bench_tools
build -p boxoffice-bench --bin seats_http
SEATS="$TARGET/seats_http"
WORK=$(mktemp -d)
trap 'stop_boxoffice KILL; rm -rf "$WORK"' EXIT
WATCHERS=${WATCHERS:-10000}
export WATCHERS
# A stream a watcher and a connection each side of loopback.
ulimit -n $(( WATCHERS * 2 + 4096 )) 2>/dev/null || ulimit -n "$(ulimit -Hn)"

start_boxoffice "$WORK/load" BOXOFFICE__JOURNAL__FSYNC=always \
  BOXOFFICE__LIVE__MAX_STREAMS_PER_IP=0 BOXOFFICE__SERVER__MAX_CONNECTIONS_PER_IP=0 \
  BOXOFFICE__LIVE__MAX_STREAMS=$(( WATCHERS + 1000 ))
LOAD=$(SERVER_PID=$SERVER_PID "$SEATS" "http://$SERVER_ADDR")
stop_boxoffice KILL

# ms from starting the server until it listens; sets RESTORED too.
timed_start() {
  local started=$(date +%s%N)
  start_boxoffice "$WORK/restart" BOXOFFICE__JOURNAL__FSYNC=always
  START_MS=$(( ($(date +%s%N) - started) / 1000000 ))
  RESTORED=$(grep -o 'in [0-9]* ms; next' "$WORK/restart/server.log" | tail -1 | tr -dc 0-9 || true)
}
start_boxoffice "$WORK/restart" BOXOFFICE__JOURNAL__FSYNC=always
HALL=$("$SEATS" fill "http://$SERVER_ADDR" 95)
SOLD=$(curl -sf "http://$SERVER_ADDR/api/events/$HALL" | python3 -c 'import json,sys; e=json.load(sys.stdin)["event"]; print(e["total_tickets"]-e["available_tickets"])')
stop_boxoffice KILL
timed_start
JOURNAL_MS=$RESTORED JOURNAL_START_MS=$START_MS
stop_boxoffice TERM
timed_start
SNAPSHOT_MS=$RESTORED SNAPSHOT_START_MS=$START_MS
stop_boxoffice KILL

OUT="$ROOT/bench/results/seats_http.json"
python3 - "$LOAD" "$SOLD" "$JOURNAL_MS" "$JOURNAL_START_MS" "$SNAPSHOT_MS" "$SNAPSHOT_START_MS" <<'EOF' | tee "$OUT"
import json, sys
load = json.loads(sys.argv[1])
sold, jr, js, sr, ss = (int(x) for x in sys.argv[2:])
load["restart_of_a_hall"] = {
    "seats_sold": sold,
    "journal_only": {"restored_ms": jr, "exec_to_listening_ms": js},
    "from_snapshot": {"restored_ms": sr, "exec_to_listening_ms": ss},
}
print(json.dumps(load, indent=1))
EOF
