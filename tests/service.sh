# Sourced by tests/contract/run.sh and tests/browser/run.sh: runs the built
# debug binary on a free loopback port with a scratch data directory, the
# rate limit and access log off, and stops it (by PID) when the script exits.
#   start_service ROOT   sets WORK (scratch folder), LOG, SERVER_PID and BASE
#   stop_service         SIGTERM and wait; fails if it does not exit 0

start_service() {
  WORK=$(mktemp -d)
  LOG="$WORK/server.log"
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
