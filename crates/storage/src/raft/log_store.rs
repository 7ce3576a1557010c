//! A node's copy of the Raft log, on disk in the journal's frames.
//!
//! One file, `raft/raft.log`, of frames `[length][CRC32][frame number]
//! [bincode record]` (the journal's layout), each record one thing
//! openraft asked to keep: entries, the vote, the commit mark, a truncation
//! or a purge. The whole log is also held in memory for the leader's
//! replication and the state machine's reads. One writer thread writes
//! whatever has queued and makes it durable with one `fdatasync` before
//! telling openraft (group commit), as the journal's writer does: an
//! acknowledged append is on disk. A vote is durable before `save_vote`
//! returns. At open the file is read back; a frame cut short at the very
//! end (a torn write, never acknowledged) is cut off with a warning, and
//! damage anywhere else is an error.
//!
//! A purge (openraft's, once a snapshot holds the entries) rewrites the
//! file with only what is still held: written beside it, synced, renamed
//! over it, so the disk, like the memory, holds the log since the last
//! snapshot and not every change ever made.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::ops::RangeBounds;
use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{LogState, OptionalSend, RaftLogReader, StorageIOError};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::{Entry, LogId, StorageError, TypeConfig, Vote};
use crate::codec;
use crate::journal::frame::{frame_at, frame_payload, FRAME_HEADER_BYTES};
use crate::journal::Lsn;

/// The log's file in its directory.
pub const LOG_FILE: &str = "raft.log";

/// What one frame of the file keeps.
#[derive(Debug, Serialize, Deserialize)]
enum LogRecord {
    Entry(Entry),
    Vote(Vote),
    Committed(Option<LogId>),
    /// Entries from this index on are gone.
    Truncate(u64),
    /// Entries up to this one are gone (a snapshot holds them).
    Purge(LogId),
}

/// [`LogRecord`] as written: the same variants in the same order, so the
/// same bytes, borrowing the entry instead of owning it.
#[derive(Debug, Serialize)]
enum LogRecordRef<'a> {
    Entry(&'a Entry),
    Vote(&'a Vote),
    Committed(&'a Option<LogId>),
    Truncate(u64),
    Purge(&'a LogId),
}

/// Where and how durably the log is kept.
#[derive(Debug, Clone)]
pub struct LogStoreOptions {
    /// The directory of [`LOG_FILE`].
    pub dir: PathBuf,
    /// `true`: every batch is synced before it is acknowledged (`journal.fsync
    /// = "always"`); `false`: acknowledged once written, synced every
    /// `sync_interval`.
    pub sync_every_batch: bool,
    /// Time between syncs when not every batch is synced.
    pub sync_interval: Duration,
}

/// What the log holds, in memory.
#[derive(Debug, Default)]
struct Held {
    entries: BTreeMap<u64, Entry>,
    last_purged: Option<LogId>,
    vote: Option<Vote>,
    committed: Option<LogId>,
    /// The number the next frame gets.
    next_frame: u64,
    /// To the writer; `None` once closed.
    jobs: Option<mpsc::Sender<Job>>,
}

/// Who waits for a write.
enum Done {
    Flushed(LogFlushed<TypeConfig>),
    Notify(oneshot::Sender<io::Result<()>>),
}

struct Job {
    bytes: Vec<u8>,
    done: Option<Done>,
    /// `bytes` are the whole file, replacing it (a purge's rewrite).
    replace: bool,
}

struct Shared {
    /// The directory of the log (and of the snapshot beside it).
    dir: PathBuf,
    held: Mutex<Held>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// The Raft log of this node: cheap to clone, every clone the same log.
#[derive(Clone)]
pub struct RaftLogStore {
    shared: Arc<Shared>,
}

impl Debug for RaftLogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RaftLogStore")
    }
}

fn io_error(what: impl std::fmt::Display) -> io::Error {
    io::Error::other(what.to_string())
}

impl RaftLogStore {
    /// Opens (or creates) the log in `options.dir` and starts its writer.
    pub fn open(options: &LogStoreOptions) -> io::Result<Self> {
        fs::create_dir_all(&options.dir)?;
        let path = options.dir.join(LOG_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let mut held = Held::default();
        let end = read_back(&bytes, &mut held).map_err(|at| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: damaged frame at byte {at}", path.display()),
            )
        })?;
        if end < bytes.len() {
            log::warn!(
                "{}: cutting {} byte(s) of a write cut short at the end",
                path.display(),
                bytes.len() - end
            );
            file.set_len(end as u64)?;
            file.sync_all()?;
        }
        if let Ok(dir) = File::open(&options.dir) {
            dir.sync_all()?;
        }
        let (jobs, queue) = mpsc::channel();
        held.jobs = Some(jobs);
        let writer = Writer {
            file,
            path,
            dir: options.dir.clone(),
            queue,
            sync_every_batch: options.sync_every_batch,
            sync_interval: options.sync_interval,
            failed: None,
        };
        let handle = std::thread::Builder::new()
            .name("raft-log-writer".into())
            .spawn(move || writer.run())?;
        Ok(Self {
            shared: Arc::new(Shared {
                dir: options.dir.clone(),
                held: Mutex::new(held),
                writer: Mutex::new(Some(handle)),
            }),
        })
    }

    fn held(&self) -> MutexGuard<'_, Held> {
        self.shared.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `record`'s frame for the writer, under the lock that orders
    /// the file.
    fn queue(held: &mut Held, record: &LogRecordRef<'_>, done: Option<Done>) -> io::Result<()> {
        let payload = codec::encode(record).map_err(io_error)?;
        let mut bytes = Vec::with_capacity(FRAME_HEADER_BYTES + payload.len());
        frame_payload(&mut bytes, Lsn::new(held.next_frame), &payload);
        Self::send(
            held,
            Job {
                bytes,
                done,
                replace: false,
            },
        )?;
        held.next_frame += 1;
        Ok(())
    }

    /// Hands `job` to the writer.
    fn send(held: &Held, job: Job) -> io::Result<()> {
        held.jobs
            .as_ref()
            .ok_or_else(|| io_error("the Raft log is closed"))?
            .send(job)
            .map_err(|_| io_error("the Raft log's writer has stopped"))
    }

    /// Queues a rewrite of the whole file as `held` is now: the vote, the
    /// commit mark, the purge mark and the entries kept. Everything queued
    /// before it is in it.
    fn queue_rewrite(held: &mut Held) -> io::Result<()> {
        let mut bytes = Vec::new();
        let mut frame = |held: &mut Held, record: &LogRecordRef<'_>| -> io::Result<()> {
            let payload = codec::encode(record).map_err(io_error)?;
            frame_payload(&mut bytes, Lsn::new(held.next_frame), &payload);
            held.next_frame += 1;
            Ok(())
        };
        if let Some(vote) = held.vote {
            frame(held, &LogRecordRef::Vote(&vote))?;
        }
        let committed = held.committed;
        frame(held, &LogRecordRef::Committed(&committed))?;
        if let Some(purged) = held.last_purged {
            frame(held, &LogRecordRef::Purge(&purged))?;
        }
        let entries = std::mem::take(&mut held.entries);
        let framed = entries
            .values()
            .try_for_each(|entry| frame(held, &LogRecordRef::Entry(entry)));
        held.entries = entries;
        framed?;
        Self::send(
            held,
            Job {
                bytes,
                done: None,
                replace: true,
            },
        )
    }

    /// The directory the log is kept in.
    pub fn dir(&self) -> &std::path::Path {
        &self.shared.dir
    }

    /// The newest log id held, and the newest purged.
    pub fn last_log_id(&self) -> Option<LogId> {
        let held = self.held();
        held.entries
            .values()
            .next_back()
            .map(|e| e.log_id)
            .or(held.last_purged)
    }

    /// The newest commit mark openraft saved.
    pub fn committed(&self) -> Option<LogId> {
        self.held().committed
    }

    /// Stops the writer once everything queued is written and synced.
    pub fn close(&self) {
        self.held().jobs = None;
        let handle = self
            .shared
            .writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

/// Applies the file's frames to `held`; returns where the good frames end,
/// or `Err(offset)` of damage that is not a torn end.
fn read_back(bytes: &[u8], held: &mut Held) -> Result<usize, usize> {
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let Some((number, payload, size)) = frame_at(rest) else {
            return if torn_end(rest) { Ok(at) } else { Err(at) };
        };
        let Ok(record) = codec::decode::<LogRecord>(payload) else {
            return Err(at);
        };
        held.next_frame = number.get() + 1;
        match record {
            LogRecord::Entry(entry) => {
                if held
                    .last_purged
                    .is_none_or(|p| entry.log_id.index > p.index)
                {
                    held.entries.insert(entry.log_id.index, entry);
                }
            }
            LogRecord::Vote(vote) => held.vote = Some(vote),
            LogRecord::Committed(committed) => held.committed = committed,
            LogRecord::Truncate(since) => {
                held.entries.split_off(&since);
            }
            LogRecord::Purge(upto) => {
                held.entries = held.entries.split_off(&(upto.index + 1));
                held.last_purged = Some(upto);
            }
        }
        at += size;
    }
    Ok(at)
}

/// Whether bytes that hold no whole good frame are the end of a write cut
/// short: a frame running past the end, the last frame damaged, or zeros.
fn torn_end(rest: &[u8]) -> bool {
    if rest.iter().all(|&b| b == 0) {
        return true;
    }
    let Some(header) = rest.get(..FRAME_HEADER_BYTES) else {
        return true;
    };
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    FRAME_HEADER_BYTES + len >= rest.len()
}

struct Writer {
    file: File,
    /// The file, and its directory (synced after a rewrite's rename).
    path: PathBuf,
    dir: PathBuf,
    queue: mpsc::Receiver<Job>,
    sync_every_batch: bool,
    sync_interval: Duration,
    /// After a failed write or sync nothing more is written: what is on
    /// disk is unknown, and openraft stops this node on the error.
    failed: Option<String>,
}

/// Jobs one batch takes at most.
const MAX_BATCH: usize = 4_096;

impl Writer {
    fn run(mut self) {
        let mut unsynced = false;
        let mut last_sync = Instant::now();
        loop {
            let first = if unsynced {
                match self.queue.recv_timeout(self.sync_interval) {
                    Ok(job) => job,
                    Err(RecvTimeoutError::Timeout) => {
                        self.sync();
                        unsynced = false;
                        last_sync = Instant::now();
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match self.queue.recv() {
                    Ok(job) => job,
                    Err(_) => break,
                }
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match self.queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            self.write(&batch);
            if self.sync_every_batch || last_sync.elapsed() >= self.sync_interval {
                self.sync();
                unsynced = false;
                last_sync = Instant::now();
            } else {
                unsynced = true;
            }
            for job in batch {
                let result = match &self.failed {
                    Some(why) => Err(io_error(why)),
                    None => Ok(()),
                };
                match job.done {
                    Some(Done::Flushed(callback)) => callback.log_io_completed(result),
                    Some(Done::Notify(tx)) => {
                        let _ = tx.send(result);
                    }
                    None => {}
                }
            }
        }
        self.sync();
    }

    fn write(&mut self, batch: &[Job]) {
        if self.failed.is_some() {
            return;
        }
        // A rewrite holds every job before it: only it and what follows
        // it are written.
        let from = match batch.iter().rposition(|j| j.replace) {
            Some(at) => {
                if let Err(e) = self.replace(&batch[at].bytes) {
                    log::error!("Raft log: rewrite failed: {e}");
                    self.failed = Some(format!("rewrite failed: {e}"));
                    return;
                }
                at + 1
            }
            None => 0,
        };
        let batch = &batch[from..];
        let mut bytes = Vec::with_capacity(batch.iter().map(|j| j.bytes.len()).sum());
        for job in batch {
            bytes.extend_from_slice(&job.bytes);
        }
        if let Err(e) = self.file.write_all(&bytes) {
            log::error!("Raft log: write failed: {e}");
            self.failed = Some(format!("write failed: {e}"));
        }
    }

    /// Writes `bytes` as the whole new file beside the old one, syncs it,
    /// renames it over the old one and syncs the directory; appends go to
    /// it from then on.
    fn replace(&mut self, bytes: &[u8]) -> io::Result<()> {
        crate::file::replace_file(&self.dir, &self.path, bytes)?;
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        Ok(())
    }

    fn sync(&mut self) {
        if self.failed.is_some() {
            return;
        }
        if let Err(e) = self.file.sync_data() {
            log::error!("Raft log: sync failed: {e}");
            self.failed = Some(format!("sync failed: {e}"));
        }
    }
}

fn storage_error(e: io::Error) -> StorageError {
    StorageIOError::write_logs(&e).into()
}

impl RaftLogReader<TypeConfig> for RaftLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        Ok(self
            .held()
            .entries
            .range(range)
            .map(|(_, e)| e.clone())
            .collect())
    }

    /// What replication sends a follower: the entries from `start`, or
    /// none when `start` was purged. A purge may land between openraft's
    /// choice of what to send and this read; the entries left would be a
    /// suffix, which openraft 0.9 sends after the `prev_log_id` it chose,
    /// and the follower's Raft core panics on the gap (an assertion in
    /// `FollowingHandler::append_entries`, seen once in CI's simulation
    /// seeds). An empty answer openraft takes as a heartbeat; it then finds
    /// the purge and sends a snapshot. (`try_get_log_entries` keeps
    /// returning the suffix: openraft's storage suite asks that of it.)
    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry>, StorageError> {
        let entries = self.try_get_log_entries(start..end).await?;
        match entries.first() {
            Some(first) if first.log_id.index != start => Ok(Vec::new()),
            _ => Ok(entries),
        }
    }
}

impl RaftLogStorage<TypeConfig> for RaftLogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let held = self.held();
        let last = held
            .entries
            .values()
            .next_back()
            .map(|e| e.log_id)
            .or(held.last_purged);
        Ok(LogState {
            last_purged_log_id: held.last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let (tx, rx) = oneshot::channel();
        {
            let mut held = self.held();
            Self::queue(&mut held, &LogRecordRef::Vote(vote), Some(Done::Notify(tx)))
                .map_err(|e| StorageError::from(StorageIOError::write_vote(&e)))?;
            held.vote = Some(*vote);
        }
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StorageIOError::write_vote(&e).into()),
            Err(_) => {
                Err(StorageIOError::write_vote(&io_error("the Raft log's writer stopped")).into())
            }
        }
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.held().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let mut held = self.held();
        // Written with the next batch, never waited for: a commit mark lost
        // to a crash is learnt again from the leader.
        Self::queue(&mut held, &LogRecordRef::Committed(&committed), None)
            .map_err(storage_error)?;
        held.committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.held().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut held = self.held();
        for entry in entries {
            Self::queue(&mut held, &LogRecordRef::Entry(&entry), None).map_err(storage_error)?;
            held.entries.insert(entry.log_id.index, entry);
        }
        // An empty job after the frames carries the callback: the writer
        // answers it once every frame before it is durable.
        Self::send(
            &held,
            Job {
                bytes: Vec::new(),
                done: Some(Done::Flushed(callback)),
                replace: false,
            },
        )
        .map_err(storage_error)
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut held = self.held();
        Self::queue(&mut held, &LogRecordRef::Truncate(log_id.index), None)
            .map_err(storage_error)?;
        held.entries.split_off(&log_id.index);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut held = self.held();
        held.entries = held.entries.split_off(&(log_id.index + 1));
        held.last_purged = Some(log_id);
        // Written as part of the rewrite, which drops the purged frames.
        Self::queue_rewrite(&mut held).map_err(storage_error)
    }
}
