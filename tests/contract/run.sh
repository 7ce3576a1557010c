#!/usr/bin/env bash
# The service checked from outside against its own OpenAPI document:
#   1. the document validates as OpenAPI 3.1;
#   2. /metrics parses with prometheus_client's OpenMetrics parser and its
#      counters move;
#   3. Schemathesis generates requests from the document (default checks: no
#      5xx, statuses, content types, headers and bodies as documented, valid
#      data accepted and invalid data refused) and fails on any finding.
# Needs python3 with pip, and a built debug binary (cargo build --locked).
# Loopback only; every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd ../.. && pwd)
MIN_REQUESTS=${CONTRACT_MIN_REQUESTS:-2000}
EXAMPLES=${CONTRACT_MAX_EXAMPLES:-150}
SEED=${CONTRACT_SEED:-20261122}

python3 -m pip install --quiet --disable-pip-version-check -r requirements.txt

WORK=$(mktemp -d)
LOG="$WORK/server.log"
cleanup() {
  if [[ -n "${SERVER_PID:-}" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# Rate limit off (thousands of requests from one address), port picked by the OS.
BOXOFFICE__SERVER__PORT=0 \
BOXOFFICE__SNAPSHOT__DIR="$WORK/data" \
BOXOFFICE__RATE_LIMIT__ENABLED=false \
BOXOFFICE__LOG__ACCESS_LOG=false \
RUST_LOG=warn,boxoffice=info \
  "$ROOT/target/debug/boxoffice" >"$LOG" 2>&1 &
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

curl -fsS "$BASE/api/openapi.json" -o "$WORK/openapi.json"
openapi-spec-validator "$WORK/openapi.json"
python3 check_metrics.py "$BASE"

set +e
st --config-file schemathesis.toml run "$BASE/api/openapi.json" \
  --max-examples "$EXAMPLES" --seed "$SEED" --no-color 2>&1 | tee "$WORK/st.log"
ST_STATUS=${PIPESTATUS[0]}
set -e
GENERATED=$(sed -n 's/^ *\([0-9][0-9]*\) generated.*/\1/p' "$WORK/st.log" | tail -1)
echo "schemathesis: exit $ST_STATUS, ${GENERATED:-0} requests generated (at least $MIN_REQUESTS required)"
[[ "$ST_STATUS" -eq 0 ]] || exit 1
[[ "${GENERATED:-0}" -ge "$MIN_REQUESTS" ]] || exit 1

# The service must have survived all of it and stop cleanly.
curl -fsS "$BASE/health" >/dev/null
kill -TERM "$SERVER_PID"
wait "$SERVER_PID"
SERVER_PID=""
if grep -E ' ERROR ' "$LOG"; then
  echo "the service logged errors during the run"; exit 1
fi
echo "contract checks passed"
