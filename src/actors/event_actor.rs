//! The actor that owns one event.
//!
//! It handles one message at a time, so the event's state needs no lock:
//! every handler is a synchronous call into the domain.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix::{Actor, Context, Handler};

use super::messages::{Book, Cancel, GetBooking, GetStatus, GetWaitingPage, TakeSnapshot};
use crate::domain::{BookingIdSequence, Event, Timestamp};

/// Messages an event's mailbox holds before senders are refused with 503.
/// Far above the concurrency of any sane client pool, low enough that a
/// stalled actor cannot queue unbounded memory.
pub const MAILBOX_CAPACITY: usize = 16_384;

/// Owns one [`Event`].
pub struct EventActor {
    /// The event and all its bookings.
    event: Event,
    /// The service-wide booking id sequence.
    ids: Arc<BookingIdSequence>,
    /// Service-wide count of changes, read by the snapshotter to skip idle
    /// intervals.
    changes: Arc<AtomicU64>,
}

impl EventActor {
    /// An actor for `event`.
    pub fn new(event: Event, ids: Arc<BookingIdSequence>, changes: Arc<AtomicU64>) -> Self {
        Self {
            event,
            ids,
            changes,
        }
    }

    fn changed(&self) {
        self.changes.fetch_add(1, Ordering::Relaxed);
    }
}

impl Actor for EventActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
    }
}

impl Handler<Book> for EventActor {
    type Result = ();

    fn handle(&mut self, msg: Book, _: &mut Self::Context) {
        let outcome = self.event.book(&msg.user, &self.ids, Timestamp::now());
        if matches!(&outcome, Ok(o) if o.created()) {
            self.changed();
        }
        // The requester may have gone away; its loss, not ours.
        let _ = msg.reply.send(outcome);
    }
}

impl Handler<Cancel> for EventActor {
    type Result = ();

    fn handle(&mut self, msg: Cancel, _: &mut Self::Context) {
        let outcome = self.event.cancel(&msg.user, Timestamp::now());
        if outcome.is_ok() {
            self.changed();
        }
        let _ = msg.reply.send(outcome);
    }
}

impl Handler<GetStatus> for EventActor {
    type Result = ();

    fn handle(&mut self, msg: GetStatus, _: &mut Self::Context) {
        let _ = msg.reply.send(self.event.status());
    }
}

impl Handler<GetBooking> for EventActor {
    type Result = ();

    fn handle(&mut self, msg: GetBooking, _: &mut Self::Context) {
        let _ = msg.reply.send(self.event.booking(&msg.user));
    }
}

impl Handler<GetWaitingPage> for EventActor {
    type Result = ();

    fn handle(&mut self, msg: GetWaitingPage, _: &mut Self::Context) {
        let _ = msg
            .reply
            .send(self.event.waiting_page(msg.offset, msg.limit));
    }
}

impl Handler<TakeSnapshot> for EventActor {
    type Result = ();

    fn handle(&mut self, msg: TakeSnapshot, _: &mut Self::Context) {
        let _ = msg.reply.send(self.event.to_snapshot());
    }
}
