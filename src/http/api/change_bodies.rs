//! The change feed's bodies: one item (an object after a change), the
//! `type` names, and a page. Shared by the feed route, its live stream and
//! the webhooks, so all three send the same JSON.

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{FeedView, Timestamp};
use crate::http::api::dto::{rfc3339, BookingJson, EntryJson, EventJson};
use crate::persistence::journal::feed::FeedEntry;

/// One item of the change feed: an object after a change.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeJson {
    /// Strictly increasing; the same after restarts.
    #[schema(minimum = 1)]
    index: u64,
    /// When the change happened; the items of one change share it.
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    at: Timestamp,
    /// `event`, `booking` or `entry`: which of the three objects is set.
    #[serde(rename = "type")]
    #[schema(value_type = ChangeType)]
    kind: &'static str,
    /// The event the change was made to.
    event_id: u64,
    /// The Event after the change, with type `event`.
    event: Option<EventJson>,
    /// The Booking after the change, with type `booking`.
    booking: Option<BookingJson>,
    /// The room entry after the change, with type `entry`.
    entry: Option<EntryJson>,
}

/// The `type` of a change feed item.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // Only its schema is used: `ChangeJson` writes the name.
pub enum ChangeType {
    /// An event was created or changed.
    Event,
    /// A booking was made, promoted, held, confirmed, cancelled, lowered or expired.
    Booking,
    /// A room entry joined, was admitted, used, expired or left.
    Entry,
}

impl From<FeedEntry> for ChangeJson {
    fn from(e: FeedEntry) -> Self {
        let kind = e.item.kind();
        let (event, booking, entry) = match e.item.into_view() {
            FeedView::Event(status) => (Some(EventJson::from(status)), None, None),
            FeedView::Booking(view) => (None, Some(BookingJson::from(view)), None),
            FeedView::Entry(view) => (None, None, Some(EntryJson::from(view))),
        };
        Self {
            index: e.index,
            at: e.at,
            kind,
            event_id: e.event_id.get(),
            event,
            booking,
            entry,
        }
    }
}

/// `GET /api/changes`: a page of the change feed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangesResponse {
    /// The changes after `after`, oldest first.
    pub items: Vec<ChangeJson>,
    /// The last item's index, or `after` when there is none: the next
    /// request's `after`.
    pub next: u64,
}
