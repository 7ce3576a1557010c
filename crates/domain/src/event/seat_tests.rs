//! A seated event: booking exact and best-available seats, the queue,
//! holds, lowering, blocking, undo, replay and snapshots.

use proptest::prelude::*;

use super::*;
use crate::seating::{RowShape, SeatRequest, SeatShape, SeatState, SectionShape};
use crate::EventSettings;

fn user(name: &str) -> UserId {
    UserId::try_from(name).expect("valid test user id")
}

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

/// Stalls (standard): A of 6 seats with a gap after 3, B of 4; Balcony
/// (premium): 1 of 4.
fn hall_shape() -> SeatShape {
    let row = |name: &str, seats, gaps: &[u32]| RowShape {
        name: name.into(),
        seats,
        gaps_after: gaps.to_vec(),
    };
    SeatShape {
        sections: vec![
            SectionShape {
                name: "Stalls".into(),
                category: "standard".into(),
                rows: vec![row("A", 6, &[3]), row("B", 4, &[])],
            },
            SectionShape {
                name: "Balcony".into(),
                category: "premium".into(),
                rows: vec![row("1", 4, &[])],
            },
        ],
    }
}

fn hall(hold_secs: u32) -> Event {
    let mut settings = EventSettings::new(None, 1, 4);
    settings.hold_secs = hold_secs;
    settings.offer_secs = hold_secs;
    Event::create_seated(
        EventId::try_from(1).expect("id"),
        settings,
        RoomSettings::default(),
        hall_shape(),
        1_000,
        at(0),
    )
    .expect("valid hall")
    .0
}

fn best(quantity: u32) -> SeatRequest {
    SeatRequest::Best {
        quantity,
        category: None,
        together: true,
    }
}

fn exact(e: &Event, ids: &[&str]) -> SeatRequest {
    let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    SeatRequest::Exact(e.parse_seats(&ids, "seats").expect("seats of the hall"))
}

fn seats(view: &BookingView) -> Vec<&str> {
    view.seats
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(String::as_str)
        .collect()
}

#[test]
fn a_seated_event_counts_its_seats_and_books_the_best_together() {
    let ids = BookingIdSequence::default();
    let mut e = hall(0);
    assert_eq!(e.settings().total_tickets, 14);
    assert_eq!(e.status().blocked_seats, Some(0));
    let booked = e
        .book_seats(&user("a"), best(2), &ids, at(1))
        .expect("books");
    let made = booked.made.expect("a change");
    // Counted as a booking (the metrics read this) and as two seats booked.
    assert_eq!(
        (made.booked_as, made.seats_booked),
        (Some(BookingStatus::Confirmed), 2)
    );
    let a = booked.value;
    assert_eq!(a.status, BookingStatus::Confirmed);
    // Row A is 1-3 | 4-6 (middle 3.5): every pair there leaves a seat
    // alone, so the nearest pairs, 2-3 and 4-5, tie and the lower wins.
    assert_eq!(seats(&a), ["Stalls-A-2", "Stalls-A-3"]);
    let b = e
        .book_seats(&user("b"), best(3), &ids, at(2))
        .expect("books")
        .value;
    assert_eq!(seats(&b), ["Stalls-A-4", "Stalls-A-5", "Stalls-A-6"]);
    let status = e.status();
    assert_eq!((status.available_tickets, status.confirmed_tickets), (9, 5));
}

#[test]
fn exact_seats_are_all_or_nothing_and_never_wait() {
    let ids = BookingIdSequence::default();
    let mut e = hall(0);
    let req = exact(&e, &["Stalls-B-1", "Stalls-B-2"]);
    e.book_seats(&user("a"), req, &ids, at(1)).expect("books");
    let before = e.to_snapshot();
    let req = exact(&e, &["Stalls-B-2", "Stalls-B-3"]);
    assert_eq!(
        e.book_seats(&user("b"), req, &ids, at(2)).map(|o| o.value),
        Err(DomainError::SeatsUnavailable(vec!["Stalls-B-2".into()]))
    );
    assert_eq!(e.to_snapshot(), before);
    // The same seats again: the booking as it is; others: refused.
    let same = exact(&e, &["Stalls-B-2", "Stalls-B-1"]);
    assert!(e
        .book_seats(&user("a"), same, &ids, at(3))
        .expect("same")
        .made
        .is_none());
    let other = exact(&e, &["Stalls-B-3"]);
    assert_eq!(
        e.book_seats(&user("a"), other, &ids, at(3))
            .map(|o| o.value),
        Err(DomainError::BookingExists)
    );
    let bad = ["Stalls-Z-1".to_string()];
    assert!(matches!(
        e.parse_seats(&bad, "seats"),
        Err(DomainError::InvalidSeats { .. })
    ));
    let twice = ["Stalls-A-1".to_string(), "Stalls-A-1".to_string()];
    assert!(matches!(
        e.parse_seats(&twice, "seats"),
        Err(DomainError::InvalidSeats { .. })
    ));
}

#[test]
fn the_queue_is_served_first_come_first_served_by_each_ones_request() {
    let ids = BookingIdSequence::default();
    let mut e = hall(0);
    // Sell everything but Balcony-1-1 and Stalls-B-4.
    let all: Vec<String> = ["Stalls-A-1", "Stalls-A-2", "Stalls-A-3", "Stalls-A-4"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let r = SeatRequest::Exact(e.parse_seats(&all, "seats").expect("seats"));
    e.book_seats(&user("a"), r, &ids, at(1)).expect("a");
    let r = exact(&e, &["Stalls-A-5", "Stalls-A-6", "Stalls-B-1"]);
    e.book_seats(&user("b"), r, &ids, at(1)).expect("b");
    let r = exact(
        &e,
        &["Stalls-B-2", "Stalls-B-3", "Balcony-1-2", "Balcony-1-3"],
    );
    e.book_seats(&user("c"), r, &ids, at(1)).expect("c");
    let r = exact(&e, &["Balcony-1-4"]);
    e.book_seats(&user("d"), r, &ids, at(1)).expect("d");
    // Two free seats, not together: a pair waits, and a single behind it
    // waits too (nobody overtakes the head).
    let pair = e
        .book_seats(&user("p"), best(2), &ids, at(2))
        .expect("p")
        .value;
    assert_eq!(pair.status, BookingStatus::Waiting);
    assert_eq!(pair.seats.as_deref(), Some(&[][..]));
    let one = e
        .book_seats(&user("o"), best(1), &ids, at(3))
        .expect("o")
        .value;
    assert_eq!(one.waiting_position, Some(2));
    // Exact seats may still be taken while others wait.
    let r = exact(&e, &["Balcony-1-1"]);
    e.book_seats(&user("x"), r, &ids, at(4))
        .expect("exact while others wait");
    // d leaves: still no pair. c leaves: B-2, B-3 and B-4 are free; each
    // pair there leaves a seat alone, so the pair takes the nearest to the
    // middle (B-2 and B-3, centre 2.5), and the single the seat left.
    e.cancel(&user("d"), at(5)).expect("d cancels");
    let promoted = e
        .cancel(&user("c"), at(6))
        .expect("c cancels")
        .value
        .promotions;
    assert_eq!(promoted.len(), 2);
    assert_eq!(seats(&promoted[0]), ["Stalls-B-2", "Stalls-B-3"]);
    assert_eq!(seats(&promoted[1]), ["Stalls-B-4"]);
    e.verify().expect("consistent");
}

#[test]
fn holds_confirm_to_booked_seats_and_lapse_to_free_ones() {
    let ids = BookingIdSequence::default();
    let mut e = hall(60);
    let a = e
        .book_seats(&user("a"), best(2), &ids, at(0))
        .expect("a")
        .value;
    assert_eq!(a.status, BookingStatus::Held);
    let seating = e.seating().expect("seated");
    let first = seating.layout().parse_seat("Stalls-A-2").expect("seat");
    assert_eq!(seating.state(first), SeatState::Held);
    e.confirm(&user("a"), at(1)).expect("confirms");
    assert_eq!(e.seating().expect("seated").state(first), SeatState::Booked);
    e.book_seats(&user("b"), best(1), &ids, at(2)).expect("b");
    let lapsed = e.expire_due(at(62_000), 10).expect("lapses");
    assert_eq!(lapsed.len(), 1);
    let b = e.booking(&user("b")).expect("b");
    assert_eq!(b.status, BookingStatus::Expired);
    // An ended booking keeps the list it last had; its seats are free.
    let seat = e
        .seating()
        .expect("seated")
        .layout()
        .parse_seat(seats(&b)[0])
        .expect("seat");
    assert_eq!(e.seating().expect("seated").state(seat), SeatState::Free);
}

#[test]
fn lowering_keeps_the_first_seats_and_blocking_refuses_sold_seats() {
    let ids = BookingIdSequence::default();
    let mut e = hall(0);
    let r = exact(&e, &["Stalls-B-1", "Stalls-B-2", "Stalls-B-3"]);
    e.book_seats(&user("a"), r, &ids, at(1)).expect("a");
    let lowered = e
        .lower_quantity(&user("a"), 1, at(2))
        .expect("lowers")
        .value;
    assert_eq!(seats(&lowered.booking), ["Stalls-B-1"]);
    let sold = e
        .parse_seats(&["Stalls-B-1".into()], "seats")
        .expect("seat");
    assert_eq!(
        e.block_seats(&sold, &[], at(3)).map(|o| o.value),
        Err(DomainError::SeatsUnavailable(vec!["Stalls-B-1".into()]))
    );
    let free = e
        .parse_seats(&["Stalls-B-2".into(), "Stalls-B-3".into()], "seats")
        .expect("seats");
    let blocked = e
        .block_seats(&free, &[], at(4))
        .expect("blocks")
        .value
        .status;
    assert_eq!(blocked.blocked_seats, Some(2));
    assert_eq!(blocked.available_tickets, 14 - 1 - 2);
    assert_eq!(blocked.confirmed_tickets, 1);
    // Blocking what is blocked changes nothing; a raised count is refused.
    assert!(e
        .block_seats(&free, &[], at(5))
        .expect("same")
        .made
        .is_none());
    let patch = EventPatch {
        total_tickets: Some(20),
        ..EventPatch::default()
    };
    assert!(matches!(
        e.update(patch, at(6)),
        Err(DomainError::InvalidSettings { .. })
    ));
    e.verify().expect("consistent");
}

/// One step of a random run.
#[derive(Debug, Clone)]
enum Op {
    Best(u8, u32, bool, Option<u16>),
    Exact(u8, Vec<u32>),
    Cancel(u8),
    Lower(u8, u32),
    Confirm(u8),
    Expire(i64),
    Block(Vec<u32>, Vec<u32>),
}

fn op() -> impl Strategy<Value = Op> {
    let seats = || proptest::collection::vec(0u32..14, 1..4);
    prop_oneof![
        4 => (0u8..8, 1u32..4, any::<bool>(), proptest::option::of(0u16..2))
            .prop_map(|(u, q, t, c)| Op::Best(u, q, t, c)),
        2 => (0u8..8, seats()).prop_map(|(u, s)| Op::Exact(u, s)),
        2 => (0u8..8).prop_map(Op::Cancel),
        1 => (0u8..8, 1u32..3).prop_map(|(u, q)| Op::Lower(u, q)),
        1 => (0u8..8).prop_map(Op::Confirm),
        1 => (0i64..40_000).prop_map(Op::Expire),
        1 => (seats(), seats()).prop_map(|(b, u)| Op::Block(b, u)),
    ]
}

/// Waiting users, front first.
fn waiting(e: &Event) -> Vec<String> {
    e.waiting_page(0, 100)
        .entries
        .into_iter()
        .map(|w| w.user_id.as_str().to_string())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn random_runs_sell_no_seat_twice_keep_the_queue_and_undo_replay_and_restore_exactly(
        ops in proptest::collection::vec(op(), 1..40),
        hold in prop_oneof![Just(0u32), Just(10u32)],
    ) {
        let ids = BookingIdSequence::default();
        let mut e = hall(hold);
        let mut changes = Vec::new();
        let mut now = 1i64;
        for op in ops {
            now += 100;
            let before = e.clone();
            let queue_before = waiting(&e);
            let name = |u: u8| user(&format!("u{u}"));
            let made: Result<Vec<Made>, DomainError> = match op {
                Op::Best(u, quantity, together, category) => e
                    .book_seats(&name(u), SeatRequest::Best { quantity, category, together }, &ids, at(now))
                    .map(|o| o.made.into_iter().collect()),
                Op::Exact(u, mut seats) => {
                    seats.sort_unstable();
                    seats.dedup();
                    e.book_seats(&name(u), SeatRequest::Exact(seats), &ids, at(now))
                        .map(|o| o.made.into_iter().collect())
                }
                Op::Cancel(u) => e.cancel(&name(u), at(now)).map(|o| o.made.into_iter().collect()),
                Op::Lower(u, q) => e.lower_quantity(&name(u), q, at(now)).map(|o| o.made.into_iter().collect()),
                Op::Confirm(u) => e.confirm(&name(u), at(now)).map(|o| o.made.into_iter().collect()),
                Op::Expire(by) => {
                    now += by;
                    e.expire_due(at(now), 100)
                }
                Op::Block(block, unblock) => {
                    let unblock: Vec<u32> = unblock.into_iter().filter(|s| !block.contains(s)).collect();
                    e.block_seats(&block, &unblock, at(now)).map(|o| o.made.into_iter().collect())
                }
            };
            e.verify().map_err(|err| TestCaseError::fail(err.to_string()))?;
            match made {
                Err(_) => {
                    prop_assert_eq!(e.to_snapshot(), before.to_snapshot());
                }
                Ok(made) => {
                    let mut undone = e.clone();
                    for m in made.iter().rev() {
                        undone.undo(m.undo.clone());
                    }
                    prop_assert_eq!(undone.to_snapshot(), before.to_snapshot());
                    prop_assert!(undone.seating() == before.seating());
                    changes.extend(made.into_iter().map(|m| m.change));
                }
            }
            // Nobody overtaken: whoever left the queue other than by
            // cancelling was at its front.
            let queue_after = waiting(&e);
            let left: Vec<&String> = queue_before.iter().filter(|u| !queue_after.contains(u)).collect();
            for (i, u) in queue_before.iter().enumerate() {
                let cancelled = e.booking(&user(u)).is_ok_and(|b| b.status == BookingStatus::Cancelled);
                if left.contains(&u) && !cancelled {
                    let ahead_left = queue_before[..i].iter().all(|v| left.contains(&v));
                    prop_assert!(ahead_left, "{} was served before someone ahead", u);
                }
            }
        }
        // Replay reaches the same state; a snapshot restores it.
        let mut replayed = hall(hold);
        for change in &changes {
            replayed.apply(change).map_err(|err| TestCaseError::fail(err.to_string()))?;
        }
        prop_assert_eq!(replayed.to_snapshot(), e.to_snapshot());
        let restored = Event::from_snapshot(e.to_snapshot())
            .map_err(|err| TestCaseError::fail(err.to_string()))?;
        prop_assert_eq!(restored.to_snapshot(), e.to_snapshot());
        prop_assert!(restored.seating() == e.seating());
    }
}
