//! The service's seat operations: booking at a seated event (exact seats
//! or best available), blocking seats, and reading the map. Seat ids are
//! read inside the event's turn, where its map is.

use super::{BoxOffice, Result, ServiceError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

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

/// Seat maps' reply bodies, one per event as of one change: an on-sale's
/// map is read by thousands between two changes, and its body (a 100,000-
/// seat map is 167 KB) is the same bytes for all of them.
#[derive(Default)]
pub struct SeatBodies {
    bodies: Mutex<HashMap<EventId, (Lsn, Arc<SeatBody>)>>,
}

/// One seat map's reply body, and the same compressed once a reader asks.
#[derive(Debug)]
pub struct SeatBody {
    /// The body as rendered.
    pub plain: bytes::Bytes,
    /// The body in the content coding the HTTP layer offers, made by the
    /// first reader that takes it, shared by the rest.
    encoded: OnceLock<bytes::Bytes>,
}

impl SeatBody {
    fn new(plain: bytes::Bytes) -> Self {
        Self {
            plain,
            encoded: OnceLock::new(),
        }
    }

    /// The encoded body: `encode` of the plain one, made once (a failed
    /// `encode` is not kept).
    pub fn encoded<E>(
        &self,
        encode: impl FnOnce(&[u8]) -> std::result::Result<bytes::Bytes, E>,
    ) -> std::result::Result<bytes::Bytes, E> {
        if let Some(made) = self.encoded.get() {
            return Ok(made.clone());
        }
        let made = encode(&self.plain)?;
        Ok(self.encoded.get_or_init(|| made).clone())
    }
}

/// Events whose map body is kept: the ones being read during an on-sale,
/// at most 32 × 330 KB for the largest maps; past that the cache starts
/// again.
const SEAT_BODIES_KEPT: usize = 32;

impl SeatBodies {
    /// Event `id`'s body as of `lsn`, if made.
    fn get(&self, id: EventId, lsn: Lsn) -> Option<Arc<SeatBody>> {
        let bodies = self.bodies.lock().unwrap_or_else(|p| p.into_inner());
        bodies
            .get(&id)
            .filter(|(made_at, _)| *made_at == lsn)
            .map(|(_, body)| Arc::clone(body))
    }

    /// Keeps `body`, event `id`'s as of `lsn`, unless a newer one is kept.
    fn put(&self, id: EventId, lsn: Lsn, body: Arc<SeatBody>) {
        let mut bodies = self.bodies.lock().unwrap_or_else(|p| p.into_inner());
        if bodies.len() >= SEAT_BODIES_KEPT && !bodies.contains_key(&id) {
            bodies.clear();
        }
        let newer_kept = bodies.get(&id).is_some_and(|(kept, _)| *kept > lsn);
        if !newer_kept {
            bodies.insert(id, (lsn, body));
        }
    }
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
        Ok(self.seat_map_at(id).await?.0)
    }

    /// Event `id`'s seat map as the reply body `render` makes of it, made
    /// once per change: while what the event's actor published may be
    /// served (see [`Self::status_body`]) and its change's body is kept,
    /// a read is that body and asks the actor nothing.
    pub async fn seat_map_body<E: From<ServiceError>>(
        &self,
        id: EventId,
        render: impl FnOnce(SeatMap) -> std::result::Result<bytes::Bytes, E>,
    ) -> std::result::Result<Arc<SeatBody>, E> {
        if let Some(published) = self.servable_published(id)? {
            if published.status.blocked_seats.is_none() {
                return Err(ServiceError::from(DomainError::NotSeated).into());
            }
            if let Some(body) = self.seat_bodies.get(id, published.lsn()) {
                return Ok(body);
            }
        }
        let (map, lsn) = self.seat_map_at(id).await?;
        let body = Arc::new(SeatBody::new(render(map)?));
        self.seat_bodies.put(id, lsn, Arc::clone(&body));
        Ok(body)
    }

    /// [`Self::seat_map`] and the LSN of the newest change it reflects.
    async fn seat_map_at(&self, id: EventId) -> Result<(SeatMap, Lsn)> {
        let (sections, lsn) = self
            .read_indexed(id, |event| event.seating().map(|s| s.map_view()))
            .await?;
        let sections = sections.ok_or(DomainError::NotSeated)?;
        let map = SeatMap {
            index: self.live_id(id, lsn),
            sections,
        };
        Ok((map, lsn))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> EventId {
        EventId::try_from(n).expect("an id")
    }

    fn body(text: &'static str) -> Arc<SeatBody> {
        Arc::new(SeatBody::new(bytes::Bytes::from_static(text.as_bytes())))
    }

    fn plain(got: Option<Arc<SeatBody>>) -> Option<bytes::Bytes> {
        got.map(|b| b.plain.clone())
    }

    #[test]
    fn a_body_is_served_for_its_change_only_and_never_replaced_by_an_older_one() {
        let bodies = SeatBodies::default();
        assert_eq!(plain(bodies.get(id(1), Lsn::new(5))), None);
        bodies.put(id(1), Lsn::new(5), body("five"));
        assert_eq!(
            plain(bodies.get(id(1), Lsn::new(5))).as_deref(),
            Some(&b"five"[..])
        );
        assert_eq!(
            plain(bodies.get(id(1), Lsn::new(6))),
            None,
            "a newer change"
        );
        // A slow reader's older map does not push out the newer one.
        bodies.put(id(1), Lsn::new(7), body("seven"));
        bodies.put(id(1), Lsn::new(5), body("five"));
        assert_eq!(
            plain(bodies.get(id(1), Lsn::new(7))).as_deref(),
            Some(&b"seven"[..])
        );
        assert_eq!(plain(bodies.get(id(1), Lsn::new(5))), None);
    }

    #[test]
    fn bodies_are_kept_for_a_bounded_number_of_events() {
        let bodies = SeatBodies::default();
        for n in 1..=SEAT_BODIES_KEPT as u64 * 3 {
            bodies.put(id(n), Lsn::new(n), body("map"));
            let kept = bodies.bodies.lock().expect("lock").len();
            assert!(kept <= SEAT_BODIES_KEPT, "{kept} kept");
            assert!(bodies.get(id(n), Lsn::new(n)).is_some());
        }
    }

    #[test]
    fn the_encoded_body_is_made_once_and_a_failure_is_not_kept() {
        let map = SeatBody::new(bytes::Bytes::from_static(b"map"));
        let failed: std::result::Result<bytes::Bytes, &str> = map.encoded(|_| Err("no"));
        assert_eq!(failed, Err("no"));
        let made = map.encoded::<()>(|plain| Ok(bytes::Bytes::from(plain.repeat(2))));
        assert_eq!(made.as_deref(), Ok(&b"mapmap"[..]));
        let again = map.encoded::<()>(|_| panic!("made twice"));
        assert_eq!(again.as_deref(), Ok(&b"mapmap"[..]));
    }
}
