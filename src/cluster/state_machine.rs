//! The Raft state machine: the event actors, reached through the
//! [`ClusterLog`], which knows which committed entries are already in
//! their state and which must be applied.
//!
//! Its Raft bookkeeping (the last applied log id and the membership) lives
//! here, in memory: a node that restarts applies the whole committed log
//! again (openraft reads the commit mark back from the log store), so no
//! state snapshot is needed to restart. Raft snapshots (to catch up a node
//! from a state instead of the log) are not built: the log is kept whole.

use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{
    EntryPayload, OptionalSend, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageIOError,
    StoredMembership,
};

use super::log::ClusterLog;
use crate::persistence::raft::{Entry, LogId, Member, NodeId, StorageError, TypeConfig};

/// The state machine of one node.
pub struct StateMachine {
    log: Arc<ClusterLog>,
    last_applied: Option<LogId>,
    membership: StoredMembership<NodeId, Member>,
}

impl StateMachine {
    /// A state machine that has applied nothing yet.
    pub fn new(log: Arc<ClusterLog>) -> Self {
        Self {
            log,
            last_applied: None,
            membership: StoredMembership::default(),
        }
    }
}

fn no_snapshots() -> StorageError {
    StorageIOError::read_snapshot(
        None,
        &std::io::Error::other("this node keeps the whole Raft log and builds no snapshots"),
    )
    .into()
}

/// Refuses to build snapshots (the log is kept whole; see the module doc).
pub struct NoSnapshots;

impl RaftSnapshotBuilder<TypeConfig> for NoSnapshots {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        Err(no_snapshots())
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = NoSnapshots;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId>, StoredMembership<NodeId, Member>), StorageError> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<()>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut replies = Vec::new();
        for entry in entries {
            let log_id = entry.log_id;
            self.last_applied = Some(log_id);
            match entry.payload {
                EntryPayload::Normal(proposal) => {
                    self.log
                        .apply_proposal(log_id.index, log_id.leader_id.term, proposal);
                }
                EntryPayload::Membership(membership) => {
                    self.membership = StoredMembership::new(Some(log_id), membership);
                    self.log.applied(log_id.index);
                }
                EntryPayload::Blank => self.log.applied(log_id.index),
            }
            replies.push(());
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        NoSnapshots
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        _meta: &SnapshotMeta<NodeId, Member>,
        _snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        Err(no_snapshots())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        Ok(None)
    }
}
