#!/usr/bin/env bash
# The change feed's cost (issue 23), in one run:
# 1. booking throughput on a service delivering every change to a webhook
#    receiver and streaming it to a live feed reader, against a service with
#    neither (two processes of the release build, measured alternately);
# 2. the feed's read rate from a cold start over FEED_CHANGES changes
#    (default 10,000,000) in the journal (bench/scale.rs, section 7).
# Prints JSON; results in bench/results/feed.json and feed_read.json.
#   bench/feed.sh
#   FEED_LOAD_SECS=2 FEED_ROUNDS=1 FEED_CHANGES=100000 bench/feed.sh   # quick
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ensure_bench_tools
(cd "$ROOT" && cargo build --release --locked --quiet -p boxoffice-bench --bin feed)
"$ROOT/target/release/feed" "$ROOT/target/release/boxoffice" | tee "$ROOT/bench/results/feed.json"
(cd "$ROOT" && SCALE_ONLY_FEED="${FEED_CHANGES:-10000000}" cargo bench --locked --quiet --bench scale) \
  | tee "$ROOT/bench/results/feed_read.json"
