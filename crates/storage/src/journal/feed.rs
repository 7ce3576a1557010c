//! Reading the change feed back from the journal segments.
//!
//! The feed is what the journal keeps: every [`Record::Published`] holds
//! the items of one change, numbered from its `first_index`, and the
//! segments still on disk (see [`super::release`]: they stay while they
//! hold no more than the feed's retention) are the feed's history. Nothing
//! is copied: a reader finds the segment whose first index is at or before
//! the one it wants, starts at the nearest remembered position in it, and
//! decodes frames forward.
//!
//! A reader is told how far it may read (`durable`, the journal's
//! [`JournalState::changes_durable`](super::JournalState)): frames past it
//! may be half-written, or cut back after a disk fault, and are never read
//! as items.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use boxoffice_domain::{EventId, FeedItem, Timestamp};

use super::frame::{frame_at, FRAME_HEADER_BYTES};
use super::record::PUBLISHED_VARIANT;
use super::replay::{segments, JournalError};
use super::{Lsn, Record};
use crate::codec;

/// One item of the feed: an object after a change, with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    /// Its index: strictly increasing, the same after restarts.
    pub index: u64,
    /// When the change happened (all items of one change share it).
    pub at: Timestamp,
    /// The event the change was made to.
    pub event_id: EventId,
    /// The object after the change.
    pub item: FeedItem,
}

/// Why a page cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The items after `after` are no longer kept: the oldest kept item is
    /// `earliest + 1`.
    #[error("changes after {after} are no longer kept; the earliest `after` served is {earliest}")]
    Gone {
        /// What was asked for.
        after: u64,
        /// The smallest `after` still served.
        earliest: u64,
    },
    /// A segment could not be read.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// Bytes of the first read from a segment: a reader that follows the end
/// of the feed wants a few frames, not a megabyte. Each further read
/// doubles, up to [`MAX_READ_BYTES`] (a frame larger than that is read whole
/// with a read of its own size).
const FIRST_READ_BYTES: usize = 16 * 1024;
/// The largest read of a long scan.
const MAX_READ_BYTES: usize = 1 << 20;
/// Distance between the positions remembered in a segment: a read starts
/// at most this far before the item it wants.
const MARK_EVERY: u64 = 256 * 1024;

/// What is known of one segment.
#[derive(Debug, Default)]
struct SegmentMarks {
    /// The first item index it holds, once found; `None` while unknown.
    first_index: Option<u64>,
    /// Known (first index of a record, byte offset of its frame), by offset.
    marks: Vec<(u64, u64)>,
    /// Offsets up to here have been scanned for marks.
    scanned_to: u64,
}

impl SegmentMarks {
    /// Remembers the record at `offset` whose first item is `index`.
    fn note(&mut self, index: u64, offset: u64) {
        if offset < self.scanned_to {
            return;
        }
        let far = self
            .marks
            .last()
            .is_none_or(|&(_, last)| offset >= last + MARK_EVERY);
        if far {
            self.marks.push((index, offset));
        }
        self.first_index.get_or_insert(index);
    }

    /// Where to start reading for item `index`.
    fn start_for(&self, index: u64) -> u64 {
        let i = self.marks.partition_point(|&(first, _)| first <= index);
        i.checked_sub(1).map_or(0, |i| self.marks[i].1)
    }
}

/// Reads the feed from the segments in one directory. Shared by every
/// request: it remembers where records are, so later reads start close.
#[derive(Debug)]
pub struct FeedReader {
    /// The journal's directory.
    dir: PathBuf,
    /// What is known of each segment, by its first LSN.
    segments: Mutex<HashMap<Lsn, SegmentMarks>>,
}

impl FeedReader {
    /// A reader of the journal in `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            segments: Mutex::new(HashMap::new()),
        }
    }

    fn marks(&self) -> MutexGuard<'_, HashMap<Lsn, SegmentMarks>> {
        self.segments.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The items with index in `after + 1 ..= durable`, oldest first, at
    /// most `limit`. `Gone` when the first of them is no longer kept.
    pub fn read(
        &self,
        after: u64,
        limit: usize,
        durable: u64,
    ) -> Result<Vec<FeedEntry>, FeedError> {
        let mut out = Vec::new();
        if after >= durable || limit == 0 {
            return Ok(out);
        }
        let all = segments(&self.dir)?;
        // Forget segments that were released.
        self.marks()
            .retain(|first, _| all.iter().any(|(f, _)| f == first));
        let mut firsts = Vec::with_capacity(all.len());
        for (i, (first_lsn, path)) in all.iter().enumerate() {
            let is_last = i + 1 == all.len();
            firsts.push(self.first_index(*first_lsn, path, is_last, durable)?);
        }
        let wanted = after + 1;
        let Some(oldest) = firsts.iter().flatten().next().copied() else {
            // Nothing on disk holds an item (all released, or none made
            // since the journal began): only the newest may be asked for.
            return Err(FeedError::Gone {
                after,
                earliest: durable,
            });
        };
        if wanted < oldest {
            return Err(FeedError::Gone {
                after,
                earliest: oldest - 1,
            });
        }
        // The last segment starting at or before the wanted index.
        let start = firsts
            .iter()
            .rposition(|f| f.is_some_and(|f| f <= wanted))
            .unwrap_or(0);
        for (first_lsn, path) in &all[start..] {
            if out.len() >= limit {
                break;
            }
            let done = self.scan(*first_lsn, path, wanted, durable, limit, &mut out)?;
            if done {
                break;
            }
        }
        Ok(out)
    }

    /// The first item index of a segment, reading it until one is found
    /// (cached; for the newest segment "none yet" is not).
    fn first_index(
        &self,
        first_lsn: Lsn,
        path: &Path,
        is_last: bool,
        durable: u64,
    ) -> Result<Option<u64>, FeedError> {
        if let Some(known) = self.marks().get(&first_lsn) {
            if known.first_index.is_some() || !is_last {
                return Ok(known.first_index);
            }
        }
        let mut found = None;
        let mut offset = 0;
        for_each_frame(path, 0, |at, _, payload| {
            offset = at;
            match codec::decode_prefix::<(u32, u64)>(payload) {
                Ok((PUBLISHED_VARIANT, first)) => {
                    found = Some(first);
                    false
                }
                _ => true,
            }
        })?;
        let found = found.filter(|&f| f <= durable);
        let mut marks = self.marks();
        let entry = marks.entry(first_lsn).or_default();
        if let Some(first) = found {
            entry.note(first, offset);
        }
        Ok(entry.first_index)
    }

    /// Appends to `out` the items of one segment from index `wanted` on,
    /// up to `durable` and `limit`; true when the end of what may be read
    /// was reached (no later segment can add anything).
    fn scan(
        &self,
        first_lsn: Lsn,
        path: &Path,
        wanted: u64,
        durable: u64,
        limit: usize,
        out: &mut Vec<FeedEntry>,
    ) -> Result<bool, FeedError> {
        let start = self
            .marks()
            .get(&first_lsn)
            .map_or(0, |m| m.start_for(wanted));
        let mut seen = Vec::new();
        let mut done = false;
        let mut failure = None;
        for_each_frame(path, start, |offset, _, payload| {
            let Ok((PUBLISHED_VARIANT, first)) = codec::decode_prefix::<(u32, u64)>(payload) else {
                return true;
            };
            if first > durable {
                done = true;
                return false;
            }
            seen.push((first, offset));
            let Ok(Record::Published {
                first_index,
                event,
                change,
                items,
            }) = codec::decode::<Record>(payload)
            else {
                failure = Some(offset);
                return false;
            };
            let at = change.at();
            for (i, item) in items.into_iter().enumerate() {
                let index = first_index + i as u64;
                if index < wanted || index > durable {
                    continue;
                }
                out.push(FeedEntry {
                    index,
                    at,
                    event_id: event,
                    item,
                });
            }
            if out.len() >= limit {
                out.truncate(limit);
                done = true;
                return false;
            }
            true
        })?;
        {
            let mut marks = self.marks();
            let entry = marks.entry(first_lsn).or_default();
            for (first, offset) in seen {
                entry.note(first, offset);
                entry.scanned_to = entry.scanned_to.max(offset);
            }
        }
        if let Some(offset) = failure {
            return Err(JournalError::Corrupt {
                path: path.to_path_buf(),
                offset,
            }
            .into());
        }
        Ok(done)
    }
}

/// The end of the journal in `dir`: the LSN of its newest whole record and
/// the index of its newest feed item (0: none), reading segments from the
/// newest back until both are found; `None` when no segment holds a
/// record. A journal that only keeps a feed (a cluster node's) goes on from
/// here at start.
pub fn tail(dir: &Path) -> Result<Option<(Lsn, u64)>, FeedError> {
    let mut last = None;
    for (_, path) in segments(dir)?.iter().rev() {
        let mut lsn = None;
        let mut index = None;
        let mut failure = None;
        for_each_frame(path, 0, |offset, at, payload| {
            lsn = Some(at);
            if let Ok((PUBLISHED_VARIANT, _)) = codec::decode_prefix::<(u32, u64)>(payload) {
                match codec::decode::<Record>(payload) {
                    Ok(Record::Published {
                        first_index, items, ..
                    }) => index = Some((first_index + items.len() as u64).saturating_sub(1)),
                    _ => {
                        failure = Some(offset);
                        return false;
                    }
                }
            }
            true
        })?;
        if let Some(offset) = failure {
            return Err(JournalError::Corrupt {
                path: path.clone(),
                offset,
            }
            .into());
        }
        // The newest record's LSN comes from the newest segment holding
        // one; the newest item may lie in an older segment.
        last = last.or(lsn);
        if let (Some(lsn), Some(index)) = (last, index) {
            return Ok(Some((lsn, index)));
        }
    }
    Ok(last.map(|lsn| (lsn, 0)))
}

/// Calls `visit(offset, lsn, payload)` for each whole, valid frame of `path`
/// from byte `start` on, until it returns false or the records end (zeros,
/// the end of the file, or a frame not yet whole).
fn for_each_frame(
    path: &Path,
    start: u64,
    mut visit: impl FnMut(u64, Lsn, &[u8]) -> bool,
) -> Result<(), JournalError> {
    let io_err = |source: io::Error| JournalError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = match File::open(path) {
        Ok(file) => file,
        // Released since it was listed: its items are gone with it.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(e)),
    };
    let mut buf = vec![0u8; FIRST_READ_BYTES];
    let mut offset = start;
    let mut first = true;
    loop {
        if !first && buf.len() < MAX_READ_BYTES {
            buf.resize((buf.len() * 2).min(MAX_READ_BYTES), 0);
        }
        first = false;
        let filled = read_at_most(&file, &mut buf, offset).map_err(io_err)?;
        let bytes = &buf[..filled];
        let mut at = 0usize;
        while let Some((lsn, payload, size)) = frame_at(&bytes[at..]) {
            if !visit(offset + at as u64, lsn, payload) {
                return Ok(());
            }
            at += size;
        }
        // The file ended inside this read: the records end here.
        if filled < buf.len() {
            return Ok(());
        }
        // The read was cut by the buffer's size: what follows may be a frame
        // that runs past it (or a header cut in two).
        if at > 0 {
            offset += at as u64;
            continue;
        }
        let needed = bytes
            .get(..4)
            .and_then(|len| len.try_into().ok())
            .map(|len: [u8; 4]| FRAME_HEADER_BYTES + u32::from_le_bytes(len) as usize);
        match needed {
            // One frame larger than the buffer: read it whole.
            Some(needed)
                if needed > buf.len() && needed <= super::MAX_RECORD_BYTES + FRAME_HEADER_BYTES =>
            {
                buf.resize(needed, 0);
                first = true;
            }
            // A whole buffer that does not start with a valid frame: zeros
            // or damage, the end of what can be read.
            _ => return Ok(()),
        }
    }
}

/// Reads from `offset` until `buf` is full or the file ends.
fn read_at_most(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::tests::options;
    use crate::journal::{release, replay, Journal};
    use boxoffice_domain::{BookingId, BookingStatus, BookingView, Change, UserId};

    /// A published record of `n` bookings touched by one change.
    fn published(n: u64, touched: usize) -> Record {
        let event = EventId::try_from(1).expect("id");
        let at = Timestamp::from_millis(n as i64);
        let view = |i: usize| BookingView {
            id: BookingId::from_raw(n * 10 + i as u64),
            event_id: event,
            user_id: UserId::try_from(format!("u{n}-{i}").as_str()).expect("user"),
            status: BookingStatus::Confirmed,
            quantity: 1,
            waiting_position: None,
            tickets_ahead: None,
            expires_at: None,
            created_at: at,
            updated_at: at,
            seats: None,
        };
        Record::Published {
            first_index: 0,
            event,
            change: Change::Cancelled {
                user: UserId::try_from("x").expect("user"),
                at,
            },
            items: (0..touched).map(|i| FeedItem::Booking(view(i))).collect(),
        }
    }

    /// Writes `changes` published records (change `n` touching `n % 3 + 1`
    /// objects) through a real journal; returns the last durable index.
    fn write(dir: &Path, changes: u64, segment_bytes: u64) -> u64 {
        let journal = Journal::start(options(dir, segment_bytes), Lsn::FIRST).expect("start");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        for n in 1..=changes {
            let lsn = journal
                .submit(published(n, (n % 3 + 1) as usize), 0)
                .expect("accepted");
            runtime
                .block_on(journal.wait_durable(lsn))
                .expect("durable");
        }
        let durable = journal.state().changes_durable;
        journal.shutdown();
        durable
    }

    /// Frames cross the reader's buffer boundaries (16 KiB, then doubling)
    /// anywhere: every page still reads on from where the last one ended.
    #[test]
    fn pages_read_on_across_read_boundaries_in_a_large_segment() {
        let dir = tempfile::tempdir().expect("dir");
        let durable = write(dir.path(), 3_000, 1 << 20);
        assert_eq!(durable, 6_000);
        let reader = FeedReader::new(dir.path());
        for limit in [1_000, 333] {
            let mut after = 0;
            while after < durable {
                let page = reader.read(after, limit, durable).expect("page");
                assert_eq!(page.first().map(|e| e.index), Some(after + 1));
                after = page.last().map(|e| e.index).expect("items");
            }
        }
    }

    #[test]
    fn pages_read_every_item_once_in_index_order_across_segments() {
        let dir = tempfile::tempdir().expect("dir");
        let durable = write(dir.path(), 300, 2048);
        // 300 changes of 1, 2 or 3 items: 100 of each.
        assert_eq!(durable, 600);
        let listed = segments(dir.path()).expect("list");
        assert!(listed.len() > 3, "{listed:?}");
        let reader = FeedReader::new(dir.path());
        for limit in [1, 7, 1000] {
            let mut after = 0;
            let mut seen = Vec::new();
            loop {
                let page = reader.read(after, limit, durable).expect("page");
                assert!(page.len() <= limit);
                let Some(last) = page.last() else { break };
                after = last.index;
                seen.extend(page);
            }
            let indexes: Vec<u64> = seen.iter().map(|e| e.index).collect();
            assert_eq!(indexes, (1..=600).collect::<Vec<_>>(), "limit {limit}");
            // Items of one change share its time, in the order they changed.
            // (Change 1 touched two objects, change 2 three.)
            assert_eq!(seen[0].at, seen[1].at);
            assert_ne!(seen[1].at, seen[2].at);
            let FeedItem::Booking(b) = &seen[1].item else {
                panic!("a booking")
            };
            assert_eq!(b.user_id.as_str(), "u1-1");
        }
        // Nothing past what is durable, and nothing after the end.
        assert_eq!(reader.read(0, 10, 4).expect("page").len(), 4);
        assert!(reader.read(600, 10, durable).expect("page").is_empty());
        // Replay still reads the records as their changes, and finds where
        // the feed goes on.
        let end = replay(dir.path(), Lsn::ZERO, |_, r| {
            assert!(r.into_change().is_some());
            Ok(())
        })
        .expect("replays");
        assert_eq!(end.next_change_index, 601);
    }

    #[test]
    fn items_in_released_segments_are_gone_with_the_earliest_kept() {
        let dir = tempfile::tempdir().expect("dir");
        let durable = write(dir.path(), 300, 2048);
        let reader = FeedReader::new(dir.path());
        assert_eq!(reader.read(0, 5, durable).expect("all kept").len(), 5);
        let before = segments(dir.path()).expect("list").len();
        assert_eq!(
            release(dir.path(), Lsn::MAX.prev(), 0).expect("release"),
            before - 1
        );
        let kept = reader
            .read(durable - 1, 5, durable)
            .expect("the newest is kept");
        assert_eq!(kept.len(), 1);
        match reader.read(0, 5, durable) {
            Err(FeedError::Gone { after: 0, earliest }) => {
                let page = reader
                    .read(earliest, 1, durable)
                    .expect("earliest is served");
                assert_eq!(page[0].index, earliest + 1);
            }
            other => panic!("expected Gone, got {other:?}"),
        }
    }
}
