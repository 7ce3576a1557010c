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

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::codec;
use crate::domain::{BookingId, Change, EventId, EventSettings, Timestamp, UserId};

/// A log sequence number: the position of a record in the journal.
pub type Lsn = u64;

/// One journal entry. Replaying these in order rebuilds the state.
///
/// Stored by variant index, so variants are only ever appended: the first
/// three are the v1 forms, still read from older journals and turned into
/// [`Change`]s by [`Record::into_change`]; new journals write only
/// [`Record::Change`] and [`Record::Skipped`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// v1: an event was created (now `Change::Created`).
    EventCreated {
        /// Its id.
        event: EventId,
        /// Its name.
        name: Option<String>,
        /// Its tickets.
        total_tickets: u64,
        /// When.
        at: Timestamp,
    },
    /// v1: a user booked one ticket (now `Change::Booked`).
    Booked {
        /// The event.
        event: EventId,
        /// The new booking's id.
        booking: BookingId,
        /// Who.
        user: UserId,
        /// When.
        at: Timestamp,
    },
    /// v1: a user cancelled (now `Change::Cancelled`).
    Cancelled {
        /// The event.
        event: EventId,
        /// Who.
        user: UserId,
        /// When.
        at: Timestamp,
    },
    /// LSNs from this record's own up to `through` were abandoned after a
    /// disk fault: their clients were told nothing changed.
    Skipped {
        /// The last abandoned LSN.
        through: Lsn,
    },
    /// A change to one event, exactly as the domain made it.
    Change {
        /// The event.
        event: EventId,
        /// What happened.
        change: Change,
    },
}

/// Per-user limit that v1 events, which had none, are given when read back:
/// one ticket a booking was all v1 could sell.
pub const V1_MAX_PER_USER: u32 = 10;

impl Record {
    /// The event change this record holds, reading v1 forms as the change
    /// they stood for; `None` for a skip.
    pub fn into_change(self) -> Option<(EventId, Change)> {
        match self {
            Self::EventCreated {
                event,
                name,
                total_tickets,
                at,
            } => Some((
                event,
                Change::Created {
                    settings: EventSettings::new(name, total_tickets, V1_MAX_PER_USER),
                    at,
                },
            )),
            Self::Booked {
                event,
                booking,
                user,
                at,
            } => Some((
                event,
                Change::Booked {
                    booking,
                    user,
                    quantity: 1,
                    at,
                },
            )),
            Self::Cancelled { event, user, at } => Some((event, Change::Cancelled { user, at })),
            Self::Skipped { .. } => None,
            Self::Change { event, change } => Some((event, change)),
        }
    }
}

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
}

/// What waiters and actors read about the journal.
#[derive(Debug, Clone, Default)]
pub struct JournalState {
    /// Every LSN up to this one is durable, unless it lies in `failed`.
    pub durable: Lsn,
    /// Bumped at every fault; an actor that sees a new epoch undoes its
    /// changes that are not durable.
    pub epoch: u64,
    /// LSN ranges abandoned after faults.
    pub failed: Vec<RangeInclusive<Lsn>>,
    /// Why writes are refused right now, if they are.
    pub fault: Option<String>,
}

impl JournalState {
    /// Whether `lsn` is on disk for good.
    pub fn is_durable(&self, lsn: Lsn) -> bool {
        lsn <= self.durable && !self.failed.iter().any(|r| r.contains(&lsn))
    }

    /// Whether `lsn` will never be durable.
    pub fn has_failed(&self, lsn: Lsn) -> bool {
        self.failed.iter().any(|r| r.contains(&lsn)) || (self.fault.is_some() && lsn > self.durable)
    }
}

/// Records queued for the writer before submissions are refused (503):
/// a stalled disk must not grow memory without bound.
pub const QUEUE_CAPACITY: usize = 65_536;
/// Abandoned LSN ranges remembered for waiters; only the newest are kept.
const MAX_FAILED_RANGES: usize = 1_024;

/// Why a submission was refused; nothing was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the journal is not accepting changes")]
pub struct Refused;

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
}

/// The journal as the rest of the service sees it.
pub struct Journal {
    /// LSN assignment and the queue, together, so per-event order is LSN order.
    submitter: Mutex<Submitter>,
    /// Published journal state.
    state: watch::Sender<JournalState>,
    /// The writer thread, joined at shutdown.
    writer: Mutex<Option<JoinHandle<()>>>,
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
            }),
            state: watch::Sender::new(state),
            writer: Mutex::new(None),
        })
    }

    /// Starts the writer on a fresh segment beginning at `next_lsn`.
    pub fn start(options: JournalOptions, next_lsn: Lsn) -> io::Result<Arc<Self>> {
        fs::create_dir_all(&options.dir)?;
        let segment = Segment::create(&options.dir, next_lsn)?;
        let (queue, records) = mpsc::sync_channel(QUEUE_CAPACITY);
        let state = JournalState {
            durable: next_lsn.saturating_sub(1),
            ..JournalState::default()
        };
        let journal = Arc::new(Self {
            submitter: Mutex::new(Submitter {
                next_lsn,
                queue: Some(queue),
                accepting: true,
                epoch: 0,
            }),
            state: watch::Sender::new(state),
            writer: Mutex::new(None),
        });
        let writer = Writer {
            journal: Arc::clone(&journal),
            records,
            segment,
            options,
            last_lsn: next_lsn - 1,
        };
        let handle = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || writer.run())?;
        *journal.writer.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        Ok(journal)
    }

    fn submitter(&self) -> MutexGuard<'_, Submitter> {
        self.submitter.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `record` and returns its LSN, unless the journal is faulted or
    /// has faulted since `epoch` (the caller must undo first).
    pub fn submit(&self, record: Record, epoch: u64) -> Result<Lsn, Refused> {
        let mut s = self.submitter();
        if !s.accepting || s.epoch != epoch {
            return Err(Refused);
        }
        let lsn = s.next_lsn;
        if let Some(queue) = &s.queue {
            // Full (the disk is behind) or closed: refused, never blocked.
            queue.try_send((lsn, record)).map_err(|_| Refused)?;
        }
        s.next_lsn += 1;
        Ok(lsn)
    }

    /// The LSN the next record will get.
    pub fn next_lsn(&self) -> Lsn {
        self.submitter().next_lsn
    }

    /// The current state.
    pub fn state(&self) -> watch::Ref<'_, JournalState> {
        self.state.borrow()
    }

    /// Waits until `lsn` is durable; `Err` if it never will be. LSN 0 (a
    /// read that follows no change) returns at once.
    pub async fn wait_durable(&self, lsn: Lsn) -> Result<(), Refused> {
        if lsn == 0 {
            return Ok(());
        }
        // Most answers are already durable when asked (reads, and every
        // change once its batch is synced): no subscription needed.
        {
            let state = self.state.borrow();
            if state.is_durable(lsn) {
                return Ok(());
            }
            if state.has_failed(lsn) {
                return Err(Refused);
            }
        }
        let mut updates = self.state.subscribe();
        let state = updates
            .wait_for(|s| s.is_durable(lsn) || s.has_failed(lsn))
            .await
            .map_err(|_| Refused)?;
        if state.is_durable(lsn) {
            Ok(())
        } else {
            Err(Refused)
        }
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

/// The segment being appended to.
struct Segment {
    /// The open file.
    file: File,
    /// Its path, for messages.
    path: PathBuf,
    /// Bytes known to be whole frames; a failed write is cut back to this.
    good_len: u64,
}

impl Segment {
    fn create(dir: &Path, first_lsn: Lsn) -> io::Result<Self> {
        let path = segment_path(dir, first_lsn);
        // A file of this name can only be empty or a torn tail already cut to
        // nothing by replay, since it would otherwise have moved the LSN on.
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)?;
        file.sync_all()?;
        sync_dir(dir)?;
        Ok(Self {
            file,
            path,
            good_len: 0,
        })
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.good_len += bytes.len() as u64;
        Ok(())
    }

    /// Drops whatever a failed write left after the last whole frame.
    fn cut_back(&mut self) -> io::Result<()> {
        self.file.set_len(self.good_len)?;
        self.file.seek(SeekFrom::Start(self.good_len))?;
        Ok(())
    }
}

/// The writer thread's state.
struct Writer {
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

/// Frames gathered into one write before syncing, at most.
const MAX_BATCH_BYTES: usize = 4 << 20;
/// Time between repair attempts while faulted.
const REPAIR_RETRY: Duration = Duration::from_millis(200);

impl Writer {
    fn run(mut self) {
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
                    if let Err(e) = self.segment.file.sync_data() {
                        log::error!(
                            "journal: final sync of {} failed: {e}",
                            self.segment.path.display()
                        );
                    }
                    return;
                }
            };
            batch.clear();
            let mut last = first.0;
            encode_frame(&mut batch, first.0, &first.1);
            while batch.len() < MAX_BATCH_BYTES {
                match self.records.try_recv() {
                    Ok((lsn, record)) => {
                        encode_frame(&mut batch, lsn, &record);
                        last = lsn;
                    }
                    Err(_) => break,
                }
            }
            let base = self.segment.good_len;
            let written = match self.options.fsync {
                FsyncMode::Always => self
                    .segment
                    .append(&batch)
                    .and_then(|()| self.segment.file.sync_data()),
                FsyncMode::Interval => self.segment.append(&batch),
            };
            match written {
                Ok(()) => {
                    self.last_lsn = last;
                    unsynced = self.options.fsync == FsyncMode::Interval;
                    self.journal.state.send_modify(|s| s.durable = last);
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

    /// `Interval` mode's periodic sync. Its records were already answered;
    /// if it fails, what is still queued is abandoned like a failed write.
    fn sync_interval(&mut self, unsynced: &mut bool) {
        if let Err(e) = self.segment.file.sync_data() {
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
        match Segment::create(&self.options.dir, self.last_lsn + 1) {
            Ok(next) => self.segment = next,
            Err(e) => {
                // Keep appending to the old segment; it only grows past its
                // size. A half-created file would sit inside the old one's
                // LSN range; replay passes over empty files, but remove it.
                log::error!("journal: cannot start a new segment: {e}");
                let _ = fs::remove_file(segment_path(&self.options.dir, self.last_lsn + 1));
            }
        }
    }

    /// Stops submissions and tells actors to undo their pending changes.
    fn refuse(&self, reason: String) {
        let mut s = self.journal.submitter();
        s.accepting = false;
        s.epoch += 1;
        let epoch = s.epoch;
        self.journal.state.send_modify(|state| {
            state.epoch = epoch;
            state.fault = Some(reason);
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
                while self.records.try_recv().is_ok() {}
                if s.queue.is_none() {
                    return;
                }
                s.next_lsn - 1
            };
            let mut frame = Vec::new();
            // With nothing abandoned there is nothing to skip: just prove
            // the disk syncs again.
            if through > self.last_lsn {
                encode_frame(&mut frame, self.last_lsn + 1, &Record::Skipped { through });
            }
            // Every attempt starts again from the last good length, so a
            // half-written skip frame from a failed attempt is cut off too.
            self.segment.good_len = base;
            let repaired = self
                .segment
                .cut_back()
                .and_then(|()| self.segment.append(&frame))
                .and_then(|()| self.segment.file.sync_data());
            match repaired {
                Ok(()) => {
                    let abandoned = self.last_lsn + 1..=through;
                    self.last_lsn = through;
                    let mut s = self.journal.submitter();
                    if s.queue.is_none() {
                        return;
                    }
                    s.accepting = true;
                    self.journal.state.send_modify(|state| {
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

/// Bytes in a frame header.
pub const FRAME_HEADER_BYTES: usize = 16;
/// A record never encodes larger than this; anything claiming more is damage.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

fn encode_frame(out: &mut Vec<u8>, lsn: Lsn, record: &Record) {
    // Records are small plain data: encoding cannot fail short of a bug. Its
    // submitter would be told the change is durable, so going on would lose
    // an acknowledged change: stop the process instead.
    let payload = match codec::encode(record) {
        Ok(p) => p,
        Err(e) => {
            log::error!("journal: cannot encode record {lsn}: {e}; stopping");
            std::process::abort();
        }
    };
    let mut crc = crc32fast::Hasher::new();
    crc.update(&lsn.to_le_bytes());
    crc.update(&payload);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&lsn.to_le_bytes());
    out.extend_from_slice(&payload);
}

/// A frame read back: its LSN, record and total size.
fn decode_frame(bytes: &[u8]) -> Option<(Lsn, Record, usize)> {
    let header = bytes.get(..FRAME_HEADER_BYTES)?;
    let len = u32::from_le_bytes(header[0..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[4..8].try_into().ok()?);
    let lsn_bytes = &header[8..16];
    if len > MAX_RECORD_BYTES {
        return None;
    }
    let payload = bytes.get(FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + len)?;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(lsn_bytes);
    hasher.update(payload);
    if hasher.finalize() != crc {
        return None;
    }
    let record = codec::decode(payload).ok()?;
    Some((
        u64::from_le_bytes(lsn_bytes.try_into().ok()?),
        record,
        FRAME_HEADER_BYTES + len,
    ))
}

/// Why the journal cannot be replayed; start-up must stop (exit code 3).
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The file system refused.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// A damaged record that is not the torn tail of the last segment.
    #[error("{path}: damaged record at byte offset {offset}")]
    Corrupt {
        /// The segment.
        path: PathBuf,
        /// Where the damaged frame starts.
        offset: u64,
    },
    /// Records are missing: a segment was lost or LSNs jump.
    #[error("{path}: journal gap at byte offset {offset}: expected LSN {expected}, found {found}")]
    Gap {
        /// The segment where the gap shows.
        path: PathBuf,
        /// Where.
        offset: u64,
        /// The LSN that should come next.
        expected: Lsn,
        /// The LSN that came.
        found: Lsn,
    },
    /// A record that does not apply to the state it follows.
    #[error("{path}: record {lsn} at byte offset {offset} does not apply: {why}")]
    Inapplicable {
        /// The segment.
        path: PathBuf,
        /// The record's LSN.
        lsn: Lsn,
        /// Where.
        offset: u64,
        /// Why.
        why: String,
    },
}

/// What a replay found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayEnd {
    /// The LSN the next record gets.
    pub next_lsn: Lsn,
    /// Records handed to the caller.
    pub applied: u64,
    /// A torn tail that was cut off: the segment and its new length.
    pub truncated: Option<(PathBuf, u64)>,
}

fn segment_path(dir: &Path, first_lsn: Lsn) -> PathBuf {
    dir.join(format!("journal-{first_lsn:020}.log"))
}

/// Segment files in `dir`, by first LSN.
pub fn segments(dir: &Path) -> Result<Vec<(Lsn, PathBuf)>, JournalError> {
    let io_err = |source| JournalError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut found = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(io_err(e)),
    };
    for entry in entries {
        let path = entry.map_err(io_err)?.path();
        let first = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("journal-"))
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse::<Lsn>().ok());
        if let Some(first) = first {
            found.push((first, path));
        }
    }
    found.sort();
    Ok(found)
}

/// Replays every record after `covered` (the LSN a snapshot covers, 0 for
/// none) through `apply`, checking that LSNs run without gaps. A damaged
/// frame at the very end of the last segment is a torn write and is cut off
/// with a warning; any other damage is an error naming file and offset.
pub fn replay(
    dir: &Path,
    covered: Lsn,
    mut apply: impl FnMut(Lsn, Record) -> Result<(), String>,
) -> Result<ReplayEnd, JournalError> {
    let all = segments(dir)?;
    // Segments wholly covered by the snapshot need not be read.
    let first_needed = all
        .iter()
        .rposition(|(first, _)| *first <= covered + 1)
        .unwrap_or(0);
    let needed = &all[first_needed.min(all.len())..];
    let mut expected = match needed.first() {
        None => {
            return Ok(ReplayEnd {
                next_lsn: covered + 1,
                applied: 0,
                truncated: None,
            })
        }
        Some((first, path)) if *first > covered + 1 => {
            return Err(JournalError::Gap {
                path: path.clone(),
                offset: 0,
                expected: covered + 1,
                found: *first,
            });
        }
        Some((first, _)) => *first,
    };
    let mut end = ReplayEnd {
        next_lsn: expected,
        applied: 0,
        truncated: None,
    };
    for (i, (first, path)) in needed.iter().enumerate() {
        let is_last = i + 1 == needed.len();
        let bytes = fs::read(path).map_err(|source| JournalError::Io {
            path: path.clone(),
            source,
        })?;
        // An empty file holds no records, so it cannot hide any: continuity
        // is checked record by record. (A rotation cut short by a full disk
        // can leave one behind.)
        if bytes.is_empty() {
            continue;
        }
        if *first != expected {
            return Err(JournalError::Gap {
                path: path.clone(),
                offset: 0,
                expected,
                found: *first,
            });
        }
        let mut offset = 0usize;
        while offset < bytes.len() {
            let Some((lsn, record, size)) = decode_frame(&bytes[offset..]) else {
                if is_last && !any_frame_after(&bytes, offset) {
                    log::warn!(
                        "journal: cutting torn tail of {} at byte offset {offset} ({} bytes)",
                        path.display(),
                        bytes.len() - offset
                    );
                    truncate(path, offset as u64)?;
                    end.truncated = Some((path.clone(), offset as u64));
                    break;
                }
                return Err(JournalError::Corrupt {
                    path: path.clone(),
                    offset: offset as u64,
                });
            };
            if lsn != expected {
                return Err(JournalError::Gap {
                    path: path.clone(),
                    offset: offset as u64,
                    expected,
                    found: lsn,
                });
            }
            match record {
                Record::Skipped { through } if through >= lsn => expected = through + 1,
                Record::Skipped { .. } => {
                    return Err(JournalError::Corrupt {
                        path: path.clone(),
                        offset: offset as u64,
                    });
                }
                record => {
                    if lsn > covered {
                        apply(lsn, record).map_err(|why| JournalError::Inapplicable {
                            path: path.clone(),
                            lsn,
                            offset: offset as u64,
                            why,
                        })?;
                        end.applied += 1;
                    }
                    expected += 1;
                }
            }
            offset += size;
        }
    }
    end.next_lsn = expected.max(covered + 1);
    Ok(end)
}

/// Whether any whole, valid frame starts after a damaged one at `bad`: if
/// so the damage is in the middle of the log, not a torn tail.
fn any_frame_after(bytes: &[u8], bad: usize) -> bool {
    (bad + 1..bytes.len().saturating_sub(FRAME_HEADER_BYTES - 1))
        .any(|at| decode_frame(&bytes[at..]).is_some())
}

fn truncate(path: &Path, len: u64) -> Result<(), JournalError> {
    let io_err = |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = OpenOptions::new().write(true).open(path).map_err(io_err)?;
    file.set_len(len).map_err(io_err)?;
    file.sync_all().map_err(io_err)
}

/// Deletes the segments whose every record is at or below `covered`. The
/// newest segment is never deleted: the writer may be appending to it.
pub fn release(dir: &Path, covered: Lsn) -> Result<usize, JournalError> {
    let all = segments(dir)?;
    let mut removed = 0;
    for pair in all.windows(2) {
        let (_, path) = &pair[0];
        let (next_first, _) = pair[1];
        if next_first <= covered + 1 {
            fs::remove_file(path).map_err(|source| JournalError::Io {
                path: path.clone(),
                source,
            })?;
            removed += 1;
        }
    }
    Ok(removed)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn booked(n: u64) -> Record {
        Record::Booked {
            event: EventId::try_from(1).expect("id"),
            booking: BookingId::from_raw(n),
            user: UserId::try_from(format!("u{n}").as_str()).expect("user"),
            at: Timestamp::from_millis(n as i64),
        }
    }

    fn options(dir: &Path, segment_bytes: u64) -> JournalOptions {
        JournalOptions {
            dir: dir.to_path_buf(),
            fsync: FsyncMode::Always,
            fsync_interval: Duration::from_millis(10),
            segment_bytes,
        }
    }

    /// Writes `n` records through a real journal, one at a time, and stops it.
    fn write(dir: &Path, n: u64, segment_bytes: u64) {
        let journal = Journal::start(options(dir, segment_bytes), 1).expect("start");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        for i in 1..=n {
            // One record per batch, as with a single client: segments rotate
            // only between batches.
            let lsn = journal.submit(booked(i), 0).expect("accepted");
            assert_eq!(lsn, i);
            runtime
                .block_on(journal.wait_durable(lsn))
                .expect("durable");
        }
        journal.shutdown();
    }

    fn read(dir: &Path, covered: Lsn) -> Result<(Vec<(Lsn, Record)>, ReplayEnd), JournalError> {
        let mut got = Vec::new();
        let end = replay(dir, covered, |lsn, r| {
            got.push((lsn, r));
            Ok(())
        })?;
        Ok((got, end))
    }

    #[test]
    fn records_come_back_in_lsn_order_across_segments() {
        let dir = tempfile::tempdir().expect("dir");
        write(dir.path(), 200, 1024);
        assert!(
            segments(dir.path()).expect("list").len() > 3,
            "small segments rotate"
        );
        let (got, end) = read(dir.path(), 0).expect("replays");
        assert_eq!(got.len(), 200);
        for (i, (lsn, record)) in got.iter().enumerate() {
            assert_eq!((*lsn, record), (i as u64 + 1, &booked(i as u64 + 1)));
        }
        assert_eq!(end.next_lsn, 201);
        let (after, _) = read(dir.path(), 150).expect("replays");
        assert_eq!(
            after.first().map(|(l, _)| *l),
            Some(151),
            "covered records are skipped"
        );
    }

    #[test]
    fn waiting_for_a_synced_lsn_returns_and_a_disabled_journal_never_waits() {
        let dir = tempfile::tempdir().expect("dir");
        let journal = Journal::start(options(dir.path(), 1 << 20), 1).expect("start");
        let lsn = journal.submit(booked(1), 0).expect("accepted");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        runtime
            .block_on(journal.wait_durable(lsn))
            .expect("durable");
        assert!(journal.state().is_durable(lsn));
        assert_eq!(
            journal.submit(booked(2), 7),
            Err(Refused),
            "a stale epoch is refused"
        );
        journal.shutdown();
        let off = Journal::disabled(5);
        assert_eq!(off.submit(booked(1), 0), Ok(5));
        runtime
            .block_on(off.wait_durable(5))
            .expect("durable at once");
    }

    #[test]
    fn a_torn_tail_is_cut_at_any_offset_and_only_the_torn_record_is_lost() {
        let dir = tempfile::tempdir().expect("dir");
        write(dir.path(), 5, 1 << 20);
        let (_, path) = segments(dir.path()).expect("list").pop().expect("segment");
        let whole = fs::read(&path).expect("read");
        let frame = whole.len() / 5;
        for cut in 0..whole.len() {
            fs::write(&path, &whole[..cut]).expect("cut");
            let (got, end) = read(dir.path(), 0).expect("a torn tail never stops start-up");
            assert_eq!(got.len(), cut / frame, "cut at {cut}");
            assert_eq!(end.next_lsn, (cut / frame) as u64 + 1);
            assert_eq!(end.truncated.is_some(), cut % frame != 0, "cut at {cut}");
            assert_eq!(
                fs::metadata(&path).expect("meta").len() as usize,
                cut / frame * frame
            );
        }
    }

    #[test]
    fn a_damaged_record_before_the_tail_is_refused_with_its_offset() {
        let dir = tempfile::tempdir().expect("dir");
        write(dir.path(), 5, 1 << 20);
        let (_, path) = segments(dir.path()).expect("list").pop().expect("segment");
        let mut bytes = fs::read(&path).expect("read");
        let frame = bytes.len() / 5;
        bytes[2 * frame + FRAME_HEADER_BYTES + 1] ^= 0x40;
        fs::write(&path, &bytes).expect("damage");
        match read(dir.path(), 0) {
            Err(JournalError::Corrupt { offset, .. }) => assert_eq!(offset, 2 * frame as u64),
            other => panic!("expected corruption, got {other:?}"),
        }
    }

    #[test]
    fn a_missing_segment_is_a_gap() {
        let dir = tempfile::tempdir().expect("dir");
        write(dir.path(), 100, 512);
        let all = segments(dir.path()).expect("list");
        fs::remove_file(&all[1].1).expect("remove");
        assert!(matches!(read(dir.path(), 0), Err(JournalError::Gap { .. })));
        fs::remove_file(&all[0].1).expect("remove");
        assert!(matches!(
            read(dir.path(), 0),
            Err(JournalError::Gap { expected: 1, .. })
        ));
    }

    #[test]
    fn skipped_lsns_are_not_a_gap() {
        let dir = tempfile::tempdir().expect("dir");
        let mut bytes = Vec::new();
        encode_frame(&mut bytes, 1, &booked(1));
        encode_frame(&mut bytes, 2, &Record::Skipped { through: 4 });
        encode_frame(&mut bytes, 5, &booked(5));
        fs::write(segment_path(dir.path(), 1), &bytes).expect("write");
        let (got, end) = read(dir.path(), 0).expect("replays");
        assert_eq!(got.iter().map(|(l, _)| *l).collect::<Vec<_>>(), vec![1, 5]);
        assert_eq!(end.next_lsn, 6);
    }

    #[test]
    fn an_empty_segment_inside_the_range_is_passed_over() {
        let dir = tempfile::tempdir().expect("dir");
        let mut bytes = Vec::new();
        for lsn in 1..=4 {
            encode_frame(&mut bytes, lsn, &booked(lsn));
        }
        fs::write(segment_path(dir.path(), 1), &bytes).expect("write");
        fs::write(segment_path(dir.path(), 3), b"").expect("empty leftover");
        let mut more = Vec::new();
        encode_frame(&mut more, 5, &booked(5));
        fs::write(segment_path(dir.path(), 5), &more).expect("write");
        let (got, end) = read(dir.path(), 0).expect("replays");
        assert_eq!(got.len(), 5);
        assert_eq!(end.next_lsn, 6);
    }

    #[test]
    fn release_deletes_covered_segments_but_never_the_newest() {
        let dir = tempfile::tempdir().expect("dir");
        write(dir.path(), 100, 512);
        let before = segments(dir.path()).expect("list");
        let covered = before[2].0 - 1;
        assert_eq!(release(dir.path(), covered).expect("release"), 2);
        let (got, _) = read(dir.path(), covered).expect("what is left still replays");
        assert_eq!(got.first().map(|(l, _)| *l), Some(covered + 1));
        release(dir.path(), Lsn::MAX - 1).expect("release all");
        assert_eq!(segments(dir.path()).expect("list").len(), 1);
    }
}
