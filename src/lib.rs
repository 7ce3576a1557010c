//! boxoffice: a ticket booking service.
//!
//! - [`domain`]: events, bookings and waiting lists as a plain state machine.
pub mod domain;
