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

# Rate limit off (thousands of requests from one address). With
# CONTRACT_CLUSTER=1 the same checks go through HAProxy to a 3-node
# cluster (deploy/cluster/haproxy.cfg), except adding and removing members,
# which generated requests would do to the cluster under test.
source ../service.sh
EXCLUDE=()
if [[ "${CONTRACT_CLUSTER:-0}" == 1 ]]; then
  start_cluster_service "$ROOT"
  EXCLUDE=(--exclude-path-regex '^/api/cluster/members/')
else
  start_service "$ROOT"
fi

curl -fsS "$BASE/api/openapi.json" -o "$WORK/openapi.json"
openapi-spec-validator "$WORK/openapi.json"
python3 check_metrics.py "$BASE"

set +e
st --config-file schemathesis.toml run "$BASE/api/openapi.json" \
  --max-examples "$EXAMPLES" --seed "$SEED" --no-color "${EXCLUDE[@]}" 2>&1 | tee "$WORK/st.log"
ST_STATUS=${PIPESTATUS[0]}
set -e
GENERATED=$(sed -n 's/^ *\([0-9][0-9]*\) generated.*/\1/p' "$WORK/st.log" | tail -1)
echo "schemathesis: exit $ST_STATUS, ${GENERATED:-0} requests generated (at least $MIN_REQUESTS required)"
[[ "$ST_STATUS" -eq 0 ]] || exit 1
[[ "${GENERATED:-0}" -ge "$MIN_REQUESTS" ]] || exit 1

# The service must have survived all of it and stop cleanly.
curl -fsS "$BASE/health" >/dev/null
if [[ "${CONTRACT_CLUSTER:-0}" == 1 ]]; then
  # The logs of the run itself: all three nodes stop at once, and a leader
  # that outlives a follower by a few heartbeats logs openraft's
  # replication errors to it (seen in a local run, 2026-12-06). The stop is
  # checked by each node's exit status.
  CHECKED="$WORK/run.log"
  cat "$WORK"/node*/server.log >"$CHECKED"
  stop_cluster_service
else
  stop_service
  CHECKED="$LOG"
fi
if grep -E ' ERROR ' "$CHECKED"; then
  echo "the service logged errors during the run"; exit 1
fi
echo "contract checks passed"
