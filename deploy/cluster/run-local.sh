#!/usr/bin/env bash
# Three cluster nodes and HAProxy on this machine, from the files beside
# this script as they are (node1-3.toml, haproxy.cfg): the nodes on ports
# 8101-8103 (peers 7101-7103), the proxy on 8080; data in
# target/local-cluster/node1-3 (kept between runs: delete it to start
# empty). Stopped with Ctrl-C: every node gets SIGTERM (a final snapshot)
# and the script waits for each. `cargo xtask cluster` runs it.
#   deploy/cluster/run-local.sh [BINARY (target/release/boxoffice, built)]
# The per-IP rate limit is off here (one developer's address makes every
# request); the nodes' other settings are the shipped files'.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE="$ROOT/deploy/cluster"
BIN=${1:-}
if [ -z "$BIN" ]; then
  (cd "$ROOT" && cargo build --release --locked --bin boxoffice)
  BIN="$ROOT/target/release/boxoffice"
fi
command -v haproxy >/dev/null || { echo "haproxy is not on the PATH (apt-get install haproxy)" >&2; exit 1; }
DATA="$ROOT/target/local-cluster"
mkdir -p "$DATA"
# A secret for this machine's local cluster, made once (32 random bytes,
# hex): the same for the three nodes, never committed.
SECRET_FILE="$DATA/secret"
[ -s "$SECRET_FILE" ] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$SECRET_FILE"

PIDS=()
HAPROXY_PID=""
stop_all() {
  trap - INT TERM EXIT
  local i status=0
  for i in "${!PIDS[@]}"; do kill -TERM "${PIDS[$i]}" 2>/dev/null || true; done
  for i in "${!PIDS[@]}"; do
    if wait "${PIDS[$i]}"; then
      echo "node $((i + 1)) stopped cleanly"
    else
      status=$?
      echo "node $((i + 1)) exited with status $status (log: $DATA/node$((i + 1))/server.log)"
    fi
  done
  if [ -n "$HAPROXY_PID" ]; then kill -TERM "$HAPROXY_PID" 2>/dev/null || true; wait "$HAPROXY_PID" || true; fi
  exit "$status"
}
trap stop_all INT TERM EXIT

for i in 1 2 3; do
  mkdir -p "$DATA/node$i"
  BOXOFFICE__SNAPSHOT__DIR="$DATA/node$i" \
  BOXOFFICE__CLUSTER__SECRET="$(cat "$SECRET_FILE")" \
  BOXOFFICE__RATE_LIMIT__ENABLED=false \
    "$BIN" --config "$HERE/node$i.toml" >"$DATA/node$i/server.log" 2>&1 &
  PIDS+=($!)
done
haproxy -db -f "$HERE/haproxy.cfg" >"$DATA/haproxy.log" 2>&1 &
HAPROXY_PID=$!

leader=""
for _ in $(seq 1 200); do
  if curl -fsS http://127.0.0.1:8080/leader >/dev/null 2>&1; then leader=1; break; fi
  sleep 0.1
done
[ -n "$leader" ] || { echo "no leader behind the proxy after 20 s; logs in $DATA" >&2; exit 1; }
cat <<EOF
a 3-node cluster behind HAProxy:
  proxy   http://127.0.0.1:8080   (the page at /, changes go to the leader)
  node 1  http://127.0.0.1:8101   log $DATA/node1/server.log
  node 2  http://127.0.0.1:8102   log $DATA/node2/server.log
  node 3  http://127.0.0.1:8103   log $DATA/node3/server.log
  who leads: curl -s http://127.0.0.1:8080/api/cluster   (as an organiser)
Ctrl-C stops every node cleanly.
EOF
# Until Ctrl-C, or until any of them exits by itself.
wait -n "${PIDS[@]}" "$HAPROXY_PID" || true
echo "a process exited by itself; stopping the rest" >&2
