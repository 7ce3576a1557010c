//! The data directory: snapshots and journal segments in one folder, owned
//! by one process at a time, and what is done with it as a whole: taking
//! it, rebuilding the state from it, starting the journal in it.
//!
//! Two processes on one directory would both append to the journal and
//! hand out the same booking ids, and the second one's recovery would cut
//! and delete the first one's files. So the lock is taken before anything
//! in the directory is read, cut or deleted, and held until the process
//! exits (the OS drops it even after SIGKILL).

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::journal::{Journal, JournalOptions, Lsn};
use super::recovery::{recover, Recovered, RecoveryError};
use super::SnapshotStore;
use crate::journal::JournalSettings;

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "LOCK";

/// Why the data directory could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// Another process holds the lock.
    #[error("data directory {dir} is in use by another boxoffice process ({holder}); stop it or use another snapshot.dir")]
    InUse {
        /// The directory, absolute.
        dir: PathBuf,
        /// Who holds it, as far as the lock file tells.
        holder: String,
    },
    /// The directory or its lock file could not be opened.
    #[error("data directory {dir}: {source}")]
    Io {
        /// The directory.
        dir: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
}

/// The locked data directory; the lock lasts as long as this value.
#[derive(Debug)]
pub struct DataDir {
    /// The directory, absolute.
    path: PathBuf,
    /// Holds the lock.
    _lock: File,
}

impl DataDir {
    /// Creates `dir` if needed and takes its lock, writing this process's
    /// pid into the lock file for whoever is refused next.
    pub fn lock(dir: &Path) -> Result<Self, DataDirError> {
        let io_err = |source| DataDirError::Io {
            dir: dir.to_path_buf(),
            source,
        };
        fs::create_dir_all(dir).map_err(io_err)?;
        let path = fs::canonicalize(dir).map_err(io_err)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path.join(LOCK_FILE))
            .map_err(io_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => String::from("pid unknown"),
                    pid => format!("pid {pid}"),
                };
                return Err(DataDirError::InUse { dir: path, holder });
            }
            Err(TryLockError::Error(e)) => return Err(io_err(e)),
        }
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(file, "{}", std::process::id()))
            .map_err(io_err)?;
        Ok(Self { path, _lock: file })
    }

    /// The directory, absolute.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the snapshot store (keeping `keep` files) and rebuilds the
    /// state from the newest usable snapshot plus the journal after it.
    pub fn recover(&self, keep: usize) -> Result<(SnapshotStore, Recovered), RecoveryError> {
        let store = SnapshotStore::open(&self.path, keep)?;
        let recovered = recover(&store, &self.path)?;
        Ok((store, recovered))
    }

    /// Starts the journal in this directory, its next record at
    /// `next_lsn`; with the journal off, the stand-in that keeps nothing.
    pub fn start_journal(
        &self,
        settings: &JournalSettings,
        next_lsn: Lsn,
    ) -> io::Result<Arc<Journal>> {
        if !settings.enabled {
            return Ok(Journal::disabled(next_lsn));
        }
        let options = JournalOptions {
            dir: self.path.clone(),
            fsync: settings.fsync,
            fsync_interval: Duration::from_millis(settings.fsync_interval_ms),
            segment_bytes: settings.segment_bytes,
            faults: None,
        };
        Journal::start(options, next_lsn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused_naming_the_holder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = DataDir::lock(dir.path()).expect("first lock");
        match DataDir::lock(dir.path()) {
            Err(DataDirError::InUse { holder, .. }) => {
                assert_eq!(holder, format!("pid {}", std::process::id()));
            }
            other => panic!("second lock: {other:?}"),
        }
        drop(first);
        DataDir::lock(dir.path()).expect("free again once the holder is gone");
    }
}
