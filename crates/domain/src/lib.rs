//! The booking domain: events, their tickets, bookings and waiting lists.
//!
//! Plain Rust with no actors, no HTTP, no I/O and no clock, so every rule can
//! be unit- and property-tested alone. Callers pass in the current time and
//! the shared booking-id sequence; the domain decides everything else.
//!
//! - [`Event`]: one event's state; its live operations return an
//!   [`Outcome`] holding the [`Change`] to journal and its [`Undo`].
//! - [`Change`]: what happened, as the journal stores it; [`Event::apply`]
//!   replays it.
//! - [`WaitingQueue`]: FIFO with O(log n) positions and tickets ahead.
//!
//! ```
//! use boxoffice_domain::{BookingIdSequence, BookingStatus, Event, EventId, EventSettings, Timestamp, UserId};
//!
//! let ids = BookingIdSequence::default();
//! let id = EventId::try_from(1).unwrap();
//! let settings = EventSettings::new(None, 2, 10);
//! let (mut gig, _created) = Event::create(id, settings, Timestamp::from_millis(0)).unwrap();
//! let alice = UserId::try_from("alice").unwrap();
//! let bob = UserId::try_from("bob").unwrap();
//!
//! gig.book(&alice, 2, &ids, Timestamp::from_millis(1)).unwrap();
//! let queued = gig.book(&bob, 1, &ids, Timestamp::from_millis(2)).unwrap();
//! assert_eq!(queued.value.waiting_position, Some(1));
//!
//! // Alice's cancellation hands a ticket to Bob in the same step.
//! let cancelled = gig.cancel(&alice, Timestamp::from_millis(3)).unwrap();
//! assert_eq!(cancelled.value.promotions[0].status, BookingStatus::Confirmed);
//! ```

mod booking;
mod change;
mod chunked;
mod event;
mod feed;
mod fenwick;
mod idempotency;
mod ids;
mod queue;
mod room;
pub mod seating;
mod settings;
mod status;

pub use booking::{BookingRecord, BookingStatus, BookingView};
pub use change::{Change, LATE_LAPSE_MILLIS};
pub use chunked::ChunkedVec;
pub use event::{
    Applied, BookingChange, Event, EventChange, EventSnapshot, Made, Outcome, Undo, WaitingEntry,
    WaitingPage,
};
pub use feed::{FeedItem, FeedView};
pub use idempotency::{valid_key, CreateKey, CreateKeys, KEY_LIFETIME_MILLIS, MAX_KEY_LEN};
pub use ids::{
    BookingId, BookingIdSequence, EventId, Rfc3339, Timestamp, UserId, MAX_EVENT_ID,
    MAX_EVENT_NAME_CHARS, MAX_USER_ID_CHARS,
};
pub use queue::{QueueEntry, WaitingQueue};
pub use room::{
    shuffle, EntryRecord, EntryStatus, EntryView, Pace, Room, RoomPatch, RoomSettings,
    RoomSnapshot, RoomStatus, RoomStep, DEFAULT_ADMIT_SECS, LATE_TURN_MILLIS, MAX_ADMIT_PER_MINUTE,
    MAX_ADMIT_SECS,
};
pub use settings::{EventPatch, EventSettings, Sales};
pub use status::EventStatus;

/// A configured limit that refuses a change once reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `limits.max_events`: events the service holds.
    Events,
    /// `limits.max_bookings_per_event`: users one event takes bookings from.
    BookingsPerEvent,
}

impl Limit {
    /// The sentence clients read when `limit` of these is reached: worded
    /// here and nowhere else.
    pub fn describe(self, limit: u64) -> String {
        match self {
            Self::Events => format!(
                "The service holds {limit} events, the configured limit; nothing was changed"
            ),
            Self::BookingsPerEvent => format!(
                "This event has taken bookings from {limit} users, the configured limit; nothing was changed"
            ),
        }
    }
}

/// What the domain refuses, and why. Nothing changed when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// An event id outside 1 to 2^53 - 1.
    #[error("event id must be an integer from 1 to 2^53 - 1")]
    InvalidEventId,
    /// A user id that breaks the character or length rule.
    #[error("user id must be 1 to 64 characters: letters, digits and ._-@: only")]
    InvalidUserId,
    /// An event must have at least one ticket.
    #[error("an event needs at least one ticket")]
    InvalidTicketCount,
    /// A setting out of range or at odds with another.
    #[error("{field} {message}")]
    InvalidSettings {
        /// The setting, as clients name it.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A quantity of 0, or above what this event allows one user.
    #[error("quantity must be an integer from 1 to {max}")]
    QuantityOutOfRange {
        /// The most this booking may ask for.
        max: u64,
    },
    /// The user has no booking (for changes: no active one) at this event.
    #[error("booking not found")]
    BookingNotFound,
    /// Booking again, with another quantity, while a booking is active.
    #[error("an active booking with another quantity exists; change or cancel it")]
    BookingExists,
    /// A quantity change that asks for more tickets.
    #[error("a booking's quantity can only be lowered; cancel and book again for more")]
    QuantityIncrease,
    /// Confirming a booking that is waiting, not held.
    #[error("the booking is waiting, not held; there is nothing to confirm")]
    NotHeld,
    /// Confirming a hold that has lapsed.
    #[error("the hold has expired; book again")]
    HoldExpired,
    /// Booking before `sales_start`.
    #[error("sales for this event have not opened yet")]
    SalesNotOpen,
    /// Booking after `sales_end`, or while sales are switched off.
    #[error("sales for this event are closed")]
    SalesClosed,
    /// A ticket count below what is sold or below a waiting booking.
    #[error("{0}")]
    CapacityConflict(String),
    /// A configured limit is reached; nothing changed.
    #[error("{}", what.describe(*limit))]
    LimitReached {
        /// Which limit.
        what: Limit,
        /// Its configured value.
        limit: u64,
    },
    /// A room route at an event without a waiting room.
    #[error("this event has no waiting room")]
    NoRoom,
    /// The user has no entry (for leaving: no active one) in the room.
    #[error("no waiting-room entry for this user")]
    EntryNotFound,
    /// Booking at an event with a room without an admitted entry.
    #[error("booking needs an admission from the waiting room; join it and wait for your turn")]
    NotAdmitted,
    /// The event has used up the 2^32 booking slots it can index.
    #[error("this event cannot take more bookings")]
    EventFull,
    /// A seat map, or a booking's seats, that break a rule: `field` names
    /// the part of the request at fault (`seats`, `seating.sections[0].name`).
    #[error("{field} {message}")]
    InvalidSeats {
        /// Where, as the request names it.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// Some of the seats asked for are held, booked or blocked; nothing changed.
    #[error("some of these seats are taken: {}", .0.join(", "))]
    SeatsUnavailable(Vec<String>),
    /// A seat route, or seats asked for, at an event without a seat map.
    #[error("this event has no seat map")]
    NotSeated,
    /// Stored state that breaks an invariant; it is refused rather than served.
    #[error("inconsistent event state: {0}")]
    Inconsistent(String),
}
