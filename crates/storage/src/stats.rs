//! What the storage layer counts for `/metrics`: the journal's batches,
//! syncs and bytes, and the newest snapshot. Plain atomics, written by the
//! journal's writer thread and the snapshot store, read at scrape time.

use std::sync::atomic::{AtomicU64, Ordering};

use boxoffice_metrics::prometheus_client::encoding::DescriptorEncoder;
use boxoffice_metrics::{counter, gauge, gauge_f64, histogram, AtomicHistogram};

/// The journal's batches and syncs.
#[derive(Debug)]
pub struct JournalStats {
    /// Records per written batch.
    pub batch_records: AtomicHistogram,
    /// Time of each `fdatasync`.
    pub fsync_seconds: AtomicHistogram,
    /// Bytes appended to segments since start: what snapshots are weighed
    /// against.
    pub written_bytes: AtomicU64,
}

impl JournalStats {
    /// Bytes appended to segments since start.
    pub fn written_bytes(&self) -> u64 {
        self.written_bytes.load(Ordering::Relaxed)
    }

    /// Writes the journal's families.
    pub fn encode(&self, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
        histogram(
            encoder,
            "boxoffice_journal_batch_records",
            "Journal records written per batch (one write and, in always mode, one sync)",
            &self.batch_records,
        )?;
        histogram(
            encoder,
            "boxoffice_journal_fsync_seconds",
            "Time of each journal fdatasync",
            &self.fsync_seconds,
        )?;
        counter(
            encoder,
            "boxoffice_journal_written_bytes",
            "Bytes appended to the journal since start",
            &self.written_bytes,
        )
    }
}

impl Default for JournalStats {
    fn default() -> Self {
        Self {
            batch_records: AtomicHistogram::counts(),
            fsync_seconds: AtomicHistogram::seconds(),
            written_bytes: AtomicU64::new(0),
        }
    }
}

/// The newest snapshot.
#[derive(Debug, Default)]
pub struct SnapshotStats {
    /// Total time of the newest snapshot (collect, encode, write), in µs.
    pub last_micros: AtomicU64,
    /// Size of the newest snapshot file.
    pub last_bytes: AtomicU64,
    /// Snapshots written since start.
    pub written: AtomicU64,
}

impl SnapshotStats {
    /// Writes the snapshot families.
    pub fn encode(&self, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
        gauge_f64(
            encoder,
            "boxoffice_snapshot_seconds",
            "Total time of the newest snapshot: collect, encode, write",
            self.last_micros.load(Ordering::Relaxed) as f64 / 1e6,
        )?;
        gauge(
            encoder,
            "boxoffice_snapshot_bytes",
            "Size of the newest snapshot file",
            self.last_bytes.load(Ordering::Relaxed) as i64,
        )?;
        counter(
            encoder,
            "boxoffice_snapshots_written",
            "Snapshots written since start",
            &self.written,
        )
    }
}
