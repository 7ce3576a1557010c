//! One message per operation on an event.
//!
//! Each carries its own reply channel instead of using actix's response
//! future: that lets the HTTP layer use `try_send`, so a full or closed
//! mailbox is refused at once (503) rather than left to wait.

use actix::Message;
use tokio::sync::oneshot;

use crate::domain::{
    BookOutcome, BookingView, CancelOutcome, DomainError, EventSnapshot, EventStatus, UserId,
    WaitingPage,
};

/// Where an actor sends its answer.
pub type Reply<T> = oneshot::Sender<T>;

/// Book a ticket (or a queue place) for a user.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Book {
    /// Who books.
    pub user: UserId,
    /// Receives the booking.
    pub reply: Reply<Result<BookOutcome, DomainError>>,
}

/// Cancel a user's active booking.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Cancel {
    /// Whose booking.
    pub user: UserId,
    /// Receives the cancelled booking and whoever was promoted.
    pub reply: Reply<Result<CancelOutcome, DomainError>>,
}

/// Read the event's counters.
#[derive(Message)]
#[rtype(result = "()")]
pub struct GetStatus {
    /// Receives the status.
    pub reply: Reply<EventStatus>,
}

/// Read a user's booking.
#[derive(Message)]
#[rtype(result = "()")]
pub struct GetBooking {
    /// Whose booking.
    pub user: UserId,
    /// Receives the booking.
    pub reply: Reply<Result<BookingView, DomainError>>,
}

/// Read a page of the waiting list.
#[derive(Message)]
#[rtype(result = "()")]
pub struct GetWaitingPage {
    /// 0-based queue offset of the first entry.
    pub offset: usize,
    /// Most entries to return.
    pub limit: usize,
    /// Receives the page.
    pub reply: Reply<WaitingPage>,
}

/// Hand over the event's state for a snapshot.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TakeSnapshot {
    /// Receives the state.
    pub reply: Reply<EventSnapshot>,
}
