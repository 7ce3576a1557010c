//! Everything that touches the disk: the binary codec, the write-ahead
//! journal, snapshot files (and the older formats still read), and recovery
//! from both at start. Snapshots and journal segments share one data
//! directory (`snapshot.dir`).
//!
//! Nothing here runs on a request thread: callers hand the work to a
//! blocking thread.

pub mod change_log;
pub mod codec;
pub mod data_dir;
pub mod durable_waiters;
pub mod journal;
mod legacy;
pub mod raft;
pub mod recovery;
pub mod snapshot;
pub mod stats;

pub use snapshot::{ServiceSnapshot, SnapshotError, SnapshotStore, StoredEvent, WrittenSnapshot};
