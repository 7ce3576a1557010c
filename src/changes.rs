//! The change feed as the service serves it: pages read from the journal on
//! a blocking thread, and waiting for the next committed item.
//!
//! Every change an actor makes is journalled with what the feed shows of
//! it (the objects it touched, as they stood after), and the journal gives
//! those items their indexes in journal order; see
//! `persistence::journal::feed`. Only items on disk are served (the
//! journal's `changes_durable`), so a reader never sees a change a crash
//! could take back. Journal segments stay for the feed while they hold no
//! more than `changes.retain_bytes`.

use std::sync::Arc;

use crate::persistence::journal::feed::{FeedEntry, FeedError, FeedReader};
use crate::persistence::journal::{Journal, JournalState};

/// How long a follower of the feed lets new items gather before reading
/// them (unless a page fills first): the delay the live feed and webhooks
/// add, for reads that cost the same whether they find one item or a
/// thousand.
pub const COALESCE: std::time::Duration = std::time::Duration::from_millis(50);

/// Why a page could not be served.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// Older than the feed keeps.
    #[error("changes after {after} are no longer kept")]
    Gone {
        /// What was asked for.
        after: u64,
        /// The smallest `after` served.
        earliest: u64,
    },
    /// The journal could not be read (logged); try again.
    #[error("the change feed cannot be read now")]
    Unreadable,
}

/// How long a page of a cluster node's feed waits for the items the node
/// had applied when it was asked for: the feed journal syncs them on an
/// interval (`journal.fsync_interval_ms`), so this is a bound for a disk
/// that stalls, not a wait a page pays.
const APPLIED_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The service's change feed.
pub struct ChangeFeed {
    /// Reads the journal's segments.
    reader: Arc<FeedReader>,
    /// Says how far the feed is on disk, and wakes waiters when it grows.
    journal: Arc<Journal>,
    /// Whether a page first waits for the items submitted before it was
    /// asked for (a cluster node's copy of committed items).
    waits_for_applied: bool,
}

impl ChangeFeed {
    /// The feed of `journal`, whose segments live in `dir`. An answer to a
    /// change waits until its items are on disk, so a page asked for
    /// after it holds them.
    pub fn new(dir: &std::path::Path, journal: Arc<Journal>) -> Self {
        Self {
            reader: Arc::new(FeedReader::new(dir)),
            journal,
            waits_for_applied: false,
        }
    }

    /// A cluster node's feed: `journal` copies the items of committed
    /// changes as the node applies them and syncs them on an interval
    /// (the Raft log is what makes them durable), so a page first waits,
    /// up to [`APPLIED_WAIT`], until every item applied before it was
    /// asked for is there: a client that was answered a change, or read
    /// with `X-Boxoffice-Min-Index`, then finds it in the feed, as in
    /// every other read.
    pub fn of_committed_copy(dir: &std::path::Path, journal: Arc<Journal>) -> Self {
        Self {
            waits_for_applied: true,
            ..Self::new(dir, journal)
        }
    }

    /// The newest index on disk, once what was applied before the call is.
    async fn readable(&self) -> u64 {
        if self.waits_for_applied {
            let applied = self.journal.next_positions().1.saturating_sub(1);
            let mut updates = self.journal.watch();
            let there = |s: &JournalState| s.changes_durable >= applied;
            let _ = tokio::time::timeout(APPLIED_WAIT, updates.wait_for(there)).await;
        }
        self.durable()
    }

    /// The index of the newest item on disk (0: none).
    pub fn durable(&self) -> u64 {
        self.journal.state().changes_durable
    }

    /// Up to `limit` items after `after`, oldest first.
    pub async fn page(&self, after: u64, limit: usize) -> Result<Vec<FeedEntry>, PageError> {
        let durable = self.readable().await;
        if after >= durable {
            return Ok(Vec::new());
        }
        // A follower right behind the writer: from memory, no thread hop.
        if let Some(items) = self.journal.recent().read(after, limit, durable) {
            return Ok(items);
        }
        let reader = Arc::clone(&self.reader);
        let read = actix_web::rt::task::spawn_blocking(move || reader.read(after, limit, durable))
            .await
            .map_err(|e| {
                log::error!("change feed: reading thread failed: {e}");
                PageError::Unreadable
            })?;
        match read {
            Ok(items) => Ok(items),
            Err(FeedError::Gone { after, earliest }) => Err(PageError::Gone { after, earliest }),
            Err(FeedError::Journal(e)) => {
                log::error!("change feed: {e}");
                Err(PageError::Unreadable)
            }
        }
    }

    /// Waits until an item after `index` is on disk, then a little longer
    /// ([`COALESCE`]) unless a whole page of `page` items is there already:
    /// a follower of the feed then reads once per many group commits, not
    /// once per commit (during an on-sale, thousands a second), each read
    /// finding many items. Never returns while none comes: callers race it
    /// against their own end.
    pub async fn wait_beyond(&self, index: u64, page: usize) {
        let mut updates = self.journal.watch();
        let beyond = |s: &JournalState| s.changes_durable > index;
        if updates.wait_for(beyond).await.is_err() {
            // The journal is gone (shutdown): nothing more will come.
            std::future::pending::<()>().await;
        }
        let full = |s: &JournalState| s.changes_durable >= index.saturating_add(page as u64);
        let _ = tokio::time::timeout(COALESCE, updates.wait_for(full)).await;
    }
}
