//! The writer thread: group commit, segment rotation, and repair after a
//! failed write or sync; and starting a journal, which is starting it.

use std::fs;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::frame::encode_frame;
use super::segment::{segment_path, Segment};
use super::{
    Fault, FsyncMode, Journal, JournalOptions, JournalState, Lsn, Record, Submitter,
    MAX_FAILED_RANGES, QUEUE_CAPACITY,
};
use crate::log::durable_waiters::DurableWaiters;

/// The writer thread's state.
pub(super) struct Writer {
    /// Where the state is published.
    journal: Arc<Journal>,
    /// Queued records.
    records: Receiver<(Lsn, Record)>,
    /// The current segment.
    segment: Segment,
    /// Settings.
    options: JournalOptions,
    /// The highest LSN written.
    last_lsn: Lsn,
}

impl Journal {
    /// Starts the writer on a fresh segment beginning at `next_lsn`.
    pub fn start(options: JournalOptions, next_lsn: Lsn) -> io::Result<Arc<Self>> {
        fs::create_dir_all(&options.dir)?;
        let segment = Segment::create(&options.dir, next_lsn, options.faults.clone())?;
        let (queue, records) = mpsc::sync_channel(QUEUE_CAPACITY);
        let state = JournalState {
            durable: next_lsn.prev(),
            ..JournalState::default()
        };
        let journal = Arc::new(Self {
            submitter: Mutex::new(Submitter {
                next_lsn,
                queue: Some(queue),
                accepting: true,
                epoch: 0,
                next_change: 1,
            }),
            state: watch::Sender::new(state),
            writer: Mutex::new(None),
            snapshot_only: false,
            stats: Arc::default(),
            recent: Arc::default(),
            waiters: DurableWaiters::default(),
            queued: AtomicUsize::new(0),
        });
        let writer = Writer::new(
            Arc::clone(&journal),
            records,
            segment,
            options,
            next_lsn.prev(),
        );
        let handle = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || writer.run())?;
        *journal.writer.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        Ok(journal)
    }
}

/// One batch of records, encoded.
struct Gathered {
    /// The newest LSN in it.
    last: Lsn,
    /// The newest change feed index in it, if it holds feed items.
    last_change: Option<u64>,
    /// Its records, kept for the feed's followers once written (see
    /// `recent`).
    kept: Vec<Record>,
}

/// Frames gathered into one write before syncing, at most.
const MAX_BATCH_BYTES: usize = 4 << 20;
/// Time between repair attempts while faulted.
const REPAIR_RETRY: Duration = Duration::from_millis(200);

/// The last change feed index `record` holds, if it holds any.
fn last_change_index(record: &Record) -> Option<u64> {
    match record {
        Record::Published {
            first_index, items, ..
        } if !items.is_empty() => Some(first_index + items.len() as u64 - 1),
        _ => None,
    }
}

impl Writer {
    /// A writer that appends `records` to `segment`, whose next record is
    /// `last_lsn + 1`.
    pub(super) fn new(
        journal: Arc<Journal>,
        records: Receiver<(Lsn, Record)>,
        segment: Segment,
        options: JournalOptions,
        last_lsn: Lsn,
    ) -> Self {
        Self {
            journal,
            records,
            segment,
            options,
            last_lsn,
        }
    }

    pub(super) fn run(mut self) {
        let mut batch = Vec::with_capacity(64 * 1024);
        let mut unsynced = false;
        let mut next_sync = Instant::now() + self.options.fsync_interval;
        loop {
            let first = match self.options.fsync {
                FsyncMode::Always => self
                    .records
                    .recv()
                    .map_err(|_| RecvTimeoutError::Disconnected),
                FsyncMode::Interval => {
                    let wait = next_sync.saturating_duration_since(Instant::now());
                    self.records.recv_timeout(wait)
                }
            };
            let first = match first {
                Ok(record) => record,
                Err(RecvTimeoutError::Timeout) => {
                    if unsynced {
                        self.sync_interval(&mut unsynced);
                    }
                    next_sync = Instant::now() + self.options.fsync_interval;
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    if let Err(e) = self.segment.sync() {
                        log::error!(
                            "journal: final sync of {} failed: {e}",
                            self.segment.path.display()
                        );
                    }
                    return;
                }
            };
            let Gathered {
                last,
                last_change,
                kept,
            } = self.gather(first, &mut batch);
            let base = self.segment.good_len;
            let written = match self.options.fsync {
                FsyncMode::Always => self
                    .segment
                    .append(&batch, self.options.segment_bytes)
                    .and_then(|()| self.timed_sync()),
                FsyncMode::Interval => self.segment.append(&batch, self.options.segment_bytes),
            };
            match written {
                Ok(()) => {
                    self.last_lsn = last;
                    self.journal
                        .stats()
                        .written_bytes
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    unsynced = self.options.fsync == FsyncMode::Interval;
                    // Before the items count as durable: a follower told
                    // of them finds them here.
                    if last_change.is_some() {
                        self.journal.recent.extend(kept);
                    }
                    self.journal.publish_durable(last, last_change);
                    if self.options.fsync == FsyncMode::Interval && Instant::now() >= next_sync {
                        self.sync_interval(&mut unsynced);
                        next_sync = Instant::now() + self.options.fsync_interval;
                    }
                    if self.segment.good_len >= self.options.segment_bytes {
                        self.rotate(&mut unsynced);
                    }
                }
                Err(e) => self.fail_and_repair(base, &e),
            }
        }
    }

    /// Encodes `first` and whatever else has queued, up to
    /// [`MAX_BATCH_BYTES`], into `batch` (cleared first): one write.
    fn gather(&self, first: (Lsn, Record), batch: &mut Vec<u8>) -> Gathered {
        batch.clear();
        let mut last = first.0;
        let mut records = 1;
        let mut last_change = last_change_index(&first.1);
        encode_frame(batch, first.0, &first.1);
        let mut kept = vec![first.1];
        while batch.len() < MAX_BATCH_BYTES {
            match self.records.try_recv() {
                Ok((lsn, record)) => {
                    encode_frame(batch, lsn, &record);
                    last = lsn;
                    records += 1;
                    last_change = last_change_index(&record).or(last_change);
                    kept.push(record);
                }
                Err(_) => break,
            }
        }
        self.journal.took_batch(records);
        Gathered {
            last,
            last_change,
            kept,
        }
    }

    /// Syncs the segment, counting the time it took.
    fn timed_sync(&mut self) -> io::Result<()> {
        let started = Instant::now();
        let synced = self.segment.sync();
        self.journal
            .stats()
            .fsync_seconds
            .observe_duration(started.elapsed());
        synced
    }

    /// `Interval` mode's periodic sync. Its records were already answered;
    /// if it fails, what is still queued is abandoned like a failed write.
    fn sync_interval(&mut self, unsynced: &mut bool) {
        if let Err(e) = self.timed_sync() {
            let base = self.segment.good_len;
            self.fail_and_repair(base, &e);
        }
        *unsynced = false;
    }

    /// Starts a new segment after the current one is synced.
    fn rotate(&mut self, unsynced: &mut bool) {
        if *unsynced {
            self.sync_interval(unsynced);
        }
        match Segment::create(
            &self.options.dir,
            self.last_lsn.next(),
            self.options.faults.clone(),
        ) {
            Ok(next) => self.segment = next,
            Err(e) => {
                // Keep appending to the old segment; it only grows past its
                // size. A half-created file would sit inside the old one's
                // LSN range; replay passes over empty files, but remove it.
                log::error!("journal: cannot start a new segment: {e}");
                let _ = fs::remove_file(segment_path(&self.options.dir, self.last_lsn.next()));
            }
        }
    }

    /// Stops submissions and tells actors to undo their pending changes.
    fn refuse(&self, reason: String) {
        let mut s = self.journal.submitter();
        s.accepting = false;
        s.epoch += 1;
        let epoch = s.epoch;
        self.journal.publish(|state| {
            state.epoch = epoch;
            state.fault = Some(Fault::Failing(reason));
        });
    }

    /// A write or sync failed: fail every record not yet durable, cut the
    /// file back to `base` (its last good length), record the skip, and
    /// accept changes again once the disk takes writes.
    fn fail_and_repair(&mut self, base: u64, error: &io::Error) {
        log::error!(
            "journal: writing {} failed: {error}; refusing writes",
            self.segment.path.display()
        );
        self.refuse(format!("journal write failed: {error}"));
        loop {
            std::thread::sleep(REPAIR_RETRY);
            // `refuse` stopped new submissions (`accepting` is false), so
            // after this drain every assigned LSN past `last_lsn` is
            // abandoned and `next_lsn` cannot move until we accept again.
            // The lock is held only to read that, never across the I/O.
            let through = {
                let s = self.journal.submitter();
                while self.records.try_recv().is_ok() {
                    self.journal.dequeued(1);
                }
                if s.queue.is_none() {
                    return;
                }
                s.next_lsn.prev()
            };
            let mut frame = Vec::new();
            // With nothing abandoned there is nothing to skip: just prove
            // the disk syncs again.
            if through > self.last_lsn {
                encode_frame(
                    &mut frame,
                    self.last_lsn.next(),
                    &Record::Skipped { through },
                );
            }
            // Every attempt starts again from the last good length, so a
            // half-written skip frame from a failed attempt is cut off too.
            self.segment.good_len = base;
            let repaired = self
                .segment
                .cut_back()
                .and_then(|()| self.segment.append(&frame, self.options.segment_bytes))
                .and_then(|()| self.segment.sync());
            match repaired {
                Ok(()) => {
                    let abandoned = self.last_lsn.next()..=through;
                    self.last_lsn = through;
                    let mut s = self.journal.submitter();
                    if s.queue.is_none() {
                        return;
                    }
                    s.accepting = true;
                    self.journal.publish(|state| {
                        state.durable = through;
                        if !abandoned.is_empty() {
                            state.failed.push(abandoned);
                            // Only in-flight waiters (milliseconds old) ask
                            // about failed ranges: the oldest can go.
                            let excess = state.failed.len().saturating_sub(MAX_FAILED_RANGES);
                            state.failed.drain(..excess);
                        }
                        state.fault = None;
                    });
                    drop(s);
                    log::warn!("journal: writes work again; LSNs up to {through} were abandoned");
                    return;
                }
                Err(e) => log::debug!("journal: repair failed, retrying: {e}"),
            }
        }
    }
}
