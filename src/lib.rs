//! boxoffice: a ticket booking service.
//!
//! The layers are crates, so a wrong-way import does not compile:
//! [`domain`] (`crates/domain`: no runtime, no I/O, no clock) is below
//! [`persistence`] (`crates/storage`: codec, journal, snapshots, recovery,
//! the change-log seam), and both are below this crate; `boxoffice-metrics`
//! (`crates/metrics`) is a leaf every layer counts through.
//!
//! A request passes through, in order:
//! - [`http`]: the connection layer ([`http::transport`]), the middleware
//!   every request passes ([`http::middleware`]: identity, metrics, rate
//!   limit), then the route table and handlers ([`http::api`]) or a live
//!   stream ([`http::api::live`]);
//! - [`service`]: [`service::BoxOffice`], every operation of the service:
//!   finds the event's actor, sends it the operation, waits until the
//!   answer is durable;
//! - [`actors`]: one actor per event that applies changes one at a time and
//!   hands them to the change log, the registry that finds actors, and the
//!   snapshotter;
//! - [`domain`]: events, bookings, parties, the waiting queue and the
//!   idempotency keys of creates as a plain state machine; every change is
//!   a [`domain::Change`];
//! - [`persistence`]: the codec, the change log and its journal, snapshot
//!   files, the data directory's lock, and recovery from both at start.
//!
//! Beside them: [`config`] reads the settings (and holds `--help`),
//! [`clock`] is where "now" comes from, [`logging`] sets up the logger,
//! [`exporter`] assembles `/metrics` from each layer's counters,
//! [`changes`] serves the change feed from the journal, [`webhooks`]
//! delivers it to a receiver, and [`startup`] wires it all together.
pub mod actors;
pub mod changes;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod exporter;
pub mod http;
pub mod logging;
pub mod service;
pub mod startup;
pub mod webhooks;

/// The booking domain, its own crate so that nothing async, actor, HTTP or
/// I/O can creep into it: see `crates/domain`.
pub use boxoffice_domain as domain;
/// The data directory, its own crate so that it cannot reach the actors or
/// HTTP: see `crates/storage`.
pub use boxoffice_storage as persistence;
