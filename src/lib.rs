//! boxoffice: a ticket booking service.
//!
//! A request passes through, in order:
//! - [`http`]: routes, extractors (validation into domain values), rate
//!   limiting, and the mapping of every error to JSON;
//! - [`service`]: [`service::BoxOffice`], every operation of the service:
//!   finds the event's actor, sends it the operation, waits until the
//!   answer is durable;
//! - [`actors`]: one actor per event that applies changes one at a time and
//!   journals them, the registry that finds actors, and the snapshotter;
//! - [`domain`]: events, bookings, parties and the waiting queue as a plain
//!   state machine; every change is a [`domain::Change`];
//! - [`persistence`]: the codec, the write-ahead journal, snapshot files,
//!   the data directory's lock, and recovery from both at start.
//!
//! [`config`] reads the settings; [`startup`] wires it all together.
pub mod actors;
pub mod clock;
pub mod config;
pub mod exporter;
pub mod http;
pub mod logging;
pub mod service;
pub mod startup;

/// The booking domain, its own crate so that nothing async, actor, HTTP or
/// I/O can creep into it: see `crates/domain`.
pub use boxoffice_domain as domain;
/// The data directory, its own crate so that it cannot reach the actors or
/// HTTP: see `crates/storage`.
pub use boxoffice_storage as persistence;
