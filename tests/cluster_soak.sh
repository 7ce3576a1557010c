#!/usr/bin/env bash
# The cluster simulation (src/cluster/simulation.rs) over many seeds: seeded
# schedules of bookings, cancellations, creates, crashes and restarts,
# partitions, and dropped, delayed and duplicated messages, each checked for
# lost acknowledged changes, two leaders acknowledging in one term, oversold
# events and nodes that disagree. Every seed is printed; a failing one
# replays with BOXOFFICE_SIM_SEED=<seed> BOXOFFICE_SIM_SEEDS=1.
#   tests/cluster_soak.sh [SEEDS (200)] [SECONDS (1800)] [FIRST SEED (from the clock)]
# Bounded: no new seed starts after SECONDS; one seed takes about 7 s.
set -euo pipefail
cd "$(dirname "$0")/.."
export BOXOFFICE_SIM_SEEDS="${1:-200}"
export BOXOFFICE_SIM_SECONDS="${2:-1800}"
if [ -n "${3:-}" ]; then export BOXOFFICE_SIM_SEED="$3"; fi
cargo test --locked --lib seeded_schedules -- --nocapture --test-threads 1
