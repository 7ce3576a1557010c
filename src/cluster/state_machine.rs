//! The Raft state machine: the event actors, reached through the
//! [`ClusterLog`], which knows which committed entries are already in
//! their state and which must be applied.
//!
//! Its Raft bookkeeping (the last applied log id and the membership) lives
//! here, in memory. At start the newest snapshot (`raft/snapshot.bin`) is
//! installed, and openraft applies the committed log after it again (it
//! reads the commit mark back from the log store).
//!
//! A snapshot is the committed state as of the last applied entry: openraft
//! asks for it between two applies, and every event's actor is asked for
//! its state before this node applies anything more, so followers' actors
//! hand over exactly what the entries up to there made. A leader's actors
//! are ahead of the commit (they decide before replicating); each hands
//! over its state with what is not committed undone on a copy. Only the
//! asking waits (a pause in applying, which the leader's answers share);
//! encoding and writing the file run beside it. openraft then drops the
//! log the snapshot holds (keeping a tail for followers a little behind),
//! and sends the snapshot to a node that needs entries no longer kept.

use std::io::{self, Cursor};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{
    EntryPayload, OptionalSend, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageIOError,
    StoredMembership,
};

use super::log::ClusterLog;
use crate::persistence::raft::{
    Entry, LogId, Member, NodeId, SnapshotFile, StorageError, StoredSnapshot, TypeConfig,
};

/// The state machine of one node.
pub struct StateMachine {
    log: Arc<ClusterLog>,
    last_applied: Option<LogId>,
    membership: StoredMembership<NodeId, Member>,
    /// Where this node's newest snapshot is kept.
    file: SnapshotFile,
    /// Snapshots built by this process, for their ids.
    built: Arc<AtomicU64>,
}

impl StateMachine {
    /// The state machine of a node whose snapshot (if any) is kept in
    /// `dir`: the snapshot is installed in `log`'s state, whose applier
    /// must be set.
    pub fn open(log: Arc<ClusterLog>, dir: &std::path::Path) -> io::Result<Self> {
        let file = SnapshotFile::new(dir);
        let mut machine = Self {
            log,
            last_applied: None,
            membership: StoredMembership::default(),
            file,
            built: Arc::default(),
        };
        if let Some(stored) = machine.file.read()? {
            let index = stored.meta.last_log_id.map_or(0, |id| id.index);
            machine.log.install(index, &stored.image)?;
            log::info!(
                "node {}: state restored from snapshot {} (through Raft entry {index})",
                machine.log.node_id(),
                stored.meta.snapshot_id
            );
            machine.last_applied = stored.meta.last_log_id;
            machine.membership = stored.meta.last_membership;
        }
        Ok(machine)
    }
}

fn read_error(e: &io::Error) -> StorageError {
    StorageIOError::read_snapshot(None, e).into()
}

fn write_error(meta: &SnapshotMeta<NodeId, Member>, e: &io::Error) -> StorageError {
    StorageIOError::write_snapshot(Some(meta.signature()), e).into()
}

/// Runs blocking file work off openraft's tasks.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| io::Error::other(format!("snapshot file thread: {e}")))?
}

/// A snapshot whose image is taken; encodes and writes it.
pub struct Builder {
    image: Option<io::Result<Vec<u8>>>,
    last_applied: Option<LogId>,
    membership: StoredMembership<NodeId, Member>,
    file: SnapshotFile,
    built: Arc<AtomicU64>,
}

impl RaftSnapshotBuilder<TypeConfig> for Builder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let image = self
            .image
            .take()
            .unwrap_or_else(|| Err(io::Error::other("a snapshot built twice")))
            .map_err(|e| read_error(&e))?;
        let number = self.built.fetch_add(1, Ordering::Relaxed) + 1;
        let snapshot_id = match self.last_applied {
            Some(id) => format!("{}-{}-{number}", id.leader_id.term, id.index),
            None => format!("0-0-{number}"),
        };
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id,
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            image,
        };
        let file = self.file.clone();
        let bytes = blocking(move || {
            let bytes = stored.encode()?;
            file.write(&bytes)?;
            Ok(bytes)
        })
        .await
        .map_err(|e| write_error(&meta, &e))?;
        log::info!(
            "snapshot {} written: {} bytes",
            meta.snapshot_id,
            bytes.len()
        );
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Builder;

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
                    self.log.feed_room(proposal.records.len()).await;
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
        // Awaited here, on the worker that applies: nothing is applied, and
        // the commit mark the image is taken at does not move, until every
        // actor has handed over (see the module doc).
        let image = self.log.image().await;
        Builder {
            image: Some(image),
            last_applied: self.last_applied,
            membership: self.membership.clone(),
            file: self.file.clone(),
            built: Arc::clone(&self.built),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, Member>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let bytes = snapshot.into_inner();
        let stored = StoredSnapshot::decode(&bytes).map_err(|e| read_error(&e))?;
        let stored = StoredSnapshot {
            meta: meta.clone(),
            image: stored.image,
        };
        // On disk before the state changes: openraft drops the log the
        // snapshot holds once this returns.
        let (file, to_write) = (self.file.clone(), stored.clone());
        blocking(move || file.write(&to_write.encode()?))
            .await
            .map_err(|e| write_error(meta, &e))?;
        let index = meta.last_log_id.map_or(0, |id| id.index);
        self.log
            .install(index, &stored.image)
            .map_err(|e| write_error(meta, &e))?;
        log::info!(
            "node {}: installed snapshot {} (through Raft entry {index})",
            self.log.node_id(),
            meta.snapshot_id
        );
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let file = self.file.clone();
        let found = blocking(move || {
            let Some(bytes) = file.read_bytes()? else {
                return Ok(None);
            };
            let meta = StoredSnapshot::decode(&bytes)?.meta;
            Ok(Some((meta, bytes)))
        })
        .await
        .map_err(|e| read_error(&e))?;
        Ok(found.map(|(meta, bytes)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        }))
    }
}
