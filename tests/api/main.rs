//! Black-box tests: the real server on port 0, spoken to over HTTP.
//!
//! One binary with one module per area, so everything compiles once.

mod auth;
mod binary;
mod changes;
mod clocks;
mod cluster;
mod cluster_proxy;
mod concurrency;
mod connections;
mod corruption;
mod crash;
mod deposed;
mod disk_full;
mod errors;
mod forwarding;
mod helpers;
mod history;
mod holds;
mod hostile;
mod idempotency;
mod live;
mod openapi;
mod operator;
mod parties;
mod partition;
mod process;
mod rate_limit;
mod resource_routes;
mod room;
mod route_table;
mod seats;
mod seats_cluster;
mod seed_routes;
mod snapshots;
