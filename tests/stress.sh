#!/usr/bin/env bash
# Flaky-test hunt: CI's whole test set, ROUNDS times in a row, with BUSY
# busy CPU loops beside it (two by default, on a 2-core machine the tests
# get what is left), then every test that failed, with its output.
#   tests/stress.sh [ROUNDS (5)] [BUSY (2)]      (`cargo xtask stress N`)
# The test set is .ci/run's test stages: cargo test (every binary), the
# tools' (testkit, bench tools, xtask), the disk-full test (root), the hostile clients, the
# cluster behind HAProxy and a node's clock moved by libfaketime against
# the `ci` build, tests/api on a cluster,
# 8 simulation seeds, the docs' blocks, the node replacement of
# docs/operations.md, both contract runs, the browser.
# Left out: fmt, clippy, the layer check and the bench smokes (they check
# no behaviour of the service that a load could change). Builds happen once,
# before the first round and its busy loops. Logs: $STRESS_OUT (a new
# scratch directory by default), one folder a round, one file a stage.
# Exit 1 when anything failed. Every loop here is bounded; the busy loops
# are our own children, stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
BUSY=${2:-2}
OUT=${STRESS_OUT:-$(mktemp -d -t boxoffice-stress.XXXXXX)}
mkdir -p "$OUT"
echo "stress: $ROUNDS rounds, $BUSY busy loops, logs in $OUT"

cargo build --locked --all-targets
cargo test --locked --no-run
cargo build --profile ci --locked --bin boxoffice

BUSY_PIDS=()
stop_busy() {
  local pid
  for pid in "${BUSY_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${BUSY_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  BUSY_PIDS=()
}
trap stop_busy EXIT
for _ in $(seq 1 "$BUSY"); do
  # At most 6 hours, whatever happens to this script.
  timeout 6h bash -c 'while :; do :; done' &
  BUSY_PIDS+=($!)
done

ci_binary="$PWD/target/ci/boxoffice"
STAGES=(
  "cargo-test|cargo test --locked"
  "tools|cargo test --locked -p boxoffice-testkit -p boxoffice-bench -p xtask"
  "hostile|env BOXOFFICE_TEST_BINARY=$ci_binary cargo test --locked --test api hostile -- --ignored --nocapture"
  "cluster-proxy|env BOXOFFICE_TEST_BINARY=$ci_binary cargo test --locked --test api cluster_proxy -- --ignored --nocapture"
  "api-on-cluster|tests/api_on_cluster.sh"
  "clocks|env BOXOFFICE_TEST_BINARY=$ci_binary cargo test --locked --test api clocks -- --ignored --nocapture"
  "simulation|tests/cluster_soak.sh 8 120"
  "docs|python3 tests/docs/check_blocks.py $ci_binary README.md docs/guide.md"
  "node-replacement|tests/docs/node_replacement.sh $ci_binary"
  "contract|tests/contract/run.sh"
  "contract-cluster|env CONTRACT_CLUSTER=1 tests/contract/run.sh"
  "browser|tests/browser/run.sh"
)
if [ "$(id -u)" = 0 ]; then
  STAGES+=("disk-full|cargo test --locked --test api disk_full -- --ignored")
  STAGES+=("partition|env BOXOFFICE_TEST_BINARY=$ci_binary cargo test --locked --test api partition -- --ignored --nocapture")
fi

failures="$OUT/failures.txt"
: >"$failures"
for round in $(seq 1 "$ROUNDS"); do
  mkdir -p "$OUT/round-$round"
  for entry in "${STAGES[@]}"; do
    name=${entry%%|*}
    command=${entry#*|}
    file="$OUT/round-$round/$name.log"
    started=$SECONDS
    if bash -c "$command" >"$file" 2>&1; then
      echo "round $round: $name ok ($((SECONDS - started)) s)"
    else
      echo "round $round: $name FAILED ($((SECONDS - started)) s): $file"
      # The failing tests by name (cargo's "failures:" list), or the stage.
      tests=$(awk '/^failures:$/ { list = 1; next } list && /^    [^ ]/ { print $1 } /^test result:/ { list = 0 }' "$file" | sort -u)
      echo "round $round, $name: ${tests:-the stage itself (see its log)}" | tr '\n' ' ' >>"$failures"
      echo "($file)" >>"$failures"
    fi
  done
done
stop_busy

echo "== stress: $ROUNDS rounds with $BUSY busy loops"
if [ -s "$failures" ]; then
  echo "failed:"
  cat "$failures"
  # Each failed test's own output, as cargo printed it.
  for file in $(sed -n 's/.*(\(.*\))$/\1/p' "$failures"); do
    echo "---- $file"
    awk '/^---- .* stdout ----$/ { show = 1 } /^failures:$/ { show = 0 } show' "$file" | head -200
  done
  exit 1
fi
echo "no failures"
