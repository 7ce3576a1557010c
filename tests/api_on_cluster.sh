#!/usr/bin/env bash
# The in-process black-box tests (tests/api) again, each against three
# nodes of a cluster behind HAProxy (deploy/cluster/haproxy.cfg) instead of
# one node: BOXOFFICE_TEST_CLUSTER=1 makes helpers::spawn_app start them.
# The proxy sends live streams to the leader too (the deploy config spreads
# them over every node): these tests read their own writes on a stream at
# once, which a follower may not have applied yet; tests/api/cluster.rs
# checks streams on every node. Needs haproxy on the PATH. Extra arguments
# go to the test binary.
#
# A failing test prints the tail of its proxy's log (abnormal sessions with
# their termination state, servers going up and down);
# BOXOFFICE_TEST_PROXY_LOGS=DIR keeps every proxy's log in DIR.
#
# Left out, and why (each runs in the plain run):
#   connections::, errors::a_body_that_never_arrives   the client's connection
#       is the proxy's, not the node's: its timeouts and caps are HAProxy's;
#   snapshots::, idempotency::keys_survive_a_clean_restart,
#   operator::a_single_node_is_its_own_leader           a single node's data
#       directory, snapshot files and restarts (tests/api/cluster.rs covers
#       a cluster's restarts);
#   live::one_address_holds, live::an_audience_shares, live::streams_of_nothing
#       stream caps and message budgets are each node's own, and the proxy
#       spreads streams over every node;
#   live::a_stalled_stream   it stalls one socket's buffers; HAProxy's own
#       buffers stand between it and the node;
#   binary::, clocks::, crash::, corruption::, cluster::, deposed::, disk_full::,
#   forwarding::, hostile::, partition::,
#   room::the_draw_is_a_fair_permutation
#       they start processes of their own (or need one server's socket) and
#       ignore the mode.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v haproxy >/dev/null || { echo "haproxy is not on the PATH"; exit 1; }
BOXOFFICE_TEST_CLUSTER=1 exec cargo test --locked --test api -- \
  --skip connections:: --skip errors::a_body_that_never_arrives \
  --skip snapshots:: --skip idempotency::keys_survive_a_clean_restart \
  --skip operator::a_single_node_is_its_own_leader \
  --skip live::one_address_holds --skip live::an_audience_shares \
  --skip live::streams_of_nothing --skip live::a_stalled_stream \
  --skip binary:: --skip clocks:: --skip crash:: --skip corruption:: --skip cluster:: \
  --skip deposed:: --skip disk_full:: --skip forwarding:: --skip hostile:: \
  --skip partition:: --skip seats_cluster:: \
  --skip room::the_draw_is_a_fair_permutation "$@"
