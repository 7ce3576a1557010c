//! One event: its settings, its tickets, its bookings (one record per user)
//! and its queue.
//!
//! Live operations (`book`, `cancel`, `lower_quantity`, `update`) check the
//! request against the rules of the moment, build a [`Change`] and apply it
//! through [`Event::apply`], the one place state moves; replay calls `apply`
//! with the journalled change. Every applied change also yields an exact
//! [`Undo`].

mod apply;
mod room_ops;
#[cfg(test)]
mod room_tests;
mod seat_apply;
mod seat_ops;
#[cfg(test)]
mod seat_tests;
mod snapshot;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

pub use apply::{Applied, Undo};
pub use snapshot::EventSnapshot;

/// A hold's place in the deadline index: when it lapses, and whose it is.
pub(super) type Deadline = (Timestamp, u32);

use super::booking::{BookingRecord, BookingStatus, BookingView};
use super::change::{Change, LATE_LAPSE_MILLIS};
use super::chunked::ChunkedVec;
use super::feed::FeedItem;
use super::ids::{BookingIdSequence, EventId, Timestamp, UserId};
use super::queue::WaitingQueue;
use super::room::{Room, RoomPatch, RoomSettings};
use super::seating::Seating;
use super::settings::{EventPatch, EventSettings, Sales};
use super::status::EventStatus;
use super::DomainError;

/// A change that was made, ready to journal, with its way back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Made {
    /// What to journal.
    pub change: Change,
    /// How to take it back if the journal cannot keep it.
    pub undo: Undo,
    /// Bookings it promoted from the queue.
    pub promoted: usize,
    /// For a booking: what it got (confirmed, held or waiting).
    pub booked_as: Option<BookingStatus>,
    /// The first booking of a user the event never saw: it joins the end
    /// of the queue or takes free tickets, so no other booking's place,
    /// tickets ahead or status moved, and no watcher of it can exist yet.
    pub new_user: bool,
    /// What the change feed shows of it: every object it touched, as it
    /// stands after, in the order they changed.
    pub items: Vec<FeedItem>,
    /// Whether an existing waiting-room entry may have moved (its status,
    /// or its place: every admission moves everyone behind).
    pub room_moved: bool,
    /// Seats it booked (confirmed), at a seated event.
    pub seats_booked: usize,
}

/// The answer to a live operation: what the client sees, and the change it
/// made (`None` when it changed nothing, e.g. a repeated booking).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome<T> {
    /// What the client sees.
    pub value: T,
    /// The change, if any.
    pub made: Option<Made>,
}

/// A booking and the waiting bookings that got tickets in the same step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookingChange {
    /// The booking as it now stands.
    pub booking: BookingView,
    /// Promoted bookings, in queue order.
    pub promotions: Vec<BookingView>,
}

/// An event after a settings change, and who got tickets through it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventChange {
    /// The event as it now stands.
    pub status: EventStatus,
    /// Promoted bookings, in queue order.
    pub promotions: Vec<BookingView>,
}

/// One entry of a waiting-list page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingEntry {
    /// The waiting booking's id.
    pub booking_id: super::ids::BookingId,
    /// Who is waiting.
    pub user_id: UserId,
    /// Tickets asked for.
    pub quantity: u32,
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

/// One event and everything booked for it.
///
/// Owned by exactly one actor at run time, so nothing here locks.
#[derive(Debug, Clone)]
pub struct Event {
    /// The event's id.
    id: EventId,
    /// What the organiser set.
    settings: EventSettings,
    /// Tickets nobody holds. While anyone waits, the head of the queue asks
    /// for more than this.
    available_tickets: u64,
    /// Tickets in held bookings (part of what is not available).
    held_tickets: u64,
    /// Every held booking by deadline, earliest first.
    holds: BTreeSet<Deadline>,
    /// When the event was created.
    created_at: Timestamp,
    /// When a booking or a setting last changed.
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
    /// The waiting room (off, and empty, unless the organiser turns it on).
    room: Room,
    /// The seats of a seated event; `None` at an unseated one (boxed: most
    /// events have none, and they pay one pointer for it).
    seating: Option<Box<Seating>>,
}

impl Event {
    /// A new event with every ticket available, and the change that records
    /// its creation.
    pub fn create(
        id: EventId,
        settings: EventSettings,
        now: Timestamp,
    ) -> Result<(Self, Change), DomainError> {
        let event = Self::created(id, &settings, now)?;
        Ok((event, Change::Created { settings, at: now }))
    }

    /// [`Self::create`] with a waiting room: the change is
    /// [`Change::CreatedWithRoom`] when `room` is not the default.
    pub fn create_with_room(
        id: EventId,
        settings: EventSettings,
        room: RoomSettings,
        now: Timestamp,
    ) -> Result<(Self, Change), DomainError> {
        let event = Self::created_with_room(id, &settings, room, now)?;
        let change = if room == RoomSettings::default() {
            Change::Created { settings, at: now }
        } else {
            Change::CreatedWithRoom {
                settings,
                room,
                at: now,
            }
        };
        Ok((event, change))
    }

    /// The event a [`Change::Created`] describes.
    pub fn created(
        id: EventId,
        settings: &EventSettings,
        at: Timestamp,
    ) -> Result<Self, DomainError> {
        Self::created_with_room(id, settings, RoomSettings::default(), at)
    }

    /// The event a creation describes, room and all.
    pub fn created_with_room(
        id: EventId,
        settings: &EventSettings,
        room: RoomSettings,
        at: Timestamp,
    ) -> Result<Self, DomainError> {
        check_settings(settings)?;
        room.check()?;
        Ok(Self {
            id,
            settings: settings.clone(),
            available_tickets: settings.total_tickets,
            held_tickets: 0,
            holds: BTreeSet::new(),
            created_at: at,
            updated_at: at,
            records: ChunkedVec::new(),
            by_user: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            queue: WaitingQueue::new(),
            room: Room::new(room),
            seating: None,
        })
    }

    /// The event's id.
    pub fn id(&self) -> EventId {
        self.id
    }

    /// The event's settings.
    pub fn settings(&self) -> &EventSettings {
        &self.settings
    }

    /// Books `quantity` tickets for `user`: confirmed when nobody waits and
    /// enough are available, else at the back of the queue. A user whose
    /// booking is active gets it back unchanged when the quantity is the
    /// same, so a retried request never buys a second set of tickets; that
    /// is decided before the sales window and the limits are checked.
    pub fn book(
        &mut self,
        user: &UserId,
        quantity: u32,
        ids: &BookingIdSequence,
        now: Timestamp,
    ) -> Result<Outcome<BookingView>, DomainError> {
        if self.seating.is_some() {
            let request = crate::seating::SeatRequest::Best {
                quantity,
                category: None,
                together: true,
            };
            return self.book_seats(user, request, ids, now);
        }
        let existing = self.find(user.as_str());
        if let Some(handle) = existing {
            let record = &self.records[handle as usize];
            if record.status.is_active() {
                if record.quantity != quantity {
                    return Err(DomainError::BookingExists);
                }
                return Ok(Outcome {
                    value: self.view(handle),
                    made: None,
                });
            }
        }
        self.may_book(user, existing, quantity, now)?;
        self.new_booking(
            existing,
            Change::Booked {
                booking: ids.next_id(),
                user: user.clone(),
                quantity,
                at: now,
            },
        )
    }

    /// What every new booking must pass, after the rebook rule: the sales
    /// window, the waiting room's admission, the quantity's range, and room
    /// for one more record (checked before an id is spent).
    pub(super) fn may_book(
        &self,
        user: &UserId,
        existing: Option<u32>,
        quantity: u32,
        now: Timestamp,
    ) -> Result<(), DomainError> {
        match self.settings.sales_at(now) {
            Sales::Open => {}
            Sales::NotOpen => return Err(DomainError::SalesNotOpen),
            Sales::Closed => return Err(DomainError::SalesClosed),
        }
        if self.room.settings().is_on() && !self.room.is_admitted(user.as_str(), now) {
            return Err(DomainError::NotAdmitted);
        }
        let max = u64::from(self.settings.max_per_user).min(self.settings.total_tickets);
        if quantity == 0 || u64::from(quantity) > max {
            return Err(DomainError::QuantityOutOfRange { max });
        }
        self.ensure_room(existing)
    }

    /// Makes a booking change for a user whose record is `existing`.
    pub(super) fn new_booking(
        &mut self,
        existing: Option<u32>,
        change: Change,
    ) -> Result<Outcome<BookingView>, DomainError> {
        let mut outcome = self.made_booking(change)?;
        if let Some(made) = outcome.made.as_mut() {
            made.new_user = existing.is_none();
        }
        Ok(outcome)
    }

    /// Cancels `user`'s active booking. Its tickets, or its place in the
    /// queue, go to the head of the queue in the same step.
    pub fn cancel(
        &mut self,
        user: &UserId,
        now: Timestamp,
    ) -> Result<Outcome<BookingChange>, DomainError> {
        let change = Change::Cancelled {
            user: user.clone(),
            at: now,
        };
        self.made_booking_change(change)
    }

    /// Lowers the quantity of `user`'s active booking; it keeps its id,
    /// status and place, and freed tickets go to the queue. The same
    /// quantity changes nothing; a higher one is refused.
    pub fn lower_quantity(
        &mut self,
        user: &UserId,
        quantity: u32,
        now: Timestamp,
    ) -> Result<Outcome<BookingChange>, DomainError> {
        let handle = self.active(user)?;
        let current = self.records[handle as usize].quantity;
        if quantity == 0 {
            return Err(DomainError::QuantityOutOfRange {
                max: u64::from(current),
            });
        }
        if quantity > current {
            return Err(DomainError::QuantityIncrease);
        }
        if quantity == current {
            return Ok(Outcome {
                value: BookingChange {
                    booking: self.view(handle),
                    promotions: Vec::new(),
                },
                made: None,
            });
        }
        self.made_booking_change(Change::QuantityLowered {
            user: user.clone(),
            quantity,
            at: now,
        })
    }

    /// Confirms `user`'s held booking. A confirmed booking is answered as it
    /// is; a waiting one has nothing to confirm; a lapsed one is too late.
    pub fn confirm(
        &mut self,
        user: &UserId,
        now: Timestamp,
    ) -> Result<Outcome<BookingView>, DomainError> {
        let handle = self
            .find(user.as_str())
            .ok_or(DomainError::BookingNotFound)?;
        let record = &self.records[handle as usize];
        match record.status {
            BookingStatus::Confirmed => Ok(Outcome {
                value: self.view(handle),
                made: None,
            }),
            BookingStatus::Waiting => Err(DomainError::NotHeld),
            BookingStatus::Expired => Err(DomainError::HoldExpired),
            BookingStatus::Cancelled => Err(DomainError::BookingNotFound),
            // The caller expires due holds first; this guards the domain's
            // own promise that a hold is never confirmed past its deadline.
            BookingStatus::Held if record.expires_at.is_some_and(|d| d <= now) => {
                Err(DomainError::HoldExpired)
            }
            BookingStatus::Held => self.made_booking(Change::Confirmed {
                user: user.clone(),
                at: now,
            }),
        }
    }

    /// When the earliest hold lapses, if any booking is held.
    pub fn next_hold_deadline(&self) -> Option<Timestamp> {
        self.holds.first().map(|&(deadline, _)| deadline)
    }

    /// When the earliest hold lapses or the room has something to do
    /// (draw, admit, lapse an admission), whichever comes first.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        let hold = self.holds.first().map(|&(deadline, _)| deadline);
        match (hold, self.room_due()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Expires up to `limit` holds whose deadline is at or before `now`,
    /// earliest first, each as its own change dated at its deadline; the
    /// freed tickets go to the queue. Returns the changes to journal.
    pub fn expire_due(&mut self, now: Timestamp, limit: usize) -> Result<Vec<Made>, DomainError> {
        let mut made = Vec::new();
        while made.len() < limit {
            let Some(&(deadline, handle)) = self.holds.first() else {
                break;
            };
            if deadline > now {
                break;
            }
            let user = self.records[handle as usize].user.clone();
            // Handled late (the service was down): the offers it makes
            // start now, not at the deadline long gone.
            let change = if now.millis().saturating_sub(deadline.millis()) > LATE_LAPSE_MILLIS {
                Change::ExpiredLate {
                    user,
                    at: deadline,
                    handled_at: now,
                }
            } else {
                Change::Expired { user, at: deadline }
            };
            let applied = self.apply(&change)?;
            made.push(self.made(change, applied));
        }
        Ok(made)
    }

    /// Changes the settings `patch` names. Raising the ticket count promotes
    /// from the queue at once; lowering it below what is sold or below a
    /// waiting booking's quantity is refused and changes nothing.
    pub fn update(
        &mut self,
        patch: EventPatch,
        now: Timestamp,
    ) -> Result<Outcome<EventChange>, DomainError> {
        self.update_with_room(patch, RoomPatch::default(), now)
    }

    /// [`Self::update`], with the room's settings too.
    pub fn update_with_room(
        &mut self,
        patch: EventPatch,
        room: RoomPatch,
        now: Timestamp,
    ) -> Result<Outcome<EventChange>, DomainError> {
        let next_room = room.applied_to(self.room.settings());
        next_room.check()?;
        if patch.applied_to(&self.settings) == self.settings && next_room == self.room.settings() {
            // Nothing to change: nothing to journal, `updated_at` stays.
            return Ok(self.unchanged_event());
        }
        let change = if room.is_empty() {
            Change::Updated { patch, at: now }
        } else {
            Change::UpdatedWithRoom {
                patch,
                room,
                at: now,
            }
        };
        self.made_event_change(change)
    }

    /// The answer to an event-level operation that changed nothing.
    pub(super) fn unchanged_event(&self) -> Outcome<EventChange> {
        Outcome {
            value: EventChange {
                status: self.status(),
                promotions: Vec::new(),
            },
            made: None,
        }
    }

    /// Applies an event-level change and shows the event and promotions.
    pub(super) fn made_event_change(
        &mut self,
        change: Change,
    ) -> Result<Outcome<EventChange>, DomainError> {
        let applied = self.apply(&change)?;
        Ok(Outcome {
            value: EventChange {
                status: self.status(),
                promotions: self.views(&applied.promoted),
            },
            made: Some(self.made(change, applied)),
        })
    }

    /// `user`'s active booking, else their most recent ended one.
    pub fn booking(&self, user: &UserId) -> Result<BookingView, DomainError> {
        self.find(user.as_str())
            .map(|h| self.view(h))
            .ok_or(DomainError::BookingNotFound)
    }

    /// The event's settings and counters.
    pub fn status(&self) -> EventStatus {
        EventStatus {
            id: self.id,
            settings: self.settings.clone(),
            available_tickets: self.available_tickets,
            confirmed_tickets: self.settings.total_tickets
                - self.available_tickets
                - self.held_tickets
                - self.blocked_seats(),
            held_tickets: self.held_tickets,
            waiting_count: self.queue.len() as u64,
            waiting_tickets: self.queue.tickets(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            room: self.room.status(),
            blocked_seats: self.seating.as_ref().map(|s| s.blocked()),
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
                    quantity: e.quantity,
                    position: e.position,
                }
            })
            .collect();
        WaitingPage {
            entries,
            total: self.queue.len() as u64,
        }
    }

    /// Whether `user` has never booked this event (booking would add a record).
    pub fn is_new_user(&self, user: &UserId) -> bool {
        self.find(user.as_str()).is_none()
    }

    /// How many booking records (one per user who ever booked) the event holds.
    pub fn record_count(&self) -> usize {
        self.records.len()
    }

    /// The id of every booking the event holds.
    pub fn booking_ids(&self) -> impl Iterator<Item = super::ids::BookingId> + '_ {
        self.records.iter().map(|r| r.id)
    }

    /// Applies a change to one booking and shows that booking.
    fn made_booking(&mut self, change: Change) -> Result<Outcome<BookingView>, DomainError> {
        let applied = self.apply(&change)?;
        Ok(Outcome {
            value: self.view(applied.handle),
            made: Some(self.made(change, applied)),
        })
    }

    /// Applies a booking-level change and shows its booking and promotions.
    fn made_booking_change(
        &mut self,
        change: Change,
    ) -> Result<Outcome<BookingChange>, DomainError> {
        let applied = self.apply(&change)?;
        Ok(Outcome {
            value: BookingChange {
                booking: self.view(applied.handle),
                promotions: self.views(&applied.promoted),
            },
            made: Some(self.made(change, applied)),
        })
    }

    /// What to journal for `change`, with what it did.
    fn made(&self, change: Change, applied: Applied) -> Made {
        let booked_as = change
            .new_booking()
            .is_some()
            .then(|| self.records.get(applied.handle as usize).map(|r| r.status))
            .flatten();
        let mut items = Vec::with_capacity(1 + applied.entries.len() + applied.promoted.len());
        let mut room_moved = !applied.entries.is_empty();
        match change {
            Change::Created { .. }
            | Change::Updated { .. }
            | Change::CreatedWithRoom { .. }
            | Change::UpdatedWithRoom { .. }
            | Change::RoomDrawn { .. }
            | Change::CreatedSeated { .. }
            | Change::SeatsBlocked { .. } => {
                // A room's estimates move with any settings change (sales
                // switched off or on, the pace).
                room_moved |= !matches!(change, Change::Created { .. })
                    && (self.room.settings().is_on() || self.room.has_entries());
                items.push(FeedItem::event(self.status()));
            }
            Change::RoomJoined { .. }
            | Change::RoomLeft { .. }
            | Change::RoomAdmitted { .. }
            | Change::RoomLapsed { .. } => {}
            _ => items.push(FeedItem::booking(self.view(applied.handle))),
        }
        items.extend(
            applied
                .entries
                .iter()
                .map(|&h| FeedItem::Entry(self.entry_view(h))),
        );
        items.extend(
            applied
                .promoted
                .iter()
                .map(|&h| FeedItem::booking(self.view(h))),
        );
        let seats_booked = match (applied.undo.seat_moves(), self.seating.as_deref()) {
            (Some(moves), Some(seating)) => moves.booked(seating),
            _ => 0,
        };
        Made {
            seats_booked,
            change,
            undo: applied.undo,
            promoted: applied.promoted.len(),
            booked_as,
            new_user: false,
            items,
            room_moved,
        }
    }

    /// The handle of `user`'s active booking.
    fn active(&self, user: &UserId) -> Result<u32, DomainError> {
        self.find(user.as_str())
            .filter(|&h| self.records[h as usize].status.is_active())
            .ok_or(DomainError::BookingNotFound)
    }

    /// Whether a new booking fits: a new user needs a record handle (u32),
    /// and a booking that may wait needs a queue sequence number. Live and
    /// replayed bookings share this check, so a replay can never pass it where
    /// the original booking could not.
    fn ensure_room(&self, existing: Option<u32>) -> Result<(), DomainError> {
        let no_record = existing.is_none() && self.records.len() >= u32::MAX as usize;
        if no_record || !self.queue.has_room() {
            Err(DomainError::EventFull)
        } else {
            Ok(())
        }
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
        let waiting = r.status == BookingStatus::Waiting;
        BookingView {
            id: r.id,
            event_id: self.id,
            user_id: r.user.clone(),
            status: r.status,
            quantity: r.quantity,
            waiting_position: waiting.then(|| self.queue.position(r.queue_seq)).flatten(),
            tickets_ahead: waiting
                .then(|| self.queue.tickets_ahead(r.queue_seq))
                .flatten(),
            expires_at: r.expires_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            seats: self.seating.as_ref().map(|s| {
                let layout = s.layout();
                s.seats_of(handle)
                    .iter()
                    .map(|&x| layout.seat_id(x))
                    .collect()
            }),
        }
    }

    fn views(&self, handles: &[u32]) -> Vec<BookingView> {
        handles.iter().map(|&h| self.view(h)).collect()
    }

    /// The O(1) invariants, after every change in debug builds.
    fn debug_check(&self) {
        debug_assert!(
            self.available_tickets + self.held_tickets <= self.settings.total_tickets,
            "more tickets available or held than exist"
        );
        debug_assert!(
            self.available_tickets + self.held_tickets + self.blocked_seats()
                <= self.settings.total_tickets,
            "more seats free, held or blocked than exist"
        );
        // At a seated event the head may wait with enough free seats
        // that are not together.
        debug_assert!(
            self.seating.is_some()
                || self
                    .queue
                    .head()
                    .is_none_or(|h| u64::from(h.quantity) > self.available_tickets),
            "the head of the queue fits in the available tickets"
        );
    }
}

/// Settings every event must keep, whoever set them.
fn check_settings(s: &EventSettings) -> Result<(), DomainError> {
    let invalid = |field, message: &str| {
        Err(DomainError::InvalidSettings {
            field,
            message: message.to_string(),
        })
    };
    if s.total_tickets == 0 {
        return Err(DomainError::InvalidTicketCount);
    }
    if s.max_per_user == 0 {
        return invalid("maxPerUser", "must be at least 1");
    }
    if let (Some(start), Some(end)) = (s.sales_start, s.sales_end) {
        if start >= end {
            return invalid("salesEnd", "must be later than salesStart");
        }
    }
    Ok(())
}
