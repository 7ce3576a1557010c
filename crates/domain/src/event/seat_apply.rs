//! How an applied change moves seats at a seated event: the seats a new
//! booking gets, blocking, and a booking's seats following its status.
//! (Nothing here at an unseated event.)

use super::{Event, Undo};
use crate::booking::BookingStatus;
use crate::ids::UserId;
use crate::seating::{SeatIx, SeatRequest, SeatState, Want};
use crate::DomainError;

impl Event {
    /// At a seated event, the seats a new booking gets now (if any) and
    /// what it waits for otherwise; `(None, default)` at an unseated one.
    pub(super) fn seats_for(
        &self,
        user: &UserId,
        request: Option<SeatRequest>,
        quantity: u32,
    ) -> Result<(Option<Vec<SeatIx>>, Want), DomainError> {
        match (request, self.seating.as_deref()) {
            (None, None) => Ok((None, Want::default())),
            (Some(_), None) => Err(DomainError::NotSeated),
            (None, Some(_)) => Err(self.inconsistent(format!("{user} booked no seats"))),
            (Some(SeatRequest::Exact(seats)), Some(seating)) => {
                seating.check_range(&seats)?;
                if !seating.taken(&seats).is_empty() {
                    return Err(self.inconsistent(format!("{user} booked taken seats")));
                }
                Ok((Some(seats), Want::default()))
            }
            (
                Some(SeatRequest::Best {
                    category, together, ..
                }),
                Some(seating),
            ) => {
                if category.is_some_and(|c| usize::from(c) >= seating.layout().categories.len()) {
                    return Err(self.inconsistent(format!("{user} asked for an unknown category")));
                }
                let want = Want {
                    category,
                    apart: !together,
                };
                let seats = self
                    .queue
                    .is_empty()
                    .then(|| seating.choose(quantity, want))
                    .flatten();
                Ok((seats, want))
            }
        }
    }

    /// The organiser blocked and unblocked seats.
    pub(super) fn apply_blocked(
        &mut self,
        block: &[SeatIx],
        unblock: &[SeatIx],
        undo: &mut Undo,
    ) -> Result<(), DomainError> {
        let seating = self.seating.as_deref_mut().ok_or(DomainError::NotSeated)?;
        seating.block(block, unblock, undo.seats())?;
        self.available_tickets = self.available_tickets + unblock.len() as u64 - block.len() as u64;
        Ok(())
    }

    /// Gives a booking that was just granted its tickets its seats, held or
    /// booked as its status says (nothing at an unseated event).
    pub(super) fn seat(
        &mut self,
        handle: u32,
        seats: Vec<SeatIx>,
        want: Want,
        undo: &mut Undo,
    ) -> Result<(), DomainError> {
        let state = self.seat_state(handle);
        if let Some(seating) = self.seating.as_deref_mut() {
            seating.assign(handle, seats, state, want, undo.seats())?;
        }
        Ok(())
    }

    /// What a booking's seats are while it has its tickets.
    pub(super) fn seat_state(&self, handle: u32) -> SeatState {
        match self.records[handle as usize].status {
            BookingStatus::Held => SeatState::Held,
            BookingStatus::Confirmed => SeatState::Booked,
            _ => SeatState::Free,
        }
    }

    /// Moves every seat of a booking to `state` (nothing at an unseated event).
    pub(super) fn mark_seats(&mut self, handle: u32, state: SeatState, undo: &mut Undo) {
        if let Some(seating) = self.seating.as_deref_mut() {
            seating.mark_all(handle, state, undo.seats());
        }
    }
}
