//! What the change feed shows of a change: each object it touched, as it
//! stood right after. A live operation builds these with its [`Change`]
//! (see [`crate::Made::items`]); the journal stores them beside it, and the
//! feed serves them from there, so what a reader sees is what the state was,
//! not what replaying with today's code would make of it.
//!
//! [`Change`]: crate::Change

use serde::{Deserialize, Serialize};

use crate::booking::BookingView;
use crate::ids::EventId;
use crate::room::{EntryView, RoomStatus};
use crate::status::EventStatus;

/// One object after a change. Stored by variant index: variants are only
/// ever appended (the waiting room's entries come next).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FeedItem {
    /// An event was created or its settings changed.
    Event(EventStatus),
    /// A booking was made, promoted, held, confirmed, cancelled, lowered or
    /// expired.
    Booking(BookingView),
    /// A waiting-room entry joined, left, was admitted, used or lapsed.
    Entry(EntryView),
    /// An event with a waiting room was created or changed: its status
    /// with the room's. ([`EventStatus`] stores no room, so events without
    /// one keep the form they had before rooms.)
    EventWithRoom(EventStatus, RoomStatus),
}

impl FeedItem {
    /// The item for an event's status: with its room's when it has one.
    pub fn event(status: EventStatus) -> Self {
        if status.room == RoomStatus::default() {
            Self::Event(status)
        } else {
            let room = status.room;
            Self::EventWithRoom(status, room)
        }
    }

    /// The event the object belongs to.
    pub fn event_id(&self) -> EventId {
        match self {
            Self::Event(status) | Self::EventWithRoom(status, _) => status.id,
            Self::Booking(booking) => booking.event_id,
            Self::Entry(entry) => entry.event_id,
        }
    }

    /// The feed's name for its kind: `event`, `booking` or `entry`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Event(_) | Self::EventWithRoom(..) => "event",
            Self::Booking(_) => "booking",
            Self::Entry(_) => "entry",
        }
    }
}
