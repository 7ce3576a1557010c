//! An event in the form snapshots store, and the full invariant check that
//! every restored event passes before it is served.

use std::collections::BTreeSet;
use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};
use serde::{Deserialize, Serialize};

use super::{check_settings, Event};
use crate::booking::{BookingRecord, BookingStatus};
use crate::chunked::ChunkedVec;
use crate::ids::{EventId, Timestamp};
use crate::queue::WaitingQueue;
use crate::room::{Room, RoomSettings, RoomSnapshot};
use crate::seating::{SeatState, Seating, SeatingSnapshot};
use crate::settings::EventSettings;
use crate::DomainError;

/// An event's state in the form snapshots store: no indexes, queue order as
/// a plain list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventSnapshot {
    /// The event's id.
    pub id: EventId,
    /// What the organiser set.
    pub settings: EventSettings,
    /// When the event was created.
    pub created_at: Timestamp,
    /// When a booking or a setting last changed.
    pub updated_at: Timestamp,
    /// Every user's latest booking.
    pub records: ChunkedVec<BookingRecord>,
    /// Indexes into `records` of the waiting bookings, front of the queue first.
    pub waiting: Vec<u32>,
    /// The waiting room, unless it is off and nobody ever joined (format 6).
    pub room: Option<RoomSnapshot>,
    /// A seated event's seats (format 7).
    pub seating: Option<SeatingSnapshot>,
}

impl Event {
    /// The event in the form snapshots store. The records are shared, not
    /// copied.
    pub fn to_snapshot(&self) -> EventSnapshot {
        EventSnapshot {
            id: self.id,
            settings: self.settings.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            records: self.records.clone(),
            waiting: self.queue.handles().collect(),
            room: (self.room.settings() != RoomSettings::default() || self.room.has_entries())
                .then(|| self.room.to_snapshot()),
            seating: self.seating.as_ref().map(|s| s.to_snapshot()),
        }
    }

    /// Rebuilds an event from a snapshot, refusing one that breaks any
    /// invariant: data read from disk is checked before it is served.
    pub fn from_snapshot(snapshot: EventSnapshot) -> Result<Self, DomainError> {
        let EventSnapshot {
            id,
            settings,
            created_at,
            updated_at,
            mut records,
            waiting,
            room,
            seating,
        } = snapshot;
        let bad = |why: String| Err(DomainError::Inconsistent(format!("event {id}: {why}")));
        let room = match room.map(Room::from_snapshot).transpose() {
            Ok(room) => room.unwrap_or_default(),
            Err(why) => return bad(why),
        };
        if let Err(e) = check_settings(&settings) {
            return bad(e.to_string());
        }
        if records.len() > u32::MAX as usize {
            return bad("too many records".into());
        }
        // Refuse bad counts before any index is built.
        let confirmed = tickets_in(&records, BookingStatus::Confirmed);
        let held = tickets_in(&records, BookingStatus::Held);
        let seating = match seats_from_snapshot(seating, &records) {
            Ok(seating) => seating,
            Err(why) => return bad(why),
        };
        let blocked = seating.as_ref().map_or(0, |s| s.blocked());
        if confirmed + held + blocked > settings.total_tickets {
            return bad(format!(
                "{confirmed} tickets confirmed and {held} held of {}",
                settings.total_tickets
            ));
        }
        let holds = match holds_of(&records) {
            Ok(holds) => holds,
            Err(why) => return bad(why),
        };
        let waiting_records = records
            .iter()
            .filter(|r| r.status == BookingStatus::Waiting)
            .count();
        if waiting.len() != waiting_records {
            return bad(format!(
                "queue holds {} of {waiting_records} waiting bookings",
                waiting.len()
            ));
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
            record.queue_seq = queue.push(handle, record.quantity);
        }
        let mut event = Self {
            id,
            available_tickets: settings.total_tickets - confirmed - held - blocked,
            held_tickets: held,
            holds,
            settings,
            created_at,
            updated_at,
            records: ChunkedVec::new(),
            by_user: HashTable::with_capacity(records.len()),
            hasher: DefaultHashBuilder::default(),
            queue,
            room,
            seating,
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
        let bad = |why: String| Err(self.inconsistent(why));
        let confirmed = tickets_in(&self.records, BookingStatus::Confirmed);
        let held = tickets_in(&self.records, BookingStatus::Held);
        let blocked = self.blocked_seats();
        let (available, total) = (self.available_tickets, self.settings.total_tickets);
        if held != self.held_tickets || confirmed + held + blocked + available != total {
            let counted = self.held_tickets;
            return bad(format!("{confirmed} confirmed + {held} held (counted {counted}) + {blocked} blocked + {available} available != {total} total"));
        }
        self.verify_seats()?;
        let holds_in_records = self
            .records
            .iter()
            .filter(|r| r.status == BookingStatus::Held)
            .count();
        let indexed = self.holds.iter().all(|&(deadline, handle)| {
            self.records
                .get(handle as usize)
                .is_some_and(|r| r.status == BookingStatus::Held && r.expires_at == Some(deadline))
        });
        if !indexed || holds_in_records != self.holds.len() {
            return bad("hold deadlines out of step with held bookings".into());
        }
        if let Some(r) = self.records.iter().find(|r| r.quantity == 0) {
            return bad(format!("booking {} has no tickets", r.id.get()));
        }
        if let (Some(head), None) = (self.queue.head(), &self.seating) {
            if u64::from(head.quantity) <= self.available_tickets {
                return bad(format!(
                    "the head of the queue asks for {} of {} available tickets",
                    head.quantity, self.available_tickets
                ));
            }
        }
        let mut expected_position = 0;
        let mut ahead = 0u64;
        for entry in self.queue.page(0, self.queue.len()) {
            expected_position += 1;
            let record = &self.records[entry.handle as usize];
            if entry.position != expected_position
                || record.status != BookingStatus::Waiting
                || entry.quantity != record.quantity
            {
                return bad(format!(
                    "queue entry {} out of order, not waiting or of another quantity",
                    entry.handle
                ));
            }
            if self.queue.position(record.queue_seq) != Some(expected_position)
                || self.queue.tickets_ahead(record.queue_seq) != Some(ahead)
            {
                return bad(format!("record {} has a stale queue seq", entry.handle));
            }
            ahead += u64::from(record.quantity);
        }
        if ahead != self.queue.tickets() {
            return bad(format!(
                "queue counts {} tickets, its entries {ahead}",
                self.queue.tickets()
            ));
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
        self.room.verify().or_else(bad)
    }

    /// At a seated event: each booking with tickets has as many seats as
    /// tickets, in the state its status says; no seat is in two bookings;
    /// free seats are the available tickets; the head of the queue finds
    /// no seats (else it would have them).
    fn verify_seats(&self) -> Result<(), DomainError> {
        let Some(seating) = self.seating.as_deref() else {
            return Ok(());
        };
        let bad = |why: String| Err(self.inconsistent(why));
        let mut owner = vec![false; seating.layout().seat_count as usize];
        for (handle, record) in self.records.iter().enumerate() {
            let state = match record.status {
                BookingStatus::Held => SeatState::Held,
                BookingStatus::Confirmed => SeatState::Booked,
                _ => continue,
            };
            let seats = seating.seats_of(handle as u32);
            if seats.len() != record.quantity as usize {
                return bad(format!(
                    "booking {} has {} tickets and {} seats",
                    record.id.get(),
                    record.quantity,
                    seats.len()
                ));
            }
            for &seat in seats {
                if seating.state(seat) != state
                    || std::mem::replace(&mut owner[seat as usize], true)
                {
                    return bad(format!("seat {seat} is out of step with its booking"));
                }
            }
        }
        let free = (0..owner.len() as u32)
            .filter(|&s| seating.state(s) == SeatState::Free)
            .count() as u64;
        if free != self.available_tickets {
            return bad(format!(
                "{free} free seats, {} available",
                self.available_tickets
            ));
        }
        if let Some(head) = self.queue.head() {
            if seating
                .choose(head.quantity, seating.want_of(head.handle))
                .is_some()
            {
                return bad("the head of the queue fits in the free seats".into());
            }
        }
        Ok(())
    }
}

/// The deadline index of the held bookings; every held booking has a
/// deadline, and no other has one.
fn holds_of(records: &ChunkedVec<BookingRecord>) -> Result<BTreeSet<super::Deadline>, String> {
    let mut holds = BTreeSet::new();
    for (handle, record) in records.iter().enumerate() {
        let id = record.id.get();
        match (record.status, record.expires_at) {
            (BookingStatus::Held, Some(deadline)) => {
                holds.insert((deadline, handle as u32));
            }
            (BookingStatus::Held, None) => {
                return Err(format!("held booking {id} has no deadline"))
            }
            (_, Some(_)) => return Err(format!("booking {id} has a deadline but is not held")),
            (_, None) => {}
        }
    }
    Ok(holds)
}

/// A seated event's seats from its snapshot, each booking with tickets
/// given its seats back.
fn seats_from_snapshot(
    snapshot: Option<SeatingSnapshot>,
    records: &ChunkedVec<BookingRecord>,
) -> Result<Option<Box<Seating>>, String> {
    let Some(snapshot) = snapshot else {
        return Ok(None);
    };
    let mut seating = Seating::from_snapshot(snapshot, u64::MAX)?;
    for (handle, record) in records.iter().enumerate() {
        let state = match record.status {
            BookingStatus::Held => SeatState::Held,
            BookingStatus::Confirmed => SeatState::Booked,
            _ => continue,
        };
        seating.restore_taken(handle as u32, state)?;
    }
    Ok(Some(Box::new(seating)))
}

fn tickets_in(records: &ChunkedVec<BookingRecord>, status: BookingStatus) -> u64 {
    records
        .iter()
        .filter(|r| r.status == status)
        .map(|r| u64::from(r.quantity))
        .sum()
}
