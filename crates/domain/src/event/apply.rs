//! The one place an event's state moves: applying a [`Change`], promoting
//! from the queue, and taking a change back exactly.

use std::hash::BuildHasher;

use super::{check_settings, Deadline, Event};
use crate::booking::{BookingRecord, BookingStatus};
use crate::change::Change;
use crate::ids::{BookingId, Timestamp, UserId};
use crate::room::RoomUndo;
use crate::seating::{SeatRequest, SeatState, SeatUndo};
use crate::settings::{EventPatch, EventSettings};
use crate::DomainError;

/// What applying a change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The booking record the change was about (0 for event-level changes).
    pub handle: u32,
    /// Records promoted from the queue, in queue order.
    pub promoted: Vec<u32>,
    /// Waiting-room entries the change touched, in order.
    pub entries: Vec<u32>,
    /// How to take the change back.
    pub undo: Undo,
}

/// What it takes to reverse one change exactly, so a change the journal
/// could not make durable leaves no trace in memory. Undos of one event must
/// be applied newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undo {
    /// The event's available tickets before.
    available_tickets: u64,
    /// The event's held tickets before.
    held_tickets: u64,
    /// The event's `updated_at` before.
    updated_at: Timestamp,
    /// The settings before, when the change touched them.
    settings: Option<EventSettings>,
    /// Each touched record as it was before, or `None` for a record the
    /// change added; in the order they were touched.
    records: Vec<(u32, Option<BookingRecord>)>,
    /// What the change did to the queue, in order.
    queue: Vec<QueueStep>,
    /// Hold deadlines the change added (true) or removed (false), in order.
    holds: Vec<(bool, Deadline)>,
    /// What the change did to the waiting room, if anything.
    room: Option<Box<RoomUndo>>,
    /// What the change did to the seats, if anything.
    seats: Option<Box<SeatUndo>>,
}

impl Undo {
    /// The seats' part, made when first needed.
    /// What the change did to the seats, if anything.
    pub fn seat_moves(&self) -> Option<&SeatUndo> {
        self.seats.as_deref()
    }

    pub(super) fn seats(&mut self) -> &mut SeatUndo {
        self.seats.get_or_insert_with(Box::default)
    }
}

/// One step taken on the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QueueStep {
    /// A booking joined at `seq`.
    Pushed(u32),
    /// The booking `handle` asking for `quantity` left from `seq`.
    Removed {
        seq: u32,
        handle: u32,
        quantity: u32,
    },
    /// The entry at `seq` asked for `from` tickets before.
    Requantified { seq: u32, from: u32 },
}

impl Event {
    /// Applies `change`: the live operations call this after deciding, and
    /// replay calls it with the journalled change. It checks only what the
    /// state itself demands (no clock, no configured limit), and on an error
    /// nothing has changed.
    pub fn apply(&mut self, change: &Change) -> Result<Applied, DomainError> {
        let mut undo = self.undo_from_here();
        let mut room_undo = RoomUndo::default();
        let mut entries = Vec::new();
        let handle = match change {
            Change::Created { .. }
            | Change::CreatedWithRoom { .. }
            | Change::CreatedSeated { .. } => {
                return Err(self.inconsistent(format!("event {} created twice", self.id)));
            }
            Change::UpdatedWithRoom { patch, room, at } => {
                let next = room.applied_to(self.room.settings());
                next.check()?;
                self.apply_updated(patch, &mut undo)?;
                self.room.set_settings(next, *at, &mut room_undo);
                0
            }
            Change::RoomJoined { user, at } => {
                entries.push(self.room.join(user, *at, &mut room_undo)?);
                0
            }
            Change::RoomLeft { user, at } => {
                entries.push(self.room.leave(user, *at, &mut room_undo)?);
                0
            }
            Change::RoomDrawn { seed, at } => {
                self.room.draw(*seed, *at, &mut room_undo)?;
                0
            }
            Change::RoomAdmitted { count, restart, at } => {
                entries = self.room.admit(*count, *restart, *at, &mut room_undo)?;
                0
            }
            Change::RoomLapsed { at } => {
                entries = self.room.lapse(*at, &mut room_undo);
                0
            }
            Change::Booked {
                booking, user, at, ..
            }
            | Change::BookedSeats {
                booking, user, at, ..
            } => {
                let handle = self.apply_booked(*booking, user, change, *at, &mut undo)?;
                entries.extend(self.room.use_admission(user, *at, &mut room_undo));
                handle
            }
            Change::SeatsBlocked { block, unblock, .. } => {
                self.apply_blocked(block, unblock, &mut undo)?;
                0
            }
            Change::Cancelled { user, at } => self.apply_cancelled(user, *at, &mut undo)?,
            Change::QuantityLowered { user, quantity, at } => {
                self.apply_lowered(user, *quantity, *at, &mut undo)?
            }
            Change::Updated { patch, .. } => {
                self.apply_updated(patch, &mut undo)?;
                0
            }
            Change::Confirmed { user, at } => {
                self.apply_hold_ended(user, *at, BookingStatus::Confirmed, &mut undo)?
            }
            Change::Expired { user, at } | Change::ExpiredLate { user, at, .. } => {
                self.apply_hold_ended(user, *at, BookingStatus::Expired, &mut undo)?
            }
        };
        self.updated_at = change.promotions_at();
        let promoted = self.promote(change.promotions_at(), &mut undo);
        if !room_undo.is_empty() {
            undo.room = Some(Box::new(room_undo));
        }
        self.debug_check();
        Ok(Applied {
            handle,
            promoted,
            entries,
            undo,
        })
    }

    /// An undo that restores the counters as they are now; each step of a
    /// change adds what it takes back to it.
    fn undo_from_here(&self) -> Undo {
        Undo {
            available_tickets: self.available_tickets,
            held_tickets: self.held_tickets,
            updated_at: self.updated_at,
            settings: None,
            records: Vec::new(),
            queue: Vec::new(),
            holds: Vec::new(),
            room: None,
            seats: None,
        }
    }

    /// Reverses a change made by [`Self::apply`]. Undos must come newest
    /// first; the state is then exactly as before.
    pub fn undo(&mut self, undo: Undo) {
        if let Some(room) = undo.room {
            self.room.undo(*room);
        }
        if let (Some(seats), Some(seating)) = (undo.seats, self.seating.as_deref_mut()) {
            seating.undo(*seats);
        }
        for (added, deadline) in undo.holds.into_iter().rev() {
            if added {
                self.holds.remove(&deadline);
            } else {
                self.holds.insert(deadline);
            }
        }
        for step in undo.queue.into_iter().rev() {
            match step {
                QueueStep::Pushed(seq) => {
                    let removed = self.queue.remove(seq);
                    debug_assert!(removed, "an undone arrival is still queued");
                }
                QueueStep::Removed {
                    seq,
                    handle,
                    quantity,
                } => self.queue.revive(seq, handle, quantity),
                QueueStep::Requantified { seq, from } => self.queue.set_quantity(seq, from),
            }
        }
        for (handle, before) in undo.records.into_iter().rev() {
            match before {
                Some(record) => self.records[handle as usize] = record,
                None => {
                    debug_assert_eq!(handle as usize + 1, self.records.len(), "undo newest first");
                    let hash = self
                        .hasher
                        .hash_one(self.records[handle as usize].user.as_str());
                    if let Ok(entry) = self.by_user.find_entry(hash, |&h| h == handle) {
                        entry.remove();
                    }
                    self.records.pop();
                }
            }
        }
        if let Some(settings) = undo.settings {
            self.settings = settings;
        }
        self.available_tickets = undo.available_tickets;
        self.held_tickets = undo.held_tickets;
        self.updated_at = undo.updated_at;
        self.debug_check();
    }

    /// A booking: `change` is [`Change::Booked`] or [`Change::BookedSeats`].
    fn apply_booked(
        &mut self,
        id: BookingId,
        user: &UserId,
        change: &Change,
        at: Timestamp,
        undo: &mut Undo,
    ) -> Result<u32, DomainError> {
        let (quantity, request) = match change {
            Change::BookedSeats { request, .. } => (request.quantity(), Some(request.clone())),
            // At a seated event, a booking without seats is best available.
            Change::Booked { quantity, .. } => (
                *quantity,
                self.seating.is_some().then_some(SeatRequest::Best {
                    quantity: *quantity,
                    category: None,
                    together: true,
                }),
            ),
            _ => return Err(self.inconsistent(format!("{change:?} is not a booking"))),
        };
        let existing = self.find(user.as_str());
        if existing.is_some_and(|h| self.records[h as usize].status.is_active()) {
            return Err(self.inconsistent(format!("{user} booked twice")));
        }
        if quantity == 0 {
            return Err(self.inconsistent(format!("{user} booked no tickets")));
        }
        self.ensure_room(existing)?;
        let (seats, want) = self.seats_for(user, request, quantity)?;
        let fits = match &seats {
            Some(_) => true,
            None => {
                self.seating.is_none()
                    && self.queue.is_empty()
                    && u64::from(quantity) <= self.available_tickets
            }
        };
        let record = BookingRecord {
            id,
            user: user.clone(),
            status: BookingStatus::Waiting,
            quantity,
            created_at: at,
            updated_at: at,
            expires_at: None,
            queue_seq: 0,
        };
        let handle = match existing {
            Some(h) => {
                let before = std::mem::replace(&mut self.records[h as usize], record);
                undo.records.push((h, Some(before)));
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
                undo.records.push((h, None));
                h
            }
        };
        if fits {
            self.grant(handle, at, self.settings.hold_secs, undo);
            self.seat(handle, seats.unwrap_or_default(), want, undo)?;
        } else {
            let seq = self.queue.push(handle, quantity);
            self.records[handle as usize].queue_seq = seq;
            undo.queue.push(QueueStep::Pushed(seq));
            if let Some(seating) = self.seating.as_deref_mut() {
                seating.wait(handle, want, undo.seats());
            }
        }
        Ok(handle)
    }

    /// Gives a booking (saved in `undo` already) its tickets: confirmed, or
    /// held for `hold_secs` from `at` when that is not 0.
    fn grant(&mut self, handle: u32, at: Timestamp, hold_secs: u32, undo: &mut Undo) {
        let record = &mut self.records[handle as usize];
        let wanted = u64::from(record.quantity);
        record.updated_at = at;
        self.available_tickets -= wanted;
        if hold_secs == 0 {
            record.status = BookingStatus::Confirmed;
            record.expires_at = None;
        } else {
            let deadline = at.plus_secs(hold_secs);
            record.status = BookingStatus::Held;
            record.expires_at = Some(deadline);
            self.held_tickets += wanted;
            self.holds.insert((deadline, handle));
            undo.holds.push((true, (deadline, handle)));
        }
    }

    /// Takes a held booking's deadline out of the index and its tickets out
    /// of the held count; its record is already saved.
    fn release_hold(&mut self, handle: u32, record: &BookingRecord, undo: &mut Undo) {
        if let Some(deadline) = record.expires_at {
            self.holds.remove(&(deadline, handle));
            undo.holds.push((false, (deadline, handle)));
        }
        self.held_tickets -= u64::from(record.quantity);
    }

    /// Ends `user`'s hold as `to`: `Confirmed` keeps the tickets, `Expired`
    /// gives them back (the caller promotes).
    fn apply_hold_ended(
        &mut self,
        user: &UserId,
        at: Timestamp,
        to: BookingStatus,
        undo: &mut Undo,
    ) -> Result<u32, DomainError> {
        let handle = self.active(user)?;
        let status = self.records[handle as usize].status;
        if status != BookingStatus::Held {
            return Err(self.inconsistent(format!(
                "{user}'s booking is {} when its hold ends as {}",
                status.as_str(),
                to.as_str()
            )));
        }
        let record = &mut self.records[handle as usize];
        let before = record.clone();
        record.status = to;
        record.expires_at = None;
        record.updated_at = at;
        undo.records.push((handle, Some(before.clone())));
        self.release_hold(handle, &before, undo);
        if to == BookingStatus::Expired {
            self.available_tickets += u64::from(before.quantity);
            self.mark_seats(handle, SeatState::Free, undo);
        } else {
            self.mark_seats(handle, SeatState::Booked, undo);
        }
        Ok(handle)
    }

    fn apply_cancelled(
        &mut self,
        user: &UserId,
        at: Timestamp,
        undo: &mut Undo,
    ) -> Result<u32, DomainError> {
        let handle = self.active(user)?;
        let record = &mut self.records[handle as usize];
        let before = record.clone();
        record.status = BookingStatus::Cancelled;
        record.expires_at = None;
        record.updated_at = at;
        undo.records.push((handle, Some(before.clone())));
        match before.status {
            BookingStatus::Waiting => self.leave_queue(handle, &before, undo),
            status => {
                if status == BookingStatus::Held {
                    self.release_hold(handle, &before, undo);
                }
                self.available_tickets += u64::from(before.quantity);
                self.mark_seats(handle, SeatState::Free, undo);
            }
        }
        Ok(handle)
    }

    fn apply_lowered(
        &mut self,
        user: &UserId,
        quantity: u32,
        at: Timestamp,
        undo: &mut Undo,
    ) -> Result<u32, DomainError> {
        let handle = self.active(user)?;
        let record = &mut self.records[handle as usize];
        if quantity == 0 || quantity >= record.quantity {
            let had = record.quantity;
            return Err(self.inconsistent(format!("{user} lowered {had} tickets to {quantity}")));
        }
        let before = record.clone();
        record.quantity = quantity;
        record.updated_at = at;
        undo.records.push((handle, Some(before.clone())));
        match before.status {
            BookingStatus::Waiting => {
                self.queue.set_quantity(before.queue_seq, quantity);
                undo.queue.push(QueueStep::Requantified {
                    seq: before.queue_seq,
                    from: before.quantity,
                });
            }
            status => {
                let freed = u64::from(before.quantity - quantity);
                if status == BookingStatus::Held {
                    self.held_tickets -= freed;
                }
                self.available_tickets += freed;
                if let Some(seating) = self.seating.as_deref_mut() {
                    seating.keep_first(handle, quantity as usize, undo.seats());
                }
            }
        }
        Ok(handle)
    }

    fn apply_updated(&mut self, patch: &EventPatch, undo: &mut Undo) -> Result<(), DomainError> {
        let next = patch.applied_to(&self.settings);
        check_settings(&next)?;
        if self.seating.is_some() && next.total_tickets != self.settings.total_tickets {
            return Err(DomainError::InvalidSettings {
                field: "totalTickets",
                message: "cannot change at a seated event: its tickets are its map's seats".into(),
            });
        }
        let sold = self.settings.total_tickets - self.available_tickets;
        if next.total_tickets < sold {
            return Err(DomainError::CapacityConflict(format!(
                "{sold} tickets are confirmed or held; totalTickets cannot go below that"
            )));
        }
        if next.total_tickets < self.settings.total_tickets {
            let largest = self.queue.largest_quantity();
            if let Some(largest) = largest.filter(|&q| u64::from(q) > next.total_tickets) {
                return Err(DomainError::CapacityConflict(format!(
                    "a waiting booking asks for {largest} tickets; totalTickets cannot go below that"
                )));
            }
        }
        self.available_tickets = next.total_tickets - sold;
        undo.settings = Some(std::mem::replace(&mut self.settings, next));
        Ok(())
    }

    /// Takes a waiting booking out of the queue; its record is already saved.
    fn leave_queue(&mut self, handle: u32, record: &BookingRecord, undo: &mut Undo) {
        let removed = self.queue.remove(record.queue_seq);
        debug_assert!(removed, "a waiting booking is always in the queue");
        undo.queue.push(QueueStep::Removed {
            seq: record.queue_seq,
            handle,
            quantity: record.quantity,
        });
    }

    /// Confirms the head of the queue while its quantity fits in the
    /// available tickets, in queue order, stopping at the first that does
    /// not fit: nobody is overtaken.
    fn promote(&mut self, at: Timestamp, undo: &mut Undo) -> Vec<u32> {
        let mut promoted = Vec::new();
        while let Some(head) = self.queue.head() {
            let wanted = u64::from(head.quantity);
            if wanted > self.available_tickets {
                break;
            }
            // At a seated event the head takes the seats its own request
            // finds, or everyone waits on.
            let mut seats = None;
            if let Some(seating) = self.seating.as_deref() {
                let want = seating.want_of(head.handle);
                match seating.choose(head.quantity, want) {
                    Some(chosen) => seats = Some((chosen, want)),
                    None => break,
                }
            }
            let before = self.records[head.handle as usize].clone();
            undo.records.push((head.handle, Some(before.clone())));
            self.leave_queue(head.handle, &before, undo);
            self.grant(head.handle, at, self.settings.offer_secs, undo);
            if let Some((chosen, want)) = seats {
                let state = self.seat_state(head.handle);
                if let Some(seating) = self.seating.as_deref_mut() {
                    // The seats were just found free: this cannot fail.
                    let assigned = seating.assign(head.handle, chosen, state, want, undo.seats());
                    debug_assert!(assigned.is_ok(), "chosen seats are free");
                }
            }
            promoted.push(head.handle);
        }
        promoted
    }

    pub(super) fn inconsistent(&self, why: String) -> DomainError {
        DomainError::Inconsistent(format!("event {}: {why}", self.id))
    }
}
