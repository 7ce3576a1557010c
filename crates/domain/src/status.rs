//! What a reader sees of an event: its settings and counters. Its own
//! module, below both the event that makes it and the feed that stores it.

use crate::ids::{EventId, Timestamp};
use crate::room::RoomStatus;
use crate::settings::EventSettings;

/// An event's settings and counters, as a reader sees them. (The change
/// feed stores it field by field: fields are only ever appended.)
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EventStatus {
    /// The event's id.
    pub id: EventId,
    /// What the organiser set.
    pub settings: EventSettings,
    /// Tickets nobody holds.
    pub available_tickets: u64,
    /// Tickets in confirmed bookings.
    pub confirmed_tickets: u64,
    /// Tickets in held bookings.
    pub held_tickets: u64,
    /// Bookings in the queue.
    pub waiting_count: u64,
    /// Tickets the queued bookings ask for.
    pub waiting_tickets: u64,
    /// When the event was created.
    pub created_at: Timestamp,
    /// When a booking or a setting last changed.
    pub updated_at: Timestamp,
    /// The waiting room's settings and counters. Not stored with the
    /// status: the feed stores it beside (`FeedItem::EventWithRoom`), so a
    /// status without a room keeps the form it had before rooms.
    #[serde(skip)]
    pub room: RoomStatus,
    /// At a seated event, its blocked seats; `None` at an unseated one.
    /// Not stored with the status, for the same reason as `room`
    /// (`FeedItem::SeatedEvent`).
    #[serde(skip)]
    pub blocked_seats: Option<u64>,
}
