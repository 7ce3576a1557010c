//! One message per operation on an event.
//!
//! Each carries its own reply channel instead of using actix's response
//! future: that lets the HTTP layer use `try_send`, so a full or closed
//! mailbox is refused at once (503) rather than left to wait.
//!
//! Every answer comes with the journal LSN the client must wait for before
//! seeing it: the change itself, or for a read the last change it reflects.

use actix::Message;
use tokio::sync::oneshot;

use crate::domain::{
    BookOutcome, BookingView, CancelOutcome, DomainError, EventStatus, UserId, WaitingPage,
};
use crate::persistence::journal::Lsn;
use crate::persistence::StoredEvent;

/// Where an actor sends its answer.
pub type Reply<T> = oneshot::Sender<T>;

/// An answer and the LSN that must be durable before it is shown.
#[derive(Debug)]
pub struct Durable<T> {
    /// The answer.
    pub value: T,
    /// Wait for this LSN (0: nothing to wait for).
    pub lsn: Lsn,
}

/// Why an event's actor refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActorError {
    /// The domain said no.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The journal cannot take changes right now; nothing was changed.
    #[error("changes cannot be made durable right now")]
    Unavailable,
}

/// An answer to a change.
pub type ChangeReply<T> = Reply<Result<Durable<T>, ActorError>>;

/// Book a ticket (or a queue place) for a user.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Book {
    /// Who books.
    pub user: UserId,
    /// Receives the booking.
    pub reply: ChangeReply<BookOutcome>,
}

/// Cancel a user's active booking.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Cancel {
    /// Whose booking.
    pub user: UserId,
    /// Receives the cancelled booking and whoever was promoted.
    pub reply: ChangeReply<CancelOutcome>,
}

/// Read the event's counters.
#[derive(Message)]
#[rtype(result = "()")]
pub struct GetStatus {
    /// Receives the status.
    pub reply: Reply<Durable<EventStatus>>,
}

/// Read a user's booking.
#[derive(Message)]
#[rtype(result = "()")]
pub struct GetBooking {
    /// Whose booking.
    pub user: UserId,
    /// Receives the booking.
    pub reply: Reply<Durable<Result<BookingView, DomainError>>>,
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
    pub reply: Reply<Durable<WaitingPage>>,
}

/// Hand over the event's state for a snapshot.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TakeSnapshot {
    /// Receives the state and the last LSN it reflects.
    pub reply: Reply<StoredEvent>,
}
