//! One segment file being appended to, behind the few operations the writer
//! needs, so tests can make any of them fail on purpose.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Lsn;

/// Zeros written ahead of the records at a time. Overwriting blocks that
/// are already allocated and synced leaves `fdatasync` nothing but the data
/// to flush; appending past the end of the file also makes it commit the
/// file system's journal for the new size and blocks. Measured on this
/// machine's ext4: median sync 0.13 ms appending, 0.09 ms overwriting.
/// So the segment is zeroed a few MiB ahead of its records, and one sync
/// every few MiB pays for the growth (PostgreSQL zero-fills WAL segments
/// for the same reason).
pub(super) const ZEROED_AHEAD: u64 = 4 * 1024 * 1024;

/// A file operation of the writer, as a fault injector sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoOp {
    /// Appending bytes.
    Write,
    /// `fdatasync`.
    Sync,
    /// Cutting the file back after a failed write.
    Truncate,
}

/// Decides, for tests, which file operations fail (with an I/O error as
/// a full or broken disk would give). Production runs have none.
#[derive(Clone)]
pub struct FaultInjector(Arc<dyn Fn(IoOp) -> bool + Send + Sync>);

impl FaultInjector {
    /// Fails every operation for which `fails` answers true.
    pub fn new(fails: impl Fn(IoOp) -> bool + Send + Sync + 'static) -> Self {
        Self(Arc::new(fails))
    }

    fn check(&self, op: IoOp) -> io::Result<()> {
        if (self.0)(op) {
            Err(io::Error::other(format!("injected {op:?} fault")))
        } else {
            Ok(())
        }
    }
}

impl fmt::Debug for FaultInjector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FaultInjector")
    }
}

/// The segment being appended to.
pub(super) struct Segment {
    /// The open file.
    file: File,
    /// Its path, for messages.
    pub(super) path: PathBuf,
    /// Bytes known to be whole frames; a failed write is cut back to this.
    pub(super) good_len: u64,
    /// The file's length: zeros from `good_len` up to here.
    zeroed_to: u64,
    /// Fails operations on purpose, in tests.
    faults: Option<FaultInjector>,
}

impl Segment {
    /// Starts the segment whose first record is `first_lsn`. A file of that
    /// name may exist only empty (a torn tail replay cut to nothing): one
    /// with bytes in it would have moved the LSN on, so it is refused rather
    /// than overwritten.
    pub(super) fn create(
        dir: &Path,
        first_lsn: Lsn,
        faults: Option<FaultInjector>,
    ) -> io::Result<Self> {
        let path = segment_path(dir, first_lsn);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        let len = file.metadata()?.len();
        if len != 0 {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} already holds {len} bytes; refusing to overwrite it",
                    path.display()
                ),
            ));
        }
        file.sync_all()?;
        sync_dir(dir)?;
        // Only once the segment itself is durable may the manifest name it.
        write_manifest(dir, first_lsn)?;
        Ok(Self {
            file,
            path,
            good_len: 0,
            zeroed_to: 0,
            faults,
        })
    }

    /// Appends whole frames, first zeroing the file ahead of them when they
    /// would reach past its zeroed part (never past `full`, the size at
    /// which the writer starts the next segment).
    pub(super) fn append(&mut self, bytes: &[u8], full: u64) -> io::Result<()> {
        self.inject(IoOp::Write)?;
        let end = self.good_len + bytes.len() as u64;
        let target = (end + ZEROED_AHEAD).min(full);
        if end > self.zeroed_to && target > end {
            self.zero_ahead(target);
        }
        self.file.write_all(bytes)?;
        self.good_len = end;
        Ok(())
    }

    /// Extends the file with zeros up to `to`. Only speed depends on it: if
    /// the disk refuses (full), records are appended past the end as before.
    fn zero_ahead(&mut self, to: u64) {
        use std::os::unix::fs::FileExt;
        static CHUNK: [u8; 64 * 1024] = [0; 64 * 1024];
        let mut at = self.zeroed_to.max(self.good_len);
        while at < to {
            let n = CHUNK.len().min((to - at) as usize);
            if let Err(e) = self.file.write_all_at(&CHUNK[..n], at) {
                log::debug!("journal: cannot zero {} ahead: {e}", self.path.display());
                break;
            }
            at += n as u64;
        }
        self.zeroed_to = at;
    }

    /// Makes what was appended durable.
    pub(super) fn sync(&mut self) -> io::Result<()> {
        self.inject(IoOp::Sync)?;
        self.file.sync_data()
    }

    /// Drops whatever a failed write left after the last whole frame.
    pub(super) fn cut_back(&mut self) -> io::Result<()> {
        self.inject(IoOp::Truncate)?;
        self.file.set_len(self.good_len)?;
        self.file.seek(SeekFrom::Start(self.good_len))?;
        self.zeroed_to = self.good_len;
        Ok(())
    }

    fn inject(&self, op: IoOp) -> io::Result<()> {
        self.faults.as_ref().map_or(Ok(()), |f| f.check(op))
    }
}

/// The file that names the newest segment, so that a lost last segment
/// (or a lost journal) is noticed at start instead of silently dropping the
/// acknowledged records it held.
pub const MANIFEST_FILE: &str = "journal.manifest";
const MANIFEST_HEADER: &str = "boxoffice journal manifest 1";

/// Records, atomically and durably, that the newest segment starts at
/// `first_lsn`.
fn write_manifest(dir: &Path, first_lsn: Lsn) -> io::Result<()> {
    crate::file::replace_file(
        dir,
        &dir.join(MANIFEST_FILE),
        format!("{MANIFEST_HEADER}\nnewest_segment {first_lsn}\n").as_bytes(),
    )
}

/// The first LSN of the newest segment as the manifest recorded it;
/// `None` when there is no manifest (a data directory written before
/// manifests existed, or a new one).
pub(super) fn read_manifest(dir: &Path) -> io::Result<Option<(PathBuf, Lsn)>> {
    let path = dir.join(MANIFEST_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut lines = text.lines();
    let lsn = match (
        lines.next(),
        lines.next().and_then(|l| l.strip_prefix("newest_segment ")),
    ) {
        (Some(MANIFEST_HEADER), Some(lsn)) => lsn.trim().parse::<u64>().ok().map(Lsn::new),
        _ => None,
    };
    match lsn {
        Some(lsn) => Ok(Some((path, lsn))),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not a journal manifest", path.display()),
        )),
    }
}

/// The file of the segment whose first record is `first_lsn`.
pub(super) fn segment_path(dir: &Path, first_lsn: Lsn) -> PathBuf {
    dir.join(format!("journal-{first_lsn:020}.log"))
}

/// Makes a new or removed directory entry durable.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
