//! The service layer: every operation of the booking service, between the
//! HTTP layer and the event actors.
//!
//! [`BoxOffice`] finds an event's actor, sends it the operation, and holds
//! the answer back until everything it shows is durable, so no client sees
//! a change a crash could take away. It also checks what depends on
//! configuration (limits) and creates events. Handlers only parse, call one
//! method here and shape the reply; [`ServiceError`] is mapped to HTTP in
//! one place (`http::api::error`).

use std::sync::Arc;

use actix::Addr;

use crate::actors::messages::{ActorError, Durable, MakeChange};
use crate::actors::{ask, CreateError, EventActor, Registry, Unavailable};
use crate::config::LimitSettings;
use crate::domain::seating::SeatShape;
use crate::domain::{
    BookingChange, BookingView, CreateKey, DomainError, EntryView, Event, EventChange, EventId,
    EventPatch, EventSettings, EventStatus, Limit, RoomPatch, RoomSettings, Timestamp, UserId,
};
use crate::persistence::change_log::{wait_durable, ChangeLog};
use crate::persistence::journal::Lsn;

mod reads;
mod seats;
pub use reads::READ_PATIENCE;
pub use seats::{SeatAsk, SeatMap};

/// Why an operation was refused. Nothing changed when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// The domain said no.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// A value outside what this deployment's limits allow.
    #[error("{field} {message}")]
    Invalid {
        /// The field, as clients name it.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// No such event.
    #[error("event not found")]
    EventNotFound,
    /// The requested event id is taken.
    #[error("event {0} already exists")]
    EventExists(EventId),
    /// Every automatic event id is taken.
    #[error("no event ids left")]
    IdsExhausted,
    /// An idempotency key already used, within its day, for another request.
    #[error("this Idempotency-Key was used for another request")]
    IdempotencyConflict,
    /// The change cannot be made durable, or the event's mailbox is full.
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

impl From<ActorError> for ServiceError {
    fn from(e: ActorError) -> Self {
        match e {
            ActorError::Domain(d) => d.into(),
            ActorError::Unavailable(u) => Self::Unavailable(u),
        }
    }
}

impl From<CreateError> for ServiceError {
    fn from(e: CreateError) -> Self {
        match e {
            CreateError::Exists(id) => Self::EventExists(id),
            CreateError::IdsExhausted => Self::IdsExhausted,
            CreateError::Unavailable(u) => Self::Unavailable(u),
            CreateError::Domain(d) => d.into(),
        }
    }
}

/// What a client asks for when creating an event; `None` takes the default.
#[derive(Debug, Clone, Default)]
pub struct NewEvent {
    /// The id to create it under, else the next free one.
    pub id: Option<EventId>,
    /// Display name.
    pub name: Option<String>,
    /// Tickets for sale.
    pub total_tickets: u64,
    /// Per-user limit.
    pub max_per_user: Option<u32>,
    /// Hold time in seconds.
    pub hold_secs: Option<u32>,
    /// Offer time in seconds.
    pub offer_secs: Option<u32>,
    /// Whether sales are open.
    pub sales_open: Option<bool>,
    /// Start of sales.
    pub sales_start: Option<Timestamp>,
    /// End of sales.
    pub sales_end: Option<Timestamp>,
    /// The waiting room's settings (`None`s take the defaults: no room).
    pub room: RoomPatch,
    /// A seated event's map: its seats are the tickets (`total_tickets`
    /// is then 0 when the client gave none, else must equal their count).
    pub seating: Option<SeatShape>,
}

type Result<T> = std::result::Result<T, ServiceError>;

/// How a wait for a change to become durable ended.
enum Settled {
    Durable,
    /// It never will be (a fault, a lost leadership).
    Failed,
    /// Not within the log's bound; it still may be.
    Unknown,
}

/// The booking service.
pub struct BoxOffice {
    /// Every event's actor.
    registry: Arc<Registry>,
    /// Answers wait on it until what they show is durable.
    log: Arc<dyn ChangeLog>,
    /// Bounds from configuration.
    limits: LimitSettings,
    /// Keyed creates, one at a time: a repeat waits for the first.
    keyed_creates: tokio::sync::Mutex<()>,
    /// Seat maps' reply bodies, made once per change.
    seat_bodies: seats::SeatBodies,
}

impl BoxOffice {
    /// The service over `registry`, whose actors hand their changes to `log`.
    pub fn new(registry: Arc<Registry>, log: Arc<dyn ChangeLog>, limits: LimitSettings) -> Self {
        registry.limit_create_keys(limits.max_create_keys);
        Self {
            registry,
            log,
            limits,
            keyed_creates: tokio::sync::Mutex::new(()),
            seat_bodies: seats::SeatBodies::default(),
        }
    }

    /// The id a live stream gives event `event`'s state as of `lsn`.
    pub fn live_id(&self, event: EventId, lsn: Lsn) -> u64 {
        self.log.live_id(event, lsn)
    }

    /// (durable, applied): the newest change held durably and the newest
    /// handed to the change log, as journal positions.
    pub fn log_position(&self) -> (u64, u64) {
        let applied = self.log.next_lsn().prev();
        let durable = self.log.state().durable.min(applied);
        (durable.get(), applied.get())
    }

    /// The first of [`Self::log_position`], read without the submitters'
    /// lock while the journal is on (its durable mark never passes the last
    /// LSN handed out): every reply carries it, so it is on the hot path.
    pub fn durable_position(&self) -> u64 {
        let durable = self.log.state().durable;
        if durable == crate::persistence::journal::Lsn::MAX {
            return self.log_position().0;
        }
        durable.get()
    }

    /// Waits until the journal position `min` is durable, up to `wait`
    /// (a position never handed out is never waited for); whether it is.
    pub async fn wait_for_position(&self, min: u64, wait: std::time::Duration) -> bool {
        if min > self.log.next_lsn().prev().get() {
            return false;
        }
        let lsn = crate::persistence::journal::Lsn::new(min);
        tokio::time::timeout(wait, wait_durable(&*self.log, lsn))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The configured limits.
    pub fn limits(&self) -> &LimitSettings {
        &self.limits
    }

    /// Creates an event and answers once its creation is durable.
    ///
    /// With an idempotency `key`, a create repeated within a day answers
    /// the first create's event as it was created and creates nothing; the
    /// same key with another request is [`ServiceError::IdempotencyConflict`].
    /// Keyed creates go one at a time, so concurrent repeats make one event.
    pub async fn create_event(&self, new: NewEvent, key: Option<String>) -> Result<EventStatus> {
        let max_tickets = self.limits.max_tickets_per_event;
        let total_tickets = match &new.seating {
            Some(shape) => {
                let seats = shape.check(self.limits.max_seats_per_event)?;
                if new.total_tickets != 0 && new.total_tickets != seats {
                    return Err(invalid(
                        "totalTickets",
                        format!("must equal the seat map's {seats} seats, or be left out"),
                    ));
                }
                seats
            }
            None if new.total_tickets == 0 || new.total_tickets > max_tickets => {
                return Err(invalid(
                    "totalTickets",
                    format!("must be an integer from 1 to {max_tickets}"),
                ));
            }
            None => new.total_tickets,
        };
        let max_per_user = match new.max_per_user {
            Some(max) => self.check_max_per_user(max)?,
            None => self.limits.max_tickets_per_user.min(10),
        };
        let settings = EventSettings {
            name: new.name,
            total_tickets,
            max_per_user,
            hold_secs: new.hold_secs.unwrap_or(0),
            offer_secs: new.offer_secs.unwrap_or(0),
            sales_open: new.sales_open.unwrap_or(true),
            sales_start: new.sales_start,
            sales_end: new.sales_end,
        };
        let room = new.room.applied_to(RoomSettings::default());
        let requested = new.id;
        let Some(key) = key else {
            return self
                .create(requested, &settings, room, new.seating.as_ref(), None)
                .await;
        };
        let _one_at_a_time = self.keyed_creates.lock().await;
        let epoch = self.log.state().epoch;
        if let Some(first) = self.registry.create_key(&key) {
            // The key keeps the settings; a seat map is the event's own.
            let shape = match self
                .read(first.event, |e| {
                    e.seating().map(|s| s.layout().shape.clone())
                })
                .await
            {
                Ok(shape) => shape,
                Err(ServiceError::EventNotFound) => None,
                Err(other) => return Err(other),
            };
            if !first.same_request(requested, &settings, room) || shape != new.seating {
                return self
                    .confirmed(epoch, Err(ServiceError::IdempotencyConflict))
                    .await;
            }
            // An event is made from its settings (and map) alone: this is
            // the status the first reply showed.
            let repeated = match &shape {
                Some(shape) => {
                    Event::created_seated(first.event, &first.settings, first.room, shape, first.at)
                }
                None => Event::create_with_room(first.event, first.settings, first.room, first.at)
                    .map(|(event, _)| event),
            }
            .map(|event| event.status())
            .map_err(ServiceError::from);
            return self.confirmed(epoch, repeated).await;
        }
        self.create(requested, &settings, room, new.seating.as_ref(), Some(key))
            .await
    }

    /// Creates an event (remembering `key` with it) and answers once both
    /// are durable. An event whose creation is not made durable is removed;
    /// a key that is not is forgotten (the event, on disk, stays).
    async fn create(
        &self,
        requested: Option<EventId>,
        settings: &EventSettings,
        room: RoomSettings,
        seating: Option<&SeatShape>,
        key: Option<String>,
    ) -> Result<EventStatus> {
        let max_events = self.limits.max_events;
        let epoch = self.log.state().epoch;
        if self.registry.event_count() as u64 >= max_events {
            let full = DomainError::LimitReached {
                what: Limit::Events,
                limit: max_events,
            };
            return self.confirmed(epoch, Err(full.into())).await;
        }
        let now = self.registry.clock().now();
        let (status, lsn) = match self
            .registry
            .create(requested, settings, room, seating, now)
        {
            Ok(created) => created,
            Err(CreateError::Unavailable(e)) => return Err(e.into()),
            Err(refused) => return self.confirmed(epoch, Err(refused.into())).await,
        };
        // Handed over right behind the creation, so a crash keeps the key
        // only with its event.
        let key_lsn = key.as_ref().map(|key| {
            self.registry.remember_create_key(CreateKey {
                key: key.clone(),
                requested,
                settings: settings.clone(),
                event: status.id,
                at: now,
                room,
            })
        });
        match self.settled(lsn).await {
            Settled::Durable => {}
            Settled::Failed => {
                self.forget_created(status.id, lsn, key.as_deref());
                return Err(Unavailable.into());
            }
            Settled::Unknown => {
                // Not known yet: the creation stays while it may still be
                // committed, and goes if the log says it never will be.
                let (log, registry) = (Arc::clone(&self.log), Arc::clone(&self.registry));
                let (id, key) = (status.id, key.clone());
                tokio::spawn(async move {
                    if wait_durable(&*log, lsn).await.is_err() {
                        forget_created(&registry, id, lsn, key.as_deref());
                    }
                });
                return Err(Unavailable.into());
            }
        }
        if let Some(key_lsn) = key_lsn {
            let kept = match key_lsn {
                Ok(key_lsn) => matches!(self.settled(key_lsn).await, Settled::Durable),
                Err(_) => false,
            };
            if !kept {
                // The event is on disk and stays; only its key was lost to
                // a disk fault in between. The client is told nothing is
                // known (503); its retry makes a second event, which only
                // this narrow window allows.
                if let Some(key) = &key {
                    self.registry.forget_create_key(key);
                }
                return Err(Unavailable.into());
            }
        }
        Ok(status)
    }

    /// Books `quantity` tickets at event `id` for `user`.
    pub async fn book(&self, id: EventId, user: UserId, quantity: u32) -> Result<BookingView> {
        let max = self.limits.max_bookings_per_event;
        self.change(id, move |event, ids, now| {
            if event.is_new_user(&user) && event.record_count() as u64 >= max {
                return Err(DomainError::LimitReached {
                    what: Limit::BookingsPerEvent,
                    limit: max,
                });
            }
            event.book(&user, quantity, ids, now)
        })
        .await
    }

    /// Cancels `user`'s active booking at event `id`.
    pub async fn cancel(&self, id: EventId, user: UserId) -> Result<BookingChange> {
        self.change(id, move |event, _, now| event.cancel(&user, now))
            .await
    }

    /// Lowers the quantity of `user`'s active booking at event `id`.
    pub async fn lower_quantity(
        &self,
        id: EventId,
        user: UserId,
        quantity: u32,
    ) -> Result<BookingChange> {
        self.change(id, move |event, _, now| {
            event.lower_quantity(&user, quantity, now)
        })
        .await
    }

    /// Confirms `user`'s held booking at event `id`; a confirmed one is
    /// answered as it is.
    pub async fn confirm(&self, id: EventId, user: UserId) -> Result<BookingView> {
        self.change(id, move |event, _, now| event.confirm(&user, now))
            .await
    }

    /// Changes the settings of event `id` and its room's.
    pub async fn update_event(
        &self,
        id: EventId,
        patch: EventPatch,
        room: RoomPatch,
    ) -> Result<EventChange> {
        if let Some(max) = patch.max_per_user {
            self.check_max_per_user(max)?;
        }
        let max_tickets = self.limits.max_tickets_per_event;
        if patch
            .total_tickets
            .is_some_and(|t| t == 0 || t > max_tickets)
        {
            return Err(invalid(
                "totalTickets",
                format!("must be an integer from 1 to {max_tickets}"),
            ));
        }
        self.change(id, move |event, _, now| {
            event.update_with_room(patch, room, now)
        })
        .await
    }

    /// `user` joins event `id`'s waiting room (an active entry is answered
    /// as it is).
    pub async fn join_room(&self, id: EventId, user: UserId) -> Result<EntryView> {
        let max = self.limits.max_bookings_per_event;
        self.change(id, move |event, _, now| {
            let room = event.room();
            if room.find(user.as_str()).is_none() && room.entry_count() as u64 >= max {
                return Err(DomainError::LimitReached {
                    what: Limit::BookingsPerEvent,
                    limit: max,
                });
            }
            event.join_room(&user, now)
        })
        .await
    }

    /// `user` leaves event `id`'s waiting room.
    pub async fn leave_room(&self, id: EventId, user: UserId) -> Result<EntryView> {
        self.change(id, move |event, _, now| event.leave_room(&user, now))
            .await
    }

    /// Wakes after every change to event `id` (`None`: no such event).
    pub fn changes(&self, id: EventId) -> Option<crate::actors::LiveReceivers> {
        self.registry.changes(id)
    }

    /// Why changes cannot be made durable right now, if they cannot.
    pub fn fault(&self) -> Option<String> {
        // A cluster follower refuses changes by design; it is healthy, and
        // serves reads and live streams.
        match &self.log.state().fault {
            Some(crate::persistence::journal::Fault::Failing(why)) => Some(why.clone()),
            Some(crate::persistence::journal::Fault::NotLeader) | None => None,
        }
    }

    /// Sends a change to event `id`'s actor and waits until it is durable.
    /// An answer that made no change of its own (a repeated booking, a
    /// refusal, an unknown event) is decided on the state as it stands and
    /// goes out only once that state is confirmed as the cluster's
    /// ([`Self::confirmed`]): a deposed leader must not answer from its old
    /// state.
    async fn change<T: Send + 'static>(
        &self,
        id: EventId,
        op: impl FnOnce(
                &mut crate::domain::Event,
                &crate::domain::BookingIdSequence,
                Timestamp,
            ) -> std::result::Result<crate::domain::Outcome<T>, DomainError>
            + Send
            + 'static,
    ) -> Result<T> {
        let epoch = self.log.state().epoch;
        let addr = match self.actor_of(id) {
            Ok(addr) => addr,
            Err(unknown) => return self.confirmed(epoch, Err(unknown)).await,
        };
        let op = Box::new(op);
        let answer = ask(
            &addr,
            &self.registry.counters().mailbox_rejections,
            |reply| MakeChange { op, reply },
        )
        .await?;
        match answer {
            Ok(answer) if answer.made => self.durable(answer).await,
            Ok(answer) => {
                let value = self.durable(answer).await;
                self.confirmed(epoch, value).await
            }
            Err(ActorError::Domain(refused)) => self.confirmed(epoch, Err(refused.into())).await,
            Err(ActorError::Unavailable(e)) => Err(e.into()),
        }
    }

    /// `answer`, decided on this node's state without a change of its own,
    /// once the change log confirms that state is still the authority
    /// ([`ChangeLog::confirm`]: at once on a single node, a majority's
    /// acknowledgement on a cluster leader) and no epoch began since
    /// `epoch` (a leadership lost and won again in between); else 503
    /// (nothing was changed, a client may retry), never a stale decision.
    async fn confirmed<T>(&self, epoch: u64, answer: Result<T>) -> Result<T> {
        if self.log.confirm().await.is_err() || self.log.state().epoch != epoch {
            return Err(Unavailable.into());
        }
        answer
    }

    fn forget_created(&self, id: EventId, lsn: Lsn, key: Option<&str>) {
        forget_created(&self.registry, id, lsn, key);
    }

    fn actor_of(&self, id: EventId) -> Result<Addr<EventActor>> {
        self.registry.get(id).ok_or(ServiceError::EventNotFound)
    }

    /// Holds an answer back until everything it shows is durable; 503
    /// once the log's bound has passed without (see [`Self::settled`]).
    async fn durable<T>(&self, answer: Durable<T>) -> Result<T> {
        match self.settled(answer.lsn).await {
            Settled::Durable => Ok(answer.value),
            Settled::Failed | Settled::Unknown => Err(Unavailable.into()),
        }
    }

    /// Waits until `lsn` is durable or never will be, at most the log's
    /// [`ChangeLog::wait_bound`]: on a cluster leader cut off from the
    /// majority a commit may not come until the partition heals, and its
    /// clients are answered within the bound instead (the change, if it
    /// is committed after all, stays; if not, its actor undoes it).
    async fn settled(&self, lsn: Lsn) -> Settled {
        let waited = wait_durable(&*self.log, lsn);
        let outcome = match self.log.wait_bound() {
            Some(bound) => match tokio::time::timeout(bound, waited).await {
                Ok(outcome) => outcome,
                Err(_) => return Settled::Unknown,
            },
            None => waited.await,
        };
        match outcome {
            Ok(()) => Settled::Durable,
            Err(_) => Settled::Failed,
        }
    }

    fn check_max_per_user(&self, max: u32) -> Result<u32> {
        let limit = self.limits.max_tickets_per_user;
        if max == 0 || max > limit {
            return Err(invalid(
                "maxPerUser",
                format!("must be an integer from 1 to {limit}"),
            ));
        }
        Ok(max)
    }
}

/// Removes event `id`, created at `lsn`, whose creation will never be
/// durable: never announced, its record not on disk, it must not exist (a
/// fault abandons everything queued after it, the key's record too).
fn forget_created(registry: &Registry, id: EventId, lsn: Lsn, key: Option<&str>) {
    registry.remove_created_at(id, lsn);
    if let Some(key) = key {
        registry.forget_create_key(key);
    }
}

fn invalid(field: &'static str, message: String) -> ServiceError {
    ServiceError::Invalid { field, message }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::clock::Clock;
    use crate::persistence::change_log::Confirming;
    use crate::persistence::durable_waiters::DurableWaiters;
    use crate::persistence::journal::{Journal, JournalState, Record, Refused};
    use tokio::sync::watch;

    /// A journal whose authority over its state can be withdrawn, as a
    /// cluster leader's is once a majority follows a newer term.
    struct Deposable {
        journal: Arc<Journal>,
        deposed: AtomicBool,
    }

    impl ChangeLog for Deposable {
        fn submit(&self, record: Record, epoch: u64) -> std::result::Result<Lsn, Refused> {
            self.journal.submit(record, epoch)
        }
        fn next_lsn(&self) -> Lsn {
            self.journal.next_lsn()
        }
        fn state(&self) -> watch::Ref<'_, JournalState> {
            self.journal.state()
        }
        fn watch(&self) -> watch::Receiver<JournalState> {
            self.journal.watch()
        }
        fn waiters(&self) -> &DurableWaiters {
            self.journal.waiters()
        }
        fn confirm(&self) -> Confirming<'_> {
            let deposed = self.deposed.load(Ordering::SeqCst);
            Box::pin(std::future::ready(if deposed {
                Err(Refused)
            } else {
                Ok(())
            }))
        }
    }

    fn service() -> (BoxOffice, Arc<Deposable>) {
        let journal = Journal::disabled(Lsn::FIRST);
        let log = Arc::new(Deposable {
            journal: Arc::clone(&journal),
            deposed: AtomicBool::new(false),
        });
        let registry = Arc::new(Registry::with_log(
            1,
            journal,
            Arc::clone(&log) as Arc<dyn ChangeLog>,
            Clock::system(),
        ));
        let limits = crate::config::Settings::default().limits;
        (
            BoxOffice::new(registry, Arc::clone(&log) as Arc<dyn ChangeLog>, limits),
            log,
        )
    }

    fn user(name: &str) -> UserId {
        UserId::try_from(name).expect("user id")
    }

    /// Issue 35, finding 1: a node whose authority cannot be confirmed
    /// answers nothing its state decided without a change of its own (a
    /// rebook, a refusal, an unknown event, a taken id, a repeated keyed
    /// create); a change of its own is confirmed by its own commit.
    #[actix_web::test]
    async fn answers_that_make_no_change_wait_for_a_confirmed_authority() {
        let (service, log) = service();
        let new = |id: Option<u64>| NewEvent {
            id: id.map(|id| EventId::try_from(id).expect("id")),
            total_tickets: 1,
            ..NewEvent::default()
        };
        let event = service
            .create_event(new(Some(1)), Some("k".into()))
            .await
            .expect("created")
            .id;
        service.book(event, user("x"), 1).await.expect("booked");
        service.book(event, user("q"), 1).await.expect("waits");

        log.deposed.store(true, Ordering::SeqCst);
        fn unavailable<T>(r: std::result::Result<T, ServiceError>) -> bool {
            matches!(r, Err(ServiceError::Unavailable(_)))
        }
        assert!(
            unavailable(service.book(event, user("x"), 1).await),
            "a rebook"
        );
        assert!(
            unavailable(service.cancel(event, user("nobody")).await),
            "a refusal"
        );
        let unknown = EventId::try_from(9).expect("id");
        assert!(
            unavailable(service.book(unknown, user("x"), 1).await),
            "an unknown event"
        );
        assert!(
            unavailable(service.create_event(new(Some(1)), None).await),
            "a taken id"
        );
        assert!(
            unavailable(service.create_event(new(Some(1)), Some("k".into())).await),
            "a repeated keyed create"
        );
        // A change of its own: its commit is its confirmation.
        let promoted = service.cancel(event, user("x")).await.expect("cancelled");
        assert!(!promoted.promotions.is_empty());

        log.deposed.store(false, Ordering::SeqCst);
        let rebook = service
            .book(event, user("q"), 1)
            .await
            .expect("a rebook, confirmed");
        assert_eq!(rebook.status, crate::domain::BookingStatus::Confirmed);
        assert!(matches!(
            service.cancel(event, user("nobody")).await,
            Err(ServiceError::Domain(_))
        ));
    }
}
