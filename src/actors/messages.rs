//! The messages an event's actor handles: a change, a read, a snapshot.
//!
//! A change or a read carries the operation itself as a closure over the
//! event, so a new operation needs no new message or handler: the service
//! layer says what to do, the actor decides when (one message at a time)
//! and makes the change durable.
//!
//! Each message carries its own reply channel instead of using actix's
//! response future: that lets the caller use `try_send`, so a full or closed
//! mailbox is refused at once (503) rather than left to wait. Every answer
//! comes with the journal LSN the client must wait for before seeing it: the
//! change itself, or for a read the last change it reflects.

use actix::Message;
use tokio::sync::oneshot;

use crate::domain::{BookingIdSequence, Change, DomainError, Event, Outcome, Timestamp};
use crate::persistence::journal::Lsn;
use crate::persistence::StoredEvent;

/// Where an actor sends its answer.
pub type Reply<T> = oneshot::Sender<T>;

/// An answer and the LSN that must be durable before it is shown.
#[derive(Debug)]
pub struct Durable<T> {
    /// The answer.
    pub value: T,
    /// Wait for this LSN ([`Lsn::ZERO`]: nothing to wait for).
    pub lsn: Lsn,
    /// Whether `lsn` is a change this answer made: its commit confirms it.
    /// An answer that made none was decided on the state as it stood,
    /// which on a cluster must be confirmed as still the cluster's
    /// (`ChangeLog::confirm`).
    pub made: bool,
}

/// Why an event's actor refused a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActorError {
    /// The domain said no; nothing changed.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The journal cannot take changes right now; nothing was changed.
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

/// The one "not now" of the service: a change cannot be made durable right
/// now (the journal faulted, the disk is full), or the event's actor cannot
/// take the request (mailbox full, stopped for the final snapshot). Nothing
/// was changed; a client may retry. Every layer's error carries this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the service cannot take this change right now; nothing was changed")]
pub struct Unavailable;

/// A live operation on an event: decides at `now` and returns what it made.
pub type ChangeOp<T> = Box<
    dyn FnOnce(&mut Event, &BookingIdSequence, Timestamp) -> Result<Outcome<T>, DomainError> + Send,
>;

/// Make a change to the event.
#[derive(Message)]
#[rtype(result = "()")]
pub struct MakeChange<T: Send + 'static> {
    /// The operation.
    pub op: ChangeOp<T>,
    /// Receives its answer.
    pub reply: Reply<Result<Durable<T>, ActorError>>,
}

/// A read of the event's state.
pub type ReadOp<T> = Box<dyn FnOnce(&Event) -> T + Send>;

/// Read the event's state.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Read<T: Send + 'static> {
    /// What to read.
    pub op: ReadOp<T>,
    /// Receives it.
    pub reply: Reply<Durable<T>>,
    /// How long the oldest change not yet durable may have waited before
    /// the read is served from the state as the durable changes left it
    /// (whose LSN is durable already: nothing to wait for) instead of the
    /// current one. `None`: always the current state (a live stream's
    /// read, which must show the newest state once it is durable). A
    /// durable state with a deadline passed in it is never served (its
    /// lapse is among what waits): the current state is.
    pub patience: Option<std::time::Duration>,
}

/// Hand over the event's state for a snapshot.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TakeSnapshot {
    /// Receives the state and the last LSN it reflects.
    pub reply: Reply<StoredEvent>,
    /// The final snapshot before the process exits: the actor stops once
    /// it has handed over, so no change can follow it (later messages are
    /// answered 503) and the snapshot is complete even without a journal.
    pub last: bool,
}

/// Hand over the event's state as a cluster committed it through `through`
/// (a Raft snapshot): changes applied ahead of the commit and not yet
/// committed are left out of what is handed over (undone on a copy).
#[derive(Message)]
#[rtype(result = "()")]
pub struct TakeCommitted {
    /// This node's LSN of the newest committed change to include.
    pub through: Lsn,
    /// Receives the state.
    pub reply: Reply<StoredEvent>,
}

/// Apply a change that the cluster committed and this node did not decide
/// (it is durable already: nothing to journal, nothing to undo).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ApplyCommitted {
    /// The LSN this node numbers it with.
    pub lsn: Lsn,
    /// The change, as its leader's domain made it.
    pub change: Change,
}
