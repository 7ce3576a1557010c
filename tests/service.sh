# Sourced by tests/contract/run.sh and tests/browser/run.sh: runs the built
# debug binary on a free loopback port with a scratch data directory, the
# rate limit and access log off, and stops it (by PID) when the script exits.
#   start_service ROOT   sets WORK (scratch folder), LOG, SERVER_PID and BASE
#   stop_service         SIGTERM and wait; fails if it does not exit 0

start_service() {
  WORK=$(mktemp -d)
  LOG="$WORK/server.log"
  # Made here, not by the server's redirect: the loop below reads it at
  # once, and under `set -e` a sed that finds no file yet ended the script
  # (stress run 7, round 4: "sed: can't read .../server.log", 5 s in).
  : >"$LOG"
  trap 'cleanup_service' EXIT
  BOXOFFICE__SERVER__PORT=0 \
  BOXOFFICE__SNAPSHOT__DIR="$WORK/data" \
  BOXOFFICE__RATE_LIMIT__ENABLED=false \
  BOXOFFICE__LOG__ACCESS_LOG=false \
  RUST_LOG=warn,boxoffice=info \
    "$1/target/debug/boxoffice" >"$LOG" 2>&1 &
  SERVER_PID=$!
  BASE=""
  for _ in $(seq 1 300); do
    BASE=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$LOG" | head -1)
    [[ -n "$BASE" ]] && curl -fsS "$BASE/health" >/dev/null 2>&1 && break
    BASE=""
    sleep 0.1
  done
  [[ -n "$BASE" ]] || { echo "service did not start:"; cat "$LOG"; exit 1; }
  echo "service at $BASE"
}

stop_service() {
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID"
  SERVER_PID=""
}

cleanup_service() {
  if [[ -n "${SERVER_PID:-}" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}

# A 3-node cluster of the debug binary behind HAProxy, started from
# deploy/cluster/haproxy.cfg with its ports moved to free ones (needs
# haproxy and python3). BASE is the proxy; NODE_PIDS and HAPROXY_PID are
# stopped by stop_cluster_service / on exit. Node logs: $WORK/node*/server.log.
#   start_cluster_service ROOT   sets WORK, LOG (the logs joined at stop), BASE
#   stop_cluster_service         SIGTERM every node and wait; fails unless each exits 0
start_cluster_service() {
  WORK=$(mktemp -d)
  LOG="$WORK/server.log"
  NODE_PIDS=()
  HAPROXY_PID=""
  PORT_HOLDER_PID=""
  trap 'cleanup_cluster_service' EXIT
  local ports
  hold_ports 7
  read -r -a ports <"$WORK/ports"
  local members="" i
  for i in 1 2 3; do
    members+="{ id = $i, peer = \"127.0.0.1:${ports[$((i + 2))]}\", http = \"http://127.0.0.1:${ports[$((i - 1))]}\" },"
  done
  for i in 1 2 3; do
    mkdir -p "$WORK/node$i"
    printf '[cluster]\nnode_id = %s\nsecret = "a-contract-test-secret-of-32-bytes-or-more"\nnodes = [%s]\n' \
      "$i" "$members" >"$WORK/node$i/config.toml"
    (cd "$WORK/node$i" && \
      BOXOFFICE__SERVER__PORT="${ports[$((i - 1))]}" \
      BOXOFFICE__SNAPSHOT__DIR="$WORK/node$i/data" \
      BOXOFFICE__RATE_LIMIT__ENABLED=false \
      BOXOFFICE__LOG__ACCESS_LOG=false \
      RUST_LOG=warn,boxoffice=info \
        exec "$1/target/debug/boxoffice" >"$WORK/node$i/server.log" 2>&1) &
    NODE_PIDS+=($!)
  done
  sed -e "s/127.0.0.1:8080/127.0.0.1:${ports[6]}/" \
      -e "s/127.0.0.1:8101/127.0.0.1:${ports[0]}/" \
      -e "s/127.0.0.1:8102/127.0.0.1:${ports[1]}/" \
      -e "s/127.0.0.1:8103/127.0.0.1:${ports[2]}/" \
      "$1/deploy/cluster/haproxy.cfg" >"$WORK/haproxy.cfg"
  haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
  HAPROXY_PID=$!
  BASE="http://127.0.0.1:${ports[6]}"
  # HAProxy counts every server up until its first check: one answer from
  # the leader may come while the followers are still in its leader
  # backend, and a request sent to one of them then is cut when its check
  # marks it down (a 165 KB OpenAPI document was, mid-transfer). Twelve
  # answers in a row from the leader over 0.3 s (longer than the checks'
  # 250 ms interval) mean both followers are out.
  local up="" in_a_row=0
  for _ in $(seq 1 1200); do
    if curl -fsS "$BASE/leader" >/dev/null 2>&1; then
      in_a_row=$((in_a_row + 1))
      [[ $in_a_row -ge 12 ]] && { up=1; break; }
    else
      in_a_row=0
    fi
    sleep 0.025
  done
  [[ -n "$up" ]] || { echo "the cluster did not elect a leader:"; cat "$WORK"/node*/server.log "$WORK/haproxy.log"; exit 1; }
  echo "cluster of 3 behind HAProxy at $BASE"
}

# hold_ports N: N loopback ports held for this script's servers until it
# exits (their numbers in $WORK/ports): a helper process keeps each bound
# with SO_REUSEADDR and never listening, so no other program's automatic
# bind gets one, while our servers (each binds with SO_REUSEADDR) listen
# on them. A port picked free and released could be taken in between.
hold_ports() {
  python3 -c '
import os, socket, sys, time
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(" ".join(str(s.getsockname()[1]) for s in socks) + "\n")
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
time.sleep(6 * 3600)  # until stopped (by PID); bounded all the same' "$1" "$WORK/ports" &
  PORT_HOLDER_PID=$!
  local _
  for _ in $(seq 1 100); do [[ -s "$WORK/ports" ]] && return 0; sleep 0.05; done
  echo "the port holder did not start"; exit 1
}

stop_cluster_service() {
  local pid status=0
  for pid in "${NODE_PIDS[@]}"; do kill -TERM "$pid"; done
  for pid in "${NODE_PIDS[@]}"; do wait "$pid" || status=1; done
  NODE_PIDS=()
  cat "$WORK"/node*/server.log >"$LOG"
  return $status
}

cleanup_cluster_service() {
  local pid
  for pid in "${NODE_PIDS[@]}" $HAPROXY_PID $PORT_HOLDER_PID; do
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$WORK"
}
