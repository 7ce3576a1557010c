//! The service's seat operations: booking at a seated event (exact seats
//! or best available), blocking seats, and reading the map. Seat ids are
//! read inside the event's turn, where its map is.

use super::{BoxOffice, Result};
use std::sync::Arc;

use crate::domain::seating::{Layout, SeatRequest, SectionView};
use crate::domain::{BookingView, DomainError, EventChange, EventId, Limit, UserId};
use crate::persistence::journal::Lsn;

/// What a booking asks for, as the client sent it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeatAsk {
    /// Tickets (default 1; with `seats`, their count if given).
    pub quantity: Option<u32>,
    /// Exact seat ids.
    pub seats: Option<Vec<String>>,
    /// Best available in this category only.
    pub category: Option<String>,
    /// Best available together (default) or one by one.
    pub together: Option<bool>,
}

/// A seated event's map and each seat's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatMap {
    /// The change index the map reflects.
    pub index: u64,
    /// Its sections.
    pub sections: Vec<SectionView>,
}

impl BoxOffice {
    /// Books at event `id` for `user` what `ask` says: exact seats, best
    /// available seats, or (at an unseated event) tickets.
    pub async fn book_as(&self, id: EventId, user: UserId, ask: SeatAsk) -> Result<BookingView> {
        let max = self.limits.max_bookings_per_event;
        let counters = Arc::clone(self.registry.counters());
        self.change(id, move |event, ids, now| {
            if event.is_new_user(&user) && event.record_count() as u64 >= max {
                return Err(DomainError::LimitReached {
                    what: Limit::BookingsPerEvent,
                    limit: max,
                });
            }
            let request = match (&ask.seats, event.seating()) {
                (Some(ids), _) => {
                    let seats = event.parse_seats(ids, "seats")?;
                    if ask.quantity.is_some_and(|q| q as usize != seats.len()) {
                        return Err(DomainError::InvalidSeats {
                            field: "seats".into(),
                            message: format!(
                                "lists {} seats, and quantity asks for another number",
                                seats.len()
                            ),
                        });
                    }
                    SeatRequest::Exact(seats)
                }
                // `category` and `together` mean nothing without seats.
                (None, None) => return event.book(&user, ask.quantity.unwrap_or(1), ids, now),
                (None, Some(_)) => SeatRequest::Best {
                    quantity: ask.quantity.unwrap_or(1),
                    category: ask
                        .category
                        .as_deref()
                        .map(|c| event.seat_category(c))
                        .transpose()?,
                    together: ask.together.unwrap_or(true),
                },
            };
            let best = matches!(request, SeatRequest::Best { .. });
            let started = std::time::Instant::now();
            let booked = event.book_seats(&user, request, ids, now);
            if best {
                let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                counters.best_available.observe(nanos);
            }
            booked
        })
        .await
    }

    /// Blocks and unblocks seats of event `id` (by id).
    pub async fn block_seats(
        &self,
        id: EventId,
        block: Vec<String>,
        unblock: Vec<String>,
    ) -> Result<EventChange> {
        self.change(id, move |event, _, now| {
            let block = event.parse_seat_list(&block, "block")?;
            let unblock = event.parse_seat_list(&unblock, "unblock")?;
            event.block_seats(&block, &unblock, now)
        })
        .await
    }

    /// Event `id`'s seat map, as durable.
    pub async fn seat_map(&self, id: EventId) -> Result<SeatMap> {
        let (sections, lsn) = self
            .read_indexed(id, |event| event.seating().map(|s| s.map_view()))
            .await?;
        let sections = sections.ok_or(DomainError::NotSeated)?;
        Ok(SeatMap {
            index: self.live_id(id, lsn),
            sections,
        })
    }

    /// Event `id`'s newest seat letters once durable, its layout, and the
    /// LSN they reflect: for live streams, which must send the newest state.
    pub async fn seat_letters_at(&self, id: EventId) -> Result<(Arc<Layout>, Vec<u8>, Lsn)> {
        let (seats, lsn) = self
            .read_at(id, |event| {
                event.seating().map(|s| (s.shared_layout(), s.letters()))
            })
            .await?;
        let (layout, letters) = seats.ok_or(DomainError::NotSeated)?;
        Ok((layout, letters, lsn))
    }
}
