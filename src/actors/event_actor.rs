//! The actor that owns one event.
//!
//! It handles one message at a time, so the event's state needs no lock:
//! every handler is a synchronous call into the domain. A change is applied
//! at once and journalled; until the journal says it is durable the actor
//! keeps its undo, and if the journal reports a fault (a new epoch) every
//! change not yet durable is undone, newest first, before anything else.
//!
//! Holds lapse here: one timer for the earliest deadline expires what is
//! due (in batches, so a storm of expiries lets other messages in between),
//! and before any message is handled everything due is expired, so no
//! answer shows a hold past its deadline even when the timer runs late.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, ActorContext, AsyncContext, Context, Handler, SpawnHandle};
use tokio::sync::watch;

use super::counters::{BookedAs, EventCounters};
use super::divergence::Divergence;
use super::messages::{
    ActorError, ApplyCommitted, Durable, MakeChange, Read, TakeCommitted, TakeSnapshot, Unavailable,
};
use super::pending::PendingChanges;
use super::published::{Published, PublishedSlot};
use crate::clock::Clock;
use crate::domain::{BookingIdSequence, BookingStatus, Change, Event, Made, Outcome, Timestamp};
use crate::persistence::change_log::ChangeLog;
use crate::persistence::journal::{Lsn, Record};
use crate::persistence::StoredEvent;

/// Messages an event's mailbox holds before senders are refused with 503.
/// Far above the concurrency of any sane client pool, low enough that a
/// stalled actor cannot queue unbounded memory.
pub const MAILBOX_CAPACITY: usize = 16_384;
/// Expiries one timer turn handles before letting queued messages in.
const EXPIRY_BATCH: usize = 2_000;
/// Room steps (draw, lapse batch, admission batch) one turn takes.
const ROOM_STEPS: usize = 8;
/// How soon to try again when a due expiry cannot be journalled.
const EXPIRY_RETRY: Duration = Duration::from_millis(200);

/// How an event's actor tells readers that something changed: its
/// [`Published`] status, and two signals for live streams, because a new
/// user's first booking (most changes in an on-sale) moves no existing
/// booking: it wakes event streams only, and booking streams, perhaps
/// thousands, sleep on.
#[derive(Debug)]
pub struct LiveSignals {
    /// The LSN of every change made (perhaps not durable yet).
    pub any: watch::Sender<u64>,
    /// Bumped by every change that may have moved an existing booking.
    pub bookings: watch::Sender<u64>,
    /// Bumped by every change that may have moved an existing room entry.
    pub room: watch::Sender<u64>,
    /// The status after the newest change.
    pub published: PublishedSlot,
}

/// The receiving ends of [`LiveSignals`].
#[derive(Debug, Clone)]
pub struct LiveReceivers {
    /// Wakes after every change.
    pub any: watch::Receiver<u64>,
    /// Wakes after every change that may have moved an existing booking.
    pub bookings: watch::Receiver<u64>,
    /// Wakes after every change that may have moved an existing room entry.
    pub room: watch::Receiver<u64>,
    /// The status after the newest change.
    pub published: PublishedSlot,
}

impl LiveSignals {
    /// Signals of an actor whose state starts as `event` at `lsn`, and
    /// their receivers.
    pub fn new(event: &Event, lsn: Lsn) -> (Self, LiveReceivers) {
        let (any, any_rx) = watch::channel(lsn.get());
        let (bookings, bookings_rx) = watch::channel(0);
        let (room, room_rx) = watch::channel(0);
        let published = Published::slot(event, lsn);
        (
            Self {
                any,
                bookings,
                room,
                published: Arc::clone(&published),
            },
            LiveReceivers {
                any: any_rx,
                bookings: bookings_rx,
                room: room_rx,
                published,
            },
        )
    }
}

/// Owns one [`Event`].
pub struct EventActor {
    /// The event and all its bookings.
    event: Event,
    /// The service-wide booking id sequence.
    ids: Arc<BookingIdSequence>,
    /// Service-wide count of changes, read by the snapshotter to skip idle
    /// intervals.
    changes: Arc<AtomicU64>,
    /// Where changes are made durable.
    log: Arc<dyn ChangeLog>,
    /// Changes applied but not yet known durable.
    pending: PendingChanges,
    /// The journal epoch this actor's pending changes belong to.
    epoch: u64,
    /// The LSN of the newest change known durable.
    durable_lsn: Lsn,
    /// The armed expiry timer and the deadline it is for.
    timer: Option<(Timestamp, SpawnHandle)>,
    /// What this actor decided, for `/metrics`.
    counters: Arc<EventCounters>,
    /// Told of changes made or undone, for live streams.
    signals: LiveSignals,
    /// Where "now" comes from.
    clock: Clock,
    /// Told when a committed change cannot be applied.
    divergence: Divergence,
}

/// What every event's actor shares with the others: handed to each by the
/// registry that starts it.
#[derive(Clone)]
pub struct ActorShared {
    /// The service-wide booking id sequence.
    pub ids: Arc<BookingIdSequence>,
    /// Service-wide count of changes (for the snapshotter).
    pub changes: Arc<AtomicU64>,
    /// Where changes are made durable.
    pub log: Arc<dyn ChangeLog>,
    /// What the actors decided, for `/metrics`.
    pub counters: Arc<EventCounters>,
    /// Where "now" comes from.
    pub clock: Clock,
    /// Told when a committed change cannot be applied.
    pub divergence: Divergence,
}

impl EventActor {
    /// An actor for `event`, whose state reflects the journal up to `applied_lsn`.
    pub fn new(event: Event, applied_lsn: Lsn, shared: ActorShared, signals: LiveSignals) -> Self {
        let ActorShared {
            ids,
            changes,
            log,
            counters,
            clock,
            divergence,
        } = shared;
        let epoch = log.state().epoch;
        Self {
            event,
            ids,
            changes,
            log,
            pending: PendingChanges::default(),
            epoch,
            durable_lsn: applied_lsn,
            timer: None,
            counters,
            signals,
            clock,
            divergence,
        }
    }

    /// Expires up to `limit` holds due at `now`, journalling each; stops at
    /// the first the journal refuses (that one is undone). Returns how many
    /// were expired.
    fn expire_due(&mut self, now: Timestamp, limit: usize) -> usize {
        let mut expired = 0;
        while expired < limit && self.accepting() {
            let made = match self.event.expire_due(now, 1) {
                Ok(mut made) => match made.pop() {
                    Some(made) => made,
                    None => break,
                },
                Err(e) => {
                    log::error!("event {}: expiring a hold: {e}", self.event.id());
                    break;
                }
            };
            if self.journal_change(made).is_err() {
                break;
            }
            expired += 1;
        }
        expired
    }

    /// Does up to `limit` steps of the waiting room's work due at `now`
    /// (the draw, lapses, admissions), journalling each; stops at the first
    /// the journal refuses. Returns how many were done.
    fn room_work(&mut self, now: Timestamp, limit: usize) -> usize {
        let mut steps = 0;
        while steps < limit && self.accepting() {
            // Only a draw uses it; it is journalled with the draw.
            let mut seed = [0u8; 32];
            if let Err(e) = getrandom::fill(&mut seed) {
                log::error!(
                    "event {}: no randomness for the room's draw: {e}",
                    self.event.id()
                );
                break;
            }
            let made = match self.event.room_work(now, seed) {
                Ok(Some(made)) => made,
                Ok(None) => break,
                Err(e) => {
                    log::error!("event {}: the waiting room's work: {e}", self.event.id());
                    break;
                }
            };
            if self.journal_change(made).is_err() {
                break;
            }
            steps += 1;
        }
        steps
    }

    /// Expires everything due at `now` and does the room's due work (a
    /// few steps; the timer does the rest), then arms the timer for what is
    /// next. Every handler starts here, with the `now` it then works at, so
    /// nothing it shows can be a hold whose deadline has passed (and a
    /// lapsed admission never books: the domain checks its deadline too).
    fn catch_up(&mut self, now: Timestamp, ctx: &mut Context<Self>) {
        self.settle();
        if self.event.next_deadline().is_some_and(|due| due <= now) {
            self.expire_due(now, usize::MAX);
            self.room_work(now, ROOM_STEPS);
        }
        self.arm(ctx);
    }

    /// Keeps one timer armed for the earliest deadline.
    fn arm(&mut self, ctx: &mut Context<Self>) {
        let next = self.event.next_deadline();
        if self.timer.as_ref().map(|(at, _)| *at) == next {
            return;
        }
        if let Some((_, handle)) = self.timer.take() {
            ctx.cancel_future(handle);
        }
        let Some(deadline) = next else { return };
        let wait = deadline.millis().saturating_sub(self.clock.now().millis());
        let delay = Duration::from_millis(u64::try_from(wait).unwrap_or(0));
        let handle = ctx.run_later(delay, Self::on_timer);
        self.timer = Some((deadline, handle));
    }

    /// The timer fired: expire a batch; more due means another turn at once
    /// (after whatever messages queued meanwhile).
    fn on_timer(&mut self, ctx: &mut Context<Self>) {
        self.timer = None;
        self.settle();
        let now = self.clock.now();
        let done = self.expire_due(now, EXPIRY_BATCH) + self.room_work(now, ROOM_STEPS);
        let still_due = self
            .event
            .next_deadline()
            .is_some_and(|d| d <= self.clock.now());
        if still_due {
            // Nothing done although something is due (the journal refuses,
            // or the domain refused the step, logged): try again later
            // rather than spin.
            let delay = if self.faulted() || done == 0 {
                EXPIRY_RETRY
            } else {
                Duration::ZERO
            };
            let deadline = self
                .event
                .next_deadline()
                .unwrap_or_else(|| self.clock.now());
            let handle = ctx.run_later(delay, Self::on_timer);
            self.timer = Some((deadline, handle));
        } else {
            self.arm(ctx);
        }
    }

    /// Forgets undos of durable changes, and undoes every pending change if
    /// the journal has faulted since they were made.
    fn settle(&mut self) {
        let state = self.log.state();
        if let Some(lsn) = self.pending.forget_durable(|lsn| state.is_durable(lsn)) {
            self.durable_lsn = lsn;
        }
        if state.epoch != self.epoch {
            self.epoch = state.epoch;
            drop(state);
            if !self.pending.is_empty() {
                log::warn!(
                    "event {}: undoing {} change(s) the journal could not make durable",
                    self.event.id(),
                    self.pending.len()
                );
            }
            if self.pending.undo_all(&mut self.event) > 0 {
                self.announce(self.durable_lsn, true, true);
            }
        }
    }

    /// Tells readers the state now reflects changes up to `lsn`: publishes
    /// the status (before any answer goes out; readers serve it once
    /// durable) and wakes event streams, and booking streams too when an
    /// existing booking may have moved.
    fn announce(&self, lsn: Lsn, bookings_moved: bool, room_moved: bool) {
        self.signals
            .published
            .store(Arc::new(Published::of(&self.event, lsn)));
        self.signals.any.send_replace(lsn.get());
        if bookings_moved {
            self.signals.bookings.send_modify(|epoch| *epoch += 1);
        }
        if room_moved {
            self.signals.room.send_modify(|epoch| *epoch += 1);
        }
    }

    /// The LSN of the newest change reflected in the state.
    fn applied_lsn(&self) -> Lsn {
        self.pending.newest().unwrap_or(self.durable_lsn)
    }

    /// Whether changes may be made at all right now.
    fn accepting(&mut self) -> bool {
        self.settle();
        !self.faulted()
    }

    /// Whether the journal refuses changes right now (no settling first).
    fn faulted(&self) -> bool {
        self.log.state().fault.is_some()
    }

    /// What `made` adds to the counters, to be done once it is journalled.
    /// (A change the journal then loses to a fault stays counted: the
    /// counters tell what was decided, the state what was kept.)
    fn count(&self, made: &Made) -> impl FnOnce() + use<> {
        let counters = Arc::clone(&self.counters);
        let booked = match made.booked_as {
            Some(BookingStatus::Confirmed) => Some(BookedAs::Confirmed),
            Some(BookingStatus::Held) => Some(BookedAs::Held),
            Some(BookingStatus::Waiting) => Some(BookedAs::Waiting),
            _ => None,
        };
        let cancelled = matches!(made.change, Change::Cancelled { .. });
        let expired = matches!(
            made.change,
            Change::Expired { .. } | Change::ExpiredLate { .. }
        );
        let promoted = made.promoted;
        let seats_booked = made.seats_booked;
        let (room_admitted, room_expired) = match made.change {
            Change::RoomAdmitted { count, .. } => (count as usize, 0),
            Change::RoomLapsed { .. } => (0, made.items.len()),
            _ => (0, 0),
        };
        move || {
            if let Some(booked) = booked {
                counters.booked(booked);
            }
            if cancelled {
                EventCounters::add(&counters.cancellations, 1);
            }
            if expired {
                EventCounters::add(&counters.holds_expired, 1);
            }
            EventCounters::add(&counters.promotions, promoted);
            EventCounters::add(&counters.seats_booked, seats_booked);
            EventCounters::add(&counters.room_admitted, room_admitted);
            EventCounters::add(&counters.room_expired, room_expired);
        }
    }

    /// Journals an applied change, or undoes it when the journal refuses.
    fn journal_change(&mut self, made: Made) -> Result<Lsn, ActorError> {
        let counted = self.count(&made);
        let new_user = made.new_user;
        let room_moved = made.room_moved;
        // Room work moves no booking.
        let bookings_moved = !new_user && !made.change.is_room_work();
        let record = Record::Published {
            first_index: 0,
            event: self.event.id(),
            change: made.change,
            items: made.items,
        };
        match self.log.submit(record, self.epoch) {
            Ok(lsn) => {
                self.pending.push(lsn, made.undo, Instant::now());
                self.changes.fetch_add(1, Ordering::Relaxed);
                counted();
                // Readers of the change still wait until it is durable.
                self.announce(lsn, bookings_moved, room_moved);
                Ok(lsn)
            }
            Err(_) => {
                self.event.undo(made.undo);
                self.settle();
                Err(Unavailable.into())
            }
        }
    }
}

impl Actor for EventActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        // Holds that lapsed while the service was down expire at once.
        self.arm(ctx);
    }
}

impl<T: Send + 'static> Handler<MakeChange<T>> for EventActor {
    type Result = ();

    fn handle(&mut self, msg: MakeChange<T>, ctx: &mut Self::Context) {
        let now = self.clock.now();
        // catch_up has just settled: only the fault is left to look at.
        self.catch_up(now, ctx);
        let answer = if !self.faulted() {
            match (msg.op)(&mut self.event, &self.ids, now) {
                Err(e) => Err(e.into()),
                // Nothing new (a retried booking), but what it shows may
                // itself still be on its way to disk.
                Ok(Outcome { value, made: None }) => Ok(Durable {
                    value,
                    lsn: self.applied_lsn(),
                    made: false,
                }),
                Ok(Outcome {
                    value,
                    made: Some(made),
                }) => self.journal_change(made).map(|lsn| Durable {
                    value,
                    lsn,
                    made: true,
                }),
            }
        } else {
            Err(Unavailable.into())
        };
        // A change may have added or removed a hold.
        self.arm(ctx);
        // The requester may have gone away; its loss, not ours.
        let _ = msg.reply.send(answer);
    }
}

impl<T: Send + 'static> Handler<Read<T>> for EventActor {
    type Result = ();

    fn handle(&mut self, msg: Read<T>, ctx: &mut Self::Context) {
        let now = self.clock.now();
        self.catch_up(now, ctx);
        let stalled = msg
            .patience
            .is_some_and(|patience| self.pending.stalled(Instant::now(), patience));
        if stalled {
            let durable = self.durable_lsn;
            let view = self.pending.durable_view(&self.event, durable);
            if view.next_deadline().is_none_or(|due| due > now) {
                let _ = msg.reply.send(Durable {
                    value: (msg.op)(view),
                    lsn: durable,
                    made: false,
                });
                return;
            }
        }
        let _ = msg.reply.send(Durable {
            value: (msg.op)(&self.event),
            lsn: self.applied_lsn(),
            made: false,
        });
    }
}

impl Handler<ApplyCommitted> for EventActor {
    type Result = ();

    fn handle(&mut self, msg: ApplyCommitted, ctx: &mut Self::Context) {
        // Undoes first what this node made and lost with its leadership.
        self.settle();
        if let Err(e) = self.event.apply(&msg.change) {
            // The leader applied it to the same state: this node's copy can
            // no longer be trusted, and answers nothing more.
            self.divergence.report(&format!(
                "event {}: committed change {} cannot be applied: {e}",
                self.event.id(),
                msg.lsn
            ));
            ctx.stop();
            return;
        }
        self.durable_lsn = msg.lsn;
        self.announce(msg.lsn, true, true);
        self.arm(ctx);
    }
}

impl Handler<TakeSnapshot> for EventActor {
    type Result = ();

    fn handle(&mut self, msg: TakeSnapshot, ctx: &mut Self::Context) {
        self.catch_up(self.clock.now(), ctx);
        let _ = msg.reply.send(StoredEvent {
            applied_lsn: self.applied_lsn(),
            event: self.event.to_snapshot(),
        });
        if msg.last {
            ctx.stop();
        }
    }
}

impl Handler<TakeCommitted> for EventActor {
    type Result = ();

    fn handle(&mut self, msg: TakeCommitted, _ctx: &mut Self::Context) {
        // No timers are caught up here: what they would change is not
        // committed. The caller holds the commit mark still, so what is
        // pending beyond `through` is still pending after settling.
        self.settle();
        let event = match self.pending.without_changes_after(&self.event, msg.through) {
            None => self.event.to_snapshot(),
            Some(committed) => committed.to_snapshot(),
        };
        let _ = msg.reply.send(StoredEvent {
            applied_lsn: self.durable_lsn.min(msg.through),
            event,
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use proptest::prelude::*;

    use crate::actors::messages::{MakeChange, Read};
    use crate::actors::{ask, Registry};
    use crate::clock::Clock;
    use crate::domain::{Event, EventId, EventSettings, Timestamp, UserId};
    use crate::persistence::journal::{FaultInjector, FsyncMode, Journal, JournalOptions};
    use crate::persistence::recovery::recover;
    use crate::persistence::SnapshotStore;

    /// One request: book (with a party size) or cancel, while the disk
    /// works or fails.
    type Step = (bool, u8, u32, bool);

    fn step() -> impl Strategy<Value = Step> {
        (
            proptest::bool::weighted(0.6),
            0u8..6,
            1u32..3,
            proptest::bool::weighted(0.25),
        )
    }

    /// A booking of one ticket by `name`, as a change for an actor.
    fn booking_of(name: &str) -> crate::actors::messages::ChangeOp<()> {
        let user = UserId::try_from(name).expect("user");
        Box::new(move |e, ids, now| {
            e.book(&user, 1, ids, now).map(|o| crate::domain::Outcome {
                value: (),
                made: o.made,
            })
        })
    }

    /// A log durable through LSN 1, a manual clock, and event 1 with
    /// `settings`, created at that clock's now.
    fn scripted(
        settings: EventSettings,
    ) -> (Arc<crate::actors::scripted_log::ScriptedLog>, Clock, Event) {
        use crate::persistence::journal::Lsn;
        let log = Arc::new(crate::actors::scripted_log::ScriptedLog::durable_through(
            Lsn::new(1),
        ));
        let clock = Clock::manual(Timestamp::from_millis(1_700_000_000_000));
        let id = EventId::try_from(1).expect("id");
        let (event, _) = Event::create(id, settings, clock.now()).expect("event");
        (log, clock, event)
    }

    /// `event`'s actor on `log`, at LSN 1, telling `divergence`.
    fn start_on(
        log: &Arc<crate::actors::scripted_log::ScriptedLog>,
        event: Event,
        clock: Clock,
        divergence: crate::actors::Divergence,
    ) -> actix::Addr<super::EventActor> {
        use actix::Actor;
        let lsn = crate::persistence::journal::Lsn::new(1);
        let (signals, _) = super::LiveSignals::new(&event, lsn);
        let shared = super::ActorShared {
            ids: Arc::default(),
            changes: Arc::default(),
            log: Arc::clone(log) as Arc<dyn crate::persistence::change_log::ChangeLog>,
            counters: Arc::default(),
            clock,
            divergence,
        };
        super::EventActor::new(event, lsn, shared, signals).start()
    }

    /// The actor works against any change log: what the log makes durable
    /// stays, and what it abandons in a new epoch is undone before the
    /// next answer.
    #[actix_web::test]
    async fn changes_a_log_abandons_in_a_new_epoch_are_undone() {
        let (log, clock, event) = scripted(EventSettings::new(None, 2, 2));
        let addr = start_on(&log, event, clock, crate::actors::Divergence::default());
        let rejections = std::sync::atomic::AtomicU64::new(0);
        let book = booking_of;
        let available = || {
            let op = Box::new(|e: &Event| e.status().available_tickets);
            ask(&addr, &rejections, |reply| Read {
                op,
                reply,
                patience: None,
            })
        };
        let a = ask(&addr, &rejections, |reply| MakeChange {
            op: book("a"),
            reply,
        })
        .await
        .expect("sent")
        .expect("booked");
        log.make_durable(a.lsn);
        let b = ask(&addr, &rejections, |reply| MakeChange {
            op: book("b"),
            reply,
        })
        .await
        .expect("sent")
        .expect("booked");
        assert_eq!(available().await.expect("read").value, 0);
        // A Raft snapshot's hand-over leaves out what is not committed
        // (b's booking), without undoing it in the actor.
        let committed = |through| {
            let (reply, answer) = tokio::sync::oneshot::channel();
            addr.do_send(crate::actors::messages::TakeCommitted { through, reply });
            answer
        };
        let through_a = committed(a.lsn).await.expect("handed over");
        let through_b = committed(b.lsn).await.expect("handed over");
        let available_in = |stored: &crate::persistence::StoredEvent| {
            Event::from_snapshot(stored.event.clone())
                .expect("restores")
                .status()
                .available_tickets
        };
        assert_eq!(available_in(&through_a), 1, "b's booking left out");
        assert_eq!(available_in(&through_b), 0);
        assert_eq!(available().await.expect("read").value, 0, "b still pending");
        // The log loses b's change: a new epoch, b's LSN abandoned.
        log.lose(b.lsn);
        assert_eq!(
            available().await.expect("read").value,
            1,
            "b's booking is undone, a's (durable) stays"
        );
        // And the actor takes changes again in the new epoch.
        ask(&addr, &rejections, |reply| MakeChange {
            op: book("c"),
            reply,
        })
        .await
        .expect("sent")
        .expect("booked in the new epoch");
    }

    /// A read that may not wait behind a pending change (patience spent)
    /// is answered from the state as the durable changes left it, with
    /// their LSN; a stream's read (no patience) from the newest. A durable
    /// state with a hold past its deadline is never served: the lapse is
    /// pending too.
    #[actix_web::test]
    async fn a_read_that_may_not_wait_is_served_from_the_durable_state() {
        let mut settings = EventSettings::new(None, 3, 1);
        settings.hold_secs = 60;
        let (log, clock, event) = scripted(settings);
        let addr = start_on(
            &log,
            event,
            clock.clone(),
            crate::actors::Divergence::default(),
        );
        let rejections = std::sync::atomic::AtomicU64::new(0);
        let book = |name: &str| {
            let op = booking_of(name);
            ask(&addr, &rejections, |reply| MakeChange { op, reply })
        };
        let held = |patience: Option<Duration>| {
            let op = Box::new(|e: &Event| e.status().held_tickets);
            ask(&addr, &rejections, move |reply| Read {
                op,
                reply,
                patience,
            })
        };
        let a = book("a").await.expect("sent").expect("held");
        log.make_durable(a.lsn);
        let b = book("b").await.expect("sent").expect("held");
        assert!(b.lsn > a.lsn);

        let newest = held(None).await.expect("read");
        assert_eq!((newest.value, newest.lsn), (2, b.lsn));
        let patient = held(Some(Duration::from_secs(3_600))).await.expect("read");
        assert_eq!(
            (patient.value, patient.lsn),
            (2, b.lsn),
            "b is not late yet"
        );
        let durable = held(Some(Duration::ZERO)).await.expect("read");
        assert_eq!(
            (durable.value, durable.lsn),
            (1, a.lsn),
            "a's hold, not b's"
        );

        // b becomes durable: the newest state is.
        log.make_durable(b.lsn);
        let c = book("c").await.expect("sent").expect("held");
        let durable = held(Some(Duration::ZERO)).await.expect("read");
        assert_eq!((durable.value, durable.lsn), (2, b.lsn));

        // Past the deadlines: the lapses are pending, and the durable state
        // (c pending aside) still shows a's and b's holds.
        clock.advance(61_000);
        let read = held(Some(Duration::ZERO)).await.expect("read");
        assert_eq!(read.value, 0, "every hold lapsed");
        assert!(read.lsn > c.lsn, "the newest state, with the lapses");
    }

    /// A committed change that the actor's state cannot take (here a
    /// cancellation of a booking it does not have) is a divergence: it is
    /// reported (in the service: ERROR and exit 4) and the actor answers
    /// nothing more.
    #[actix_web::test]
    async fn a_committed_change_that_cannot_be_applied_stops_the_actor() {
        use crate::persistence::journal::Lsn;
        let (log, clock, event) = scripted(EventSettings::new(None, 2, 2));
        let (reports, reported) = std::sync::mpsc::channel::<String>();
        let reports = std::sync::Mutex::new(reports);
        let divergence = crate::actors::Divergence::calling(move |what| {
            let _ = reports.lock().expect("lock").send(what.to_owned());
        });
        let addr = start_on(&log, event, clock.clone(), divergence);
        addr.do_send(crate::actors::messages::ApplyCommitted {
            lsn: Lsn::new(2),
            change: crate::domain::Change::Cancelled {
                user: UserId::try_from("nobody").expect("user"),
                at: clock.now(),
            },
        });
        let rejections = std::sync::atomic::AtomicU64::new(0);
        let op = Box::new(|e: &Event| e.status());
        let read = ask(&addr, &rejections, |reply| Read {
            op,
            reply,
            patience: None,
        })
        .await;
        assert!(read.is_err(), "a diverged actor answers nothing: {read:?}");
        let what = reported.try_recv().expect("reported");
        assert!(
            what.contains("event 1: committed change 2 cannot be applied"),
            "{what}"
        );
    }

    /// A hold lapses by the actor's own timer, with no request arriving:
    /// the expiry (and the offer it makes) reach the journal by themselves.
    /// Time is a manual clock and tokio's paused timer, moved together.
    #[actix_web::test]
    async fn a_hold_lapses_on_its_timer_without_any_request() {
        tokio::time::pause();
        let clock = Clock::manual(Timestamp::from_millis(1_700_000_000_000));
        let dir = tempfile::tempdir().expect("dir");
        let options = JournalOptions {
            dir: dir.path().to_path_buf(),
            fsync: FsyncMode::Always,
            fsync_interval: Duration::from_millis(10),
            segment_bytes: 1 << 20,
            faults: None,
        };
        let journal =
            Journal::start(options, crate::persistence::journal::Lsn::FIRST).expect("journal");
        let registry = Registry::new(1, Arc::clone(&journal), clock.clone());
        // The actor runs on this test's thread, so tokio's paused time is
        // the time of its timers too.
        registry.place_on_workers(1);
        registry.join_worker();
        let id = EventId::try_from(1).expect("id");
        let mut settings = EventSettings::new(None, 1, 1);
        settings.hold_secs = 1;
        settings.offer_secs = 60;
        registry
            .create(Some(id), &settings, Default::default(), None, clock.now())
            .expect("create");
        let addr = registry.get(id).expect("actor");
        for name in ["a", "b"] {
            let user = UserId::try_from(name).expect("user");
            let op: crate::actors::messages::ChangeOp<()> = Box::new(move |e, ids, now| {
                e.book(&user, 1, ids, now).map(|o| crate::domain::Outcome {
                    value: (),
                    made: o.made,
                })
            });
            ask(&addr, &std::sync::atomic::AtomicU64::new(0), |reply| {
                MakeChange { op, reply }
            })
            .await
            .expect("sent")
            .expect("booked");
        }
        let before = journal.next_lsn();
        clock.advance(999);
        tokio::time::advance(Duration::from_millis(999)).await;
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            journal.next_lsn(),
            before,
            "nothing lapses before its deadline"
        );
        clock.advance(1);
        tokio::time::advance(Duration::from_millis(1)).await;
        // The timer runs on this thread, in paused time: move it on in small
        // steps until the lapse is journalled. Bounded in turns, not in
        // wall-clock time.
        for _ in 0..1_000 {
            if journal.next_lsn() != before {
                break;
            }
            tokio::time::advance(Duration::from_millis(10)).await;
            tokio::task::yield_now().await;
        }
        assert_eq!(
            journal.next_lsn(),
            before.next(),
            "the lapse of a's hold was journalled with no request arriving"
        );
        let op = Box::new(|e: &Event| e.status());
        let status = ask(&addr, &std::sync::atomic::AtomicU64::new(0), |reply| Read {
            op,
            reply,
            patience: None,
        })
        .await
        .expect("read")
        .value;
        assert_eq!(
            (status.held_tickets, status.waiting_count),
            (1, 0),
            "b holds the offer"
        );
        registry.stop();
        journal.shutdown();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]

        /// Whatever the disk does, the actor's state in memory equals what
        /// a restart rebuilds from the journal: a change the journal could
        /// not make durable is answered 503 and leaves no trace.
        #[test]
        fn memory_equals_what_the_journal_rebuilds_through_disk_faults(
            steps in proptest::collection::vec(step(), 1..25),
        ) {
            let dir = tempfile::tempdir().expect("dir");
            let failing = Arc::new(AtomicBool::new(false));
            let flag = Arc::clone(&failing);
            let options = JournalOptions {
                dir: dir.path().to_path_buf(),
                fsync: FsyncMode::Always,
                fsync_interval: Duration::from_millis(10),
                segment_bytes: 1 << 20,
                faults: Some(FaultInjector::new(move |_| flag.load(Ordering::SeqCst))),
            };
            let system = actix::System::new();
            let (live, answered) = system.block_on(async move {
                let journal = Journal::start(options, crate::persistence::journal::Lsn::FIRST).expect("journal");
                let registry = Registry::new(1, Arc::clone(&journal), Clock::system());
                let id = EventId::try_from(1).expect("id");
                let (_, lsn) = registry
                    .create(
                        Some(id),
                        &EventSettings::new(None, 3, 2),
                        Default::default(),
                        None,
                        Clock::system().now(),
                    )
                    .expect("create");
                journal.wait_durable(lsn).await.expect("created");
                let addr = registry.get(id).expect("actor");
                let mut answered = 0;
                for (book, u, quantity, fail) in steps {
                    failing.store(fail, Ordering::SeqCst);
                    let user = UserId::try_from(format!("u{u}").as_str()).expect("user");
                    let op: crate::actors::messages::ChangeOp<()> = if book {
                        Box::new(move |e, ids, now| e.book(&user, quantity, ids, now).map(|o| crate::domain::Outcome { value: (), made: o.made }))
                    } else {
                        Box::new(move |e, _, now| e.cancel(&user, now).map(|o| crate::domain::Outcome { value: (), made: o.made }))
                    };
                    if let Ok(Ok(answer)) = ask(&addr, &std::sync::atomic::AtomicU64::new(0), |reply| MakeChange { op, reply }).await {
                        if journal.wait_durable(answer.lsn).await.is_ok() {
                            answered += 1;
                        }
                    }
                    failing.store(false, Ordering::SeqCst);
                    let mut updates = journal.watch();
                    tokio::time::timeout(Duration::from_secs(10), updates.wait_for(|s| s.fault.is_none()))
                        .await
                        .expect("repaired")
                        .expect("journal alive");
                }
                let op = Box::new(|e: &Event| e.to_snapshot());
                let live = ask(&addr, &std::sync::atomic::AtomicU64::new(0), |reply| Read { op, reply, patience: None }).await.expect("read").value;
                registry.stop();
                journal.shutdown();
                (live, answered)
            });
            let store = SnapshotStore::open(dir.path(), 3).expect("store");
            let rebuilt = recover(&store, dir.path()).expect("recovers");
            let (event, _) = rebuilt.events.into_values().next().expect("the event");
            prop_assert_eq!(event.to_snapshot(), live, "{} changes answered durable", answered);
        }
    }
}
