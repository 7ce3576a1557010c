//! Everything that touches the disk: the binary codec, the write-ahead
//! journal, snapshot files (and the older formats still read), and recovery
//! from both at start. Snapshots and journal segments share one data
//! directory (`snapshot.dir`).
//!
//! Nothing here runs on a request thread: callers hand the work to a
//! blocking thread.

pub mod codec;
pub mod data_dir;
pub mod file;
pub mod journal;
pub mod log;
pub mod raft;
pub mod recovery;
pub mod snapshot;
pub mod stats;

// The seam's modules, where they were before it had a module of its own.
pub use log::{change_log, durable_waiters};
pub use snapshot::{ServiceSnapshot, SnapshotError, SnapshotStore, StoredEvent, WrittenSnapshot};
