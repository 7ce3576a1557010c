//! Model-based property test of the domain: random create / book / cancel /
//! restart sequences run against both the real `Event` and a plain model
//! (a Vec of holders and a VecDeque queue), and every answer and every
//! invariant must agree after every step. "Restart" sends the whole state
//! through the snapshot codec and back.

use std::collections::{BTreeMap, VecDeque};

use boxoffice::domain::{
    BookingIdSequence, BookingStatus, DomainError, Event, EventId, Timestamp, UserId,
};
use boxoffice::persistence::{codec, ServiceSnapshot, StoredEvent};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Create { tickets: u64 },
    Book { event: usize, user: u8 },
    Cancel { event: usize, user: u8 },
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (1u64..4).prop_map(|tickets| Op::Create { tickets }),
        6 => (0usize..3, 0u8..7).prop_map(|(event, user)| Op::Book { event, user }),
        4 => (0usize..3, 0u8..7).prop_map(|(event, user)| Op::Cancel { event, user }),
        1 => Just(Op::Restart),
    ]
}

/// The obviously-correct version of one event.
#[derive(Debug, Default)]
struct ModelEvent {
    total: u64,
    confirmed: Vec<u8>,
    queue: VecDeque<u8>,
    /// Each user's latest booking: id and status.
    latest: BTreeMap<u8, (u64, BookingStatus)>,
}

impl ModelEvent {
    fn position(&self, user: u8) -> Option<u64> {
        self.queue
            .iter()
            .position(|&u| u == user)
            .map(|i| i as u64 + 1)
    }
}

fn user(u: u8) -> UserId {
    UserId::try_from(format!("user{u}").as_str()).expect("valid user")
}

fn check(events: &[Event], model: &[ModelEvent]) {
    for (event, m) in events.iter().zip(model) {
        event.verify().expect("invariants hold");
        let s = event.status();
        assert_eq!(s.confirmed_count + s.available_tickets, s.total_tickets);
        assert_eq!(s.confirmed_count, m.confirmed.len() as u64);
        assert_eq!(s.waiting_count, m.queue.len() as u64);
        for (&u, &(id, status)) in &m.latest {
            let view = event.booking(&user(u)).expect("user has a booking");
            assert_eq!((view.id.get(), view.status), (id, status), "user {u}");
            let expected = if status == BookingStatus::Waiting {
                m.position(u)
            } else {
                None
            };
            assert_eq!(view.waiting_position, expected, "user {u}");
        }
        let page = event.waiting_page(0, 100);
        let queued: Vec<(String, u64)> = page
            .entries
            .iter()
            .map(|w| (w.user_id.to_string(), w.position))
            .collect();
        let expected: Vec<(String, u64)> = m
            .queue
            .iter()
            .enumerate()
            .map(|(i, &u)| (format!("user{u}"), i as u64 + 1))
            .collect();
        assert_eq!(queued, expected);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The domain answers every operation exactly as the model does.
    #[test]
    fn the_domain_agrees_with_a_plain_model(ops in proptest::collection::vec(op(), 1..80)) {
        let mut ids = BookingIdSequence::default();
        let mut next_id = 1u64;
        let mut events: Vec<Event> = Vec::new();
        let mut model: Vec<ModelEvent> = Vec::new();
        let mut clock = 0i64;
        for op in ops {
            clock += 1;
            let now = Timestamp::from_millis(clock);
            match op {
                Op::Create { tickets } => {
                    let id = EventId::try_from(events.len() as u64 + 1).expect("id");
                    events.push(Event::new(id, None, tickets, now).expect("event"));
                    model.push(ModelEvent { total: tickets, ..ModelEvent::default() });
                }
                Op::Book { event, user: u } => {
                    let (Some(e), Some(m)) = (events.get_mut(event), model.get_mut(event)) else { continue };
                    let got = e.book(&user(u), &ids, now).expect("book never fails here");
                    match m.latest.get(&u) {
                        Some(&(id, status)) if status != BookingStatus::Cancelled => {
                            prop_assert!(!got.created());
                            prop_assert_eq!(got.booking.id.get(), id);
                        }
                        _ => {
                            prop_assert!(got.created());
                            let status = if (m.confirmed.len() as u64) < m.total {
                                m.confirmed.push(u);
                                BookingStatus::Confirmed
                            } else {
                                m.queue.push_back(u);
                                BookingStatus::Waiting
                            };
                            m.latest.insert(u, (next_id, status));
                            prop_assert_eq!(got.booking.id.get(), next_id);
                            next_id += 1;
                        }
                    }
                }
                Op::Cancel { event, user: u } => {
                    let (Some(e), Some(m)) = (events.get_mut(event), model.get_mut(event)) else { continue };
                    let got = e.cancel(&user(u), now);
                    let Some(&(id, status)) = m.latest.get(&u).filter(|(_, s)| *s != BookingStatus::Cancelled) else {
                        prop_assert_eq!(got, Err(DomainError::BookingNotFound));
                        continue;
                    };
                    let got = got.expect("active booking cancels");
                    prop_assert_eq!((got.booking.id.get(), got.booking.status), (id, BookingStatus::Cancelled));
                    m.latest.insert(u, (id, BookingStatus::Cancelled));
                    let promoted = if status == BookingStatus::Waiting {
                        m.queue.retain(|&q| q != u);
                        None
                    } else {
                        m.confirmed.retain(|&c| c != u);
                        m.queue.pop_front().inspect(|&next| {
                            m.confirmed.push(next);
                            if let Some(entry) = m.latest.get_mut(&next) {
                                entry.1 = BookingStatus::Confirmed;
                            }
                        })
                    };
                    prop_assert_eq!(got.promoted.map(|p| p.user_id), promoted.map(user));
                }
                Op::Restart => {
                    let snapshot = ServiceSnapshot {
                        taken_at: now,
                        next_event_id: events.len() as u64 + 1,
                        next_booking_id: ids.peek(),
                        journal_lsn: 0,
                        events: events
                            .iter()
                            .map(|e| StoredEvent { applied_lsn: 0, event: e.to_snapshot() })
                            .collect(),
                    };
                    let bytes = codec::encode(&snapshot).expect("encodes");
                    let back: ServiceSnapshot = codec::decode(&bytes).expect("decodes");
                    prop_assert_eq!(&back, &snapshot);
                    events = back.events.into_iter().map(|e| Event::from_snapshot(e.event).expect("restores")).collect();
                    ids = BookingIdSequence::starting_at(back.next_booking_id);
                }
            }
            check(&events, &model);
        }
    }
}

/// One change to a single event: book (true) or cancel (false) for a user.
fn change() -> impl Strategy<Value = (bool, u8)> {
    (proptest::bool::weighted(0.6), 0u8..7)
}

/// Everything a reader can observe of an event.
fn observe(event: &Event) -> impl PartialEq + std::fmt::Debug {
    let views: Vec<_> = (0..7).map(|u| event.booking(&user(u)).ok()).collect();
    (
        event.to_snapshot(),
        event.status(),
        views,
        event.waiting_page(0, 100),
    )
}

fn apply(
    event: &mut Event,
    ids: &BookingIdSequence,
    (book, u): (bool, u8),
    now: Timestamp,
) -> Option<boxoffice::domain::Undo> {
    if book {
        event.book(&user(u), ids, now).ok().and_then(|o| o.undo)
    } else {
        event.cancel(&user(u), now).ok().map(|o| o.undo)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any run of changes, undone newest first, leaves the event exactly as it
    /// was (records, queue order, positions, counters, timestamps), and the
    /// event keeps working afterwards.
    #[test]
    fn undoing_changes_newest_first_restores_the_exact_state(
        tickets in 1u64..4,
        before in proptest::collection::vec(change(), 0..40),
        undone in proptest::collection::vec(change(), 1..20),
    ) {
        let ids = BookingIdSequence::default();
        let id = EventId::try_from(1).expect("id");
        let mut event = Event::new(id, None, tickets, Timestamp::from_millis(0)).expect("event");
        let mut clock = 0;
        for c in &before {
            clock += 1;
            apply(&mut event, &ids, *c, Timestamp::from_millis(clock));
        }
        let expected = observe(&event);
        let mut undos = Vec::new();
        for c in &undone {
            clock += 1;
            undos.extend(apply(&mut event, &ids, *c, Timestamp::from_millis(clock)));
            event.verify().expect("invariants hold after a change");
        }
        for undo in undos.into_iter().rev() {
            event.undo(undo);
            event.verify().expect("invariants hold after an undo");
        }
        prop_assert_eq!(observe(&event), expected);
        for c in &undone {
            clock += 1;
            apply(&mut event, &ids, *c, Timestamp::from_millis(clock));
            event.verify().expect("the event keeps working after undos");
        }
    }
}
