//! The event's waiting room as its live operations see it: joining,
//! leaving, reading an entry, and the timed work (draw, admissions, lapses)
//! that the event's owner runs when [`Event::next_deadline`] comes.

use super::{Event, Made, Outcome};
use crate::change::Change;
use crate::ids::{Timestamp, UserId};
use crate::room::{EntryView, Room};
use crate::settings::Sales;
use crate::DomainError;

impl Event {
    /// The waiting room.
    pub fn room(&self) -> &Room {
        &self.room
    }

    /// `user` joins the room: an active entry is returned as it is; after
    /// an ended one, a new entry at the end. 409 `NO_ROOM` while the room
    /// is off.
    pub fn join_room(
        &mut self,
        user: &UserId,
        now: Timestamp,
    ) -> Result<Outcome<EntryView>, DomainError> {
        if !self.room.settings().is_on() {
            return Err(DomainError::NoRoom);
        }
        let existing = self.room.find(user.as_str());
        if let Some(handle) = existing.filter(|&h| self.room.entry_status(h).is_active()) {
            return Ok(Outcome {
                value: self.entry_view(handle),
                made: None,
            });
        }
        let change = Change::RoomJoined {
            user: user.clone(),
            at: now,
        };
        let applied = self.apply(&change)?;
        let handle = applied.entries[0];
        let mut made = self.made(change, applied);
        // A first entry joins the end: nobody else's place moved.
        made.room_moved = existing.is_some();
        Ok(Outcome {
            value: self.entry_view(handle),
            made: Some(made),
        })
    }

    /// `user` leaves the room; their active entry ends as `left`.
    pub fn leave_room(
        &mut self,
        user: &UserId,
        now: Timestamp,
    ) -> Result<Outcome<EntryView>, DomainError> {
        if self.room.active(user.as_str()).is_none() {
            return Err(self.no_entry());
        }
        let change = Change::RoomLeft {
            user: user.clone(),
            at: now,
        };
        let applied = self.apply(&change)?;
        let handle = applied.entries[0];
        Ok(Outcome {
            value: self.entry_view(handle),
            made: Some(self.made(change, applied)),
        })
    }

    /// `user`'s active entry, else their latest ended one.
    pub fn room_entry(&self, user: &UserId) -> Result<EntryView, DomainError> {
        match self.room.find(user.as_str()) {
            Some(handle) => Ok(self.entry_view(handle)),
            None => Err(self.no_entry()),
        }
    }

    /// Entry `handle` as readers see it.
    pub(super) fn entry_view(&self, handle: u32) -> EntryView {
        let admitting = self.room.is_running() && self.settings.sales_open;
        self.room.view(handle, self.id, admitting)
    }

    /// When the room next has something to do: the draw (at `sales_start`,
    /// or at once without one), an admission lapsing, or the next turn
    /// while sales are open.
    pub(super) fn room_due(&self) -> Option<Timestamp> {
        let room = &self.room;
        let draw = (room.settings().is_on() && !room.is_drawn()).then(|| {
            self.settings
                .sales_start
                .unwrap_or(Timestamp::from_millis(0))
        });
        // A turn is taken only while sales are open: from `sales_start`
        // (which a PATCH may have moved past the draw), before `sales_end`.
        let turn = room
            .next_turn()
            .map(|turn| turn.max(self.settings.sales_start.unwrap_or(turn)))
            .filter(|&turn| {
                self.settings.sales_open && self.settings.sales_end.is_none_or(|end| turn < end)
            });
        [draw, room.next_lapse(), turn].into_iter().flatten().min()
    }

    /// Does one piece of the room's work due at `now`, if any: the draw
    /// (with `seed`, from the operating system), else every lapse due,
    /// else the admissions due. The caller journals what it returns and
    /// calls again until `None`.
    pub fn room_work(
        &mut self,
        now: Timestamp,
        seed: [u8; 32],
    ) -> Result<Option<Made>, DomainError> {
        let room = &self.room;
        let draw_due = room.settings().is_on()
            && !room.is_drawn()
            && self.settings.sales_start.is_none_or(|start| start <= now);
        let change = if draw_due {
            Change::RoomDrawn { seed, at: now }
        } else if room.next_lapse().is_some_and(|until| until <= now) {
            Change::RoomLapsed { at: now }
        } else if self.settings.sales_at(now) == Sales::Open {
            match room.due_admissions(now) {
                Some((count, restart)) => Change::RoomAdmitted {
                    count,
                    restart,
                    at: now,
                },
                None => return Ok(None),
            }
        } else {
            return Ok(None);
        };
        let applied = self.apply(&change)?;
        Ok(Some(self.made(change, applied)))
    }

    /// `NO_ROOM` at an event whose room is off and never had anyone in
    /// it; else `ENTRY_NOT_FOUND`.
    fn no_entry(&self) -> DomainError {
        if self.room.settings().is_on() || self.room.has_entries() {
            DomainError::EntryNotFound
        } else {
            DomainError::NoRoom
        }
    }
}
