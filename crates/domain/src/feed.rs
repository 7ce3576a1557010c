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
    /// A seated event was created or changed: its status, its room's
    /// and its blocked seats.
    SeatedEvent(EventStatus, RoomStatus, u64),
    /// A booking at a seated event, with its seat ids.
    SeatedBooking(BookingView, Vec<String>),
}

impl FeedItem {
    /// The item for an event's status: with its room's when it has one.
    pub fn event(status: EventStatus) -> Self {
        if let Some(blocked) = status.blocked_seats {
            let room = status.room;
            Self::SeatedEvent(status, room, blocked)
        } else if status.room == RoomStatus::default() {
            Self::Event(status)
        } else {
            let room = status.room;
            Self::EventWithRoom(status, room)
        }
    }

    /// The item for a booking: with its seats at a seated event.
    pub fn booking(view: BookingView) -> Self {
        match view.seats.clone() {
            Some(seats) => Self::SeatedBooking(view, seats),
            None => Self::Booking(view),
        }
    }

    /// The item as readers see it: the fields stored beside put back in
    /// the status or the booking.
    pub fn into_view(self) -> FeedView {
        match self {
            Self::Event(status) => FeedView::Event(status),
            Self::EventWithRoom(mut status, room) => {
                status.room = room;
                FeedView::Event(status)
            }
            Self::SeatedEvent(mut status, room, blocked) => {
                status.room = room;
                status.blocked_seats = Some(blocked);
                FeedView::Event(status)
            }
            Self::Booking(view) => FeedView::Booking(view),
            Self::SeatedBooking(mut view, seats) => {
                view.seats = Some(seats);
                FeedView::Booking(view)
            }
            Self::Entry(entry) => FeedView::Entry(entry),
        }
    }

    /// The event the object belongs to.
    pub fn event_id(&self) -> EventId {
        match self {
            Self::Event(status)
            | Self::EventWithRoom(status, _)
            | Self::SeatedEvent(status, ..) => status.id,
            Self::Booking(booking) | Self::SeatedBooking(booking, _) => booking.event_id,
            Self::Entry(entry) => entry.event_id,
        }
    }

    /// The feed's name for its kind: `event`, `booking` or `entry`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Event(_) | Self::EventWithRoom(..) | Self::SeatedEvent(..) => "event",
            Self::Booking(_) | Self::SeatedBooking(..) => "booking",
            Self::Entry(_) => "entry",
        }
    }
}

/// A feed item as readers see it: one object, whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedView {
    /// An event's status, with its room's and seats' counters.
    Event(EventStatus),
    /// A booking, with its seats at a seated event.
    Booking(BookingView),
    /// A waiting-room entry.
    Entry(EntryView),
}
