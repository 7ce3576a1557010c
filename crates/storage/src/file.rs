//! Writing one whole file so that a crash leaves the old one or the new
//! one, never a mix: what the journal's manifest, the Raft log's vote and
//! snapshot files, and the data directory each need. A leaf: it names
//! nothing else of the crate.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Replaces `path` (a file in `dir`) with `bytes` the crash-safe way:
/// written to `<name>.tmp` beside it, synced, renamed over it, the
/// directory synced; a reader finds the old file or the whole new one.
pub fn replace_file(dir: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io::Error::new(e.kind(), format!("{}: {e}", tmp.display())));
    }
    fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()
}
