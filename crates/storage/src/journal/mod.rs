//! The write-ahead journal: every change is appended here, and made durable,
//! before its client is answered.
//!
//! - **Frames.** `[payload length u32][CRC32 of lsn+payload u32][lsn u64][payload]`,
//!   little-endian; the payload is one encoded [`Record`].
//! - **Segments.** Files `journal-{first lsn:020}.log`, a new one every
//!   `segment_bytes`; segments a retained snapshot covers are deleted.
//! - **Group commit.** Submitters only take the next log sequence number
//!   (LSN) and queue the record; one writer thread writes whatever has queued
//!   and makes it durable with one `fdatasync`, then publishes the new durable
//!   LSN. Waiters wake on that.
//! - **Faults.** A failed write or sync fails its batch and every record
//!   queued behind it, refuses new submissions, and bumps the epoch so actors
//!   undo their non-durable changes. The writer then cuts the file back to its
//!   last good length and writes a `Skipped` record for the abandoned LSNs,
//!   so a reader can still tell a gap from a skip; only then are
//!   submissions accepted again.
//!
//! The files here: [`record`] (what is journalled), `frame` (the bytes of
//! one record on disk), `segment` (one file being appended to), `writer`
//! (the thread that group-commits and repairs after a fault, and
//! `Journal::start`, which starts it), [`mod@replay`]
//! (reading segments back at start, and deleting covered ones). This file is
//! the side the service sees: submitting, waiting until durable, shutdown.

pub mod feed;
pub(crate) mod frame;
pub mod recent;
pub mod replay;
mod segment;
#[cfg(test)]
pub(crate) mod tests;
mod writer;

use crate::stats::JournalStats;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

pub use crate::log::record::{self, CreateKeyV5, Record, V1_MAX_PER_USER};
pub use crate::log::{Fault, JournalState, Lsn, Refused};
pub use frame::{FRAME_HEADER_BYTES, MAX_RECORD_BYTES};
pub use replay::{release, replay, segments, sync_newest, JournalError, ReplayEnd};
pub use segment::{FaultInjector, IoOp};

use crate::log::change_log::ChangeLog;
use crate::log::durable_waiters::DurableWaiters;

/// When an answer may be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncMode {
    /// After the record's batch is synced: nothing acknowledged is lost.
    Always,
    /// After `write()`; synced every interval: a crash of the machine (not
    /// of the process) loses at most one interval.
    Interval,
}

/// `[journal]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalSettings {
    /// Whether changes are journalled; off is the snapshot-only mode.
    pub enabled: bool,
    /// `always` answers after the batch is synced; `interval` after write().
    pub fsync: FsyncMode,
    /// Time between syncs in `interval` mode, in milliseconds.
    pub fsync_interval_ms: u64,
    /// Size after which a new segment file is started, in bytes.
    pub segment_bytes: u64,
}

/// How the journal is run.
#[derive(Debug, Clone)]
pub struct JournalOptions {
    /// Directory of the segment files.
    pub dir: PathBuf,
    /// When answers may be sent.
    pub fsync: FsyncMode,
    /// Time between syncs in `Interval` mode.
    pub fsync_interval: Duration,
    /// Size after which a new segment is started.
    pub segment_bytes: u64,
    /// Makes file operations fail on purpose (tests); `None` in service.
    pub faults: Option<FaultInjector>,
}

/// Records queued for the writer before submissions are refused (503):
/// a stalled disk must not grow memory without bound.
pub const QUEUE_CAPACITY: usize = 65_536;
/// Abandoned LSN ranges remembered for waiters; only the newest are kept.
const MAX_FAILED_RANGES: usize = 1_024;

/// The part submitters share, behind one short lock.
struct Submitter {
    /// The LSN the next record gets.
    next_lsn: Lsn,
    /// To the writer thread; `None` when the journal is disabled.
    queue: Option<SyncSender<(Lsn, Record)>>,
    /// False while a fault is being repaired.
    accepting: bool,
    /// Must match the submitter's epoch.
    epoch: u64,
    /// The change feed index the next published item gets.
    next_change: u64,
}

/// The journal as the rest of the service sees it.
pub struct Journal {
    /// LSN assignment and the queue, together, so per-event order is LSN order.
    submitter: Mutex<Submitter>,
    /// Published journal state.
    state: watch::Sender<JournalState>,
    /// The writer thread, joined at shutdown.
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Off (the snapshot-only mode): changes are only as safe as the last
    /// snapshot, so a failed snapshot refuses changes until one succeeds.
    snapshot_only: bool,
    /// Batch sizes and sync times, for `/metrics`.
    stats: Arc<JournalStats>,
    /// The newest change feed items written, for followers of the feed.
    recent: Arc<recent::RecentChanges>,
    /// Answers waiting for their LSN, woken by the batch that syncs it.
    waiters: DurableWaiters,
    /// Records in the writer's queue: counted in before they are sent,
    /// out once the writer has taken them, so it never reads low.
    queued: AtomicUsize,
}

impl Journal {
    /// A journal that records nothing: every change counts as durable at
    /// once (the snapshot-only mode).
    pub fn disabled(next_lsn: Lsn) -> Arc<Self> {
        let state = JournalState {
            durable: Lsn::MAX,
            ..JournalState::default()
        };
        Arc::new(Self {
            submitter: Mutex::new(Submitter {
                next_lsn,
                queue: None,
                accepting: true,
                epoch: 0,
                next_change: 1,
            }),
            state: watch::Sender::new(state),
            writer: Mutex::new(None),
            snapshot_only: true,
            stats: Arc::default(),
            recent: Arc::default(),
            waiters: DurableWaiters::default(),
            queued: AtomicUsize::new(0),
        })
    }

    /// Batch sizes and sync times so far.
    pub fn stats(&self) -> &Arc<JournalStats> {
        &self.stats
    }

    /// The newest change feed items written.
    pub fn recent(&self) -> &Arc<recent::RecentChanges> {
        &self.recent
    }

    /// In the snapshot-only mode, what the last snapshot attempt did: a
    /// failure refuses changes (503, and `/health` says why) until a later
    /// snapshot succeeds, as a disk fault does with the journal on. With the
    /// journal on, snapshots are not what keeps changes, so this does nothing.
    pub fn snapshot_outcome(&self, failure: Option<&str>) {
        if !self.snapshot_only {
            return;
        }
        let mut s = self.submitter();
        let fault = failure
            .map(|why| Fault::Failing(format!("snapshot failed and the journal is off: {why}")));
        if s.accepting == fault.is_none() && self.state.borrow().fault == fault {
            return;
        }
        s.accepting = fault.is_none();
        self.publish(|state| state.fault = fault);
    }

    fn submitter(&self) -> MutexGuard<'_, Submitter> {
        self.submitter.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Numbers the change feed from `next` on (the index after the newest
    /// one recovered): called once, before the first submission.
    pub fn resume_changes_at(&self, next: u64) {
        let next = next.max(1);
        self.submitter().next_change = next;
        self.state
            .send_modify(|state| state.changes_durable = next - 1);
    }

    /// Queues `record` and returns its LSN, unless the journal is faulted or
    /// has faulted since `epoch` (the caller must undo first). A
    /// [`Record::Published`] gets its feed indexes here, under the same lock
    /// as its LSN, so the feed's order is the journal's.
    pub fn submit(&self, mut record: Record, epoch: u64) -> Result<Lsn, Refused> {
        let mut s = self.submitter();
        if !s.accepting || s.epoch != epoch {
            return Err(Refused);
        }
        let lsn = s.next_lsn;
        let next_change = record.number_feed_items(s.next_change);
        if let Some(queue) = &s.queue {
            // Full (the disk is behind) or closed: refused, never blocked.
            self.enqueue(queue, lsn, record)?;
        }
        s.next_lsn = s.next_lsn.next();
        s.next_change = next_change;
        Ok(lsn)
    }

    /// Queues `record`, whose feed items are numbered already (a cluster's
    /// committed change, numbered by the leader that made it), to a journal
    /// kept only for the feed, and skips it when the journal holds its
    /// items already (a restart applies the Raft log after its snapshot
    /// again). Items this journal never got (those a snapshot brought) are
    /// passed over: the feed starts after them. `false` if the journal
    /// refused it: a disk fault, or a full queue (the feed misses it, which
    /// the caller logs). Never blocks: a caller that must not lose a record
    /// waits for [`Self::has_room`] first, without holding up its thread.
    pub fn append_numbered(&self, record: Record) -> bool {
        let Record::Published {
            first_index, items, ..
        } = &record
        else {
            return true;
        };
        let (first, next) = (*first_index, first_index + items.len() as u64);
        let mut s = self.submitter();
        if first < s.next_change {
            return true;
        }
        // Items before `first` this journal never got: its feed goes on
        // after them (readers learn of it once this record is written, as
        // of every record).
        if first > s.next_change {
            s.next_change = first;
        }
        if !s.accepting {
            return false;
        }
        let Some(queue) = &s.queue else {
            return true;
        };
        let lsn = s.next_lsn;
        if self.enqueue(queue, lsn, record).is_err() {
            return false;
        }
        s.next_lsn = lsn.next();
        s.next_change = next;
        true
    }

    /// Whether the writer's queue has room for `records` more (at most its
    /// whole capacity), or nothing to wait for (no queue, or refusing).
    pub fn has_room(&self, records: usize) -> bool {
        let s = self.submitter();
        if !s.accepting || s.queue.is_none() {
            return true;
        }
        let queued = self.queued.load(Ordering::Acquire);
        QUEUE_CAPACITY.saturating_sub(queued) >= records.min(QUEUE_CAPACITY)
    }

    /// Sends `(lsn, record)` to the writer, counted in `queued` first;
    /// refused when the queue is full or closed.
    fn enqueue(
        &self,
        queue: &SyncSender<(Lsn, Record)>,
        lsn: Lsn,
        record: Record,
    ) -> Result<(), Refused> {
        self.queued.fetch_add(1, Ordering::AcqRel);
        queue.try_send((lsn, record)).map_err(|_| {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            Refused
        })
    }

    /// The writer took `records` off the queue.
    fn dequeued(&self, records: usize) {
        self.queued.fetch_sub(records, Ordering::AcqRel);
    }

    /// The writer took a batch of `records` off the queue to write.
    fn took_batch(&self, records: usize) {
        self.dequeued(records);
        self.stats.batch_records.observe(records as u64);
    }

    /// The LSN and the change feed index the next record gets, read
    /// together: a snapshot notes both for one position in the journal.
    pub fn next_positions(&self) -> (Lsn, u64) {
        let s = self.submitter();
        (s.next_lsn, s.next_change)
    }

    /// The LSN the next record will get.
    pub fn next_lsn(&self) -> Lsn {
        self.submitter().next_lsn
    }

    /// The current state.
    pub fn state(&self) -> watch::Ref<'_, JournalState> {
        self.state.borrow()
    }

    /// Every change of the state from now on.
    pub fn watch(&self) -> watch::Receiver<JournalState> {
        self.state.subscribe()
    }

    /// The answers waiting for their LSN.
    pub fn waiters(&self) -> &DurableWaiters {
        &self.waiters
    }

    /// Changes the published state in any way but a batch's new durable
    /// mark (a fault, an abandoned range, a new epoch), then wakes every
    /// waiting answer to look again.
    fn publish(&self, change: impl FnOnce(&mut JournalState)) {
        self.state.send_modify(change);
        self.waiters.wake_all();
    }

    /// Publishes a synced batch: everything up to `durable` (and change
    /// feed items up to `changes`) is on disk. Wakes only the answers the
    /// batch settles.
    fn publish_durable(&self, durable: Lsn, changes: Option<u64>) {
        self.state.send_modify(|s| {
            s.durable = durable;
            if let Some(index) = changes {
                s.changes_durable = index;
            }
        });
        self.waiters.wake_through(durable);
    }

    /// Waits until `lsn` is durable; `Err` if it never will be.
    /// [`Lsn::ZERO`] (a read that follows no change) returns at once.
    pub async fn wait_durable(&self, lsn: Lsn) -> Result<(), Refused> {
        crate::log::change_log::wait_durable(self, lsn).await
    }

    /// Stops the writer after it has written and synced everything queued.
    pub fn shutdown(&self) {
        self.submitter().queue = None;
        let handle = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

impl ChangeLog for Journal {
    fn submit(&self, record: Record, epoch: u64) -> Result<Lsn, Refused> {
        Journal::submit(self, record, epoch)
    }

    fn next_lsn(&self) -> Lsn {
        Journal::next_lsn(self)
    }

    fn state(&self) -> watch::Ref<'_, JournalState> {
        Journal::state(self)
    }

    fn watch(&self) -> watch::Receiver<JournalState> {
        Journal::watch(self)
    }

    fn waiters(&self) -> &DurableWaiters {
        Journal::waiters(self)
    }
}
