//! The change log of a cluster node: "durable" means committed by a
//! majority.
//!
//! On the leader the event actors decide and apply changes as on a single
//! node and hand them here; a proposer task batches what was handed over
//! into one Raft entry (a [`Proposal`]) and passes it to openraft in order,
//! without waiting for the previous one to commit (openraft pipelines and
//! batches the replication). When the state machine applies an entry this
//! node proposed during its current leadership, the changes are already in
//! the actors' state: only the durable mark moves, and their clients are
//! answered. Every other committed entry (on a follower, or a former
//! leader's own entries committed by its successor) is applied through the
//! actors like replay, each record numbered with this node's next LSN.
//!
//! LSNs are this node's own and never reused: when leadership is lost the
//! epoch moves on and every LSN handed out and not committed is marked
//! failed, so its client gets 503 and its actor undoes it (newest first)
//! before anything else; if a successor commits it after all, it comes
//! back as a committed entry and is applied again.
//!
//! A proposal counts only in the term it was decided in: a Raft entry
//! whose term differs from its proposal's leadership (a proposal that
//! reached openraft after its leadership ended and the node was elected
//! again) is skipped by every node alike, since it may rest on changes
//! that were lost.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use dashmap::DashMap;
use tokio::sync::{mpsc, watch};

use crate::domain::EventId;

use crate::persistence::change_log::ChangeLog;
use crate::persistence::durable_waiters::DurableWaiters;
use crate::persistence::journal::{Fault, Journal, JournalState, Lsn, Record, Refused};
use crate::persistence::raft::{NodeId, Proposal};

/// Failed LSN ranges remembered for waiters; only the newest are kept.
const MAX_FAILED_RANGES: usize = 1_024;
/// How often a committed entry waiting for room in the feed journal's
/// queue looks again (the disk is behind; openraft's other work goes on).
const FEED_ROOM_POLL: std::time::Duration = std::time::Duration::from_millis(1);
/// How long a snapshot waits for the feed journal to hold what it covers.
const FEED_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// Records a leader holds that openraft has not taken yet; a change
/// beyond them is refused (503 `UNAVAILABLE`), as the journal refuses one
/// when its own queue ([`crate::persistence::journal::QUEUE_CAPACITY`],
/// the same size) is full: memory stays bounded when the cluster is
/// slower than its clients.
const PROPOSAL_QUEUE: usize = crate::persistence::journal::QUEUE_CAPACITY;

/// One record on its way to openraft, with the leadership (term) that
/// decided it.
pub type Queued = (u64, Lsn, Record);

/// A Raft snapshot's image of the state, on its way.
pub type ImageFuture = Pin<Box<dyn Future<Output = io::Result<Vec<u8>>> + Send>>;

/// The state committed changes are applied to (the event actors).
pub trait Applier: Send + Sync {
    /// Applies `record`, numbered `lsn` on this node, which this node did
    /// not make.
    fn apply(&self, lsn: Lsn, record: Record);

    /// The state as committed through this node's LSN `through`, encoded.
    /// What the future returns must not change with anything applied after
    /// this call returns.
    fn image(&self, through: Lsn, next_change_index: u64) -> ImageFuture;

    /// Replaces the whole state with `image` ([`Self::image`]'s bytes),
    /// numbered `lsn`.
    fn install(&self, image: &[u8], lsn: Lsn) -> io::Result<Installed>;
}

/// What installing a snapshot's image gave.
#[derive(Debug, Default)]
pub struct Installed {
    /// The change feed index the next item gets.
    pub next_change_index: u64,
    /// Each event's change index as of the image.
    pub change_indexes: Vec<(EventId, u64)>,
}

struct Inner {
    /// The LSN the next record gets, made here or applied.
    next_lsn: Lsn,
    /// The change feed index the next published item gets.
    next_change: u64,
    /// The term of this node's leadership while it takes changes.
    leading: Option<u64>,
}

/// The replicated change log of one node.
pub struct ClusterLog {
    me: NodeId,
    inner: Mutex<Inner>,
    state: watch::Sender<JournalState>,
    /// Answers waiting for their LSN to be committed, woken by LSN.
    waiters: DurableWaiters,
    proposals: mpsc::Sender<Queued>,
    /// The Raft index of the newest entry applied here.
    applied_index: watch::Sender<u64>,
    /// Changes applied that this node did not make go there; set once,
    /// after the registry that uses this log exists.
    applier: OnceLock<Arc<dyn Applier>>,
    /// Raft entries skipped as stale (see the module doc).
    skipped: AtomicU64,
    /// Where committed changes' feed items are kept for the change feed
    /// (a journal of this node's own, in commit order); set once at start.
    feed: OnceLock<(Arc<Journal>, std::path::PathBuf)>,
    /// Each event's newest committed states: this node's LSN and the change
    /// index of the newest item of that change, newest last (live stream
    /// ids; see [`ChangeLog::live_id`]).
    change_indexes: DashMap<EventId, ChangeIndexes>,
    /// Confirms this node's leadership with a majority now (see
    /// [`ChangeLog::confirm`]), and how long an answer waits for a commit
    /// ([`ChangeLog::wait_bound`]); set once openraft's node exists.
    leadership: OnceLock<(Confirmer, std::time::Duration)>,
}

/// Confirms a leadership with a majority, within its own bound.
pub type Confirmer = Box<dyn Fn() -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

/// States of one event kept for [`ClusterLog::live_id`]: a stream reads the
/// newest, or one just before it when a change lands meanwhile.
const CHANGE_INDEXES_KEPT: usize = 4;

/// An event's newest committed states, oldest first.
type ChangeIndexes = std::collections::VecDeque<(Lsn, u64)>;

impl ClusterLog {
    /// The log of node `me`, whose state so far reflects LSNs before
    /// `next_lsn`; the receiver is the proposer's.
    pub fn new(me: NodeId, next_lsn: Lsn) -> (Arc<Self>, mpsc::Receiver<Queued>) {
        Self::with_queue(me, next_lsn, PROPOSAL_QUEUE)
    }

    /// [`Self::new`] with room for `capacity` records not yet handed to
    /// openraft.
    fn with_queue(
        me: NodeId,
        next_lsn: Lsn,
        capacity: usize,
    ) -> (Arc<Self>, mpsc::Receiver<Queued>) {
        let (proposals, queue) = mpsc::channel(capacity);
        let state = JournalState {
            durable: next_lsn.prev(),
            fault: Some(Fault::NotLeader),
            ..JournalState::default()
        };
        let log = Arc::new(Self {
            me,
            inner: Mutex::new(Inner {
                next_lsn,
                next_change: 1,
                leading: None,
            }),
            state: watch::Sender::new(state),
            waiters: DurableWaiters::default(),
            proposals,
            applied_index: watch::Sender::new(0),
            applier: OnceLock::new(),
            skipped: AtomicU64::new(0),
            feed: OnceLock::new(),
            change_indexes: DashMap::new(),
            leadership: OnceLock::new(),
        });
        (log, queue)
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where committed changes this node did not make are applied; before
    /// the node starts.
    pub fn set_applier(&self, applier: Arc<dyn Applier>) {
        if self.applier.set(applier).is_err() {
            log::error!("cluster log: the applier was set twice; the first stays");
        }
    }

    /// How a leadership of this node is confirmed with a majority, and
    /// how long an answer waits for its commit; once, when openraft's node
    /// exists.
    pub fn set_leadership(&self, confirmer: Confirmer, wait_bound: std::time::Duration) {
        if self.leadership.set((confirmer, wait_bound)).is_err() {
            log::error!("cluster log: the leadership checks were set twice; the first stay");
        }
    }

    /// Where committed changes' feed items go from now on (the journal
    /// and its directory); before the node starts.
    pub fn set_feed(&self, feed: Arc<Journal>, dir: &std::path::Path) {
        if self.feed.set((feed, dir.to_path_buf())).is_err() {
            log::error!("cluster log: the feed journal was set twice; the first stays");
        }
    }

    /// Writes and syncs what the feed journal was given, and stops it
    /// (after openraft has stopped: nothing more is applied).
    pub fn close_feed(&self) {
        if let Some((feed, _)) = self.feed.get() {
            feed.shutdown();
        }
    }

    /// Notes that event `event`'s state as of `lsn` is its change index
    /// `index`.
    fn note_index(&self, event: EventId, lsn: Lsn, index: u64) {
        let mut kept = self.change_indexes.entry(event).or_default();
        if kept.back().is_some_and(|&(last, _)| last >= lsn) {
            return;
        }
        kept.push_back((lsn, index));
        if kept.len() > CHANGE_INDEXES_KEPT {
            kept.pop_front();
        }
    }

    /// Notes the change index of `record`, committed at `lsn`.
    fn note_record(&self, lsn: Lsn, record: &Record) {
        if let Record::Published {
            event,
            first_index,
            items,
            ..
        } = record
        {
            if !items.is_empty() {
                self.note_index(*event, lsn, first_index + items.len() as u64 - 1);
            }
        }
    }

    /// Waits, without holding up the Raft runtime, until the feed journal
    /// has room for `records` more: the state machine calls it before it
    /// applies an entry, so [`Self::publish`] (under this log's lock) never
    /// finds the queue full. The feed journal has no other writer.
    pub async fn feed_room(&self, records: usize) {
        let Some((feed, _)) = self.feed.get() else {
            return;
        };
        while !feed.has_room(records) {
            tokio::time::sleep(FEED_ROOM_POLL).await;
        }
    }

    /// Appends `record`'s feed items, committed, to the feed journal.
    fn publish(&self, record: &Record) {
        let Some((feed, _)) = self.feed.get() else {
            return;
        };
        if matches!(record, Record::Published { .. }) && !feed.append_numbered(record.clone()) {
            log::error!("change feed: a committed change could not be written to the feed journal");
        }
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.me
    }

    /// Whether this node takes changes now (it leads, and has applied
    /// everything committed before its leadership).
    pub fn leading(&self) -> Option<u64> {
        self.inner().leading
    }

    /// The Raft index of the newest entry applied here.
    pub fn applied_index(&self) -> u64 {
        *self.applied_index.borrow()
    }

    /// Every change of [`Self::applied_index`] from now on.
    pub fn watch_applied(&self) -> watch::Receiver<u64> {
        self.applied_index.subscribe()
    }

    /// Raft entries skipped as stale so far.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// This node now takes changes, as the leader of `term`. Call only
    /// once everything committed before is applied by every actor.
    pub fn start_leading(&self, term: u64) {
        let mut inner = self.inner();
        inner.leading = Some(term);
        // Feed indexes handed out in an earlier leadership and never
        // committed are given again: the feed has no gap.
        inner.next_change = self.state.borrow().changes_durable + 1;
        self.state.send_modify(|state| state.fault = None);
        self.waiters.wake_all();
        log::info!("node {}: leading in term {term}; taking changes", self.me);
    }

    /// This node no longer leads: what it handed out and was not committed
    /// fails, and its actors undo it.
    pub fn stop_leading(&self) {
        self.stop(None);
    }

    /// [`Self::stop_leading`], if this node still leads in `term` (a late
    /// answer about an earlier leadership must not end a later one).
    pub fn stop_leading_term(&self, term: u64) {
        self.stop(Some(term));
    }

    fn stop(&self, only: Option<u64>) {
        let mut inner = self.inner();
        if only.is_some() && inner.leading != only {
            return;
        }
        self.end_leadership(&mut inner);
    }

    /// Ends this node's leadership, if it leads: everything it handed out
    /// and was not committed fails (a new epoch), and its actors undo it.
    fn end_leadership(&self, inner: &mut Inner) {
        let Some(term) = inner.leading.take() else {
            return;
        };
        let next = inner.next_lsn;
        self.state.send_modify(|state| {
            state.epoch += 1;
            state.fault = Some(Fault::NotLeader);
            let first = state.durable.next();
            if first < next {
                state.failed.push(first..=next.prev());
                if state.failed.len() > MAX_FAILED_RANGES {
                    state.failed.remove(0);
                }
            }
        });
        self.waiters.wake_all();
        log::info!("node {}: no longer leading (term {term})", self.me);
    }

    /// Applies the proposal of the Raft entry at `index`, appended in
    /// `entry_term`.
    pub fn apply_proposal(&self, index: u64, entry_term: u64, proposal: Proposal) {
        let mut inner = self.inner();
        if proposal.leadership != entry_term {
            self.skipped.fetch_add(1, Ordering::Relaxed);
        } else if proposal.origin == self.me && inner.leading == Some(proposal.leadership) {
            // Made here, in this leadership: already in the actors' state.
            for (lsn, record) in &proposal.records {
                self.note_record(*lsn, record);
                self.publish(record);
            }
            // The applied index and the durable mark move as one, before
            // the waiters wake. Each answer carries the applied index
            // (`X-Boxoffice-Index`), which must reach this entry, or a
            // follower read with that Min-Index may not show the change
            // (stress run 4: a read-your-writes read got 404). And a read
            // that a Min-Index let through must find the entry durable,
            // since a read may be served from the durable state alone
            // (`service::reads`). The durable mark is set while the
            // applied index is locked for writing: whoever sees either
            // one move sees the other moved too.
            let (through, changes) = last_positions(&proposal);
            self.applied_index.send_if_modified(|applied| {
                self.state.send_modify(|state| {
                    state.durable = state.durable.max(through);
                    state.changes_durable = state.changes_durable.max(changes);
                });
                let moved = index > *applied;
                *applied = (*applied).max(index);
                moved
            });
            let durable = self.state.borrow().durable;
            self.waiters.wake_through(durable);
        } else {
            // A committed entry that this leadership did not make can only
            // come from a newer leader (the entries before this leadership
            // were applied before it began): it is over, whether or not the
            // leadership watcher has seen openraft say so. End it first, so
            // that its uncommitted LSNs fail before `durable` moves past
            // them (else an actor would take its own uncommitted change
            // for durable and keep it: the woken leader of a SIGSTOP under
            // load did, holding a booking no other node had).
            self.end_leadership(&mut inner);
            for (_, record) in proposal.records {
                let lsn = inner.next_lsn;
                inner.next_lsn = lsn.next();
                if let Record::Published {
                    first_index, items, ..
                } = &record
                {
                    inner.next_change = first_index + items.len() as u64;
                }
                self.note_record(lsn, &record);
                self.publish(&record);
                match self.applier.get() {
                    Some(applier) => applier.apply(lsn, record),
                    None => log::error!("cluster log: a committed change before the service"),
                }
                let changes = inner.next_change - 1;
                self.state.send_modify(|state| {
                    state.durable = lsn;
                    state.changes_durable = state.changes_durable.max(changes);
                });
                self.waiters.wake_through(lsn);
            }
        }
        drop(inner);
        self.applied(index);
    }

    /// The committed state as of the newest Raft entry applied, encoded
    /// (a Raft snapshot's image). The caller applies nothing more until the
    /// future is done (openraft's state machine worker waits for it), so
    /// the commit mark it was taken at stays put meanwhile.
    pub fn image(&self) -> ImageFuture {
        let (through, next_change) = {
            let state = self.state.borrow();
            (state.durable, state.changes_durable + 1)
        };
        let Some(applier) = self.applier.get() else {
            return Box::pin(std::future::ready(Err(io::Error::other(
                "a snapshot before the service",
            ))));
        };
        let image = applier.image(through, next_change);
        let feed = self
            .feed
            .get()
            .map(|(feed, dir)| (feed.watch(), dir.clone()));
        Box::pin(async move {
            // The log the snapshot holds is dropped after it: the feed's
            // copy of its items must be on disk first.
            if let Some((mut feed, dir)) = feed {
                let written = |s: &JournalState| s.changes_durable + 1 >= next_change;
                if tokio::time::timeout(FEED_WAIT, feed.wait_for(written))
                    .await
                    .is_err()
                {
                    log::warn!("change feed: its journal is behind; a snapshot is taken anyway");
                }
                let synced =
                    tokio::task::spawn_blocking(move || super::feed::sync_before_snapshot(&dir))
                        .await;
                if !matches!(synced, Ok(Ok(()))) {
                    log::warn!("change feed: its journal could not be synced before a snapshot");
                }
            }
            image.await
        })
    }

    /// Replaces the whole state with a Raft snapshot's `image`, as of the
    /// Raft entry at `index`.
    pub fn install(&self, index: u64, image: &[u8]) -> io::Result<()> {
        let mut inner = self.inner();
        let applier = self
            .applier
            .get()
            .ok_or_else(|| io::Error::other("a snapshot before the service"))?;
        // A snapshot comes from a newer leader: as for its entries above.
        self.end_leadership(&mut inner);
        let lsn = inner.next_lsn;
        let installed = applier.install(image, lsn)?;
        let next_change = installed.next_change_index;
        self.change_indexes.clear();
        for (event, index) in installed.change_indexes {
            self.note_index(event, lsn, index);
        }
        inner.next_lsn = lsn.next();
        inner.next_change = next_change;
        self.state.send_modify(|state| {
            state.durable = lsn;
            state.changes_durable = next_change.saturating_sub(1);
        });
        self.waiters.wake_through(lsn);
        drop(inner);
        self.applied(index);
        Ok(())
    }

    /// Notes that the Raft entry at `index` is applied.
    pub fn applied(&self, index: u64) {
        self.applied_index.send_if_modified(|applied| {
            let moved = index > *applied;
            *applied = (*applied).max(index);
            moved
        });
    }
}

/// The last LSN and change feed index a proposal holds.
fn last_positions(proposal: &Proposal) -> (Lsn, u64) {
    let through = proposal.records.last().map_or(Lsn::ZERO, |(lsn, _)| *lsn);
    let changes = proposal
        .records
        .iter()
        .rev()
        .find_map(|(_, record)| match record {
            Record::Published {
                first_index, items, ..
            } => Some(first_index + items.len() as u64 - 1),
            _ => None,
        })
        .unwrap_or(0);
    (through, changes)
}

impl ClusterLog {
    /// The change index of event `event`'s state as of `lsn`, if known.
    pub fn change_index(&self, event: EventId, lsn: Lsn) -> Option<u64> {
        let kept = self.change_indexes.get(&event)?;
        kept.iter()
            .rev()
            .find(|&&(at, _)| at <= lsn)
            .map(|&(_, index)| index)
    }
}

impl ChangeLog for ClusterLog {
    fn live_id(&self, event: EventId, lsn: Lsn) -> u64 {
        // Unknown only for a state older than every kept one, which a
        // stream never reads; the newest index on this node stands in.
        self.change_index(event, lsn)
            .unwrap_or_else(|| self.state.borrow().changes_durable)
    }

    fn submit(&self, mut record: Record, epoch: u64) -> Result<Lsn, Refused> {
        let mut inner = self.inner();
        let Some(term) = inner.leading else {
            return Err(Refused);
        };
        if self.state.borrow().epoch != epoch {
            return Err(Refused);
        }
        let lsn = inner.next_lsn;
        let next_change = record.number_feed_items(inner.next_change);
        // Full (openraft is behind) or closed: refused, never blocked,
        // like the journal's queue.
        self.proposals
            .try_send((term, lsn, record))
            .map_err(|_| Refused)?;
        inner.next_lsn = lsn.next();
        inner.next_change = next_change;
        Ok(lsn)
    }

    fn next_lsn(&self) -> Lsn {
        self.inner().next_lsn
    }

    fn state(&self) -> watch::Ref<'_, JournalState> {
        self.state.borrow()
    }

    fn watch(&self) -> watch::Receiver<JournalState> {
        self.state.subscribe()
    }

    fn waiters(&self) -> &DurableWaiters {
        &self.waiters
    }

    fn confirm(&self) -> crate::persistence::change_log::Confirming<'_> {
        let Some(term) = self.leading() else {
            return Box::pin(std::future::ready(Err(Refused)));
        };
        let Some((confirmer, _)) = self.leadership.get() else {
            return Box::pin(std::future::ready(Err(Refused)));
        };
        let confirmed = confirmer();
        Box::pin(async move {
            // Confirmed, and still in the leadership that decided: a
            // majority acknowledged this term after the decision.
            if confirmed.await && self.leading() == Some(term) {
                Ok(())
            } else {
                Err(Refused)
            }
        })
    }

    fn wait_bound(&self) -> Option<std::time::Duration> {
        self.leadership.get().map(|(_, bound)| *bound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EventId, Timestamp, UserId};

    fn cancelled(user: &str) -> Record {
        Record::Cancelled {
            event: EventId::try_from(1).expect("id"),
            user: UserId::try_from(user).expect("user"),
            at: Timestamp::from_millis(0),
        }
    }

    /// A log leading in term 1 with one change submitted, not committed:
    /// the log, that change's LSN, the epoch, and the proposal queue
    /// (kept open).
    fn leading_with_one_change() -> (Arc<ClusterLog>, Lsn, u64, mpsc::Receiver<Queued>) {
        let (log, queue) = ClusterLog::new(1, Lsn::new(1));
        log.start_leading(1);
        let epoch = log.state().epoch;
        let mine = log.submit(cancelled("mine"), epoch).expect("submitted");
        (log, mine, epoch, queue)
    }

    /// A leader whose proposals openraft has not taken fills its queue,
    /// then refuses changes (the actor undoes them: 503) instead of
    /// holding more; once the proposer takes one, there is room again.
    #[test]
    fn a_full_proposal_queue_refuses_changes_instead_of_growing() {
        let (log, mut queue) = ClusterLog::with_queue(1, Lsn::new(1), 2);
        log.start_leading(1);
        let epoch = log.state().epoch;
        let first = log.submit(cancelled("a"), epoch).expect("room");
        log.submit(cancelled("b"), epoch).expect("room");
        assert!(log.submit(cancelled("c"), epoch).is_err(), "full");
        assert_eq!(log.next_lsn(), first.next().next(), "no LSN spent on c");
        let (_, taken, _) = queue.try_recv().expect("queued");
        assert_eq!(taken, first);
        log.submit(cancelled("c"), epoch).expect("room again");
    }

    /// Reads the applied index at the moment it is woken.
    struct Probe {
        log: Arc<ClusterLog>,
        seen: std::sync::Mutex<Option<u64>>,
    }

    impl std::task::Wake for Probe {
        fn wake(self: Arc<Self>) {
            *self.seen.lock().expect("lock") = Some(self.log.applied_index());
        }
    }

    /// The answer to a change carries the applied index, read as soon as
    /// its waiter wakes: the index must reach the change's entry first.
    #[test]
    fn a_leader_s_own_entry_is_applied_before_its_waiters_wake() {
        let (log, mine, _, _queue) = leading_with_one_change();
        let probe = Arc::new(Probe {
            log: Arc::clone(&log),
            seen: std::sync::Mutex::new(None),
        });
        let waker = std::task::Waker::from(Arc::clone(&probe));
        let mut cx = std::task::Context::from_waker(&waker);
        let mut waiting = Box::pin(crate::persistence::change_log::wait_durable(&*log, mine));
        assert!(waiting.as_mut().poll(&mut cx).is_pending());
        log.apply_proposal(
            7,
            1,
            Proposal {
                origin: 1,
                leadership: 1,
                records: vec![(mine, cancelled("mine"))],
            },
        );
        assert_eq!(*probe.seen.lock().expect("lock"), Some(7));
        assert!(waiting.as_mut().poll(&mut cx).is_ready());
    }

    /// A leader applies a committed entry of another leader before its
    /// leadership watcher has seen it deposed: its own uncommitted LSN must
    /// fail, not count as durable because `durable` moved past it.
    #[test]
    fn a_newer_leader_s_entry_fails_what_this_leadership_had_not_committed() {
        let (log, mine, epoch, _queue) = leading_with_one_change();
        log.apply_proposal(
            5,
            2,
            Proposal {
                origin: 2,
                leadership: 2,
                records: vec![(Lsn::new(1), cancelled("theirs"))],
            },
        );
        let state = log.state();
        assert!(state.durable > mine, "the other leader's entry is durable");
        assert!(!state.is_durable(mine), "its own uncommitted LSN is not");
        assert!(state.has_failed(mine));
        assert_ne!(state.epoch, epoch, "a new epoch: its actors undo");
        drop(state);
        assert_eq!(log.leading(), None);
    }
}
