//! Snapshot files: a fixed header (magic, format version, CRC32, payload
//! length) followed by the encoded [`ServiceSnapshot`].
//!
//! Files are written the crash-safe way (temporary file, fsync, rename, fsync
//! the directory), so a reader finds either the old file or the whole new one;
//! the CRC catches anything the disk damaged later. What a snapshot holds
//! is in `format`; the older formats it still reads, in `legacy`.

mod format;
mod legacy;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::codec::{self, CodecError};
use crate::log::Lsn;
use legacy::{
    ServiceSnapshotV2, ServiceSnapshotV3, ServiceSnapshotV4, ServiceSnapshotV5, ServiceSnapshotV6,
};

pub use format::{ServiceSnapshot, StoredEvent};

/// First bytes of every snapshot file.
const MAGIC: [u8; 8] = *b"BOXOSNAP";
/// Bumped whenever the header's or the payload's shape or encoding changes.
/// 3: events carry settings and bookings a quantity; 4: idempotency keys;
/// 5: the change feed's next index; 6: waiting rooms; 7: seat maps. Older
/// versions this build still reads are in `legacy.rs` beside this file.
pub const FORMAT_VERSION: u32 = 7;
/// Format 6: format 7 without seat maps.
const FORMAT_VERSION_V6: u32 = 6;
/// Format 5: format 6 without waiting rooms.
const FORMAT_VERSION_V5: u32 = 5;
/// Format 4: format 5 without the change feed's next index.
const FORMAT_VERSION_V4: u32 = 4;
/// Format 3: format 4 without the idempotency keys of creates.
const FORMAT_VERSION_V3: u32 = 3;
/// The v1 service's format, read and converted on start.
const FORMAT_VERSION_V2: u32 = 2;
/// magic (8) + version (4) + crc32 (4) + payload length (8) + journal LSN (8).
const HEADER_BYTES: usize = 32;
const PREFIX: &str = "snapshot-";
const SUFFIX: &str = ".bin";
const TMP_SUFFIX: &str = ".tmp";

/// Why a snapshot could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The file system refused.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The file is not a snapshot we can read: bad magic, version, length or CRC.
    #[error("{path}: {why}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// What does not check out.
        why: String,
    },
    /// The state could not be encoded (a bug).
    #[error("encoding snapshot: {0}")]
    Encode(CodecError),
    /// Snapshot files exist but none of them can be read; starting empty
    /// would silently drop everything they hold.
    #[error("no readable snapshot among {0} file(s) in {1}")]
    NoneReadable(usize, PathBuf),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What a write produced, for the log.
#[derive(Debug, Clone)]
pub struct WrittenSnapshot {
    /// The new file.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Encode plus write plus sync time.
    pub duration: Duration,
}

/// The directory of snapshot files.
#[derive(Debug)]
pub struct SnapshotStore {
    /// Where the files live.
    dir: PathBuf,
    /// How many files to keep after each write.
    keep: usize,
    /// Generation number for the next file name; names sort by age.
    next_generation: AtomicU64,
    /// The newest snapshot's time and size, for `/metrics`.
    stats: std::sync::Arc<crate::stats::SnapshotStats>,
    /// Journal bytes kept for the change feed even when every retained
    /// snapshot covers them (`changes.retain_bytes`).
    retain_journal_bytes: AtomicU64,
}

impl SnapshotStore {
    /// The newest snapshot's time and size.
    pub fn stats(&self) -> &std::sync::Arc<crate::stats::SnapshotStats> {
        &self.stats
    }

    /// Opens (creating if needed) `dir`, removing temporary files that a crash
    /// mid-write left behind.
    pub fn open(dir: &Path, keep: usize) -> Result<Self, SnapshotError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        for entry in fs::read_dir(dir).map_err(io_err(dir))? {
            let path = entry.map_err(io_err(dir))?.path();
            if path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(PREFIX) && n.ends_with(TMP_SUFFIX))
            {
                log::warn!("removing stray temporary snapshot {}", path.display());
                fs::remove_file(&path).map_err(io_err(&path))?;
            }
        }
        let store = Self {
            dir: dir.to_path_buf(),
            keep: keep.max(1),
            next_generation: AtomicU64::new(1),
            stats: Default::default(),
            retain_journal_bytes: AtomicU64::new(0),
        };
        let newest = store
            .files()?
            .last()
            .map(|(generation, _)| *generation)
            .unwrap_or(0);
        store.next_generation.store(newest + 1, Ordering::Relaxed);
        Ok(store)
    }

    /// Keeps at least `bytes` of journal segments after each checkpoint,
    /// newest first, for the change feed.
    pub fn retain_journal_bytes(&self, bytes: u64) {
        self.retain_journal_bytes.store(bytes, Ordering::Relaxed);
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `snapshot` as the newest file, then removes all but the newest
    /// `keep`. Blocking: call from a blocking thread.
    pub fn write(&self, snapshot: &ServiceSnapshot) -> Result<WrittenSnapshot, SnapshotError> {
        let started = Instant::now();
        let payload = codec::encode(snapshot).map_err(SnapshotError::Encode)?;
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join(format!("{PREFIX}{generation:020}{SUFFIX}"));
        let tmp = path.with_extension(format!("bin{TMP_SUFFIX}"));
        let header = header_for(&payload, snapshot.journal_lsn);
        let written = (|| {
            let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            file.write_all(&header)?;
            file.write_all(&payload)?;
            file.sync_all()
        })();
        if let Err(source) = written {
            let _ = fs::remove_file(&tmp);
            return Err(SnapshotError::Io { path: tmp, source });
        }
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        sync_dir(&self.dir)?;
        self.prune()?;
        Ok(WrittenSnapshot {
            path,
            bytes: (HEADER_BYTES + payload.len()) as u64,
            duration: started.elapsed(),
        })
    }

    /// Snapshot files, newest first. Each is read only when needed
    /// ([`read_file`]): at millions of bookings one file takes seconds.
    pub fn candidates(&self) -> Result<Vec<PathBuf>, SnapshotError> {
        Ok(self
            .files()?
            .into_iter()
            .rev()
            .map(|(_, path)| path)
            .collect())
    }

    /// A checkpoint: writes `snapshot`, then deletes the journal segments
    /// every retained snapshot covers (the journal lives in the same
    /// directory), so any kept snapshot plus the journal still rebuilds the
    /// state, keeping the newest `retain_journal_bytes` of them for the
    /// change feed. Runs on a blocking thread; a failed deletion is only
    /// logged.
    pub fn checkpoint(&self, snapshot: &ServiceSnapshot) -> Result<WrittenSnapshot, SnapshotError> {
        let written = self.write(snapshot)?;
        let covered = self.min_retained_journal_lsn()?;
        let retain = self.retain_journal_bytes.load(Ordering::Relaxed);
        match super::journal::release(&self.dir, covered, retain) {
            Ok(0) => {}
            Ok(n) => {
                log::info!("deleted {n} journal segment(s) covered by every retained snapshot")
            }
            Err(e) => log::warn!("could not delete covered journal segments: {e}"),
        }
        Ok(written)
    }

    /// The smallest journal LSN that a retained snapshot covers: journal
    /// segments at or below it are needed by no snapshot. A file whose header
    /// cannot be read counts as covering nothing.
    pub fn min_retained_journal_lsn(&self) -> Result<Lsn, SnapshotError> {
        let mut min = Lsn::MAX;
        for (_, path) in self.files()? {
            let mut header = [0u8; HEADER_BYTES];
            let read = File::open(&path).and_then(|mut f| f.read_exact(&mut header));
            let lsn = match read {
                Ok(()) if header[0..8] == MAGIC => Lsn::new(u64::from_le_bytes(
                    header[24..32].try_into().unwrap_or([0; 8]),
                )),
                _ => Lsn::ZERO,
            };
            min = min.min(lsn);
        }
        Ok(if min == Lsn::MAX { Lsn::ZERO } else { min })
    }

    /// Snapshot files, oldest first, with their generation numbers.
    fn files(&self) -> Result<Vec<(u64, PathBuf)>, SnapshotError> {
        let mut files = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_err(&self.dir))? {
            let path = entry.map_err(io_err(&self.dir))?.path();
            let generation = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix(PREFIX))
                .and_then(|n| n.strip_suffix(SUFFIX))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(generation) = generation {
                files.push((generation, path));
            }
        }
        files.sort();
        Ok(files)
    }

    fn prune(&self) -> Result<(), SnapshotError> {
        let files = self.files()?;
        let excess = files.len().saturating_sub(self.keep);
        for (_, path) in &files[..excess] {
            fs::remove_file(path).map_err(io_err(path))?;
        }
        Ok(())
    }
}

fn header_for(payload: &[u8], journal_lsn: Lsn) -> [u8; HEADER_BYTES] {
    let mut header = [0u8; HEADER_BYTES];
    header[0..8].copy_from_slice(&MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[12..16].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    header[16..24].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    header[24..32].copy_from_slice(&journal_lsn.get().to_le_bytes());
    header
}

/// Reads and checks one snapshot file: header, length, CRC, then decoding.
pub fn read_file(path: &Path) -> Result<ServiceSnapshot, SnapshotError> {
    let corrupt = |why: String| SnapshotError::Corrupt {
        path: path.to_path_buf(),
        why,
    };
    let mut file = File::open(path).map_err(io_err(path))?;
    let mut header = [0u8; HEADER_BYTES];
    file.read_exact(&mut header)
        .map_err(|_| corrupt("shorter than its header".into()))?;
    if header[0..8] != MAGIC {
        return Err(corrupt("bad magic bytes at offset 0".into()));
    }
    let field =
        |range: std::ops::Range<usize>| -> [u8; 4] { header[range].try_into().unwrap_or([0; 4]) };
    let version = u32::from_le_bytes(field(8..12));
    if ![
        FORMAT_VERSION_V2,
        FORMAT_VERSION_V3,
        FORMAT_VERSION_V4,
        FORMAT_VERSION_V5,
        FORMAT_VERSION_V6,
        FORMAT_VERSION,
    ]
    .contains(&version)
    {
        return Err(corrupt(format!(
            "format version {version}, this build reads {FORMAT_VERSION_V2} to {FORMAT_VERSION}"
        )));
    }
    let crc = u32::from_le_bytes(field(12..16));
    let len = u64::from_le_bytes(header[16..24].try_into().unwrap_or([0; 8]));
    let actual_len = file
        .metadata()
        .map_err(io_err(path))?
        .len()
        .saturating_sub(HEADER_BYTES as u64);
    if len != actual_len {
        return Err(corrupt(format!(
            "header says {len} payload bytes, file holds {actual_len}"
        )));
    }
    let mut payload = Vec::with_capacity(len as usize);
    file.read_to_end(&mut payload).map_err(io_err(path))?;
    if crc32fast::hash(&payload) != crc {
        return Err(corrupt(format!(
            "CRC mismatch in payload at offset {HEADER_BYTES}"
        )));
    }
    if version == FORMAT_VERSION_V2 {
        return codec::decode::<ServiceSnapshotV2>(&payload)
            .map(ServiceSnapshot::from)
            .map_err(|e| corrupt(e.to_string()));
    }
    if version == FORMAT_VERSION_V3 {
        return codec::decode::<ServiceSnapshotV3>(&payload)
            .map(ServiceSnapshot::from)
            .map_err(|e| corrupt(e.to_string()));
    }
    if version == FORMAT_VERSION_V4 {
        return codec::decode::<ServiceSnapshotV4>(&payload)
            .map(ServiceSnapshot::from)
            .map_err(|e| corrupt(e.to_string()));
    }
    if version == FORMAT_VERSION_V5 {
        return codec::decode::<ServiceSnapshotV5>(&payload)
            .map(ServiceSnapshot::from)
            .map_err(|e| corrupt(e.to_string()));
    }
    if version == FORMAT_VERSION_V6 {
        return codec::decode::<ServiceSnapshotV6>(&payload)
            .map(ServiceSnapshot::from)
            .map_err(|e| corrupt(e.to_string()));
    }
    codec::decode(&payload).map_err(|e| corrupt(e.to_string()))
}

/// Makes a rename durable: the directory entry itself must reach the disk.
fn sync_dir(dir: &Path) -> Result<(), SnapshotError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use boxoffice_domain::{
        BookingIdSequence, CreateKey, Event, EventId, EventSettings, Timestamp, UserId,
    };

    fn sample(bookings: usize) -> ServiceSnapshot {
        let ids = BookingIdSequence::default();
        let id = EventId::try_from(7).expect("id");
        let settings = EventSettings::new(Some("Gig".into()), 3, 2);
        let (mut event, _) = Event::create(id, settings, Timestamp::from_millis(5)).expect("event");
        for i in 0..bookings {
            let user = UserId::try_from(format!("u{i}").as_str()).expect("user");
            event
                .book(
                    &user,
                    1 + i as u32 % 2,
                    &ids,
                    Timestamp::from_millis(10 + i as i64),
                )
                .expect("book");
        }
        ServiceSnapshot {
            taken_at: Timestamp::from_millis(99),
            next_event_id: 8,
            next_booking_id: ids.peek(),
            journal_lsn: Lsn::new(bookings as u64),
            create_keys: Vec::new(),
            next_change_index: 1,
            events: vec![StoredEvent {
                applied_lsn: Lsn::new(bookings as u64),
                event: event.to_snapshot(),
            }],
        }
    }

    #[test]
    fn a_written_snapshot_reads_back_equal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SnapshotStore::open(dir.path(), 3).expect("open");
        assert!(store.candidates().expect("empty dir").is_empty());
        let snapshot = sample(5);
        let written = store.write(&snapshot).expect("write");
        assert!(written.bytes > HEADER_BYTES as u64);
        let path = store.candidates().expect("list").remove(0);
        assert_eq!(read_file(&path).expect("reads back"), snapshot);
        assert_eq!(path, written.path);
    }

    #[test]
    fn only_the_newest_keep_files_remain_newest_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SnapshotStore::open(dir.path(), 2).expect("open");
        for n in 0..5 {
            store.write(&sample(n)).expect("write");
        }
        let all = store.candidates().expect("list");
        assert_eq!(all.len(), 2);
        assert_eq!(read_file(&all[0]).expect("newest"), sample(4));
        // A reopened store continues the numbering instead of overwriting.
        let reopened = SnapshotStore::open(dir.path(), 2).expect("reopen");
        let path = reopened.write(&sample(1)).expect("write").path;
        assert_eq!(reopened.candidates().expect("list")[0], path);
    }

    #[test]
    fn a_damaged_file_is_reported_and_the_others_still_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SnapshotStore::open(dir.path(), 3).expect("open");
        store.write(&sample(2)).expect("write");
        let newest = store.write(&sample(3)).expect("write").path;
        let bytes = fs::read(&newest).expect("read");
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        fs::write(&newest, flipped).expect("damage");
        let all = store.candidates().expect("list");
        let err = read_file(&all[0]).expect_err("damaged");
        assert!(err.to_string().contains("CRC"), "{err}");
        assert_eq!(read_file(&all[1]).expect("older reads"), sample(2));
        for cut in [0, 10, HEADER_BYTES, bytes.len() - 1] {
            fs::write(&newest, &bytes[..cut]).expect("truncate");
            assert!(read_file(&newest).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn the_smallest_covered_journal_lsn_of_retained_files_is_read_from_headers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SnapshotStore::open(dir.path(), 2).expect("open");
        assert_eq!(store.min_retained_journal_lsn().expect("empty"), Lsn::ZERO);
        for n in [3, 5, 9] {
            store.write(&sample(n)).expect("write");
        }
        assert_eq!(
            store.min_retained_journal_lsn().expect("read"),
            Lsn::new(5),
            "the file covering 3 was pruned"
        );
    }

    #[test]
    fn stray_temporary_files_are_removed_on_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stray = dir.path().join("snapshot-00000000000000000009.bin.tmp");
        fs::write(&stray, b"half written").expect("write");
        let other = dir.path().join("notes.txt");
        fs::write(&other, b"keep me").expect("write");
        SnapshotStore::open(dir.path(), 3).expect("open");
        assert!(!stray.exists());
        assert!(other.exists(), "files that are not ours are left alone");
    }

    #[test]
    fn a_version_2_file_written_by_v1_is_read_and_converted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let payload = codec::encode(&super::legacy::tests::v2_sample()).expect("encode");
        let mut header = header_for(&payload, Lsn::new(4));
        header[8..12].copy_from_slice(&FORMAT_VERSION_V2.to_le_bytes());
        let path = dir.path().join("snapshot-00000000000000000001.bin");
        let mut bytes = header.to_vec();
        bytes.extend_from_slice(&payload);
        fs::write(&path, bytes).expect("write");
        let snapshot = read_file(&path).expect("reads");
        assert_eq!(snapshot.journal_lsn, Lsn::new(4));
        assert_eq!(snapshot.events[0].event.records.len(), 3);
        assert_eq!(snapshot.events[0].event.records[2].quantity, 1);
    }

    #[test]
    fn a_version_3_file_is_read_with_no_idempotency_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let v4 = sample(3);
        // Format 3 is format 4 without the last field: bincode writes a
        // struct as its fields in order, so the tuple is the same bytes.
        let payload = codec::encode(&(
            v4.taken_at,
            v4.journal_lsn,
            v4.next_event_id,
            v4.next_booking_id,
            super::legacy::downgraded(&v4.events),
        ))
        .expect("encode");
        let mut header = header_for(&payload, v4.journal_lsn);
        header[8..12].copy_from_slice(&FORMAT_VERSION_V3.to_le_bytes());
        let path = dir.path().join("snapshot-00000000000000000001.bin");
        let mut bytes = header.to_vec();
        bytes.extend_from_slice(&payload);
        fs::write(&path, bytes).expect("write");
        let read = read_file(&path).expect("reads");
        assert_eq!(read, v4, "the same state, with no keys");
    }

    #[test]
    fn a_version_4_file_is_read_with_the_feed_starting_at_1() {
        let dir = tempfile::tempdir().expect("tempdir");
        let v5 = sample(3);
        // Format 4 is format 5 without the last field.
        let payload = codec::encode(&(
            v5.taken_at,
            v5.journal_lsn,
            v5.next_event_id,
            v5.next_booking_id,
            super::legacy::downgraded(&v5.events),
            v5.create_keys.clone(),
        ))
        .expect("encode");
        let mut header = header_for(&payload, v5.journal_lsn);
        header[8..12].copy_from_slice(&FORMAT_VERSION_V4.to_le_bytes());
        let path = dir.path().join("snapshot-00000000000000000001.bin");
        let mut bytes = header.to_vec();
        bytes.extend_from_slice(&payload);
        fs::write(&path, bytes).expect("write");
        let read = read_file(&path).expect("reads");
        assert_eq!(read, v5, "the same state; the feed starts at 1");
    }

    #[test]
    fn a_version_5_file_is_read_with_no_rooms() {
        let dir = tempfile::tempdir().expect("tempdir");
        let v6 = sample(2);
        // Format 5 is format 6 with events stored without their room.
        let payload = codec::encode(&(
            v6.taken_at,
            v6.journal_lsn,
            v6.next_event_id,
            v6.next_booking_id,
            super::legacy::downgraded(&v6.events),
            v6.create_keys.clone(),
            v6.next_change_index,
        ))
        .expect("encode");
        let mut header = header_for(&payload, v6.journal_lsn);
        header[8..12].copy_from_slice(&FORMAT_VERSION_V5.to_le_bytes());
        let path = dir.path().join("snapshot-00000000000000000001.bin");
        let mut bytes = header.to_vec();
        bytes.extend_from_slice(&payload);
        fs::write(&path, bytes).expect("write");
        let read = read_file(&path).expect("reads");
        assert_eq!(read, v6, "the same state, with no rooms");
    }

    #[test]
    fn a_version_6_file_is_read_with_no_seat_maps() {
        let dir = tempfile::tempdir().expect("tempdir");
        let v7 = sample(3);
        let payload = codec::encode(&(
            v7.taken_at,
            v7.journal_lsn,
            v7.next_event_id,
            v7.next_booking_id,
            super::legacy::downgraded_v6(&v7.events),
            v7.create_keys.clone(),
            v7.next_change_index,
        ))
        .expect("encode");
        let mut header = header_for(&payload, v7.journal_lsn);
        header[8..12].copy_from_slice(&FORMAT_VERSION_V6.to_le_bytes());
        let path = dir.path().join("snapshot-00000000000000000001.bin");
        let mut bytes = header.to_vec();
        bytes.extend_from_slice(&payload);
        fs::write(&path, bytes).expect("write");
        let read = read_file(&path).expect("reads");
        assert_eq!(read, v7, "the same state, with no seat maps");
    }

    #[test]
    fn idempotency_keys_are_kept_in_a_snapshot() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SnapshotStore::open(dir.path(), 3).expect("open");
        let mut snapshot = sample(2);
        snapshot.create_keys = vec![CreateKey {
            key: "order-1".into(),
            requested: None,
            settings: boxoffice_domain::EventSettings::new(Some("Gig".into()), 5, 2),
            event: EventId::try_from(1).expect("id"),
            at: Timestamp::from_millis(7),
            room: Default::default(),
        }];
        let written = store.write(&snapshot).expect("write");
        assert_eq!(read_file(&written.path).expect("reads"), snapshot);
    }
}
