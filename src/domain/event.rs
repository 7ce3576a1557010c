//! One event: its tickets, its bookings (one record per user) and its queue.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};
use serde::{Deserialize, Serialize};

use super::chunked::ChunkedVec;
use super::ids::{BookingId, BookingIdSequence, EventId, Timestamp, UserId};
use super::queue::WaitingQueue;
use super::DomainError;

/// Where a booking stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BookingStatus {
    /// Holds a ticket.
    Confirmed,
    /// In the queue, waiting for a ticket to free up.
    Waiting,
    /// Given up; kept so the user can still read their last booking.
    Cancelled,
}

impl BookingStatus {
    /// The name clients see.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::Waiting => "waiting",
            Self::Cancelled => "cancelled",
        }
    }

    /// Confirmed or waiting: the user may hold only one such booking.
    pub fn is_active(self) -> bool {
        !matches!(self, Self::Cancelled)
    }
}

/// A user's latest booking at one event, as stored.
///
/// A user who cancels and books again gets a new id in the same record: only
/// the latest booking is ever shown, so older ones need no room.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BookingRecord {
    /// Service-wide unique id.
    pub id: BookingId,
    /// Who booked.
    pub user: UserId,
    /// Where it stands.
    pub status: BookingStatus,
    /// When it was made.
    pub created_at: Timestamp,
    /// When its status last changed.
    pub updated_at: Timestamp,
    /// Sequence number in the waiting queue while `Waiting`; rebuilt from the
    /// queue order on restore, so never stored.
    #[serde(skip)]
    queue_seq: u32,
}

/// Two records are equal when everything stored is: the queue seq is an
/// in-memory index that a restore renumbers.
impl PartialEq for BookingRecord {
    fn eq(&self, other: &Self) -> bool {
        (
            self.id,
            &self.user,
            self.status,
            self.created_at,
            self.updated_at,
        ) == (
            other.id,
            &other.user,
            other.status,
            other.created_at,
            other.updated_at,
        )
    }
}

impl Eq for BookingRecord {}

/// A booking as a reader sees it, with its live queue position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookingView {
    /// Service-wide unique id.
    pub id: BookingId,
    /// The event it is for.
    pub event_id: EventId,
    /// Who booked.
    pub user_id: UserId,
    /// Where it stands.
    pub status: BookingStatus,
    /// 1-based place in the queue while waiting, else `None`.
    pub waiting_position: Option<u64>,
    /// When it was made.
    pub created_at: Timestamp,
    /// When its status last changed.
    pub updated_at: Timestamp,
}

/// The answer to a booking request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookOutcome {
    /// The user's active booking.
    pub booking: BookingView,
    /// How to take the booking back; `None` when the user already held it
    /// and nothing changed.
    pub undo: Option<Undo>,
}

impl BookOutcome {
    /// Whether this request made a new booking.
    pub fn created(&self) -> bool {
        self.undo.is_some()
    }
}

/// The answer to a cancellation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelOutcome {
    /// The booking as cancelled.
    pub booking: BookingView,
    /// The head of the queue, confirmed in the same step, if any.
    pub promoted: Option<BookingView>,
    /// How to take the cancellation (and promotion) back.
    pub undo: Undo,
}

/// What it takes to reverse one change exactly, so a change the journal
/// could not make durable leaves no trace in memory. Undos of one event must
/// be applied newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undo {
    /// Reverse a new booking.
    Book {
        /// The record the booking went into.
        handle: u32,
        /// What that record held before (a cancelled booking), or `None` if
        /// the record was new.
        previous: Option<BookingRecord>,
        /// The event's `updated_at` before.
        event_updated_at: Timestamp,
    },
    /// Reverse a cancellation and any promotion it made.
    Cancel {
        /// The cancelled record.
        handle: u32,
        /// Its status before.
        was: BookingStatus,
        /// Its `updated_at` before.
        updated_at: Timestamp,
        /// The promoted record and its `updated_at` before.
        promoted: Option<(u32, Timestamp)>,
        /// The event's `updated_at` before.
        event_updated_at: Timestamp,
    },
}

/// An event's counters, as a reader sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventStatus {
    /// The event's id.
    pub id: EventId,
    /// Optional display name.
    pub name: Option<String>,
    /// Tickets the event was created with.
    pub total_tickets: u64,
    /// Tickets nobody holds.
    pub available_tickets: u64,
    /// Confirmed bookings; always `total_tickets - available_tickets`.
    pub confirmed_count: u64,
    /// Bookings in the queue.
    pub waiting_count: u64,
    /// When the event was created.
    pub created_at: Timestamp,
    /// When a booking last changed.
    pub updated_at: Timestamp,
}

/// One entry of a waiting-list page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingEntry {
    /// The waiting booking's id.
    pub booking_id: BookingId,
    /// Who is waiting.
    pub user_id: UserId,
    /// 1-based place in the queue.
    pub position: u64,
}

/// A page of the waiting list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingPage {
    /// Entries in queue order.
    pub entries: Vec<WaitingEntry>,
    /// Everyone waiting, not only this page.
    pub total: u64,
}

/// An event's state in the form snapshots store: no indexes, queue order as
/// a plain list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventSnapshot {
    /// The event's id.
    pub id: EventId,
    /// Optional display name.
    pub name: Option<String>,
    /// Tickets the event was created with.
    pub total_tickets: u64,
    /// When the event was created.
    pub created_at: Timestamp,
    /// When a booking last changed.
    pub updated_at: Timestamp,
    /// Every user's latest booking.
    pub records: ChunkedVec<BookingRecord>,
    /// Indexes into `records` of the waiting bookings, front of the queue first.
    pub waiting: Vec<u32>,
}

/// One event and everything booked for it.
///
/// Owned by exactly one actor at run time, so nothing here locks.
#[derive(Debug, Clone)]
pub struct Event {
    /// The event's id.
    id: EventId,
    /// Optional display name.
    name: Option<String>,
    /// Tickets the event was created with.
    total_tickets: u64,
    /// Tickets nobody holds; zero whenever the queue is non-empty.
    available_tickets: u64,
    /// When the event was created.
    created_at: Timestamp,
    /// When a booking last changed.
    updated_at: Timestamp,
    /// Every user's latest booking; a record's index is its handle. Chunked
    /// so a snapshot hand-over shares it instead of copying it.
    records: ChunkedVec<BookingRecord>,
    /// Handles into `records`, found by user id; holds no copy of the id.
    by_user: HashTable<u32>,
    /// Hashes user ids for `by_user`.
    hasher: DefaultHashBuilder,
    /// Waiting bookings, by handle, first come first served.
    queue: WaitingQueue,
}

impl Event {
    /// A new event with every ticket available.
    pub fn new(
        id: EventId,
        name: Option<String>,
        total_tickets: u64,
        now: Timestamp,
    ) -> Result<Self, DomainError> {
        if total_tickets == 0 {
            return Err(DomainError::InvalidTicketCount);
        }
        Ok(Self {
            id,
            name,
            total_tickets,
            available_tickets: total_tickets,
            created_at: now,
            updated_at: now,
            records: ChunkedVec::new(),
            by_user: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            queue: WaitingQueue::new(),
        })
    }

    /// The event's id.
    pub fn id(&self) -> EventId {
        self.id
    }

    /// Books a ticket for `user`, or a place at the back of the queue when
    /// none is left. A user who already holds an active booking gets it back
    /// unchanged, so a retried request never buys a second ticket.
    pub fn book(
        &mut self,
        user: &UserId,
        ids: &BookingIdSequence,
        now: Timestamp,
    ) -> Result<BookOutcome, DomainError> {
        let existing = self.find(user.as_str());
        if let Some(handle) = existing {
            if self.records[handle as usize].status.is_active() {
                return Ok(BookOutcome {
                    booking: self.view(handle),
                    undo: None,
                });
            }
        }
        self.ensure_room(existing)?;
        let undo = Undo::Book {
            handle: existing.unwrap_or(self.records.len() as u32),
            previous: existing.map(|h| self.records[h as usize].clone()),
            event_updated_at: self.updated_at,
        };
        let handle = self.insert_booking(existing, user, ids.next_id(), now);
        self.debug_check();
        Ok(BookOutcome {
            booking: self.view(handle),
            undo: Some(undo),
        })
    }

    /// Re-applies a booking read back from the journal: the same id and time,
    /// and the same confirmed-or-waiting decision, since the state is the same.
    pub fn replay_book(
        &mut self,
        user: &UserId,
        id: BookingId,
        at: Timestamp,
    ) -> Result<(), DomainError> {
        let existing = self.find(user.as_str());
        if existing.is_some_and(|h| self.records[h as usize].status.is_active()) {
            return Err(DomainError::Inconsistent(format!(
                "event {}: journal books {user} twice",
                self.id
            )));
        }
        self.ensure_room(existing)?;
        self.insert_booking(existing, user, id, at);
        self.debug_check();
        Ok(())
    }

    /// Reverses a change made by [`Self::book`] or [`Self::cancel`]. Undos
    /// must come newest first; the state is then exactly as before.
    pub fn undo(&mut self, undo: Undo) {
        match undo {
            Undo::Book {
                handle,
                previous,
                event_updated_at,
            } => {
                let record = &self.records[handle as usize];
                match record.status {
                    BookingStatus::Waiting => {
                        let removed = self.queue.remove(record.queue_seq);
                        debug_assert!(removed, "an undone waiting booking is still queued");
                    }
                    _ => self.available_tickets += 1,
                }
                match previous {
                    Some(previous) => self.records[handle as usize] = previous,
                    None => {
                        debug_assert_eq!(
                            handle as usize + 1,
                            self.records.len(),
                            "undo newest first"
                        );
                        let hash = self
                            .hasher
                            .hash_one(self.records[handle as usize].user.as_str());
                        if let Ok(entry) = self.by_user.find_entry(hash, |&h| h == handle) {
                            entry.remove();
                        }
                        self.records.pop();
                    }
                }
                self.updated_at = event_updated_at;
            }
            Undo::Cancel {
                handle,
                was,
                updated_at,
                promoted,
                event_updated_at,
            } => {
                let record = &mut self.records[handle as usize];
                record.status = was;
                record.updated_at = updated_at;
                let seq = record.queue_seq;
                match (was, promoted) {
                    (BookingStatus::Waiting, _) => self.queue.revive(seq, handle),
                    (_, Some((next, next_updated_at))) => {
                        let next_record = &mut self.records[next as usize];
                        next_record.status = BookingStatus::Waiting;
                        next_record.updated_at = next_updated_at;
                        let next_seq = next_record.queue_seq;
                        self.queue.revive(next_seq, next);
                    }
                    (_, None) => self.available_tickets -= 1,
                }
                self.updated_at = event_updated_at;
            }
        }
        self.debug_check();
    }

    /// Cancels `user`'s active booking. A confirmed one frees its ticket and
    /// the head of the queue takes it in the same step; a waiting one leaves
    /// the queue and everyone behind moves up.
    pub fn cancel(&mut self, user: &UserId, now: Timestamp) -> Result<CancelOutcome, DomainError> {
        let handle = self
            .find(user.as_str())
            .ok_or(DomainError::BookingNotFound)?;
        let record = &mut self.records[handle as usize];
        let was = record.status;
        if !was.is_active() {
            return Err(DomainError::BookingNotFound);
        }
        let record_updated_at = record.updated_at;
        record.status = BookingStatus::Cancelled;
        record.updated_at = now;
        let seq = record.queue_seq;
        let event_updated_at = std::mem::replace(&mut self.updated_at, now);
        let promoted = match was {
            BookingStatus::Waiting => {
                let removed = self.queue.remove(seq);
                debug_assert!(removed, "a waiting booking is always in the queue");
                None
            }
            _ => match self.queue.pop_front() {
                Some(next) => {
                    let next_record = &mut self.records[next as usize];
                    next_record.status = BookingStatus::Confirmed;
                    let next_updated_at = std::mem::replace(&mut next_record.updated_at, now);
                    Some((next, next_updated_at))
                }
                None => {
                    self.available_tickets += 1;
                    None
                }
            },
        };
        self.debug_check();
        Ok(CancelOutcome {
            booking: self.view(handle),
            promoted: promoted.map(|(h, _)| self.view(h)),
            undo: Undo::Cancel {
                handle,
                was,
                updated_at: record_updated_at,
                promoted,
                event_updated_at,
            },
        })
    }

    /// `user`'s active booking, else their most recent cancelled one.
    pub fn booking(&self, user: &UserId) -> Result<BookingView, DomainError> {
        self.find(user.as_str())
            .map(|h| self.view(h))
            .ok_or(DomainError::BookingNotFound)
    }

    /// The event's counters.
    pub fn status(&self) -> EventStatus {
        EventStatus {
            id: self.id,
            name: self.name.clone(),
            total_tickets: self.total_tickets,
            available_tickets: self.available_tickets,
            confirmed_count: self.total_tickets - self.available_tickets,
            waiting_count: self.queue.len() as u64,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    /// Up to `limit` waiting bookings from 0-based queue `offset`, in order.
    pub fn waiting_page(&self, offset: usize, limit: usize) -> WaitingPage {
        let entries = self
            .queue
            .page(offset, limit)
            .into_iter()
            .map(|e| {
                let r = &self.records[e.handle as usize];
                WaitingEntry {
                    booking_id: r.id,
                    user_id: r.user.clone(),
                    position: e.position,
                }
            })
            .collect();
        WaitingPage {
            entries,
            total: self.queue.len() as u64,
        }
    }

    /// How many booking records (one per user who ever booked) the event holds.
    pub fn record_count(&self) -> usize {
        self.records.len()
    }

    /// The id of every booking the event holds.
    pub fn booking_ids(&self) -> impl Iterator<Item = BookingId> + '_ {
        self.records.iter().map(|r| r.id)
    }

    /// The event in the form snapshots store.
    pub fn to_snapshot(&self) -> EventSnapshot {
        EventSnapshot {
            id: self.id,
            name: self.name.clone(),
            total_tickets: self.total_tickets,
            created_at: self.created_at,
            updated_at: self.updated_at,
            records: self.records.clone(),
            waiting: self.queue.handles().collect(),
        }
    }

    /// Rebuilds an event from a snapshot, refusing one that breaks any
    /// invariant: data read from disk is checked before it is served.
    pub fn from_snapshot(snapshot: EventSnapshot) -> Result<Self, DomainError> {
        let EventSnapshot {
            id,
            name,
            total_tickets,
            created_at,
            updated_at,
            mut records,
            waiting,
        } = snapshot;
        let bad = |why: String| Err(DomainError::Inconsistent(format!("event {id}: {why}")));
        if total_tickets == 0 {
            return bad("no tickets".into());
        }
        if records.len() > u32::MAX as usize {
            return bad("too many records".into());
        }
        let confirmed = records
            .iter()
            .filter(|r| r.status == BookingStatus::Confirmed)
            .count() as u64;
        let waiting_records = records
            .iter()
            .filter(|r| r.status == BookingStatus::Waiting)
            .count();
        if confirmed > total_tickets {
            return bad(format!("{confirmed} confirmed of {total_tickets} tickets"));
        }
        if waiting.len() != waiting_records {
            return bad(format!(
                "queue holds {} of {waiting_records} waiting bookings",
                waiting.len()
            ));
        }
        if !waiting.is_empty() && confirmed != total_tickets {
            return bad("bookings wait while tickets are free".into());
        }
        let mut queue = WaitingQueue::new();
        let mut queued = vec![false; records.len()];
        for &handle in &waiting {
            let Some(record) = records.get_mut(handle as usize) else {
                return bad(format!("queue names missing record {handle}"));
            };
            if record.status != BookingStatus::Waiting
                || std::mem::replace(&mut queued[handle as usize], true)
            {
                return bad(format!(
                    "queue names record {handle} twice or while not waiting"
                ));
            }
            record.queue_seq = queue.push(handle);
        }
        let mut event = Self {
            id,
            name,
            total_tickets,
            available_tickets: total_tickets - confirmed,
            created_at,
            updated_at,
            records: ChunkedVec::new(),
            by_user: HashTable::with_capacity(records.len()),
            hasher: DefaultHashBuilder::default(),
            queue,
        };
        let hasher = &event.hasher;
        for (handle, record) in records.iter().enumerate() {
            let user = record.user.as_str();
            // One probe per record: find a twin or the free slot.
            let entry = event.by_user.entry(
                hasher.hash_one(user),
                |&h| records[h as usize].user.as_str() == user,
                |&h| hasher.hash_one(records[h as usize].user.as_str()),
            );
            match entry {
                hashbrown::hash_table::Entry::Occupied(_) => {
                    return bad(format!("user {} has two records", record.user));
                }
                hashbrown::hash_table::Entry::Vacant(slot) => {
                    slot.insert(handle as u32);
                }
            }
        }
        event.records = records;
        event.verify()?;
        Ok(event)
    }

    /// Checks every invariant by a full scan; used after restores and by tests.
    pub fn verify(&self) -> Result<(), DomainError> {
        let bad = |why: String| {
            Err(DomainError::Inconsistent(format!(
                "event {}: {why}",
                self.id
            )))
        };
        let confirmed = self
            .records
            .iter()
            .filter(|r| r.status == BookingStatus::Confirmed)
            .count() as u64;
        if confirmed + self.available_tickets != self.total_tickets {
            return bad(format!(
                "{confirmed} confirmed + {} available != {} total",
                self.available_tickets, self.total_tickets
            ));
        }
        if !self.queue.is_empty() && self.available_tickets != 0 {
            return bad("bookings wait while tickets are free".into());
        }
        let mut expected_position = 0;
        for entry in self.queue.page(0, self.queue.len()) {
            expected_position += 1;
            let record = &self.records[entry.handle as usize];
            if entry.position != expected_position || record.status != BookingStatus::Waiting {
                return bad(format!(
                    "queue entry {} out of order or not waiting",
                    entry.handle
                ));
            }
            if self.queue.position(record.queue_seq) != Some(expected_position) {
                return bad(format!("record {} has a stale queue seq", entry.handle));
            }
        }
        let waiting = self
            .records
            .iter()
            .filter(|r| r.status == BookingStatus::Waiting)
            .count();
        if waiting != self.queue.len() {
            return bad(format!(
                "{waiting} waiting records but {} queued",
                self.queue.len()
            ));
        }
        if self.by_user.len() != self.records.len() {
            return bad("user index out of step with records".into());
        }
        Ok(())
    }

    /// Whether a new booking fits: a new user needs a record handle (u32),
    /// and a booking that must wait needs a queue sequence number. Live and
    /// replayed bookings share this check, so a replay can never pass it where
    /// the original booking could not.
    fn ensure_room(&self, existing: Option<u32>) -> Result<(), DomainError> {
        let no_record = existing.is_none() && self.records.len() >= u32::MAX as usize;
        let no_queue_place = self.available_tickets == 0 && !self.queue.has_room();
        if no_record || no_queue_place {
            Err(DomainError::EventFull)
        } else {
            Ok(())
        }
    }

    /// Puts a new booking in `handle`'s record (a rebooking user) or a new
    /// record, confirmed while tickets remain, else at the back of the queue.
    fn insert_booking(
        &mut self,
        handle: Option<u32>,
        user: &UserId,
        id: BookingId,
        now: Timestamp,
    ) -> u32 {
        let status = if self.available_tickets > 0 {
            self.available_tickets -= 1;
            BookingStatus::Confirmed
        } else {
            BookingStatus::Waiting
        };
        let record = BookingRecord {
            id,
            user: user.clone(),
            status,
            created_at: now,
            updated_at: now,
            queue_seq: 0,
        };
        let handle = match handle {
            Some(h) => {
                self.records[h as usize] = record;
                h
            }
            None => {
                let h = self.records.len() as u32;
                let hash = self.hasher.hash_one(user.as_str());
                let (records, hasher) = (&self.records, &self.hasher);
                self.by_user.insert_unique(hash, h, |&i| {
                    hasher.hash_one(records[i as usize].user.as_str())
                });
                self.records.push(record);
                h
            }
        };
        if status == BookingStatus::Waiting {
            self.records[handle as usize].queue_seq = self.queue.push(handle);
        }
        self.updated_at = now;
        handle
    }

    fn find(&self, user: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(user);
        self.by_user
            .find(hash, |&h| {
                self.records
                    .get(h as usize)
                    .is_some_and(|r| r.user.as_str() == user)
            })
            .copied()
    }

    fn view(&self, handle: u32) -> BookingView {
        let r = &self.records[handle as usize];
        BookingView {
            id: r.id,
            event_id: self.id,
            user_id: r.user.clone(),
            status: r.status,
            waiting_position: match r.status {
                BookingStatus::Waiting => self.queue.position(r.queue_seq),
                _ => None,
            },
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }

    /// The O(1) invariants, after every change in debug builds.
    fn debug_check(&self) {
        debug_assert!(
            self.available_tickets <= self.total_tickets,
            "more tickets available than exist"
        );
        debug_assert!(
            self.queue.is_empty() || self.available_tickets == 0,
            "bookings wait while tickets are free"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> UserId {
        UserId::try_from(name).expect("valid test user id")
    }

    fn event(tickets: u64) -> Event {
        let id = EventId::try_from(1).expect("valid id");
        Event::new(id, None, tickets, Timestamp::from_millis(0)).expect("valid event")
    }

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn bookings_are_confirmed_while_tickets_remain_then_wait_in_order() {
        let ids = BookingIdSequence::default();
        let mut e = event(2);
        let a = e.book(&user("a"), &ids, at(1)).expect("book a");
        let b = e.book(&user("b"), &ids, at(2)).expect("book b");
        let c = e.book(&user("c"), &ids, at(3)).expect("book c");
        let d = e.book(&user("d"), &ids, at(4)).expect("book d");
        assert_eq!(a.booking.status, BookingStatus::Confirmed);
        assert_eq!(b.booking.status, BookingStatus::Confirmed);
        assert_eq!(
            (c.booking.status, c.booking.waiting_position),
            (BookingStatus::Waiting, Some(1))
        );
        assert_eq!(
            (d.booking.status, d.booking.waiting_position),
            (BookingStatus::Waiting, Some(2))
        );
        let s = e.status();
        assert_eq!(
            (s.available_tickets, s.confirmed_count, s.waiting_count),
            (0, 2, 2)
        );
        e.verify().expect("invariants hold");
    }

    #[test]
    fn booking_again_returns_the_same_active_booking_and_changes_nothing() {
        let ids = BookingIdSequence::default();
        let mut e = event(1);
        let first = e.book(&user("a"), &ids, at(1)).expect("book");
        let again = e.book(&user("a"), &ids, at(2)).expect("book again");
        assert!(first.created());
        assert!(!again.created());
        assert_eq!(first.booking, again.booking);
        assert_eq!(e.status().available_tickets, 0);
        assert_eq!(ids.peek(), 2, "no id is spent on a repeated booking");
    }

    #[test]
    fn cancelling_a_confirmed_booking_promotes_the_head_of_the_queue_in_the_same_step() {
        let ids = BookingIdSequence::default();
        let mut e = event(1);
        e.book(&user("a"), &ids, at(1)).expect("book a");
        e.book(&user("b"), &ids, at(2)).expect("book b");
        e.book(&user("c"), &ids, at(3)).expect("book c");
        let out = e.cancel(&user("a"), at(9)).expect("cancel a");
        assert_eq!(out.booking.status, BookingStatus::Cancelled);
        assert_eq!(out.booking.updated_at, at(9));
        let promoted = out.promoted.expect("b is promoted");
        assert_eq!(
            (promoted.user_id.as_str(), promoted.status),
            ("b", BookingStatus::Confirmed)
        );
        assert_eq!(promoted.waiting_position, None);
        assert_eq!(e.booking(&user("c")).expect("c").waiting_position, Some(1));
        assert_eq!(e.status().available_tickets, 0);
        e.verify().expect("invariants hold");
    }

    #[test]
    fn cancelling_with_nobody_waiting_frees_the_ticket() {
        let ids = BookingIdSequence::default();
        let mut e = event(1);
        e.book(&user("a"), &ids, at(1)).expect("book");
        let out = e.cancel(&user("a"), at(2)).expect("cancel");
        assert_eq!(out.promoted, None);
        assert_eq!(e.status().available_tickets, 1);
    }

    #[test]
    fn a_waiting_cancel_leaves_the_queue_and_those_behind_move_up() {
        let ids = BookingIdSequence::default();
        let mut e = event(1);
        for name in ["a", "b", "c", "d"] {
            e.book(&user(name), &ids, at(1)).expect("book");
        }
        let out = e.cancel(&user("c"), at(2)).expect("cancel c");
        assert_eq!(out.promoted, None);
        assert_eq!(e.booking(&user("b")).expect("b").waiting_position, Some(1));
        assert_eq!(e.booking(&user("d")).expect("d").waiting_position, Some(2));
        assert_eq!(e.status().available_tickets, 0);
        e.verify().expect("invariants hold");
    }

    #[test]
    fn cancel_without_an_active_booking_is_booking_not_found() {
        let ids = BookingIdSequence::default();
        let mut e = event(1);
        assert_eq!(
            e.cancel(&user("nobody"), at(1)),
            Err(DomainError::BookingNotFound)
        );
        e.book(&user("a"), &ids, at(1)).expect("book");
        e.cancel(&user("a"), at(2)).expect("cancel");
        assert_eq!(
            e.cancel(&user("a"), at(3)),
            Err(DomainError::BookingNotFound)
        );
    }

    #[test]
    fn the_last_cancelled_booking_stays_readable_until_the_user_books_again() {
        let ids = BookingIdSequence::default();
        let mut e = event(1);
        let first = e.book(&user("a"), &ids, at(1)).expect("book");
        e.cancel(&user("a"), at(2)).expect("cancel");
        assert_eq!(
            e.booking(&user("a")).expect("read").status,
            BookingStatus::Cancelled
        );
        let second = e.book(&user("a"), &ids, at(3)).expect("book again");
        assert!(second.created());
        assert_ne!(
            second.booking.id, first.booking.id,
            "a new booking gets a new id"
        );
        assert_eq!(
            e.booking(&user("a")).expect("read").status,
            BookingStatus::Confirmed
        );
    }

    #[test]
    fn a_snapshot_round_trip_restores_the_same_event() {
        let ids = BookingIdSequence::default();
        let mut e = event(2);
        for name in ["a", "b", "c", "d", "e"] {
            e.book(&user(name), &ids, at(1)).expect("book");
        }
        e.cancel(&user("d"), at(2)).expect("cancel d");
        e.cancel(&user("a"), at(3)).expect("cancel a");
        let restored = Event::from_snapshot(e.to_snapshot()).expect("restores");
        assert_eq!(restored.status(), e.status());
        assert_eq!(restored.to_snapshot(), e.to_snapshot());
        for name in ["a", "b", "c", "d", "e"] {
            assert_eq!(restored.booking(&user(name)), e.booking(&user(name)));
        }
    }

    #[test]
    fn a_snapshot_that_breaks_an_invariant_is_refused() {
        let ids = BookingIdSequence::default();
        let mut e = event(1);
        e.book(&user("a"), &ids, at(1)).expect("book");
        e.book(&user("b"), &ids, at(1)).expect("book");
        let mut twice_queued = e.to_snapshot();
        twice_queued.waiting = vec![1, 1];
        assert!(matches!(
            Event::from_snapshot(twice_queued),
            Err(DomainError::Inconsistent(_))
        ));
        let mut oversold = e.to_snapshot();
        oversold.records[1].status = BookingStatus::Confirmed;
        oversold.waiting.clear();
        assert!(matches!(
            Event::from_snapshot(oversold),
            Err(DomainError::Inconsistent(_))
        ));
        let mut duplicate_user = e.to_snapshot();
        duplicate_user.records[1].user = user("a");
        assert!(matches!(
            Event::from_snapshot(duplicate_user),
            Err(DomainError::Inconsistent(_))
        ));
    }

    #[test]
    fn waiting_pages_list_the_queue_in_order_with_positions() {
        let ids = BookingIdSequence::default();
        let mut e = event(1);
        for name in ["a", "b", "c", "d"] {
            e.book(&user(name), &ids, at(1)).expect("book");
        }
        let page = e.waiting_page(1, 10);
        assert_eq!(page.total, 3);
        let got: Vec<(&str, u64)> = page
            .entries
            .iter()
            .map(|w| (w.user_id.as_str(), w.position))
            .collect();
        assert_eq!(got, vec![("c", 2), ("d", 3)]);
    }
}
