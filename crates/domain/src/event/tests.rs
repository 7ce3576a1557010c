use super::*;
use crate::EventSettings;

fn user(name: &str) -> UserId {
    UserId::try_from(name).expect("valid test user id")
}

fn event(tickets: u64) -> Event {
    let id = EventId::try_from(1).expect("valid id");
    Event::create(
        id,
        EventSettings::new(None, tickets, 10),
        Timestamp::from_millis(0),
    )
    .expect("valid event")
    .0
}

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn book(e: &mut Event, ids: &BookingIdSequence, name: &str, quantity: u32) -> BookingView {
    e.book(&user(name), quantity, ids, at(1))
        .expect("book")
        .value
}

fn names(views: &[BookingView]) -> Vec<&str> {
    views.iter().map(|v| v.user_id.as_str()).collect()
}

#[test]
fn bookings_are_confirmed_while_tickets_remain_then_wait_in_order() {
    let ids = BookingIdSequence::default();
    let mut e = event(2);
    let a = book(&mut e, &ids, "a", 1);
    let b = book(&mut e, &ids, "b", 1);
    let c = book(&mut e, &ids, "c", 1);
    let d = book(&mut e, &ids, "d", 1);
    assert_eq!(a.status, BookingStatus::Confirmed);
    assert_eq!(b.status, BookingStatus::Confirmed);
    assert_eq!(
        (c.status, c.waiting_position, c.tickets_ahead),
        (BookingStatus::Waiting, Some(1), Some(0))
    );
    assert_eq!(
        (d.status, d.waiting_position, d.tickets_ahead),
        (BookingStatus::Waiting, Some(2), Some(1))
    );
    let s = e.status();
    assert_eq!(
        (s.available_tickets, s.confirmed_tickets, s.waiting_count),
        (0, 2, 2)
    );
    e.verify().expect("invariants hold");
}

#[test]
fn booking_again_returns_the_same_active_booking_and_changes_nothing() {
    let ids = BookingIdSequence::default();
    let mut e = event(1);
    let first = e.book(&user("a"), 1, &ids, at(1)).expect("book");
    let again = e.book(&user("a"), 1, &ids, at(2)).expect("book again");
    assert!(first.made.is_some());
    assert!(again.made.is_none());
    assert_eq!(first.value, again.value);
    assert_eq!(e.status().available_tickets, 0);
    assert_eq!(ids.peek(), 2, "no id is spent on a repeated booking");
}

#[test]
fn booking_again_with_another_quantity_is_refused_even_when_sales_are_closed() {
    let ids = BookingIdSequence::default();
    let mut e = event(5);
    book(&mut e, &ids, "a", 2);
    e.update(
        EventPatch {
            sales_open: Some(false),
            ..EventPatch::default()
        },
        at(2),
    )
    .expect("close sales");
    assert_eq!(
        e.book(&user("a"), 3, &ids, at(3)),
        Err(DomainError::BookingExists)
    );
    let retry = e.book(&user("a"), 2, &ids, at(3)).expect("a retry");
    assert!(
        retry.made.is_none(),
        "a retry is answered whatever the window"
    );
    assert_eq!(
        e.book(&user("b"), 1, &ids, at(3)),
        Err(DomainError::SalesClosed)
    );
}

#[test]
fn a_quantity_over_the_per_user_limit_or_the_event_size_is_refused() {
    let ids = BookingIdSequence::default();
    let mut e = event(3);
    assert_eq!(
        e.book(&user("a"), 4, &ids, at(1)),
        Err(DomainError::QuantityOutOfRange { max: 3 })
    );
    assert_eq!(
        e.book(&user("a"), 0, &ids, at(1)),
        Err(DomainError::QuantityOutOfRange { max: 3 })
    );
    e.update(
        EventPatch {
            max_per_user: Some(2),
            ..EventPatch::default()
        },
        at(2),
    )
    .expect("limit");
    assert_eq!(
        e.book(&user("a"), 3, &ids, at(3)),
        Err(DomainError::QuantityOutOfRange { max: 2 })
    );
    assert_eq!(ids.peek(), 1, "no id is spent on a refused booking");
}

#[test]
fn parties_wait_behind_a_larger_head_and_are_promoted_in_order() {
    let ids = BookingIdSequence::default();
    let mut e = event(4);
    book(&mut e, &ids, "four", 4);
    let big = book(&mut e, &ids, "big", 4);
    let three = book(&mut e, &ids, "three", 3);
    let one = book(&mut e, &ids, "one", 1);
    assert_eq!(big.waiting_position, Some(1));
    assert_eq!(
        (three.waiting_position, three.tickets_ahead),
        (Some(2), Some(4))
    );
    assert_eq!(
        (one.waiting_position, one.tickets_ahead),
        (Some(3), Some(7))
    );
    // Cancelling the 4 frees 4: "big" takes them all; nobody behind jumps.
    let out = e.cancel(&user("four"), at(2)).expect("cancel").value;
    assert_eq!(names(&out.promotions), vec!["big"]);
    assert_eq!(
        e.booking(&user("three")).expect("three").waiting_position,
        Some(1)
    );
    // Cancelling "big" promotes the 3 and then the 1, in queue order.
    let out = e.cancel(&user("big"), at(3)).expect("cancel").value;
    assert_eq!(names(&out.promotions), vec!["three", "one"]);
    assert_eq!(e.status().available_tickets, 0);
    e.verify().expect("invariants hold");
}

#[test]
fn a_small_booking_waits_while_a_larger_head_blocks_even_if_it_would_fit() {
    let ids = BookingIdSequence::default();
    let mut e = event(3);
    book(&mut e, &ids, "a", 2);
    let big = book(&mut e, &ids, "big", 2);
    assert_eq!(big.status, BookingStatus::Waiting);
    let small = book(&mut e, &ids, "small", 1);
    assert_eq!(
        small.status,
        BookingStatus::Waiting,
        "one ticket is free, but the head came first"
    );
    // The head leaving lets the next one in.
    let out = e.cancel(&user("big"), at(2)).expect("cancel").value;
    assert_eq!(names(&out.promotions), vec!["small"]);
    e.verify().expect("invariants hold");
}

#[test]
fn lowering_a_quantity_keeps_the_booking_and_frees_tickets_to_the_queue() {
    let ids = BookingIdSequence::default();
    let mut e = event(4);
    let a = book(&mut e, &ids, "a", 4);
    book(&mut e, &ids, "b", 2);
    let out = e.lower_quantity(&user("a"), 2, at(5)).expect("lower").value;
    assert_eq!((out.booking.id, out.booking.quantity), (a.id, 2));
    assert_eq!(out.booking.status, BookingStatus::Confirmed);
    assert_eq!(names(&out.promotions), vec!["b"]);
    assert_eq!(
        e.lower_quantity(&user("a"), 3, at(6)),
        Err(DomainError::QuantityIncrease)
    );
    let same = e.lower_quantity(&user("a"), 2, at(6)).expect("same");
    assert!(same.made.is_none());
    e.verify().expect("invariants hold");
}

#[test]
fn a_waiting_head_that_lowers_its_quantity_until_it_fits_is_promoted() {
    let ids = BookingIdSequence::default();
    let mut e = event(3);
    book(&mut e, &ids, "a", 2);
    book(&mut e, &ids, "head", 3);
    let tail = book(&mut e, &ids, "tail", 1);
    assert_eq!(tail.tickets_ahead, Some(3));
    let out = e
        .lower_quantity(&user("head"), 1, at(2))
        .expect("lower")
        .value;
    assert_eq!(out.booking.status, BookingStatus::Confirmed);
    assert_eq!(names(&out.promotions), vec!["head"]);
    assert_eq!(
        e.booking(&user("tail")).expect("tail").tickets_ahead,
        Some(0)
    );
    e.verify().expect("invariants hold");
}

#[test]
fn raising_capacity_promotes_and_lowering_below_sold_or_a_waiting_party_is_refused() {
    let ids = BookingIdSequence::default();
    let mut e = event(3);
    book(&mut e, &ids, "a", 2);
    book(&mut e, &ids, "b", 3);
    let resize = |e: &mut Event, total| {
        e.update(
            EventPatch {
                total_tickets: Some(total),
                ..EventPatch::default()
            },
            at(2),
        )
    };
    let before = e.to_snapshot();
    assert!(
        matches!(resize(&mut e, 1), Err(DomainError::CapacityConflict(_))),
        "2 are sold"
    );
    assert!(
        matches!(resize(&mut e, 2), Err(DomainError::CapacityConflict(_))),
        "b waits for 3"
    );
    assert_eq!(e.to_snapshot(), before, "a refused change changes nothing");
    let same = resize(&mut e, 3).expect("the same total");
    assert!(
        same.made.is_none(),
        "a patch that changes nothing is no change"
    );
    assert_eq!(e.to_snapshot(), before);
    let out = resize(&mut e, 5).expect("raise").value;
    assert_eq!(names(&out.promotions), vec!["b"]);
    assert_eq!(out.status.available_tickets, 0);
    assert_eq!(out.status.settings.total_tickets, 5);
    e.verify().expect("invariants hold");
}

#[test]
fn sales_windows_refuse_bookings_outside_them_but_cancels_go_on() {
    let ids = BookingIdSequence::default();
    let mut e = event(5);
    book(&mut e, &ids, "a", 1);
    e.update(
        EventPatch {
            sales_start: Some(Some(at(100))),
            sales_end: Some(Some(at(200))),
            ..EventPatch::default()
        },
        at(2),
    )
    .expect("window");
    assert_eq!(
        e.book(&user("b"), 1, &ids, at(99)),
        Err(DomainError::SalesNotOpen)
    );
    assert!(e.book(&user("b"), 1, &ids, at(100)).is_ok());
    assert_eq!(
        e.book(&user("c"), 1, &ids, at(200)),
        Err(DomainError::SalesClosed)
    );
    assert!(e.cancel(&user("a"), at(300)).is_ok());
    assert!(matches!(
        e.update(
            EventPatch {
                sales_end: Some(Some(at(50))),
                ..EventPatch::default()
            },
            at(301),
        ),
        Err(DomainError::InvalidSettings { .. })
    ));
}

#[test]
fn cancelling_a_confirmed_booking_promotes_the_head_of_the_queue_in_the_same_step() {
    let ids = BookingIdSequence::default();
    let mut e = event(1);
    for name in ["a", "b", "c"] {
        book(&mut e, &ids, name, 1);
    }
    let out = e.cancel(&user("a"), at(9)).expect("cancel a").value;
    assert_eq!(out.booking.status, BookingStatus::Cancelled);
    assert_eq!(out.booking.updated_at, at(9));
    let promoted = &out.promotions[0];
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
fn a_waiting_cancel_leaves_the_queue_and_those_behind_move_up() {
    let ids = BookingIdSequence::default();
    let mut e = event(1);
    for name in ["a", "b", "c", "d"] {
        book(&mut e, &ids, name, 1);
    }
    let out = e.cancel(&user("c"), at(2)).expect("cancel c").value;
    assert!(out.promotions.is_empty());
    assert_eq!(e.booking(&user("b")).expect("b").waiting_position, Some(1));
    assert_eq!(e.booking(&user("d")).expect("d").waiting_position, Some(2));
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
    book(&mut e, &ids, "a", 1);
    e.cancel(&user("a"), at(2)).expect("cancel");
    assert_eq!(
        e.cancel(&user("a"), at(3)),
        Err(DomainError::BookingNotFound)
    );
    assert_eq!(
        e.lower_quantity(&user("a"), 1, at(3)),
        Err(DomainError::BookingNotFound)
    );
}

#[test]
fn the_last_cancelled_booking_stays_readable_until_the_user_books_again() {
    let ids = BookingIdSequence::default();
    let mut e = event(1);
    let first = book(&mut e, &ids, "a", 1);
    e.cancel(&user("a"), at(2)).expect("cancel");
    assert_eq!(
        e.booking(&user("a")).expect("read").status,
        BookingStatus::Cancelled
    );
    let second = e.book(&user("a"), 1, &ids, at(3)).expect("book again");
    assert!(second.made.is_some());
    assert_ne!(second.value.id, first.id, "a new booking gets a new id");
}

#[test]
fn replaying_the_changes_of_a_run_reaches_the_same_state() {
    let ids = BookingIdSequence::default();
    let mut live = event(3);
    let mut replayed = event(3);
    let mut changes = Vec::new();
    let mut keep = |made: Option<Made>| changes.extend(made.map(|m| m.change));
    keep(live.book(&user("a"), 2, &ids, at(1)).expect("a").made);
    keep(live.book(&user("b"), 2, &ids, at(2)).expect("b").made);
    keep(live.book(&user("c"), 1, &ids, at(3)).expect("c").made);
    keep(
        live.lower_quantity(&user("a"), 1, at(4))
            .expect("lower")
            .made,
    );
    keep(live.cancel(&user("b"), at(5)).expect("cancel").made);
    for change in &changes {
        replayed.apply(change).expect("replays");
    }
    assert_eq!(replayed.to_snapshot(), live.to_snapshot());
}

#[test]
fn undoing_restores_the_exact_state_newest_first() {
    let ids = BookingIdSequence::default();
    let mut e = event(3);
    book(&mut e, &ids, "a", 2);
    book(&mut e, &ids, "b", 2);
    let before = e.to_snapshot();
    let mut undos = Vec::new();
    let mut keep = |made: Option<Made>| undos.extend(made.map(|m| m.undo));
    keep(e.book(&user("c"), 1, &ids, at(2)).expect("c").made);
    keep(e.cancel(&user("a"), at(3)).expect("cancel").made);
    keep(
        e.update(
            EventPatch {
                total_tickets: Some(9),
                ..EventPatch::default()
            },
            at(4),
        )
        .expect("raise")
        .made,
    );
    for undo in undos.into_iter().rev() {
        e.undo(undo);
    }
    assert_eq!(e.to_snapshot(), before);
    e.verify().expect("invariants hold");
}

#[test]
fn a_snapshot_round_trip_restores_the_same_event() {
    let ids = BookingIdSequence::default();
    let mut e = event(3);
    for (name, q) in [("a", 2), ("b", 2), ("c", 1), ("d", 3), ("e", 1)] {
        book(&mut e, &ids, name, q);
    }
    e.cancel(&user("d"), at(2)).expect("cancel d");
    e.cancel(&user("c"), at(3)).expect("cancel c");
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
    book(&mut e, &ids, "a", 1);
    book(&mut e, &ids, "b", 1);
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
    let mut head_fits = e.to_snapshot();
    head_fits.settings.total_tickets = 2;
    assert!(matches!(
        Event::from_snapshot(head_fits),
        Err(DomainError::Inconsistent(_))
    ));
}

#[test]
fn waiting_pages_list_the_queue_in_order_with_positions_and_quantities() {
    let ids = BookingIdSequence::default();
    let mut e = event(1);
    for (name, q) in [("a", 1), ("b", 1), ("c", 1), ("d", 1)] {
        book(&mut e, &ids, name, q);
    }
    let page = e.waiting_page(1, 10);
    assert_eq!(page.total, 3);
    let got: Vec<(&str, u64, u32)> = page
        .entries
        .iter()
        .map(|w| (w.user_id.as_str(), w.position, w.quantity))
        .collect();
    assert_eq!(got, vec![("c", 2, 1), ("d", 3, 1)]);
}

fn with_holds(tickets: u64, hold_secs: u32, offer_secs: u32) -> Event {
    let mut settings = EventSettings::new(None, tickets, 10);
    settings.hold_secs = hold_secs;
    settings.offer_secs = offer_secs;
    Event::create(EventId::try_from(1).expect("id"), settings, at(0))
        .expect("event")
        .0
}

#[test]
fn a_booking_that_gets_tickets_is_held_until_confirmed() {
    let ids = BookingIdSequence::default();
    let mut e = with_holds(3, 60, 0);
    let held = e.book(&user("a"), 2, &ids, at(1_000)).expect("book").value;
    assert_eq!(held.status, BookingStatus::Held);
    assert_eq!(held.expires_at, Some(at(61_000)));
    let s = e.status();
    assert_eq!(
        (s.held_tickets, s.confirmed_tickets, s.available_tickets),
        (2, 0, 1)
    );
    let confirmed = e.confirm(&user("a"), at(60_999)).expect("confirm");
    assert!(confirmed.made.is_some());
    assert_eq!(confirmed.value.status, BookingStatus::Confirmed);
    assert_eq!(confirmed.value.expires_at, None);
    let again = e.confirm(&user("a"), at(70_000)).expect("confirm again");
    assert!(
        again.made.is_none(),
        "confirming a confirmed booking changes nothing"
    );
    assert_eq!(e.next_deadline(), None);
    e.verify().expect("invariants hold");
}

#[test]
fn a_lapsed_hold_expires_at_its_deadline_and_its_tickets_go_to_the_queue_as_offers() {
    let ids = BookingIdSequence::default();
    let mut e = with_holds(2, 10, 5);
    book(&mut e, &ids, "a", 2); // held until 10,001
    let b = book(&mut e, &ids, "b", 1);
    assert_eq!(b.status, BookingStatus::Waiting);
    assert!(e
        .expire_due(at(10_000), 10)
        .expect("nothing due")
        .is_empty());
    // Noticed within a second of the deadline, as a running service does.
    let made = e.expire_due(at(10_900), 10).expect("expire");
    assert_eq!(made.len(), 1);
    let a = e.booking(&user("a")).expect("a");
    assert_eq!(
        (a.status, a.updated_at, a.expires_at),
        (BookingStatus::Expired, at(10_001), None),
        "the expiry is dated at the deadline, not when it was noticed"
    );
    let b = e.booking(&user("b")).expect("b");
    assert_eq!(b.status, BookingStatus::Held, "an offer");
    assert_eq!(b.expires_at, Some(at(15_001)));
    assert_eq!(
        e.confirm(&user("a"), at(12_345)),
        Err(DomainError::HoldExpired)
    );
    assert_eq!(
        e.confirm(&user("c"), at(12_345)),
        Err(DomainError::BookingNotFound)
    );
    // The lapsed user may book again, with a new id, at the end of the queue.
    let again = e.book(&user("a"), 2, &ids, at(12_400)).expect("book again");
    assert_ne!(again.value.id, a.id);
    assert_eq!(again.value.status, BookingStatus::Waiting);
    e.verify().expect("invariants hold");
}

/// Contract v4, Corrections: an offer lasts its whole `offer_secs` from
/// when it is made, also when the lapse that made it fell due while the
/// service was down (on c0394eb it was dated from the deadline, and this
/// offer would have lapsed 58 s before it was made).
#[test]
fn a_lapse_handled_late_makes_offers_that_last_their_whole_time_from_then() {
    let ids = BookingIdSequence::default();
    let mut e = with_holds(1, 10, 60);
    book(&mut e, &ids, "a", 1); // held until 10,001
    book(&mut e, &ids, "b", 1);
    // Back two minutes after the deadline.
    let made = e.expire_due(at(130_001), 10).expect("expire");
    assert_eq!(made.len(), 1);
    assert!(
        matches!(made[0].change, Change::ExpiredLate { handled_at, .. } if handled_at == at(130_001)),
        "{:?}",
        made[0].change
    );
    let a = e.booking(&user("a")).expect("a");
    assert_eq!(
        (a.status, a.updated_at),
        (BookingStatus::Expired, at(10_001))
    );
    let b = e.booking(&user("b")).expect("b");
    assert_eq!(b.status, BookingStatus::Held, "an offer");
    assert_eq!(b.updated_at, at(130_001), "made when the lapse was handled");
    assert_eq!(b.expires_at, Some(at(190_001)), "60 s from then");
    assert!(
        e.expire_due(at(130_002), 10)
            .expect("nothing due")
            .is_empty(),
        "the offer does not lapse at once"
    );
    // The same change replays to the same state.
    let mut replayed = with_holds(1, 10, 60);
    let ids = BookingIdSequence::default();
    book(&mut replayed, &ids, "a", 1);
    book(&mut replayed, &ids, "b", 1);
    replayed.apply(&made[0].change).expect("replay");
    assert_eq!(replayed.booking(&user("b")).expect("b"), b);
    e.verify().expect("invariants hold");
    // And its undo restores the hold exactly.
    let after = replayed.to_snapshot();
    let mut undone = with_holds(1, 10, 60);
    let ids = BookingIdSequence::default();
    book(&mut undone, &ids, "a", 1);
    book(&mut undone, &ids, "b", 1);
    let before = undone.to_snapshot();
    let lapse = undone.expire_due(at(130_001), 10).expect("expire");
    assert_eq!(undone.to_snapshot(), after);
    for m in lapse.into_iter().rev() {
        undone.undo(m.undo);
    }
    assert_eq!(undone.to_snapshot(), before);
}

#[test]
fn waiting_is_not_held_and_a_hold_past_its_deadline_cannot_be_confirmed() {
    let ids = BookingIdSequence::default();
    let mut e = with_holds(1, 10, 0);
    book(&mut e, &ids, "a", 1);
    book(&mut e, &ids, "b", 1);
    assert_eq!(e.confirm(&user("b"), at(2)), Err(DomainError::NotHeld));
    assert_eq!(
        e.confirm(&user("a"), at(10_001)),
        Err(DomainError::HoldExpired),
        "at the deadline it is too late even before the expiry is applied"
    );
}

#[test]
fn cancelling_or_lowering_a_hold_releases_tickets_and_keeps_the_deadline() {
    let ids = BookingIdSequence::default();
    let mut e = with_holds(4, 30, 30);
    book(&mut e, &ids, "a", 4);
    book(&mut e, &ids, "b", 1);
    let out = e.lower_quantity(&user("a"), 3, at(5)).expect("lower").value;
    assert_eq!(out.booking.expires_at, Some(at(30_001)));
    assert_eq!(names(&out.promotions), vec!["b"]);
    assert_eq!(
        e.status().held_tickets,
        4,
        "b is offered its ticket: held too"
    );
    let out = e.cancel(&user("a"), at(6)).expect("cancel").value;
    assert_eq!(out.booking.expires_at, None);
    assert_eq!(e.status().held_tickets, 1);
    assert_eq!(
        e.next_deadline(),
        Some(at(30_005)),
        "b's offer from its promotion at 5"
    );
    e.verify().expect("invariants hold");
}

#[test]
fn undoing_an_expiry_restores_the_hold_and_its_deadline() {
    let ids = BookingIdSequence::default();
    let mut e = with_holds(1, 10, 10);
    book(&mut e, &ids, "a", 1);
    book(&mut e, &ids, "b", 1);
    let before = e.to_snapshot();
    // a lapses, then b's offer (until 20,001) too, each noticed on time.
    let mut made = e.expire_due(at(10_500), 10).expect("expire");
    made.extend(e.expire_due(at(20_500), 10).expect("expire"));
    assert_eq!(made.len(), 2, "a lapses, then b's offer");
    for m in made.into_iter().rev() {
        e.undo(m.undo);
    }
    assert_eq!(e.to_snapshot(), before);
    assert_eq!(e.next_deadline(), Some(at(10_001)));
    e.verify().expect("invariants hold");
}

#[test]
fn a_thousand_users_booking_and_cancelling_keep_memory_flat() {
    let ids = BookingIdSequence::default();
    let mut e = event(10);
    let users: Vec<UserId> = (0..1_000).map(|i| user(&format!("u{i}"))).collect();
    let mut active = vec![false; users.len()];
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut arrivals = 0u64;
    let mut most_held = 0;
    for step in 0..200_000i64 {
        // xorshift: the same churn every run.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let u = (seed % users.len() as u64) as usize;
        if active[u] {
            e.cancel(&users[u], at(step)).expect("cancel");
        } else {
            e.book(&users[u], 1, &ids, at(step)).expect("book");
            arrivals += 1;
        }
        active[u] = !active[u];
        most_held = most_held.max(e.queue.slots_held());
    }
    assert_eq!(e.records.len(), 1_000, "one record per user, reused");
    assert!(arrivals > 90_000, "{arrivals} arrivals");
    assert!(
        most_held < 30_000,
        "the queue held {most_held} slots at most for {arrivals} arrivals"
    );
}
