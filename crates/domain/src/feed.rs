//! What the change feed shows of a change: each object it touched, as it
//! stood right after. A live operation builds these with its [`Change`]
//! (see [`crate::Made::items`]); the journal stores them beside it, and the
//! feed serves them from there, so what a reader sees is what the state was,
//! not what replaying with today's code would make of it.
//!
//! [`Change`]: crate::Change

use serde::{Deserialize, Serialize};

use crate::booking::BookingView;
use crate::event::EventStatus;
use crate::ids::EventId;

/// One object after a change. Stored by variant index: variants are only
/// ever appended (the waiting room's entries come next).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FeedItem {
    /// An event was created or its settings changed.
    Event(EventStatus),
    /// A booking was made, promoted, held, confirmed, cancelled, lowered or
    /// expired.
    Booking(BookingView),
}

impl FeedItem {
    /// The event the object belongs to.
    pub fn event_id(&self) -> EventId {
        match self {
            Self::Event(status) => status.id,
            Self::Booking(booking) => booking.event_id,
        }
    }

    /// The feed's name for its kind: `event` or `booking`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Event(_) => "event",
            Self::Booking(_) => "booking",
        }
    }
}
