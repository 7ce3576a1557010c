//! Finds the actor of an event, creates events, and installs and collects
//! the whole service's state.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use actix::dev::ToEnvelope;
use actix::{Actor, Addr, Handler, Message};
use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use tokio::sync::oneshot;

use super::counters::EventCounters;
use super::divergence::Divergence;
use super::event_actor::{ActorShared, EventActor, LiveReceivers, LiveSignals};
use super::messages::{Reply, TakeSnapshot, Unavailable};
use super::placement::Placement;
use super::published::Published;
use crate::clock::Clock;
use crate::domain::seating::SeatShape;
use crate::domain::{
    BookingIdSequence, CreateKey, CreateKeys, DomainError, Event, EventId, EventSettings,
    EventStatus, FeedItem, RoomSettings, Timestamp, MAX_EVENT_ID,
};
use crate::persistence::change_log::ChangeLog;
use crate::persistence::journal::{Journal, Lsn, Record};
use crate::persistence::recovery::Recovered;
use crate::persistence::StoredEvent;

mod replication;

/// Idempotency keys kept until `limits.max_create_keys` says otherwise.
const DEFAULT_CREATE_KEYS: usize = 100_000;

/// Snapshot hand-overs asked for at once.
const COLLECT_IN_FLIGHT: usize = 1_024;

/// Why an event could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateError {
    /// The requested id is taken.
    #[error("event {0} already exists")]
    Exists(EventId),
    /// Every id up to 2^53 - 1 is taken.
    #[error("no event ids left")]
    IdsExhausted,
    /// The journal is not taking changes.
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    /// The domain refused the event.
    #[error(transparent)]
    Domain(#[from] DomainError),
}

/// How to reach one event.
struct EventHandle {
    /// Its actor.
    addr: Addr<EventActor>,
    /// The LSN its state started from (its creation's, for a new event).
    started_at: Lsn,
    /// Bumped by the actor after each change it makes (to the change's
    /// LSN), so live streams know when to read again.
    changed: LiveReceivers,
    /// The LSN of the newest committed change sent to the actor (a
    /// follower's): what it published is current only once it reaches it.
    sent: Arc<std::sync::atomic::AtomicU64>,
}

/// Event id to actor address, plus the service-wide sequences.
///
/// The hot path (`get`) takes one shard's read lock in a sharded map, never
/// a lock over the whole registry.
pub struct Registry {
    /// Where every actor, and the service, reads the time.
    clock: Clock,
    /// Each event's actor, and the signal it gives after every change.
    actors: DashMap<EventId, EventHandle>,
    /// Event ids in order, for listing; written only when events come or go.
    ordered: RwLock<BTreeSet<EventId>>,
    /// Which thread each actor runs on.
    placement: Placement,
    /// Set before the final snapshot: no event may be created after it.
    closed: AtomicBool,
    /// The id the next auto-numbered event gets.
    next_event_id: AtomicU64,
    /// Booking ids for every event.
    ids: Arc<BookingIdSequence>,
    /// Count of changes since start, read by the snapshotter.
    changes: Arc<AtomicU64>,
    /// Where changes are made durable.
    journal: Arc<Journal>,
    /// The same journal, as the actors and creates hand changes to it.
    log: Arc<dyn ChangeLog>,
    /// Idempotency keys of creates, and the LSN of the newest one's
    /// record. A key's record is handed to the log and the key remembered
    /// under this one lock, and the snapshotter takes it only after noting
    /// the journal position, so a snapshot never misses a key the journal
    /// position says it covers.
    create_keys: Mutex<(CreateKeys, Lsn)>,
    /// What the actors decided, for `/metrics`.
    counters: Arc<EventCounters>,
    /// Told when a committed change cannot be applied (a cluster node).
    divergence: Divergence,
}

impl Registry {
    /// An empty registry whose actors run on `thread_count` threads of its
    /// own, until [`Self::place_on_workers`]. Must be called inside a
    /// running actix system.
    pub fn new(thread_count: usize, journal: Arc<Journal>, clock: Clock) -> Self {
        let log = Arc::clone(&journal) as Arc<dyn ChangeLog>;
        Self::with_log(thread_count, journal, log, clock)
    }

    /// As [`Self::new`], with changes made durable by `log` rather than the
    /// journal (a cluster's replicated log).
    pub fn with_log(
        thread_count: usize,
        journal: Arc<Journal>,
        log: Arc<dyn ChangeLog>,
        clock: Clock,
    ) -> Self {
        Self {
            log,
            create_keys: Mutex::new((CreateKeys::new(DEFAULT_CREATE_KEYS), Lsn::ZERO)),
            clock,
            actors: DashMap::new(),
            ordered: RwLock::new(BTreeSet::new()),
            placement: Placement::new(thread_count),
            closed: AtomicBool::new(false),
            next_event_id: AtomicU64::new(1),
            ids: Arc::new(BookingIdSequence::default()),
            changes: Arc::new(AtomicU64::new(0)),
            journal,
            counters: Arc::default(),
            divergence: Divergence::fail_stop(),
        }
    }

    /// This registry, telling `divergence` (rather than stopping the
    /// process) when a committed change cannot be applied: for tests.
    pub fn with_divergence(mut self, divergence: Divergence) -> Self {
        self.divergence = divergence;
        self
    }

    /// What the actors decided so far.
    pub fn counters(&self) -> &Arc<EventCounters> {
        &self.counters
    }

    /// From now on, actors run on the `workers` HTTP workers, each of which
    /// calls [`Self::join_worker`] as it starts. Call before [`Self::install`].
    pub fn place_on_workers(&self, workers: usize) {
        self.placement.expect_workers(workers);
    }

    /// Called on each HTTP worker's thread as it starts (from the app
    /// factory): actors of its share start running here.
    pub fn join_worker(&self) {
        self.placement.join_worker();
    }

    /// The journal every actor writes to.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The journal every actor writes to.
    pub fn journal(&self) -> &Arc<Journal> {
        &self.journal
    }

    /// Keeps at most `max` idempotency keys of creates (the oldest go
    /// first). Called at start, before any create.
    pub fn limit_create_keys(&self, max: usize) {
        let mut keys = self.keys();
        let entries = keys.0.entries();
        keys.0 = CreateKeys::new(max);
        let now = self.clock.now();
        for entry in entries {
            keys.0.insert(entry, now);
        }
    }

    fn keys(&self) -> MutexGuard<'_, (CreateKeys, Lsn)> {
        self.create_keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The create remembered under idempotency key `key`, if any.
    pub fn create_key(&self, key: &str) -> Option<CreateKey> {
        self.keys().0.get(key, self.clock.now()).cloned()
    }

    /// Journals `entry` (after its event's creation) and remembers it;
    /// the LSN to wait for before answering.
    pub fn remember_create_key(&self, entry: CreateKey) -> Result<Lsn, Unavailable> {
        let mut keys = self.keys();
        let epoch = self.log.state().epoch;
        let lsn = self
            .log
            .submit(Record::KeyedCreate(entry.clone()), epoch)
            .map_err(|_| Unavailable)?;
        self.note_create_key(&mut keys, entry, lsn);
        Ok(lsn)
    }

    /// Remembers `entry`, whose record is at `lsn`, under the keys' lock.
    fn note_create_key(&self, keys: &mut (CreateKeys, Lsn), entry: CreateKey, lsn: Lsn) {
        keys.0.insert(entry, self.clock.now());
        keys.1 = lsn;
    }

    /// Forgets `key`, whose create could not be made durable.
    pub fn forget_create_key(&self, key: &str) {
        self.keys().0.remove(key);
    }

    /// Every remembered key, for a snapshot, and the LSN to wait for.
    pub fn create_keys(&self) -> (Vec<CreateKey>, Lsn) {
        let mut keys = self.keys();
        let now = self.clock.now();
        keys.0.forget(now);
        (keys.0.entries(), keys.1)
    }

    /// Starts an actor for every recovered event.
    pub fn install(&self, recovered: Recovered) {
        {
            let mut keys = self.keys();
            let now = self.clock.now();
            for entry in recovered.create_keys {
                keys.0.insert(entry, now);
            }
        }
        self.ids.skip_past(crate::domain::BookingId::from_raw(
            recovered.next_booking_id.saturating_sub(1),
        ));
        self.next_event_id
            .fetch_max(recovered.next_event_id, Ordering::Relaxed);
        let mut ordered = self.ordered.write().unwrap_or_else(|p| p.into_inner());
        for (id, (event, applied_lsn)) in recovered.events {
            let handle = self.start(event, applied_lsn);
            self.actors.insert(id, handle);
            self.note_id(&mut ordered, id);
        }
    }

    /// The actor of event `id`.
    pub fn get(&self, id: EventId) -> Option<Addr<EventActor>> {
        self.actors.get(&id).map(|a| a.value().addr.clone())
    }

    /// What event `id`'s actor last published, and whether it reflects
    /// every committed change sent to the actor (a follower's actor may not
    /// have handled the newest yet: a read with `X-Boxoffice-Min-Index`
    /// that the applied index lets through must not be served an older
    /// status).
    pub fn published_current(&self, id: EventId) -> Option<(Arc<Published>, bool)> {
        self.actors.get(&id).map(|a| {
            let published = a.value().changed.published.load_full();
            let sent = a.value().sent.load(Ordering::Acquire);
            let current = published.lsn().get() >= sent;
            (published, current)
        })
    }

    /// A receiver that wakes after every change to event `id`.
    pub fn changes(&self, id: EventId) -> Option<LiveReceivers> {
        self.actors.get(&id).map(|a| a.value().changed.clone())
    }

    /// Creates an event with the requested id, or the next free one, and
    /// returns it with the LSN to wait for before announcing it.
    pub fn create(
        &self,
        requested: Option<EventId>,
        settings: &EventSettings,
        room: RoomSettings,
        seating: Option<&SeatShape>,
        now: Timestamp,
    ) -> Result<(EventStatus, Lsn), CreateError> {
        let created = match requested {
            Some(id) => self
                .insert(id, settings, room, seating, now)?
                .ok_or(CreateError::Exists(id))?,
            None => loop {
                let raw = self.next_event_id.fetch_add(1, Ordering::Relaxed);
                let id = match EventId::try_from(raw) {
                    Ok(id) => id,
                    // Past 2^53 - 1 (an explicit id up there pushed the
                    // counter): wrap to the smallest free id and go on from
                    // it, rather than refuse every create from now on.
                    Err(_) => {
                        let id = self.smallest_free_id().ok_or(CreateError::IdsExhausted)?;
                        self.next_event_id.store(id.get() + 1, Ordering::Relaxed);
                        id
                    }
                };
                if let Some(created) = self.insert(id, settings, room, seating, now)? {
                    break created;
                }
            },
        };
        self.changes.fetch_add(1, Ordering::Relaxed);
        Ok(created)
    }

    /// Journals and starts a new event at `id`; `Ok(None)` when `id` is taken.
    /// The record is queued before the actor becomes reachable, so no booking
    /// of the event can reach the journal ahead of its creation.
    fn insert(
        &self,
        id: EventId,
        settings: &EventSettings,
        room: RoomSettings,
        seating: Option<&SeatShape>,
        now: Timestamp,
    ) -> Result<Option<(EventStatus, Lsn)>, CreateError> {
        // Held across the whole insert, so `close` cannot fall between the
        // check and the listing the final snapshot reads.
        let mut ordered = self.ordered.write().unwrap_or_else(|p| p.into_inner());
        if self.closed.load(Ordering::Relaxed) {
            return Err(Unavailable.into());
        }
        match self.actors.entry(id) {
            Entry::Occupied(_) => Ok(None),
            Entry::Vacant(slot) => {
                // The shape was checked against the configured limit by
                // the service; none applies here.
                let (event, change) = match seating {
                    Some(shape) => Event::create_seated(
                        id,
                        settings.clone(),
                        room,
                        shape.clone(),
                        u64::MAX,
                        now,
                    )?,
                    None => Event::create_with_room(id, settings.clone(), room, now)?,
                };
                let status = event.status();
                let record = Record::Published {
                    first_index: 0,
                    event: id,
                    change,
                    items: vec![FeedItem::event(status.clone())],
                };
                // Through the same seam as every change an actor makes.
                let epoch = self.log.state().epoch;
                let lsn = self.log.submit(record, epoch).map_err(|_| Unavailable)?;
                slot.insert(self.start(event, lsn));
                self.note_id(&mut ordered, id);
                Ok(Some((status, lsn)))
            }
        }
    }

    /// The smallest event id no event has, if any is left.
    fn smallest_free_id(&self) -> Option<EventId> {
        let ordered = self.ordered.read().unwrap_or_else(|p| p.into_inner());
        let mut candidate = 1;
        for id in ordered.iter() {
            if id.get() != candidate {
                break;
            }
            candidate += 1;
        }
        EventId::try_from(candidate).ok()
    }

    /// Refuses every create from now on; the final snapshot follows.
    pub fn close(&self) {
        let _ordered = self.ordered.write().unwrap_or_else(|p| p.into_inner());
        self.closed.store(true, Ordering::Relaxed);
    }

    /// Forgets event `id`, whose creation at `created` never became
    /// durable, unless it has been replaced since (a cluster node that lost
    /// its leadership applies the creation again if another leader
    /// committed it).
    pub fn remove_created_at(&self, id: EventId, created: Lsn) {
        if self
            .actors
            .remove_if(&id, |_, handle| handle.started_at == created)
            .is_none()
        {
            return;
        }
        self.ordered
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    /// Records `id` in the listing and keeps auto-numbering past it.
    fn note_id(&self, ordered: &mut BTreeSet<EventId>, id: EventId) {
        self.next_event_id
            .fetch_max((id.get() + 1).min(MAX_EVENT_ID + 1), Ordering::Relaxed);
        ordered.insert(id);
    }

    fn start(&self, event: Event, applied_lsn: Lsn) -> EventHandle {
        let (notify, changed) = LiveSignals::new(&event, applied_lsn);
        let shared = ActorShared {
            ids: Arc::clone(&self.ids),
            changes: Arc::clone(&self.changes),
            log: Arc::clone(&self.log),
            counters: Arc::clone(&self.counters),
            clock: self.clock.clone(),
            divergence: self.divergence.clone(),
        };
        let actor = EventActor::new(event, applied_lsn, shared, notify);
        let addr = self.placement.start(actor);
        EventHandle {
            addr,
            started_at: applied_lsn,
            changed,
            sent: Arc::new(std::sync::atomic::AtomicU64::new(applied_lsn.get())),
        }
    }

    /// Up to `limit` event ids from 0-based `offset`, in id order, and how many
    /// events there are.
    pub fn page(&self, offset: usize, limit: usize) -> (Vec<EventId>, usize) {
        let ordered = self.ordered.read().unwrap_or_else(|p| p.into_inner());
        (
            ordered.iter().skip(offset).take(limit).copied().collect(),
            ordered.len(),
        )
    }

    /// How many events there are.
    pub fn event_count(&self) -> usize {
        self.actors.len()
    }

    /// Waiting-room entries waiting, over every event, as their actors
    /// last published.
    pub fn room_waiting(&self) -> u64 {
        self.actors
            .iter()
            .map(|a| a.value().changed.published.load().status.room.waiting)
            .sum()
    }

    /// Count of changes since start; equal counts mean nothing changed.
    pub fn change_count(&self) -> u64 {
        self.changes.load(Ordering::Relaxed)
    }

    /// The id the next auto-numbered event gets.
    pub fn next_event_id(&self) -> u64 {
        self.next_event_id.load(Ordering::Relaxed)
    }

    /// The id the next booking gets.
    pub fn next_booking_id(&self) -> u64 {
        self.ids.peek()
    }

    /// Collects every event's state. Each actor hands over its own state
    /// between two of its messages, so every event in it is consistent.
    /// With `last`, each actor stops once it has handed over (the final
    /// snapshot): nothing can change after it.
    pub async fn collect(&self, last: bool) -> Result<Vec<StoredEvent>, Unavailable> {
        use futures_util::stream::{self, StreamExt, TryStreamExt};
        let (ids, _) = self.page(0, usize::MAX);
        // Asked many at a time, not one after another: at 200,000 events a
        // round trip each, in turn, took about 40 s.
        let mut events: Vec<StoredEvent> = stream::iter(ids)
            // An event removed since the listing (a failed create) is skipped.
            .filter_map(|id| std::future::ready(self.get(id)))
            .map(|addr| async move {
                // Wait for room rather than fail: a snapshot may queue behind
                // a burst of bookings, but it must include every event.
                let (reply, answer) = oneshot::channel();
                addr.send(TakeSnapshot { reply, last })
                    .await
                    .map_err(|_| Unavailable)?;
                answer.await.map_err(|_| Unavailable)
            })
            .buffer_unordered(COLLECT_IN_FLIGHT)
            .try_collect()
            .await?;
        events.sort_unstable_by_key(|e| e.event.id);
        Ok(events)
    }

    /// Stops the actor threads of its own; used at shutdown after the last
    /// snapshot (actors on the HTTP workers stop with them).
    pub fn stop(&self) {
        self.placement.stop();
    }
}

/// Sends `msg` built around a fresh reply channel and waits for the answer.
/// A full or closed mailbox fails at once with [`Unavailable`]; a full one
/// is counted in `rejections`.
pub async fn ask<M, T>(
    addr: &Addr<EventActor>,
    rejections: &AtomicU64,
    make: impl FnOnce(Reply<T>) -> M,
) -> Result<T, Unavailable>
where
    M: Message<Result = ()> + Send + 'static,
    EventActor: Handler<M>,
    <EventActor as Actor>::Context: ToEnvelope<EventActor, M>,
{
    let (reply, answer) = oneshot::channel();
    addr.try_send(make(reply)).map_err(|e| {
        if matches!(e, actix::prelude::SendError::Full(_)) {
            rejections.fetch_add(1, Ordering::Relaxed);
        }
        Unavailable
    })?;
    answer.await.map_err(|_| Unavailable)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;
    use std::time::Duration;

    use actix::Arbiter;

    use super::{ask, CreateError, Registry, Unavailable};
    use crate::actors::messages::Read;
    use crate::clock::Clock;
    use crate::domain::{EventId, EventSettings};
    use crate::persistence::journal::{Journal, Lsn};

    fn empty_registry() -> (Arc<Registry>, EventId) {
        let registry = Arc::new(Registry::new(
            1,
            Journal::disabled(Lsn::FIRST),
            Clock::system(),
        ));
        let id = EventId::try_from(1).expect("id");
        (registry, id)
    }

    /// Creates event `id` with 5 tickets.
    fn create(registry: &Registry, id: EventId) {
        registry
            .create(
                Some(id),
                &EventSettings::new(None, 5, 1),
                Default::default(),
                None,
                Clock::system().now(),
            )
            .expect("created");
    }

    /// Which thread the event's actor answers from.
    async fn actor_thread(registry: &Registry, id: EventId) -> Result<String, Unavailable> {
        let addr = registry.get(id).expect("event exists");
        let name = ask(&addr, &AtomicU64::new(0), |reply| Read {
            op: Box::new(|_: &crate::domain::Event| format!("{:?}", std::thread::current().id())),
            reply,
            patience: None,
        })
        .await?;
        Ok(name.value)
    }

    /// An actor placed before its HTTP worker exists is reachable at once;
    /// its messages wait and are answered, on that worker's thread, once
    /// the worker joins.
    #[actix_web::test]
    async fn an_actor_made_before_its_worker_runs_on_it_once_it_joins() {
        let (registry, id) = empty_registry();
        registry.place_on_workers(1);
        create(&registry, id);
        let early = actix_web::rt::spawn({
            let registry = Arc::clone(&registry);
            async move { actor_thread(&registry, id).await }
        });
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
        assert!(!early.is_finished(), "no thread runs the actor yet");

        let worker = Arbiter::new();
        let (joined, thread) = tokio::sync::oneshot::channel();
        let joining = Arc::clone(&registry);
        worker.spawn_fn(move || {
            joining.join_worker();
            let _ = joined.send(format!("{:?}", std::thread::current().id()));
        });
        let worker_thread = thread.await.expect("worker ran");
        let answered = early.await.expect("task").expect("answered");
        assert_eq!(answered, worker_thread, "the actor runs on its worker");
        // Events created after the worker joined go straight to it.
        let later = EventId::try_from(2).expect("id");
        create(&registry, later);
        assert_eq!(
            actor_thread(&registry, later).await.expect("answered"),
            worker_thread
        );
        worker.stop();
    }

    /// A committed change sent to an actor that has not handled it yet
    /// makes the published status not current (a follower's read with
    /// `X-Boxoffice-Min-Index` would get an older status); it is once the
    /// actor has handled it.
    #[actix_web::test]
    async fn the_published_status_is_current_only_once_the_actor_has_what_was_sent() {
        let (registry, id) = empty_registry();
        registry.place_on_workers(1);
        create(&registry, id);
        let (_, current) = registry.published_current(id).expect("event");
        assert!(current, "nothing sent yet");
        // The actor's worker has not joined: the change waits in its mailbox.
        let booked = crate::persistence::journal::Record::Booked {
            event: id,
            booking: crate::domain::BookingIdSequence::starting_at(100).next_id(),
            user: crate::domain::UserId::try_from("u1").expect("user"),
            at: Clock::system().now(),
        };
        registry.apply_committed(Lsn::new(5), booked);
        let (published, current) = registry.published_current(id).expect("event");
        assert!(!current, "published at {:?}, 5 sent", published.lsn());

        let worker = Arbiter::new();
        let joining = Arc::clone(&registry);
        worker.spawn_fn(move || joining.join_worker());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !registry.published_current(id).expect("event").1 {
            assert!(std::time::Instant::now() < deadline, "never current");
            actix_web::rt::time::sleep(Duration::from_millis(10)).await;
        }
        let (published, _) = registry.published_current(id).expect("event");
        assert_eq!(published.lsn(), Lsn::new(5));
        worker.stop();
    }

    /// The final snapshot closes the registry and stops each actor as it
    /// hands over: no event can be created or changed after it.
    #[actix_web::test]
    async fn after_the_last_collect_nothing_is_created_or_answered() {
        let (registry, id) = empty_registry();
        let settings = EventSettings::new(None, 5, 1);
        registry
            .create(
                Some(id),
                &settings,
                Default::default(),
                None,
                Clock::system().now(),
            )
            .expect("created");
        actor_thread(&registry, id).await.expect("answers before");
        registry.close();
        let other = EventId::try_from(2).expect("id");
        assert_eq!(
            registry.create(
                Some(other),
                &settings,
                Default::default(),
                None,
                Clock::system().now(),
            ),
            Err(CreateError::Unavailable(Unavailable))
        );
        let collected = registry.collect(true).await.expect("collected");
        assert_eq!(collected.len(), 1);
        assert_eq!(actor_thread(&registry, id).await, Err(Unavailable));
        registry.stop();
    }
}
