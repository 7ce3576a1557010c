//! One user's booking at one event: how it is stored and how it is shown.

use serde::{Deserialize, Serialize};

use super::ids::{BookingId, EventId, Timestamp, UserId};

/// Where a booking stands.
///
/// Stored by variant index: new states are only ever appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BookingStatus {
    /// Holds its tickets.
    Confirmed,
    /// In the queue, waiting for enough tickets to free up.
    Waiting,
    /// Given up; kept so the user can still read their last booking.
    Cancelled,
    /// Holds its tickets until `expires_at`, unless confirmed first.
    Held,
    /// A hold that lapsed; ended like a cancellation.
    Expired,
}

impl BookingStatus {
    /// The name clients see.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::Waiting => "waiting",
            Self::Cancelled => "cancelled",
            Self::Held => "held",
            Self::Expired => "expired",
        }
    }

    /// Confirmed, held or waiting: the user may hold only one such booking.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Confirmed | Self::Held | Self::Waiting)
    }

    /// Confirmed or held: the booking has its tickets.
    pub fn has_tickets(self) -> bool {
        matches!(self, Self::Confirmed | Self::Held)
    }
}

/// A user's latest booking at one event, as stored.
///
/// A user who cancels and books again gets a new id in the same record: only
/// the latest booking is ever shown, so older ones need no room.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BookingRecord {
    /// Service-wide unique id.
    pub id: BookingId,
    /// Who booked.
    pub user: UserId,
    /// Where it stands.
    pub status: BookingStatus,
    /// Tickets in the booking.
    pub quantity: u32,
    /// When it was made.
    pub created_at: Timestamp,
    /// When its status or quantity last changed.
    pub updated_at: Timestamp,
    /// While `Held`, when the hold lapses.
    pub expires_at: Option<Timestamp>,
    /// Sequence number in the waiting queue while `Waiting`; rebuilt from the
    /// queue order on restore, so never stored.
    #[serde(skip)]
    pub(super) queue_seq: u32,
}

impl BookingRecord {
    /// A record as stored, not yet in any queue.
    pub fn new(
        id: BookingId,
        user: UserId,
        status: BookingStatus,
        quantity: u32,
        created_at: Timestamp,
        updated_at: Timestamp,
        expires_at: Option<Timestamp>,
    ) -> Self {
        Self {
            id,
            user,
            status,
            quantity,
            created_at,
            updated_at,
            expires_at,
            queue_seq: 0,
        }
    }
}

/// Two records are equal when everything stored is: the queue seq is an
/// in-memory index that a restore renumbers.
impl PartialEq for BookingRecord {
    fn eq(&self, other: &Self) -> bool {
        (
            self.id,
            &self.user,
            self.status,
            self.quantity,
            self.created_at,
            self.updated_at,
            self.expires_at,
        ) == (
            other.id,
            &other.user,
            other.status,
            other.quantity,
            other.created_at,
            other.updated_at,
            other.expires_at,
        )
    }
}

impl Eq for BookingRecord {}

/// A booking as a reader sees it, with its live place in the queue. (The
/// change feed stores it field by field: fields are only ever appended.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingView {
    /// Service-wide unique id.
    pub id: BookingId,
    /// The event it is for.
    pub event_id: EventId,
    /// Who booked.
    pub user_id: UserId,
    /// Where it stands.
    pub status: BookingStatus,
    /// Tickets in the booking.
    pub quantity: u32,
    /// 1-based place in the queue while waiting, else `None`.
    pub waiting_position: Option<u64>,
    /// Tickets asked for by the bookings ahead while waiting, else `None`.
    pub tickets_ahead: Option<u64>,
    /// While held, when the hold lapses, else `None`.
    pub expires_at: Option<Timestamp>,
    /// When it was made.
    pub created_at: Timestamp,
    /// When its status or quantity last changed.
    pub updated_at: Timestamp,
    /// At a seated event, its seat ids in map order (none while waiting;
    /// an ended booking keeps its last); `None` at an unseated event. Not
    /// stored with the view: the feed stores them beside
    /// (`FeedItem::SeatedBooking`), so other bookings keep their form.
    #[serde(skip)]
    pub seats: Option<Vec<String>>,
}
