//! A node's newest Raft snapshot, `raft/snapshot.bin`: the state as of one
//! log id (the service's image of it, opaque here) with the membership
//! then, so the log before it can go and a node that is far behind or new
//! catches up from it.
//!
//! Layout: magic `BOXORAFT`, format version (u32), CRC32 of the payload
//! (u32), payload length (u64), then the bincode payload. Written the
//! crash-safe way (temporary file, fsync, rename, fsync the directory): a
//! reader finds the old file or the whole new one, and the CRC catches what
//! the disk damaged later. Only the newest is kept: the Raft log holds
//! everything after it.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use openraft::SnapshotMeta;
use serde::{Deserialize, Serialize};

use super::{Member, NodeId};
use crate::codec;

/// The file in the Raft directory.
pub const SNAPSHOT_FILE: &str = "snapshot.bin";
const MAGIC: [u8; 8] = *b"BOXORAFT";
const FORMAT_VERSION: u32 = 1;
/// magic (8) + version (4) + crc32 (4) + payload length (8).
const HEADER_BYTES: usize = 24;

/// What the file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSnapshot {
    /// The log id it is the state as of, the membership then, its id.
    pub meta: SnapshotMeta<NodeId, Member>,
    /// The state, as the service encoded it.
    pub image: Vec<u8>,
}

impl StoredSnapshot {
    /// The file's bytes.
    pub fn encode(&self) -> io::Result<Vec<u8>> {
        let payload = codec::encode(self).map_err(io::Error::other)?;
        let mut bytes = Vec::with_capacity(HEADER_BYTES + payload.len());
        bytes.extend_from_slice(&MAGIC);
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&payload);
        Ok(bytes)
    }

    /// Reads back [`Self::encode`]'s bytes, checking every field.
    pub fn decode(bytes: &[u8]) -> io::Result<Self> {
        let bad = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
        let header = bytes
            .get(..HEADER_BYTES)
            .ok_or_else(|| bad("shorter than its header".into()))?;
        if header[0..8] != MAGIC {
            return Err(bad("bad magic bytes at offset 0".into()));
        }
        let word = |at: usize| {
            u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
        };
        let version = word(8);
        if version != FORMAT_VERSION {
            return Err(bad(format!(
                "format version {version}, this build reads {FORMAT_VERSION}"
            )));
        }
        let mut len = [0u8; 8];
        len.copy_from_slice(&header[16..24]);
        let len = u64::from_le_bytes(len);
        let payload = &bytes[HEADER_BYTES..];
        if payload.len() as u64 != len {
            return Err(bad(format!(
                "header says {len} payload bytes, file holds {}",
                payload.len()
            )));
        }
        if crc32fast::hash(payload) != word(12) {
            return Err(bad(format!(
                "CRC mismatch in payload at offset {HEADER_BYTES}"
            )));
        }
        codec::decode(payload).map_err(|e| bad(e.to_string()))
    }
}

/// Where a node keeps its newest snapshot.
#[derive(Debug, Clone)]
pub struct SnapshotFile {
    dir: PathBuf,
}

impl SnapshotFile {
    /// The snapshot file in `dir` (the Raft log's directory).
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.join(SNAPSHOT_FILE)
    }

    /// Replaces the file with `bytes` ([`StoredSnapshot::encode`]'s), durably.
    /// Blocking.
    pub fn write(&self, bytes: &[u8]) -> io::Result<()> {
        crate::file::replace_file(&self.dir, &self.path(), bytes)
    }

    /// The file's bytes, `None` if there is none. Blocking.
    pub fn read_bytes(&self) -> io::Result<Option<Vec<u8>>> {
        let path = self.path();
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(Some(bytes))
    }

    /// The newest snapshot, checked; `None` if there is none. Blocking.
    pub fn read(&self) -> io::Result<Option<StoredSnapshot>> {
        let path = self.path();
        self.read_bytes()?
            .map(|bytes| {
                StoredSnapshot::decode(&bytes)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, LogId, Membership, StoredMembership};
    use std::collections::BTreeMap;
    use std::fs;

    fn sample() -> StoredSnapshot {
        let members: BTreeMap<NodeId, Member> = (1..=3)
            .map(|id| {
                (
                    id,
                    Member {
                        peer: format!("127.0.0.1:{}", 9000 + id),
                        http: format!("http://127.0.0.1:{}", 8000 + id),
                    },
                )
            })
            .collect();
        let at = LogId::new(CommittedLeaderId::new(4, 2), 1234);
        let membership = Membership::new(vec![members.keys().copied().collect()], members);
        StoredSnapshot {
            meta: SnapshotMeta {
                last_log_id: Some(at),
                last_membership: StoredMembership::new(Some(at), membership),
                snapshot_id: "4-1234-1".into(),
            },
            image: b"the state".to_vec(),
        }
    }

    #[test]
    fn a_written_snapshot_reads_back_equal_and_replaces_the_last() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = SnapshotFile::new(dir.path());
        assert!(file.read().expect("no file yet").is_none());
        let mut snapshot = sample();
        file.write(&snapshot.encode().expect("encode"))
            .expect("write");
        assert_eq!(file.read().expect("read"), Some(snapshot.clone()));
        snapshot.image = b"newer".to_vec();
        file.write(&snapshot.encode().expect("encode"))
            .expect("write");
        assert_eq!(file.read().expect("read"), Some(snapshot));
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(SNAPSHOT_FILE)]);
    }

    #[test]
    fn damage_anywhere_is_refused() {
        let bytes = sample().encode().expect("encode");
        for at in [0, 9, 13, 17, HEADER_BYTES, bytes.len() - 1] {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x40;
            assert!(StoredSnapshot::decode(&damaged).is_err(), "byte {at}");
        }
        assert!(StoredSnapshot::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(StoredSnapshot::decode(&bytes[..10]).is_err());
    }
}
