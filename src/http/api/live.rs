//! Live updates as Server-Sent Events ("Live updates" in `docs/API.md`).
//!
//! The cost is bounded by readers, not by changes: an event's actor only
//! bumps a `watch` value after each change (one store, whoever listens),
//! and each open stream, once woken, waits out `live.min_interval_ms` since
//! its last message and then reads its own state once (an O(log n) read
//! for a booking's position), through the same durable-read path as every
//! answer. A thousand changes in one interval cost a stream one read and at
//! most one message; streams of other events are never woken. A message is
//! sent only when what the client sees changed, so its `id` grows strictly
//! within a stream: on a single node the LSN of the newest change the state
//! reflects, on a cluster node the change index of that change (the index
//! of its newest item in the change feed), the same on every node. A new
//! user's first booking moves no existing booking (it joins the end of the
//! queue), so the actor signals it on a second channel that booking streams
//! do not listen to: in an on-sale, where most changes are new bookings,
//! booking streams are not even woken.
//!
//! An on-sale's audience watches the one event everyone books, so the
//! streams of one event share what they can: the status message of a
//! change is serialised once, by the first of its streams to read it, and
//! the others send the same bytes; and the event's streams together send
//! at most `live.max_messages_per_sec` messages a second, so each stream's
//! interval grows with the audience (`min_interval_ms` at least). With
//! 10,000 watchers and the default of 10,000 that is a message a second
//! each: what an on-sale page needs, at a cost that no longer grows with
//! the audience.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web_lab::sse;
use bytestring::ByteString;
use futures_util::{Stream, StreamExt};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use crate::config::LiveSettings;
use crate::domain::{BookingView, DomainError, EntryView, EventId, UserId};
use crate::http::api::dto::{BookingResponse, EntryResponse, StatusResponse};
use crate::http::api::error::ApiError;
use crate::http::transport::connections::AddressShares;
use crate::http::transport::stream::ClientGone;
use crate::persistence::journal::Lsn;
use crate::service::{BoxOffice, ServiceError};

/// The open streams and their limits.
pub struct Live {
    /// Streams open now.
    open: AtomicUsize,
    /// Most streams at once.
    max: usize,
    /// Streams open now, by client address (only with a per-address cap).
    per_ip: AddressShares,
    /// Most streams one client address may hold; 0: no cap.
    max_per_ip: usize,
    /// Streams opened, closed, and refused (past the per-address share,
    /// past `max_streams`) since start, for `/metrics`.
    opened: std::sync::atomic::AtomicU64,
    closed: std::sync::atomic::AtomicU64,
    refused_per_ip: std::sync::atomic::AtomicU64,
    refused_full: std::sync::atomic::AtomicU64,
    /// Least time between two messages of one stream.
    min_interval: Duration,
    /// A keep-alive comment after this long without a message.
    pub keep_alive: Duration,
    /// Set once, at shutdown: every stream ends.
    stop: watch::Sender<bool>,
    /// Messages an event's streams send a second, all together.
    messages_per_sec: u64,
    /// What each watched event's streams share.
    events: dashmap::DashMap<EventId, Arc<EventStreams>>,
}

/// What the streams of one event share.
#[derive(Default)]
struct EventStreams {
    /// Their booking reads, gathered.
    reads: Arc<GatheredReads<BookingView>>,
    /// Their room-entry reads, gathered.
    entry_reads: Arc<GatheredReads<EntryView>>,
    /// The newest status message's data and the change it shows: made by
    /// the first stream that reads that change, sent as is by the others.
    status: std::sync::Mutex<Option<(Lsn, ByteString)>>,
    /// Streams open on the event.
    watching: AtomicUsize,
}

/// Counts one stream as watching its event while it lives.
struct Watching(Arc<EventStreams>);

/// One stream's share of its event's message budget: the event's streams
/// (of every kind) together send at most `live.max_messages_per_sec`.
pub(crate) struct Budget {
    /// Counts the stream among its event's while it lives.
    watching: Watching,
    /// Least time between two messages of one stream.
    pub(crate) min_interval: Duration,
    /// Messages an event's streams send a second, all together.
    messages_per_sec: u64,
}

impl Budget {
    /// The least time between two messages of this stream: `min_interval`,
    /// or longer, so that the event's streams together send at most
    /// `messages_per_sec`.
    pub(crate) fn interval(&self) -> Duration {
        let watching = self.watching.0.watching.load(Ordering::Relaxed) as u64;
        let share =
            Duration::from_micros(watching.saturating_mul(1_000_000) / self.messages_per_sec);
        self.min_interval.max(share)
    }

    /// Waits for the next change, then out the rest of the stream's
    /// interval since its last message (`last_sent`), so whatever changes
    /// until then goes into one message. `None`: the service is stopping,
    /// or the event is gone.
    pub(crate) async fn next_turn(
        &self,
        changes: &mut watch::Receiver<u64>,
        stop: &mut watch::Receiver<bool>,
        last_sent: Instant,
    ) -> Option<()> {
        tokio::select! {
            changed = changes.changed() => changed.ok()?,
            _ = stop.wait_for(|stopping| *stopping) => return None,
        }
        tokio::select! {
            _ = tokio::time::sleep_until(last_sent + self.interval()) => Some(()),
            _ = stop.wait_for(|stopping| *stopping) => None,
        }
    }

    /// Waits `min_interval` before a read is tried again (a full mailbox,
    /// the disk refusing), so the last state still reaches the client.
    /// `None`: the service is stopping.
    pub(crate) async fn pause(&self, stop: &mut watch::Receiver<bool>) -> Option<()> {
        tokio::select! {
            _ = tokio::time::sleep(self.min_interval) => Some(()),
            _ = stop.wait_for(|stopping| *stopping) => None,
        }
    }
}

impl Watching {
    fn new(shared: Arc<EventStreams>) -> Self {
        shared.watching.fetch_add(1, Ordering::Relaxed);
        Self(shared)
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.0.watching.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Live {
    /// No streams yet.
    pub fn new(settings: &LiveSettings) -> Self {
        Self {
            open: AtomicUsize::new(0),
            max: settings.max_streams,
            per_ip: AddressShares::new(settings.max_streams_per_ip),
            max_per_ip: settings.max_streams_per_ip,
            opened: Default::default(),
            closed: Default::default(),
            refused_per_ip: Default::default(),
            refused_full: Default::default(),
            min_interval: Duration::from_millis(settings.min_interval_ms),
            keep_alive: Duration::from_secs(settings.keep_alive_secs),
            stop: watch::Sender::new(false),
            messages_per_sec: settings.max_messages_per_sec.max(1),
            events: dashmap::DashMap::new(),
        }
    }

    /// A place in event `event`'s message budget for one more stream.
    pub(crate) fn budget(&self, event: EventId) -> Budget {
        Budget {
            watching: Watching::new(self.shared(event)),
            min_interval: self.min_interval,
            messages_per_sec: self.messages_per_sec,
        }
    }

    /// What event `event`'s streams share.
    fn shared(&self, event: EventId) -> Arc<EventStreams> {
        Arc::clone(
            self.events
                .entry(event)
                .or_insert_with(|| Arc::new(EventStreams::default()))
                .value(),
        )
    }

    /// Streams open now.
    pub fn open_streams(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Ends every stream (their replies complete) and refuses new ones, so
    /// a graceful stop does not wait on them.
    pub fn stop_all(&self) {
        self.stop.send_replace(true);
    }

    /// Turns true when every stream must end.
    pub(crate) fn stopping(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// A place for one more stream from `client`, or 429 when that
    /// address holds its share, or 503 when every place is taken. (The
    /// change feed's streams take theirs here too.)
    pub(crate) fn admit(
        self: &Arc<Self>,
        client: Option<std::net::IpAddr>,
    ) -> Result<Slot, ApiError> {
        if *self.stop.borrow() {
            return Err(ApiError::Unavailable);
        }
        let key = match client {
            Some(ip) if self.max_per_ip > 0 => match self.per_ip.take(ip) {
                Some(key) => Some(key),
                None => {
                    self.refused_per_ip.fetch_add(1, Ordering::Relaxed);
                    return Err(ApiError::RateLimited(1));
                }
            },
            _ => None,
        };
        // From here the slot owns the per-address count: dropping it on a
        // refusal below gives that back too.
        let mut slot = Slot {
            live: Arc::clone(self),
            key,
            counted: false,
        };
        let taken = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            });
        match taken {
            Ok(_) => {
                slot.counted = true;
                self.opened.fetch_add(1, Ordering::Relaxed);
                Ok(slot)
            }
            Err(_) => {
                self.refused_full.fetch_add(1, Ordering::Relaxed);
                Err(ApiError::StreamsFull(self.max))
            }
        }
    }

    /// Writes the live-stream families.
    pub fn encode(
        &self,
        encoder: &mut boxoffice_metrics::prometheus_client::encoding::DescriptorEncoder,
    ) -> std::fmt::Result {
        use boxoffice_metrics::{counter, gauge};
        gauge(
            encoder,
            "boxoffice_live_streams",
            "Server-Sent Event streams open",
            self.open_streams() as i64,
        )?;
        counter(
            encoder,
            "boxoffice_live_streams_opened",
            "Server-Sent Event streams opened since start",
            &self.opened,
        )?;
        counter(
            encoder,
            "boxoffice_live_streams_closed",
            "Server-Sent Event streams ended since start (client gone, event gone, or stop)",
            &self.closed,
        )?;
        counter(
            encoder,
            "boxoffice_live_streams_refused_per_ip",
            "Streams refused with 429: the client address held live.max_streams_per_ip",
            &self.refused_per_ip,
        )?;
        counter(
            encoder,
            "boxoffice_live_streams_refused_full",
            "Streams refused with 503: live.max_streams were open",
            &self.refused_full,
        )
    }

    /// A stream of `watched`: its state at once, then each change.
    /// 404 when the event (or the user's booking) does not exist.
    pub async fn open(
        self: &Arc<Self>,
        service: Arc<BoxOffice>,
        watched: Watched,
        client: Option<std::net::IpAddr>,
        gone: Option<Arc<ClientGone>>,
    ) -> Result<impl Stream<Item = sse::Event> + use<>, ApiError> {
        let slot = self.admit(client)?;
        let signals = service
            .changes(watched.event())
            .ok_or(ApiError::EventNotFound)?;
        // A booking can only move when an existing booking moves; an
        // entry when an existing entry moves.
        let mut changes = match watched {
            Watched::Event(_) => signals.any,
            Watched::Booking(..) => signals.bookings,
            Watched::Entry(..) => signals.room,
        };
        changes.borrow_and_update();
        let budget = self.budget(watched.event());
        let (json, lsn) = watched.read(&service, &budget.watching.0).await?;
        let first_id = service.live_id(watched.event(), lsn);
        let first = watched.message(json.clone(), first_id);
        let stream = Watch {
            budget,
            service,
            watched,
            changes,
            stop: self.stop.subscribe(),
            last: json,
            last_id: first_id,
            last_sent: Instant::now(),
            first: Some(first),
            _slot: slot,
        };
        Ok(futures_util::stream::unfold(stream, Watch::next).take_until(client_gone(gone)))
    }
}

/// Resolves once the client has gone: a stream (and its place) ends then,
/// not at its next write. Never, without a connection to watch.
pub(crate) async fn client_gone(gone: Option<Arc<ClientGone>>) {
    match gone {
        Some(gone) => gone.wait().await,
        None => std::future::pending().await,
    }
}

/// Holds one of [`Live`]'s places (and its address's share) until the
/// stream is dropped.
pub(crate) struct Slot {
    /// Whose place it is.
    live: Arc<Live>,
    /// The client address key it counts under, with a per-address cap.
    key: Option<std::net::IpAddr>,
    /// Whether it holds one of the `max_streams` places.
    counted: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.counted {
            self.live.open.fetch_sub(1, Ordering::AcqRel);
            self.live.closed.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(key) = self.key {
            self.live.per_ip.give_back(key);
        }
    }
}

/// What a stream shows.
pub enum Watched {
    /// An event's status.
    Event(EventId),
    /// One user's booking at an event.
    Booking(EventId, UserId),
    /// One user's waiting-room entry at an event.
    Entry(EventId, UserId),
}

impl Watched {
    fn event(&self) -> EventId {
        match self {
            Self::Event(id) | Self::Booking(id, _) | Self::Entry(id, _) => *id,
        }
    }

    /// The JSON a client sees now, and the LSN it reflects.
    async fn read(
        &self,
        service: &Arc<BoxOffice>,
        shared: &EventStreams,
    ) -> Result<(ByteString, Lsn), ApiError> {
        let encode = |e: serde_json::Error| ApiError::Internal(format!("live message: {e}"));
        match self {
            Self::Event(id) => {
                let (status, lsn) = service.status_at(*id).await?;
                let mut newest = shared.status.lock().unwrap_or_else(|p| p.into_inner());
                match &*newest {
                    // Another stream of the event made this message already.
                    Some((at, json)) if *at == lsn => Ok((json.clone(), lsn)),
                    _ => {
                        let json = ByteString::from(
                            serde_json::to_string(&StatusResponse::from(status)).map_err(encode)?,
                        );
                        // A slower stream's older change never replaces a newer one.
                        if newest.as_ref().is_none_or(|(at, _)| *at < lsn) {
                            *newest = Some((lsn, json.clone()));
                        }
                        Ok((json, lsn))
                    }
                }
            }
            Self::Booking(id, user) => {
                let (booking, lsn) = shared
                    .reads
                    .read(service, *id, user, |service, id, users| async move {
                        service.bookings_at(id, users).await
                    })
                    .await?;
                let json = serde_json::to_string(&BookingResponse {
                    booking: booking.into(),
                })
                .map_err(encode)?;
                Ok((ByteString::from(json), lsn))
            }
            Self::Entry(id, user) => {
                let (entry, lsn) = shared
                    .entry_reads
                    .read(service, *id, user, |service, id, users| async move {
                        service.room_entries_at(id, users).await
                    })
                    .await?;
                let json = serde_json::to_string(&EntryResponse::from(entry)).map_err(encode)?;
                Ok((ByteString::from(json), lsn))
            }
        }
    }

    fn message(&self, json: ByteString, id: u64) -> sse::Event {
        let kind = match self {
            Self::Event(_) => "status",
            Self::Booking(..) => "booking",
            Self::Entry(..) => "entry",
        };
        sse::Data::new(json).event(kind).id(id.to_string()).into()
    }
}

/// Booking (or room-entry) reads of one event's streams, gathered so that
/// the streams woken by one change ask the event's actor once, not once
/// each: at 10,000 streams that is the difference between 100,000 actor
/// messages a second and a few hundred.
struct GatheredReads<V> {
    /// Users to read, with where each answer goes.
    pending: std::sync::Mutex<Vec<(UserId, ReadReply<V>)>>,
}

impl<V> Default for GatheredReads<V> {
    fn default() -> Self {
        Self {
            pending: std::sync::Mutex::new(Vec::new()),
        }
    }
}

type ReadReply<V> = oneshot::Sender<Result<(V, Lsn), ApiError>>;

/// What one gathered read of many users answers.
type Batch<V> = Result<(Vec<Result<V, DomainError>>, Lsn), ServiceError>;

impl<V: Send + 'static> GatheredReads<V> {
    /// `user`'s view, read by `fetch` together with whatever other streams
    /// of the event ask for in the same turn.
    async fn read<F, Fut>(
        self: &Arc<Self>,
        service: &Arc<BoxOffice>,
        id: EventId,
        user: &UserId,
        fetch: F,
    ) -> Result<(V, Lsn), ApiError>
    where
        F: FnOnce(Arc<BoxOffice>, EventId, Vec<UserId>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Batch<V>> + Send,
    {
        let (reply, answer) = oneshot::channel();
        let first = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.push((user.clone(), reply));
            pending.len() == 1
        };
        if first {
            let reads = Arc::clone(self);
            let service = Arc::clone(service);
            actix_web::rt::spawn(async move {
                // Let the other streams woken by the same change join.
                tokio::task::yield_now().await;
                let batch =
                    std::mem::take(&mut *reads.pending.lock().unwrap_or_else(|p| p.into_inner()));
                let (users, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                match fetch(service, id, users).await {
                    Ok((views, lsn)) => {
                        for (reply, view) in replies.into_iter().zip(views) {
                            let _ = reply.send(view.map(|b| (b, lsn)).map_err(ApiError::from));
                        }
                    }
                    Err(e) => {
                        let gone = matches!(e, ServiceError::EventNotFound);
                        for reply in replies {
                            let _ = reply.send(Err(if gone {
                                ApiError::EventNotFound
                            } else {
                                ApiError::Unavailable
                            }));
                        }
                    }
                }
            });
        }
        answer.await.map_err(|_| ApiError::Unavailable)?
    }
}

/// One open stream.
struct Watch {
    /// Its share of the event's message budget, and what the event's
    /// streams share (its booking reads are gathered there).
    budget: Budget,
    service: Arc<BoxOffice>,
    watched: Watched,
    /// Wakes after each change that may alter what the stream shows.
    changes: watch::Receiver<u64>,
    /// Turns true at shutdown.
    stop: watch::Receiver<bool>,
    /// The JSON of the last message.
    last: ByteString,
    /// The id of the last message.
    last_id: u64,
    /// When the last message went out.
    last_sent: Instant,
    /// The initial message, not yet sent.
    first: Option<sse::Event>,
    /// Released when the stream is dropped (the client went away or it ended).
    _slot: Slot,
}

impl Watch {
    /// The next message; `None` ends the stream (shutdown, the event gone,
    /// or the booking gone).
    async fn next(mut self) -> Option<(sse::Event, Self)> {
        if let Some(first) = self.first.take() {
            return Some((first, self));
        }
        loop {
            self.budget
                .next_turn(&mut self.changes, &mut self.stop, self.last_sent)
                .await?;
            // Seen before reading, so a change after the read wakes us again.
            self.changes.borrow_and_update();
            loop {
                match self
                    .watched
                    .read(&self.service, &self.budget.watching.0)
                    .await
                {
                    Ok((json, lsn)) => {
                        if json == self.last {
                            break;
                        }
                        // Never at or below the last id, whatever the log
                        // says (a cluster node's ids are change indexes).
                        let id = self
                            .service
                            .live_id(self.watched.event(), lsn)
                            .max(self.last_id + 1);
                        let message = self.watched.message(json.clone(), id);
                        self.last_id = id;
                        self.last = json;
                        self.last_sent = Instant::now();
                        return Some((message, self));
                    }
                    Err(ApiError::EventNotFound | ApiError::BookingNotFound) => return None,
                    Err(_) => self.budget.pause(&mut self.stop).await?,
                }
            }
        }
    }
}
