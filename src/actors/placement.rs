//! Which thread each event actor runs on: the HTTP workers' own.
//!
//! With actors on threads of their own, every request crossed threads twice
//! (to the actor's thread and back to the worker for the reply), and with
//! two workers, two actor threads and the journal writer on two cores the
//! threads kept displacing one another: a profile of bookings showed 16% of
//! the time in `finish_task_switch`. On the workers' own threads a request
//! whose event lives on its worker never leaves that thread, and there are
//! no extra threads to schedule (bench/README.md, "Speed work").
//!
//! Each event is still owned by exactly one actor that handles its messages
//! one at a time; only the thread it runs on changed.
//!
//! Workers come up after the state is restored, so an actor made before its
//! worker exists gets its mailbox at once (its address is usable, messages
//! queue) and starts running when that worker joins.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread::ThreadId;

use actix::dev::channel::{self, AddressReceiver};
use actix::{Addr, Arbiter, ArbiterHandle, Context};

use super::event_actor::{EventActor, MAILBOX_CAPACITY};

/// An actor whose worker has not joined yet.
struct Waiting {
    /// The worker slot it belongs to.
    slot: usize,
    /// Its mailbox, already reachable through its address.
    mailbox: AddressReceiver<EventActor>,
    /// The actor.
    actor: EventActor,
}

/// What joining workers and new actors share, behind one lock so an actor
/// is never parked for a worker that has just joined.
#[derive(Default)]
struct Slots {
    /// Workers that joined, by slot: their thread and their arbiter.
    workers: Vec<(ThreadId, ArbiterHandle)>,
    /// Actors waiting for their worker.
    waiting: Vec<Waiting>,
}

/// Places event actors on threads.
pub struct Placement {
    /// How many workers will join; 0 runs actors on threads of our own.
    expected: AtomicUsize,
    /// Joined workers and waiting actors.
    slots: Mutex<Slots>,
    /// Round-robin cursor over the slots.
    next: AtomicUsize,
    /// Threads of our own, made on first use, for when no HTTP worker will
    /// run actors (tests and tools that use the registry without a server).
    own: OnceLock<Vec<Arbiter>>,
    /// How many threads of our own to make.
    own_count: usize,
}

impl Placement {
    /// Actors on `own_count` threads of our own until [`Self::expect_workers`].
    pub fn new(own_count: usize) -> Self {
        Self {
            expected: AtomicUsize::new(0),
            slots: Mutex::default(),
            next: AtomicUsize::new(0),
            own: OnceLock::new(),
            own_count: own_count.max(1),
        }
    }

    /// From now on, actors go to the `workers` HTTP workers that will call
    /// [`Self::join_worker`]. Called before the first actor is placed.
    pub fn expect_workers(&self, workers: usize) {
        self.expected.store(workers, Ordering::Relaxed);
    }

    fn slots(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts `actor` on the next thread in turn; its address works at once.
    pub fn start(&self, actor: EventActor) -> Addr<EventActor> {
        let (sender, mailbox) = channel::channel(MAILBOX_CAPACITY);
        let addr = Addr::new(sender);
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        let expected = self.expected.load(Ordering::Relaxed);
        if expected == 0 {
            let own = self
                .own
                .get_or_init(|| (0..self.own_count).map(|_| Arbiter::new()).collect());
            run_on(&own[turn % own.len()].handle(), mailbox, actor);
            return addr;
        }
        let slot = turn % expected;
        let mut slots = self.slots();
        match slots.workers.get(slot) {
            Some((_, arbiter)) => run_on(arbiter, mailbox, actor),
            None => slots.waiting.push(Waiting {
                slot,
                mailbox,
                actor,
            }),
        }
        addr
    }

    /// Called on each HTTP worker's thread as it starts: takes the next
    /// slot and starts the actors waiting for it. A thread joins once.
    pub fn join_worker(&self) {
        let Some(arbiter) = Arbiter::try_current() else {
            return;
        };
        let me = std::thread::current().id();
        let mut slots = self.slots();
        if slots.workers.iter().any(|(thread, _)| *thread == me) {
            return;
        }
        let slot = slots.workers.len();
        slots.workers.push((me, arbiter));
        let (mine, others) = std::mem::take(&mut slots.waiting)
            .into_iter()
            .partition(|waiting| waiting.slot == slot);
        slots.waiting = others;
        drop(slots);
        for Waiting { mailbox, actor, .. } in mine {
            Context::with_receiver(mailbox).run(actor);
        }
    }

    /// Stops the threads of our own (the workers' stop with the server).
    pub fn stop(&self) {
        for arbiter in self.own.get().into_iter().flatten() {
            arbiter.stop();
        }
    }
}

/// Starts `actor` with `mailbox` on `arbiter`'s thread.
fn run_on(arbiter: &ArbiterHandle, mailbox: AddressReceiver<EventActor>, actor: EventActor) {
    arbiter.spawn_fn(move || {
        Context::with_receiver(mailbox).run(actor);
    });
}
