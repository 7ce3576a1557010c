//! The seam between deciding a change and making it durable, below both
//! of its back-ends: the single node's journal (`crate::journal`) and a
//! cluster's replicated log (the service's `cluster` module). What it
//! holds is what both share: a record's position and the log's state
//! ([`state`]), what a change is journalled as ([`record`]), the answers
//! waiting for their position ([`durable_waiters`]), and the trait the
//! event actors submit through ([`change_log`]). Nothing here names a
//! back-end.

pub mod change_log;
pub mod durable_waiters;
pub mod record;
pub mod state;

pub use state::{Fault, JournalState, Lsn, Refused};
