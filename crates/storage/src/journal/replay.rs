//! Reading the journal back at start, and deleting segments every retained
//! snapshot covers.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use super::frame::{decode_frame, FRAME_HEADER_BYTES};
use super::{Lsn, Record};

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
    /// The manifest names a newest segment that is not there: the last
    /// segment (or the whole journal) was lost, with whatever acknowledged
    /// records it held.
    #[error("{manifest} names journal segment {expected} as the newest, but the newest on disk is {found}: the end of the journal is missing (restore it from a backup, or delete the manifest to start without it)")]
    MissingEnd {
        /// The manifest.
        manifest: PathBuf,
        /// The file it names.
        expected: PathBuf,
        /// The newest segment present, or "none".
        found: String,
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

/// Refuses a journal whose newest segment is older than the one the
/// manifest names. (A newer one is fine: the manifest is written just after
/// a segment is created, so a crash between the two leaves it one behind.)
fn check_end(dir: &Path, all: &[(Lsn, PathBuf)]) -> Result<(), JournalError> {
    let manifest = super::segment::read_manifest(dir).map_err(|source| JournalError::Io {
        path: dir.join(super::segment::MANIFEST_FILE),
        source,
    })?;
    let Some((manifest, named)) = manifest else {
        return Ok(());
    };
    let newest = all.last().map(|(first, _)| *first);
    if newest.is_some_and(|first| first >= named) {
        return Ok(());
    }
    Err(JournalError::MissingEnd {
        manifest,
        expected: super::segment::segment_path(dir, named),
        found: all
            .last()
            .map_or_else(|| String::from("none"), |(_, p)| p.display().to_string()),
    })
}

/// What a replay found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayEnd {
    /// The LSN the next record gets.
    pub next_lsn: Lsn,
    /// Records handed to the caller.
    pub applied: u64,
    /// Their frames' bytes: the journal a snapshot would make unnecessary.
    pub applied_bytes: u64,
    /// A torn tail that was cut off: the segment and its new length.
    pub truncated: Option<(PathBuf, u64)>,
    /// The change feed index after the newest item read (covered records
    /// included); 1 when no record read holds any.
    pub next_change_index: u64,
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
            .and_then(|n| n.parse::<u64>().ok().map(Lsn::new));
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
    check_end(dir, &all)?;
    // Segments wholly covered by the snapshot need not be read.
    let first_needed = all
        .iter()
        .rposition(|(first, _)| *first <= covered.next())
        .unwrap_or(0);
    let needed = &all[first_needed.min(all.len())..];
    let mut expected = match needed.first() {
        None => {
            return Ok(ReplayEnd {
                next_lsn: covered.next(),
                applied: 0,
                applied_bytes: 0,
                truncated: None,
                next_change_index: 1,
            })
        }
        Some((first, path)) if *first > covered.next() => {
            return Err(JournalError::Gap {
                path: path.clone(),
                offset: 0,
                expected: covered.next(),
                found: *first,
            });
        }
        Some((first, _)) => *first,
    };
    let mut end = ReplayEnd {
        next_lsn: expected,
        applied: 0,
        applied_bytes: 0,
        truncated: None,
        next_change_index: 1,
    };
    for (i, (first, path)) in needed.iter().enumerate() {
        let is_last = i + 1 == needed.len();
        let bytes = fs::read(path).map_err(|source| JournalError::Io {
            path: path.clone(),
            source,
        })?;
        // An empty file holds no records, so it cannot hide any: continuity
        // is checked record by record. (A rotation cut short by a full disk
        // can leave one behind, and a crash just after a new segment was
        // zeroed ahead, one of zeros.) The last one is cut to nothing, so
        // the writer can start its segment under that name again.
        // Its name still says where its records would begin, so one named
        // past what came before shows the records in between are missing.
        if is_zeros(&bytes) {
            if *first > expected {
                return Err(JournalError::Gap {
                    path: path.clone(),
                    offset: 0,
                    expected,
                    found: *first,
                });
            }
            if is_last && !bytes.is_empty() {
                truncate(path, 0)?;
            }
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
                // The zeros the writer keeps ahead of its records
                // (`segment::ZEROED_AHEAD`): the end of this segment's
                // records, not damage. No frame is all zeros (its CRC
                // covers the LSN).
                if is_zeros(&bytes[offset..]) {
                    if is_last {
                        truncate(path, offset as u64)?;
                    }
                    break;
                }
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
                Record::Skipped { through } if through >= lsn => expected = through.next(),
                Record::Skipped { .. } => {
                    return Err(JournalError::Corrupt {
                        path: path.clone(),
                        offset: offset as u64,
                    });
                }
                record => {
                    if let Record::Published {
                        first_index, items, ..
                    } = &record
                    {
                        end.next_change_index = first_index + items.len() as u64;
                    }
                    if lsn > covered {
                        apply(lsn, record).map_err(|why| JournalError::Inapplicable {
                            path: path.clone(),
                            lsn,
                            offset: offset as u64,
                            why,
                        })?;
                        end.applied += 1;
                        end.applied_bytes += size as u64;
                    }
                    expected = expected.next();
                }
            }
            offset += size;
        }
    }
    end.next_lsn = expected.max(covered.next());
    Ok(end)
}

/// Whether `bytes` are all zero (an empty slice is).
fn is_zeros(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0)
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

/// Syncs the newest segment in `dir` to disk from a file handle of its own
/// (a sync covers the file, whoever wrote it): everything written to the
/// journal before the call is then on disk, since a segment is synced
/// before the writer moves on to the next.
pub fn sync_newest(dir: &Path) -> Result<(), JournalError> {
    let Some((_, path)) = segments(dir)?.pop() else {
        return Ok(());
    };
    let io_err = |source| JournalError::Io {
        path: path.clone(),
        source,
    };
    File::open(&path)
        .and_then(|f| f.sync_data())
        .map_err(io_err)
}

/// Deletes the segments whose every record is at or below `covered`, oldest
/// first, while the segments left still hold at least `retain_bytes` (the
/// change feed's retention: it serves what the journal keeps). The newest
/// segment is never deleted: the writer may be appending to it.
pub fn release(dir: &Path, covered: Lsn, retain_bytes: u64) -> Result<usize, JournalError> {
    let all = segments(dir)?;
    let io_err = |path: &PathBuf| {
        let path = path.clone();
        move |source| JournalError::Io { path, source }
    };
    let mut sizes = Vec::with_capacity(all.len());
    for (_, path) in &all {
        sizes.push(fs::metadata(path).map_err(io_err(path))?.len());
    }
    let mut kept: u64 = sizes.iter().sum();
    let mut removed = 0;
    for (i, pair) in all.windows(2).enumerate() {
        let (_, path) = &pair[0];
        let (next_first, _) = pair[1];
        if next_first > covered.next() || kept - sizes[i] < retain_bytes {
            break;
        }
        fs::remove_file(path).map_err(io_err(path))?;
        kept -= sizes[i];
        removed += 1;
    }
    Ok(removed)
}
