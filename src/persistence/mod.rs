//! Everything that touches the disk: the binary codec and snapshot files.
//!
//! Nothing here runs on a request thread: callers hand the work to a
//! blocking thread.

pub mod codec;
pub mod journal;
pub mod recovery;
pub mod snapshot;

pub use snapshot::{ServiceSnapshot, SnapshotError, SnapshotStore, StoredEvent, WrittenSnapshot};
