//! The live operations of a seated event: its creation with a map, booking
//! seats (exact, or best available), blocking seats, and reading the map.
//! Each decides, builds a [`Change`] and applies it like every other.

use super::{Event, EventChange, Outcome};
use crate::booking::BookingView;
use crate::change::Change;
use crate::ids::{BookingIdSequence, EventId, Timestamp, UserId};
use crate::room::RoomSettings;
use crate::seating::{SeatIx, SeatRequest, SeatShape, Seating};
use crate::settings::EventSettings;
use crate::DomainError;

impl Event {
    /// A new seated event: its tickets are the seats of `shape` (at most
    /// `max_seats`), whatever `settings.total_tickets` said.
    pub fn create_seated(
        id: EventId,
        mut settings: EventSettings,
        room: RoomSettings,
        shape: SeatShape,
        max_seats: u64,
        now: Timestamp,
    ) -> Result<(Self, Change), DomainError> {
        settings.total_tickets = shape.check(max_seats)?;
        let event = Self::created_seated(id, &settings, room, &shape, now)?;
        let change = Change::CreatedSeated {
            settings,
            room,
            shape,
            at: now,
        };
        Ok((event, change))
    }

    /// The event a [`Change::CreatedSeated`] describes.
    pub fn created_seated(
        id: EventId,
        settings: &EventSettings,
        room: RoomSettings,
        shape: &SeatShape,
        at: Timestamp,
    ) -> Result<Self, DomainError> {
        // No configured limit here: a replay takes what was accepted.
        let seats = shape.check(u64::MAX)?;
        if seats != settings.total_tickets {
            return Err(DomainError::Inconsistent(format!(
                "event {id}: {} tickets for a map of {seats} seats",
                settings.total_tickets
            )));
        }
        let mut event = Self::created_with_room(id, settings, room, at)?;
        event.seating = Some(Box::new(Seating::new(shape.clone())));
        Ok(event)
    }

    /// The event any creation describes, or `None` for a change that is
    /// not a creation.
    pub fn from_creation(id: EventId, change: &Change) -> Option<Result<Self, DomainError>> {
        match change {
            Change::CreatedSeated {
                settings,
                room,
                shape,
                at,
            } => Some(Self::created_seated(id, settings, *room, shape, *at)),
            other => other
                .creation()
                .map(|(settings, room, at)| Self::created_with_room(id, settings, room, at)),
        }
    }

    /// The seats, at a seated event.
    pub fn seating(&self) -> Option<&Seating> {
        self.seating.as_deref()
    }

    /// Seats the organiser blocked (0 at an unseated event).
    pub(super) fn blocked_seats(&self) -> u64 {
        self.seating.as_ref().map_or(0, |s| s.blocked())
    }

    /// The seats `ids` name, in the order given: at least one, each a seat
    /// of the map, listed once. Errors name `field`, the list's key.
    pub fn parse_seats(&self, ids: &[String], field: &str) -> Result<Vec<SeatIx>, DomainError> {
        if ids.is_empty() {
            return Err(DomainError::InvalidSeats {
                field: field.into(),
                message: "must list at least one seat".into(),
            });
        }
        self.parse_seat_list(ids, field)
    }

    /// [`Self::parse_seats`], where an empty list is allowed.
    pub fn parse_seat_list(&self, ids: &[String], field: &str) -> Result<Vec<SeatIx>, DomainError> {
        let seating = self.seating.as_ref().ok_or(DomainError::NotSeated)?;
        let bad = |message: String| DomainError::InvalidSeats {
            field: field.into(),
            message,
        };
        let mut seats = Vec::with_capacity(ids.len());
        for id in ids {
            let seat = seating
                .layout()
                .parse_seat(id)
                .ok_or_else(|| bad(format!("{id:?} is not a seat of this event")))?;
            if seats.contains(&seat) {
                return Err(bad(format!("{id:?} is listed twice")));
            }
            seats.push(seat);
        }
        Ok(seats)
    }

    /// The index of the category `name` names, at a seated event.
    pub fn seat_category(&self, name: &str) -> Result<u16, DomainError> {
        let seating = self.seating.as_ref().ok_or(DomainError::NotSeated)?;
        seating
            .layout()
            .category(name)
            .ok_or_else(|| DomainError::InvalidSeats {
                field: "category".into(),
                message: format!("{name:?} is not a category of this event"),
            })
    }

    /// Books seats for `user`: exactly the ones asked for (all or nothing,
    /// never waiting), or the best available (waiting in the queue when
    /// none fit). An active booking is answered as it is when asked again
    /// for the same seats or quantity; otherwise that is refused.
    pub fn book_seats(
        &mut self,
        user: &UserId,
        request: SeatRequest,
        ids: &BookingIdSequence,
        now: Timestamp,
    ) -> Result<Outcome<BookingView>, DomainError> {
        let seating = self.seating.as_ref().ok_or(DomainError::NotSeated)?;
        let existing = self.find(user.as_str());
        if let Some(handle) = existing {
            let record = &self.records[handle as usize];
            if record.status.is_active() {
                let same = match &request {
                    SeatRequest::Exact(seats) => {
                        let mut asked = seats.clone();
                        asked.sort_unstable();
                        asked == seating.seats_of(handle)
                    }
                    SeatRequest::Best { quantity, .. } => *quantity == record.quantity,
                };
                if !same {
                    return Err(DomainError::BookingExists);
                }
                return Ok(Outcome {
                    value: self.view(handle),
                    made: None,
                });
            }
        }
        self.may_book(user, existing, request.quantity(), now)?;
        if let SeatRequest::Exact(seats) = &request {
            let taken = seating.taken(seats);
            if !taken.is_empty() {
                let layout = seating.layout();
                return Err(DomainError::SeatsUnavailable(
                    taken.into_iter().map(|s| layout.seat_id(s)).collect(),
                ));
            }
        }
        self.new_booking(
            existing,
            Change::BookedSeats {
                booking: ids.next_id(),
                user: user.clone(),
                request,
                at: now,
            },
        )
    }

    /// Blocks the free seats of `block` and unblocks the blocked seats of
    /// `unblock` (seats already as asked are left alone); a held or booked
    /// seat in `block` refuses the whole change. Unblocked seats serve the
    /// queue at once.
    pub fn block_seats(
        &mut self,
        block: &[SeatIx],
        unblock: &[SeatIx],
        now: Timestamp,
    ) -> Result<Outcome<EventChange>, DomainError> {
        use crate::seating::SeatState;
        let seating = self.seating.as_ref().ok_or(DomainError::NotSeated)?;
        let layout = seating.layout();
        if let Some(&both) = block.iter().find(|s| unblock.contains(s)) {
            return Err(DomainError::InvalidSeats {
                field: "unblock".into(),
                message: format!("{:?} is also in block", layout.seat_id(both)),
            });
        }
        let sold: Vec<String> = block
            .iter()
            .filter(|&&s| matches!(seating.state(s), SeatState::Held | SeatState::Booked))
            .map(|&s| layout.seat_id(s))
            .collect();
        if !sold.is_empty() {
            return Err(DomainError::SeatsUnavailable(sold));
        }
        let mut block: Vec<SeatIx> = block
            .iter()
            .copied()
            .filter(|&s| seating.state(s) == SeatState::Free)
            .collect();
        let mut unblock: Vec<SeatIx> = unblock
            .iter()
            .copied()
            .filter(|&s| seating.state(s) == SeatState::Blocked)
            .collect();
        if block.is_empty() && unblock.is_empty() {
            return Ok(self.unchanged_event());
        }
        block.sort_unstable();
        block.dedup();
        unblock.sort_unstable();
        unblock.dedup();
        let change = Change::SeatsBlocked {
            block,
            unblock,
            at: now,
        };
        self.made_event_change(change)
    }
}
