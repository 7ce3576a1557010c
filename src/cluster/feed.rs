//! The change feed of a cluster node: a journal of its own
//! (`raft/feed/`, the journal's segments) that holds only the feed items
//! of committed changes, in commit order, numbered as the leader that made
//! them numbered them, so every node serves the same feed, and the feed
//! reader, its retention and the webhooks work on it as on a single node.
//!
//! The Raft log is the record of the state; this journal is a copy of its
//! feed items that outlives the log's compaction. A restart applies the
//! Raft log after its snapshot again: items the journal holds are skipped
//! ([`Journal::append_numbered`]), and a snapshot waits until the journal
//! holds what it covers before the log under it is dropped. A node that
//! starts from a snapshot sent by the leader (a new member) serves the feed
//! from that snapshot on.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::persistence::journal::JournalSettings;
use crate::persistence::journal::{self, feed, Journal, JournalOptions, Lsn};

/// How often segments beyond the feed's retention are deleted.
const RELEASE_EVERY: Duration = Duration::from_secs(60);

/// The feed journal's directory in a data directory.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("raft").join("feed")
}

/// Opens the feed journal in `dir`, going on after what it holds.
///
/// It is written with `interval` syncs whatever `journal.fsync` says:
/// nothing waits for it (the Raft log is what answers wait for), a crash
/// loses at most the unsynced end, which the Raft log after the snapshot
/// brings back at the restart, and before a snapshot lets that log go the
/// journal is synced ([`sync_before_snapshot`]). Syncing every batch cost
/// the cluster 5% of its bookings a second on this machine.
pub fn open(dir: &Path, settings: &JournalSettings) -> io::Result<Arc<Journal>> {
    std::fs::create_dir_all(dir)?;
    let (last_lsn, last_index) = feed::tail(dir)
        .map_err(|e| io::Error::other(format!("{}: {e}", dir.display())))?
        .unwrap_or((Lsn::ZERO, 0));
    let options = JournalOptions {
        dir: dir.to_path_buf(),
        fsync: crate::persistence::journal::FsyncMode::Interval,
        fsync_interval: Duration::from_millis(settings.fsync_interval_ms),
        segment_bytes: settings.segment_bytes,
        faults: None,
    };
    let journal = Journal::start(options, last_lsn.next())?;
    journal.resume_changes_at(last_index + 1);
    log::info!(
        "change feed journal {}: items up to {last_index}",
        dir.display()
    );
    Ok(journal)
}

/// Makes everything written to the feed journal in `dir` durable: a Raft
/// snapshot is about to let the log holding those items go.
pub fn sync_before_snapshot(dir: &Path) -> io::Result<()> {
    journal::sync_newest(dir).map_err(|e| io::Error::other(e.to_string()))
}

/// Deletes, every minute, the feed journal's oldest segments beyond
/// `retain_bytes` (`changes.retain_bytes`); until `feed` is shut down.
pub async fn release_old(dir: PathBuf, feed: Arc<Journal>, retain_bytes: u64) {
    let mut tick = tokio::time::interval(RELEASE_EVERY);
    loop {
        tick.tick().await;
        // Every record is only a copy of the feed: all are "covered".
        let covered = feed.state().durable;
        let (dir, retain) = (dir.clone(), retain_bytes);
        let released =
            tokio::task::spawn_blocking(move || journal::release(&dir, covered, retain)).await;
        match released {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => log::info!("change feed: {n} segment(s) past its retention deleted"),
            Ok(Err(e)) => log::warn!("change feed: could not delete old segments: {e}"),
            Err(e) => log::warn!("change feed: release thread: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EventId, FeedItem, Timestamp};
    use crate::persistence::journal::Record;

    fn published(first_index: u64, items: u64) -> Record {
        let event = EventId::try_from(1).expect("id");
        let settings = crate::domain::EventSettings::new(None, 5, 1);
        let (made, change) =
            crate::domain::Event::create(event, settings, Timestamp::from_millis(0))
                .expect("event");
        Record::Published {
            first_index,
            event,
            change,
            items: (0..items).map(|_| FeedItem::event(made.status())).collect(),
        }
    }

    async fn items_after(journal: &Arc<Journal>, dir: &Path, after: u64) -> Vec<u64> {
        let mut watch = journal.watch();
        let _ = watch.wait_for(|s| s.changes_durable >= 7).await;
        let durable = journal.state().changes_durable;
        feed::FeedReader::new(dir)
            .read(after, 100, durable)
            .expect("read")
            .iter()
            .map(|e| e.index)
            .collect()
    }

    #[tokio::test]
    async fn numbered_items_are_kept_once_in_order_across_a_reopen() {
        let root = tempfile::tempdir().expect("temp dir");
        let dir = root.path().join("feed");
        let settings = crate::config::Settings::default().journal;
        let journal = open(&dir, &settings).expect("opens");
        // A snapshot brought items 1 to 2: the feed starts after them.
        assert!(journal.append_numbered(published(3, 2)));
        assert!(journal.append_numbered(published(5, 1)));
        assert!(journal.append_numbered(published(4, 1)), "held: skipped");
        journal.shutdown();

        let journal = open(&dir, &settings).expect("reopens");
        // A restart applies the log again: what is held is skipped.
        assert!(journal.append_numbered(published(3, 2)));
        assert!(journal.append_numbered(published(5, 1)));
        assert!(journal.append_numbered(published(6, 2)));
        assert_eq!(items_after(&journal, &dir, 2).await, vec![3, 4, 5, 6, 7]);
        assert!(matches!(
            feed::FeedReader::new(&dir).read(0, 10, 7),
            Err(feed::FeedError::Gone { earliest: 2, .. })
        ));
        journal.shutdown();
    }

    #[tokio::test]
    async fn a_page_waits_for_what_was_applied_before_it_was_asked_for() {
        let root = tempfile::tempdir().expect("temp dir");
        let dir = root.path().join("feed");
        let mut settings = crate::config::Settings::default().journal;
        // Synced on an interval far longer than a page takes to ask.
        settings.fsync_interval_ms = 300;
        let journal = open(&dir, &settings).expect("opens");
        let feed = crate::changes::ChangeFeed::of_committed_copy(&dir, Arc::clone(&journal));
        assert!(journal.append_numbered(published(1, 2)));
        let page = feed.page(0, 10).await.expect("page");
        let indexes: Vec<u64> = page.iter().map(|e| e.index).collect();
        assert_eq!(indexes, vec![1, 2], "applied before the page: in it");
        journal.shutdown();
    }
}
