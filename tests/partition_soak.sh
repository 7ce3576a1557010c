#!/usr/bin/env bash
# The partition test (tests/api/partition.rs: the leader cut off from its
# peers by HTB drop classes in network namespaces) ROUNDS times in a row
# against the `ci` build, printing each round's failover and heal figures;
# CI runs it once. Needs root.
#   tests/partition_soak.sh [ROUNDS (20)]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-20}
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)"; exit 1; }
cargo build --profile ci --locked --bin boxoffice
export BOXOFFICE_TEST_BINARY="$PWD/target/ci/boxoffice"
failed=0
for round in $(seq 1 "$ROUNDS"); do
  if out=$(cargo test --locked --test api partition -- --ignored --nocapture 2>&1); then
    echo "round $round: ok: $(grep -E '^(a change|failover|after the heal)' <<<"$out" | tr '\n' ';')"
  else
    failed=$((failed + 1))
    echo "round $round: FAILED"
    echo "$out" | tail -40
  fi
done
echo "$ROUNDS rounds, $failed failed"
[ "$failed" = 0 ]
