//! `GET /api/changes/live`: the change feed as Server-Sent Events. First
//! every item after the client's `after` (or its `Last-Event-ID`), a page
//! at a time, then each new one once it is on disk. The `id` of each
//! message is the item's index, so a reconnecting client resumes exactly
//! where it left off. The stream takes a place among `live.max_streams`
//! like every other.

use std::collections::VecDeque;
use std::sync::Arc;

use actix_web_lab::sse;
use futures_util::{Stream, StreamExt};
use tokio::sync::watch;

use crate::changes::{ChangeFeed, PageError};
use crate::http::api::change_bodies::ChangeJson;
use crate::http::api::error::ApiError;
use crate::http::api::live::Slot;
use crate::http::transport::stream::ClientGone;
use crate::persistence::journal::feed::FeedEntry;

/// Items read from the journal at a time.
const PAGE: usize = 1000;

/// One open feed stream.
struct FeedStream {
    feed: Arc<ChangeFeed>,
    /// The index of the last item sent (or the client's `after`).
    cursor: u64,
    /// Read, not yet sent.
    ready: VecDeque<FeedEntry>,
    stop: watch::Receiver<bool>,
    _slot: Slot,
}

/// The stream of the items after `after`: 410 `GONE` at once when the
/// first of them is no longer kept.
pub(crate) async fn open(
    feed: Arc<ChangeFeed>,
    after: u64,
    slot: Slot,
    stop: watch::Receiver<bool>,
    gone: Option<Arc<ClientGone>>,
) -> Result<impl Stream<Item = sse::Event> + use<>, ApiError> {
    let first = feed.page(after, PAGE).await.map_err(ApiError::from)?;
    let stream = FeedStream {
        feed,
        cursor: after,
        ready: first.into(),
        stop,
        _slot: slot,
    };
    let gone = async move {
        match gone {
            Some(gone) => gone.wait().await,
            None => std::future::pending().await,
        }
    };
    Ok(futures_util::stream::unfold(stream, FeedStream::next).take_until(gone))
}

impl FeedStream {
    async fn next(mut self) -> Option<(sse::Event, Self)> {
        loop {
            if let Some(entry) = self.ready.pop_front() {
                self.cursor = entry.index;
                let json = serde_json::to_string(&ChangeJson::from(entry)).ok()?;
                let message = sse::Data::new(json)
                    .event("change")
                    .id(self.cursor.to_string())
                    .into();
                return Some((message, self));
            }
            if *self.stop.borrow() {
                return None;
            }
            tokio::select! {
                _ = self.feed.wait_beyond(self.cursor, PAGE) => {}
                _ = self.stop.wait_for(|stopping| *stopping) => return None,
            }
            match self.feed.page(self.cursor, PAGE).await {
                Ok(items) => self.ready = items.into(),
                // Released while this reader lagged: it cannot go on
                // without a gap, so it ends; reconnecting says 410.
                Err(PageError::Gone { .. }) => return None,
                Err(PageError::Unreadable) => tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    _ = self.stop.wait_for(|stopping| *stopping) => return None,
                },
            }
        }
    }
}
