//! The booking domain: events, their tickets, bookings and waiting lists.
//!
//! Plain Rust with no actors, no HTTP and no I/O, so every rule can be
//! unit- and property-tested alone. Callers pass in the current time and the
//! shared booking-id sequence; the domain decides everything else.
//!
//! ```
//! use boxoffice::domain::{BookingIdSequence, BookingStatus, Event, EventId, Timestamp, UserId};
//!
//! let ids = BookingIdSequence::default();
//! let id = EventId::try_from(1).unwrap();
//! let mut gig = Event::new(id, None, 1, Timestamp::from_millis(0)).unwrap();
//! let alice = UserId::try_from("alice").unwrap();
//! let bob = UserId::try_from("bob").unwrap();
//!
//! gig.book(&alice, &ids, Timestamp::from_millis(1)).unwrap();
//! let queued = gig.book(&bob, &ids, Timestamp::from_millis(2)).unwrap();
//! assert_eq!(queued.booking.waiting_position, Some(1));
//!
//! // Alice's cancellation hands her ticket to Bob in the same step.
//! let cancelled = gig.cancel(&alice, Timestamp::from_millis(3)).unwrap();
//! assert_eq!(cancelled.promoted.unwrap().status, BookingStatus::Confirmed);
//! ```

mod chunked;
mod event;
mod fenwick;
mod ids;
mod queue;

pub use chunked::ChunkedVec;
pub use event::{
    BookOutcome, BookingRecord, BookingStatus, BookingView, CancelOutcome, Event, EventSnapshot,
    EventStatus, Undo, WaitingEntry, WaitingPage,
};
pub use ids::{
    BookingId, BookingIdSequence, EventId, Timestamp, UserId, MAX_EVENT_ID, MAX_EVENT_NAME_CHARS,
    MAX_USER_ID_CHARS,
};
pub use queue::{QueueEntry, WaitingQueue};

/// What the domain refuses, and why.
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
    /// The user has no booking (for cancel: no active one) at this event.
    #[error("booking not found")]
    BookingNotFound,
    /// The event has used up the 2^32 booking slots it can index.
    #[error("this event cannot take more bookings")]
    EventFull,
    /// Stored state that breaks an invariant; it is refused rather than served.
    #[error("inconsistent event state: {0}")]
    Inconsistent(String),
}
