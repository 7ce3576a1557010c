//! Model-based property tests of the domain: random create / book (with a
//! party size) / cancel / lower-quantity / confirm / change-capacity /
//! advance-the-clock / restart sequences run against both the real `Event`
//! and a plain model (a Vec of holders, a VecDeque queue, a list of hold
//! deadlines), and every answer and every invariant must agree after every
//! step. Events are created with or without holds and offers; before each
//! step, as the actor does, everything due is expired. "Restart" sends the
//! whole state through the snapshot codec and back. Two more properties:
//! undo restores the exact state, and replaying the journalled changes
//! (through the journal's own record codec) rebuilds the live state.

use std::collections::{BTreeMap, VecDeque};

use boxoffice::domain::{
    BookingIdSequence, BookingStatus, Change, DomainError, Event, EventId, EventPatch,
    EventSettings, Made, Timestamp, UserId, LATE_LAPSE_MILLIS,
};
use boxoffice::persistence::journal::{Lsn, Record};
use boxoffice::persistence::{codec, ServiceSnapshot, StoredEvent};
use proptest::prelude::*;

/// Per-user limit of every event here: small, so the limit is hit often.
const MAX_PER_USER: u32 = 3;

#[derive(Debug, Clone)]
enum Op {
    Create {
        tickets: u64,
        hold_secs: u32,
        offer_secs: u32,
    },
    Book {
        event: usize,
        user: u8,
        quantity: u32,
    },
    Cancel {
        event: usize,
        user: u8,
    },
    Lower {
        event: usize,
        user: u8,
        quantity: u32,
    },
    Confirm {
        event: usize,
        user: u8,
    },
    Capacity {
        event: usize,
        total: u64,
    },
    Advance {
        ms: i64,
    },
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (1u64..6, prop_oneof![Just(0u32), 1u32..3], prop_oneof![Just(0u32), 1u32..3])
            .prop_map(|(tickets, hold_secs, offer_secs)| Op::Create { tickets, hold_secs, offer_secs }),
        6 => (0usize..3, 0u8..7, 0u32..5).prop_map(|(event, user, quantity)| Op::Book { event, user, quantity }),
        3 => (0usize..3, 0u8..7).prop_map(|(event, user)| Op::Cancel { event, user }),
        2 => (0usize..3, 0u8..7, 0u32..4).prop_map(|(event, user, quantity)| Op::Lower { event, user, quantity }),
        2 => (0usize..3, 0u8..7).prop_map(|(event, user)| Op::Confirm { event, user }),
        1 => (0usize..3, 1u64..8).prop_map(|(event, total)| Op::Capacity { event, total }),
        2 => (0i64..2_500).prop_map(|ms| Op::Advance { ms }),
        1 => Just(Op::Restart),
    ]
}

/// The obviously-correct version of one event.
#[derive(Debug, Default)]
struct ModelEvent {
    total: u64,
    hold_secs: u32,
    offer_secs: u32,
    /// Users with tickets (confirmed or held) and their quantities.
    holders: Vec<(u8, u32)>,
    /// Waiting users and their quantities, front first.
    queue: VecDeque<(u8, u32)>,
    /// Each user's latest booking: id, status, quantity, hold deadline.
    latest: BTreeMap<u8, (u64, BookingStatus, u32, Option<i64>)>,
    /// The order users first booked in: the real event's record handles,
    /// which break ties between equal deadlines.
    first_booked: Vec<u8>,
}

impl ModelEvent {
    fn available(&self) -> u64 {
        self.total - self.holders.iter().map(|&(_, q)| u64::from(q)).sum::<u64>()
    }

    fn held(&self) -> u64 {
        self.holders
            .iter()
            .filter(|(u, _)| self.latest[u].1 == BookingStatus::Held)
            .map(|&(_, q)| u64::from(q))
            .sum()
    }

    fn active(&self, user: u8) -> Option<(u64, BookingStatus, u32, Option<i64>)> {
        self.latest.get(&user).copied().filter(|(_, s, _, _)| {
            matches!(
                s,
                BookingStatus::Confirmed | BookingStatus::Held | BookingStatus::Waiting
            )
        })
    }

    /// Gives `user` their tickets at `at`: held when `secs` > 0.
    fn grant(&mut self, user: u8, quantity: u32, at: i64, secs: u32) {
        self.holders.push((user, quantity));
        if let Some(entry) = self.latest.get_mut(&user) {
            if secs == 0 {
                entry.1 = BookingStatus::Confirmed;
                entry.3 = None;
            } else {
                entry.1 = BookingStatus::Held;
                entry.3 = Some(at + i64::from(secs) * 1_000);
            }
        }
    }

    /// Promotes from the head while it fits; returns who, in order.
    fn promote(&mut self, at: i64) -> Vec<u8> {
        let mut promoted = Vec::new();
        while let Some(&(u, q)) = self.queue.front() {
            if u64::from(q) > self.available() {
                break;
            }
            self.queue.pop_front();
            self.grant(u, q, at, self.offer_secs);
            promoted.push(u);
        }
        promoted
    }

    /// Expires every hold due at `now`, earliest deadline first (ties in
    /// the order users first booked), each promoting at its deadline.
    /// Returns who lapsed and who was promoted by each lapse.
    fn expire(&mut self, now: i64) -> Vec<(u8, Vec<u8>)> {
        let mut lapsed = Vec::new();
        loop {
            let due = self
                .latest
                .iter()
                .filter_map(|(&u, &(_, s, _, d))| {
                    (s == BookingStatus::Held)
                        .then_some(d)
                        .flatten()
                        .map(|d| (d, u))
                })
                .filter(|&(d, _)| d <= now)
                .min_by_key(|&(d, u)| (d, self.first_booked.iter().position(|&f| f == u)));
            let Some((deadline, user)) = due else {
                return lapsed;
            };
            self.holders.retain(|&(h, _)| h != user);
            if let Some(entry) = self.latest.get_mut(&user) {
                entry.1 = BookingStatus::Expired;
                entry.3 = None;
            }
            // Offers made by a lapse handled late start when it is handled.
            let promoted = if now - deadline > LATE_LAPSE_MILLIS {
                self.promote(now)
            } else {
                self.promote(deadline)
            };
            lapsed.push((user, promoted));
        }
    }

    fn set_quantity(&mut self, user: u8, quantity: u32) {
        for entry in self.holders.iter_mut().chain(self.queue.iter_mut()) {
            if entry.0 == user {
                entry.1 = quantity;
            }
        }
        if let Some(latest) = self.latest.get_mut(&user) {
            latest.2 = quantity;
        }
    }
}

fn user(u: u8) -> UserId {
    UserId::try_from(format!("user{u}").as_str()).expect("valid user")
}

fn promoted_users(views: &[boxoffice::domain::BookingView]) -> Vec<UserId> {
    views.iter().map(|v| v.user_id.clone()).collect()
}

fn check(events: &[Event], model: &[ModelEvent], now: i64) {
    for (event, m) in events.iter().zip(model) {
        event.verify().expect("invariants hold");
        let s = event.status();
        assert_eq!(
            s.confirmed_tickets + s.held_tickets + s.available_tickets,
            s.settings.total_tickets
        );
        assert_eq!(s.settings.total_tickets, m.total);
        assert_eq!(s.available_tickets, m.available());
        assert_eq!(s.held_tickets, m.held());
        assert_eq!(s.waiting_count, m.queue.len() as u64);
        if let Some(&(_, head)) = m.queue.front() {
            assert!(u64::from(head) > s.available_tickets, "the head never fits");
        }
        for (&u, &(id, status, quantity, deadline)) in &m.latest {
            let view = event.booking(&user(u)).expect("user has a booking");
            assert_eq!(
                (view.id.get(), view.status, view.quantity),
                (id, status, quantity),
                "user {u}"
            );
            assert_eq!(
                view.expires_at,
                deadline.map(Timestamp::from_millis),
                "user {u}"
            );
            if let Some(d) = deadline {
                assert!(d > now, "user {u}: a hold is visible past its deadline");
            }
            let place = m.queue.iter().position(|&(w, _)| w == u);
            let ahead = place.map(|i| m.queue.iter().take(i).map(|&(_, q)| u64::from(q)).sum());
            assert_eq!(
                view.waiting_position,
                place.map(|i| i as u64 + 1),
                "user {u}"
            );
            assert_eq!(view.tickets_ahead, ahead, "user {u}");
        }
        let page = event.waiting_page(0, 100);
        let queued: Vec<(String, u64, u32)> = page
            .entries
            .iter()
            .map(|w| (w.user_id.to_string(), w.position, w.quantity))
            .collect();
        let expected: Vec<(String, u64, u32)> = m
            .queue
            .iter()
            .enumerate()
            .map(|(i, &(u, q))| (format!("user{u}"), i as u64 + 1, q))
            .collect();
        assert_eq!(queued, expected);
    }
}

fn settings(tickets: u64) -> EventSettings {
    EventSettings::new(None, tickets, MAX_PER_USER)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The domain answers every operation exactly as the model does, every
    /// promotion is of the then-head of the queue, every expiry is of the
    /// earliest due hold, and no hold is visible past its deadline.
    #[test]
    fn the_domain_agrees_with_a_plain_model(ops in proptest::collection::vec(op(), 1..80)) {
        let mut ids = BookingIdSequence::default();
        let mut next_id = 1u64;
        let mut events: Vec<Event> = Vec::new();
        let mut model: Vec<ModelEvent> = Vec::new();
        let mut clock = 0i64;
        for op in ops {
            clock += 1;
            if let Op::Advance { ms } = op {
                clock += ms;
            }
            let now = Timestamp::from_millis(clock);
            // As the actor does before every message.
            for (e, m) in events.iter_mut().zip(model.iter_mut()) {
                let made = e.expire_due(now, usize::MAX).expect("expiries apply");
                let lapsed = m.expire(clock);
                let expired: Vec<UserId> = made
                    .iter()
                    .map(|made| match &made.change {
                        Change::Expired { user, .. } | Change::ExpiredLate { user, .. } => {
                            user.clone()
                        }
                        other => panic!("an expiry made {other:?}"),
                    })
                    .collect();
                prop_assert_eq!(expired, lapsed.iter().map(|(u, _)| user(*u)).collect::<Vec<_>>());
            }
            match op {
                Op::Create { tickets, hold_secs, offer_secs } => {
                    let id = EventId::try_from(events.len() as u64 + 1).expect("id");
                    let mut s = settings(tickets);
                    s.hold_secs = hold_secs;
                    s.offer_secs = offer_secs;
                    events.push(Event::create(id, s, now).expect("event").0);
                    model.push(ModelEvent { total: tickets, hold_secs, offer_secs, ..ModelEvent::default() });
                }
                Op::Book { event, user: u, quantity } => {
                    let (Some(e), Some(m)) = (events.get_mut(event), model.get_mut(event)) else { continue };
                    let got = e.book(&user(u), quantity, &ids, now);
                    match m.active(u) {
                        Some((id, _, q, _)) if q == quantity => {
                            let got = got.expect("a repeat answers");
                            prop_assert!(got.made.is_none());
                            prop_assert_eq!(got.value.id.get(), id);
                        }
                        Some(_) => prop_assert_eq!(got, Err(DomainError::BookingExists)),
                        None if quantity == 0 || u64::from(quantity) > m.total.min(u64::from(MAX_PER_USER)) => {
                            prop_assert!(matches!(got, Err(DomainError::QuantityOutOfRange { .. })), "{:?}", got);
                        }
                        None => {
                            let got = got.expect("book");
                            prop_assert!(got.made.is_some());
                            if !m.first_booked.contains(&u) {
                                m.first_booked.push(u);
                            }
                            m.latest.insert(u, (next_id, BookingStatus::Waiting, quantity, None));
                            if m.queue.is_empty() && u64::from(quantity) <= m.available() {
                                let secs = m.hold_secs;
                                m.grant(u, quantity, clock, secs);
                            } else {
                                m.queue.push_back((u, quantity));
                            }
                            prop_assert_eq!(got.value.id.get(), next_id);
                            next_id += 1;
                        }
                    }
                }
                Op::Cancel { event, user: u } => {
                    let (Some(e), Some(m)) = (events.get_mut(event), model.get_mut(event)) else { continue };
                    let got = e.cancel(&user(u), now);
                    let Some((id, _, q, _)) = m.active(u) else {
                        prop_assert_eq!(got, Err(DomainError::BookingNotFound));
                        continue;
                    };
                    let got = got.expect("active booking cancels").value;
                    prop_assert_eq!((got.booking.id.get(), got.booking.status), (id, BookingStatus::Cancelled));
                    m.latest.insert(u, (id, BookingStatus::Cancelled, q, None));
                    m.holders.retain(|&(c, _)| c != u);
                    m.queue.retain(|&(w, _)| w != u);
                    let promoted = m.promote(clock);
                    prop_assert_eq!(promoted_users(&got.promotions), promoted.into_iter().map(user).collect::<Vec<_>>());
                }
                Op::Lower { event, user: u, quantity } => {
                    let (Some(e), Some(m)) = (events.get_mut(event), model.get_mut(event)) else { continue };
                    let got = e.lower_quantity(&user(u), quantity, now);
                    match m.active(u) {
                        None => prop_assert_eq!(got, Err(DomainError::BookingNotFound)),
                        Some(_) if quantity == 0 => {
                            prop_assert!(matches!(got, Err(DomainError::QuantityOutOfRange { .. })), "{:?}", got);
                        }
                        Some((_, _, q, _)) if quantity > q => prop_assert_eq!(got, Err(DomainError::QuantityIncrease)),
                        Some((_, _, q, _)) if quantity == q => prop_assert!(got.expect("same").made.is_none()),
                        Some(_) => {
                            let got = got.expect("lower").value;
                            m.set_quantity(u, quantity);
                            let promoted = m.promote(clock);
                            prop_assert_eq!(promoted_users(&got.promotions), promoted.into_iter().map(user).collect::<Vec<_>>());
                        }
                    }
                }
                Op::Confirm { event, user: u } => {
                    let (Some(e), Some(m)) = (events.get_mut(event), model.get_mut(event)) else { continue };
                    let got = e.confirm(&user(u), now);
                    match m.latest.get(&u).copied() {
                        None | Some((_, BookingStatus::Cancelled, _, _)) => {
                            prop_assert_eq!(got, Err(DomainError::BookingNotFound));
                        }
                        Some((_, BookingStatus::Waiting, _, _)) => prop_assert_eq!(got, Err(DomainError::NotHeld)),
                        Some((_, BookingStatus::Expired, _, _)) => prop_assert_eq!(got, Err(DomainError::HoldExpired)),
                        Some((_, BookingStatus::Confirmed, _, _)) => prop_assert!(got.expect("confirmed").made.is_none()),
                        Some((id, BookingStatus::Held, q, _)) => {
                            let got = got.expect("a hold before its deadline confirms");
                            prop_assert!(got.made.is_some());
                            m.latest.insert(u, (id, BookingStatus::Confirmed, q, None));
                        }
                    }
                }
                Op::Capacity { event, total } => {
                    let (Some(e), Some(m)) = (events.get_mut(event), model.get_mut(event)) else { continue };
                    let patch = EventPatch { total_tickets: Some(total), ..EventPatch::default() };
                    let got = e.update(patch, now);
                    let sold = m.total - m.available();
                    let largest_waiting = m.queue.iter().map(|&(_, q)| u64::from(q)).max().unwrap_or(0);
                    if total < sold || (total < m.total && largest_waiting > total) {
                        prop_assert!(matches!(got, Err(DomainError::CapacityConflict(_))), "{:?}", got);
                    } else {
                        let got = got.expect("capacity change").value;
                        m.total = total;
                        let promoted = m.promote(clock);
                        prop_assert_eq!(promoted_users(&got.promotions), promoted.into_iter().map(user).collect::<Vec<_>>());
                    }
                }
                Op::Advance { .. } => {}
                Op::Restart => {
                    let snapshot = ServiceSnapshot {
                        taken_at: now,
                        create_keys: Vec::new(),
                        next_change_index: 1,
                        next_event_id: events.len() as u64 + 1,
                        next_booking_id: ids.peek(),
                        journal_lsn: Lsn::ZERO,
                        events: events
                            .iter()
                            .map(|e| StoredEvent { applied_lsn: Lsn::ZERO, event: e.to_snapshot() })
                            .collect(),
                    };
                    let bytes = codec::encode(&snapshot).expect("encodes");
                    let back: ServiceSnapshot = codec::decode(&bytes).expect("decodes");
                    prop_assert_eq!(&back, &snapshot);
                    events = back.events.into_iter().map(|e| Event::from_snapshot(e.event).expect("restores")).collect();
                    ids = BookingIdSequence::starting_at(back.next_booking_id);
                }
            }
            check(&events, &model, clock);
        }
    }
}

/// One change to a single event.
#[derive(Debug, Clone, Copy)]
enum Step {
    Book(u8, u32),
    Cancel(u8),
    Lower(u8, u32),
    Capacity(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0u8..7, 1u32..4).prop_map(|(u, q)| Step::Book(u, q)),
        4 => (0u8..7).prop_map(Step::Cancel),
        2 => (0u8..7, 1u32..3).prop_map(|(u, q)| Step::Lower(u, q)),
        1 => (1u64..8).prop_map(Step::Capacity),
    ]
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

fn run(event: &mut Event, ids: &BookingIdSequence, step: Step, now: Timestamp) -> Option<Made> {
    match step {
        Step::Book(u, q) => event.book(&user(u), q, ids, now).ok().and_then(|o| o.made),
        Step::Cancel(u) => event.cancel(&user(u), now).ok().and_then(|o| o.made),
        Step::Lower(u, q) => event
            .lower_quantity(&user(u), q, now)
            .ok()
            .and_then(|o| o.made),
        Step::Capacity(total) => {
            let patch = EventPatch {
                total_tickets: Some(total),
                ..EventPatch::default()
            };
            event.update(patch, now).ok().and_then(|o| o.made)
        }
    }
}

fn new_event(tickets: u64) -> (Event, Change) {
    let id = EventId::try_from(1).expect("id");
    Event::create(id, settings(tickets), Timestamp::from_millis(0)).expect("event")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any run of changes, undone newest first, leaves the event exactly as it
    /// was (records, queue order, positions, counters, timestamps), and the
    /// event keeps working afterwards.
    #[test]
    fn undoing_changes_newest_first_restores_the_exact_state(
        tickets in 1u64..5,
        before in proptest::collection::vec(step(), 0..40),
        undone in proptest::collection::vec(step(), 1..20),
    ) {
        let ids = BookingIdSequence::default();
        let (mut event, _) = new_event(tickets);
        let mut clock = 0;
        for s in &before {
            clock += 1;
            run(&mut event, &ids, *s, Timestamp::from_millis(clock));
        }
        let expected = observe(&event);
        let mut undos = Vec::new();
        for s in &undone {
            clock += 1;
            undos.extend(run(&mut event, &ids, *s, Timestamp::from_millis(clock)).map(|m| m.undo));
            event.verify().expect("invariants hold after a change");
        }
        for undo in undos.into_iter().rev() {
            event.undo(undo);
            event.verify().expect("invariants hold after an undo");
        }
        prop_assert_eq!(observe(&event), expected);
        for s in &undone {
            clock += 1;
            run(&mut event, &ids, *s, Timestamp::from_millis(clock));
            event.verify().expect("the event keeps working after undos");
        }
    }

    /// For any run, the live state equals the snapshot taken part-way plus
    /// the replay of every change after it, each change sent through the
    /// journal's record encoding as it would be on disk.
    #[test]
    fn a_snapshot_plus_the_replayed_journal_equals_the_live_state(
        tickets in 1u64..5,
        steps in proptest::collection::vec(step(), 1..60),
        cut in 0usize..60,
    ) {
        let ids = BookingIdSequence::default();
        let (mut live, created) = new_event(tickets);
        let mut journal = vec![created];
        let mut snapshot = None;
        for (i, s) in steps.iter().enumerate() {
            if i == cut {
                snapshot = Some((live.to_snapshot(), journal.len()));
            }
            journal.extend(run(&mut live, &ids, *s, Timestamp::from_millis(i as i64 + 1)).map(|m| m.change));
        }
        let (mut restored, replay_from) = match snapshot {
            Some((snap, at)) => (Event::from_snapshot(snap).expect("restores"), at),
            None => {
                let Change::Created { settings, at } = &journal[0] else { unreachable!("first change creates") };
                (Event::created(EventId::try_from(1).expect("id"), settings, *at).expect("event"), 1)
            }
        };
        for change in &journal[replay_from..] {
            let record = Record::Change { event: live.id(), change: change.clone() };
            let bytes = codec::encode(&record).expect("encodes");
            let back: Record = codec::decode(&bytes).expect("decodes");
            let (_, change) = back.into_change().expect("a change");
            restored.apply(&change).expect("replays");
        }
        prop_assert_eq!(observe(&restored), observe(&live));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The change feed: folding every change's items (the objects it
    /// touched, as they stood after it, sent through the journal's record
    /// encoding) gives every booking's and the event's last state. Only
    /// the live place in the queue of a waiting booking may have moved
    /// since its last item (a booking ahead leaving moves it without a
    /// change of its own).
    #[test]
    fn folding_the_feed_gives_every_booking_and_the_event_as_they_are(
        tickets in 1u64..5,
        steps in proptest::collection::vec(step(), 1..60),
    ) {
        use boxoffice::domain::{BookingView, FeedView};
        let ids = BookingIdSequence::default();
        let (mut event, _) = new_event(tickets);
        let mut folded_event = event.status();
        let mut folded: BTreeMap<String, BookingView> = BTreeMap::new();
        for (i, s) in steps.iter().enumerate() {
            let Some(made) = run(&mut event, &ids, *s, Timestamp::from_millis(i as i64 + 1)) else { continue };
            prop_assert!(!made.items.is_empty(), "every change shows something");
            let record = Record::Published { first_index: 0, event: event.id(), change: made.change, items: made.items };
            let back: Record = codec::decode(&codec::encode(&record).expect("encodes")).expect("decodes");
            let Record::Published { items, .. } = back else { unreachable!("published") };
            for item in items {
                match item.into_view() {
                    FeedView::Event(status) => folded_event = status,
                    FeedView::Booking(view) => { folded.insert(view.user_id.as_str().to_string(), view); }
                    FeedView::Entry(_) => {}
                }
            }
        }
        let without_place = |mut v: BookingView| { v.waiting_position = None; v.tickets_ahead = None; v };
        for u in 0..7 {
            let now = event.booking(&user(u)).ok().map(without_place);
            let last = folded.get(user(u).as_str()).cloned().map(without_place);
            prop_assert_eq!(last, now, "user {}", u);
        }
        prop_assert_eq!(folded_event.settings, event.status().settings);
    }
}
