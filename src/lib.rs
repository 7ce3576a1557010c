//! boxoffice: a ticket booking service.
//!
//! - [`domain`]: events, bookings and waiting lists as a plain state machine.
//! - [`config`]: typed settings from `config.toml` and `BOXOFFICE__` variables.
//! - [`persistence`]: the binary codec and crash-safe snapshot files.
pub mod actors;
pub mod config;
pub mod domain;
pub mod http;
pub mod persistence;
pub mod startup;
