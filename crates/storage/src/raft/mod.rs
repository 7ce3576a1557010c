//! What a cluster replicates, and where each node keeps its copy of the
//! Raft log. The consensus itself is openraft's; this module gives it the
//! types it is generic over and a durable log store built from the
//! journal's frames, group commit and fsync discipline, and its newest
//! snapshot beside it.
//!
//! One Raft entry carries a [`Proposal`]: the records a leader's actors
//! decided, in the order they were handed to the change log (the same
//! [`Record`]s a single node journals). The state machine that applies
//! them is the service's (it owns the actors); it lives in the service
//! crate.

mod log_store;
mod snapshot_file;

use serde::{Deserialize, Serialize};

use crate::journal::{Lsn, Record};

pub use log_store::{LogStoreOptions, RaftLogStore, LOG_FILE};
pub use snapshot_file::{SnapshotFile, StoredSnapshot, SNAPSHOT_FILE};

/// A node's id in the cluster (1 or more).
pub type NodeId = u64;

/// How a member is reached: by its peers, and by clients.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// host:port of its peer listener.
    pub peer: String,
    /// The URL clients use.
    pub http: String,
}

impl std::fmt::Display for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (peer {})", self.http, self.peer)
    }
}

/// The changes one leader decided, as one Raft entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// The node that decided them.
    pub origin: NodeId,
    /// Which leadership of `origin` decided them: a node applies its own
    /// proposals as already done only while that leadership lasts.
    pub leadership: u64,
    /// The records, each with the LSN it had on `origin`.
    pub records: Vec<(Lsn, Record)>,
}

impl std::fmt::Display for Proposal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} record(s) from node {} (leadership {})",
            self.records.len(),
            self.origin,
            self.leadership
        )
    }
}

openraft::declare_raft_types!(
    /// The cluster's Raft types.
    pub TypeConfig:
        D = Proposal,
        R = (),
        NodeId = NodeId,
        Node = Member,
        SnapshotData = std::io::Cursor<Vec<u8>>,
);

/// One Raft log entry of this cluster.
pub type Entry = openraft::Entry<TypeConfig>;
/// A Raft log position.
pub type LogId = openraft::LogId<NodeId>;
/// A term and whom it voted for.
pub type Vote = openraft::Vote<NodeId>;
/// Why storage failed, as openraft wants it.
pub type StorageError = openraft::StorageError<NodeId>;
