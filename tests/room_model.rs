//! Model-based property test of the waiting room: random joins, leaves,
//! bookings, pace changes, clock advances and restarts run against the
//! real `Event` (doing the room's due work after every step, as its actor
//! does) and a plain model (a join-order list before the draw, a VecDeque
//! after it, each person's latest entry). The model draws with the same
//! seed through the same public shuffle, so it knows the exact order.
//! After every step: every status matches, positions are 1..n in the
//! model's order, admissions come only from the front of the drawn order,
//! and no 60 s holds more admissions than the pace.

use std::collections::{BTreeMap, VecDeque};

use boxoffice::domain::{
    shuffle, BookingIdSequence, Change, DomainError, EntryStatus, Event, EventId, EventPatch,
    EventSettings, FeedItem, RoomPatch, RoomSettings, Timestamp, UserId,
};
use boxoffice::persistence::codec;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Join(u8),
    Leave(u8),
    Book(u8),
    Advance(i64),
    Pace(u32),
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..12).prop_map(Op::Join),
        2 => (0u8..12).prop_map(Op::Leave),
        3 => (0u8..12).prop_map(Op::Book),
        4 => (0i64..3_000).prop_map(Op::Advance),
        1 => prop_oneof![Just(0u32), Just(30), Just(60), Just(600)].prop_map(Op::Pace),
        1 => Just(Op::Restart),
    ]
}

fn user(u: u8) -> UserId {
    UserId::try_from(format!("p{u}").as_str()).expect("valid user")
}

/// The obviously-correct room.
#[derive(Debug, Default)]
struct Model {
    per_minute: u32,
    drawn: bool,
    /// Waiting people: join order before the draw, drawn order after.
    waiting: VecDeque<u8>,
    /// Each person's latest entry status, and the deadline while admitted.
    latest: BTreeMap<u8, (EntryStatus, Option<i64>)>,
    /// People with a booking.
    booked: Vec<u8>,
}

/// Applies the room work the real event reported (draws, admissions and
/// lapses, in order) to the model, checking each against it.
fn follow(model: &mut Model, made: &[boxoffice::domain::Made], stamps: &mut Vec<i64>) {
    for m in made {
        match &m.change {
            Change::RoomDrawn { seed, .. } => {
                assert!(!model.drawn, "drawn once");
                let mut order: Vec<u8> = model.waiting.iter().copied().collect();
                shuffle(&mut order, *seed);
                model.waiting = order.into();
                model.drawn = true;
            }
            Change::RoomAdmitted { count, .. } => {
                assert!(model.drawn, "admitted only after the draw");
                let admitted: Vec<(u8, i64, i64)> = m
                    .items
                    .iter()
                    .map(|item| match item {
                        FeedItem::Entry(e) => {
                            assert_eq!(e.status, EntryStatus::Admitted);
                            let u: u8 = e.user_id.as_str()[1..].parse().expect("p<n>");
                            let stamp = e.admitted_at.expect("stamped").millis();
                            (u, stamp, e.admitted_until.expect("until").millis())
                        }
                        other => panic!("an admission shows entries: {other:?}"),
                    })
                    .collect();
                assert!(!admitted.is_empty() && admitted.len() <= *count as usize);
                for (u, stamp, until) in admitted {
                    assert_eq!(
                        model.waiting.pop_front(),
                        Some(u),
                        "admitted in drawn order"
                    );
                    model.latest.insert(u, (EntryStatus::Admitted, Some(until)));
                    stamps.push(stamp);
                }
            }
            Change::RoomLapsed { at } => {
                for item in &m.items {
                    let FeedItem::Entry(e) = item else {
                        panic!("a lapse shows entries")
                    };
                    let u: u8 = e.user_id.as_str()[1..].parse().expect("p<n>");
                    let (status, until) = model.latest[&u];
                    assert_eq!(status, EntryStatus::Admitted);
                    assert!(
                        until.is_some_and(|d| d <= at.millis()),
                        "lapsed at or after its deadline"
                    );
                    model.latest.insert(u, (EntryStatus::Expired, None));
                }
            }
            other => panic!("room work made {other:?}"),
        }
    }
}

/// Runs every piece of room work due at `now`.
fn work(event: &mut Event, now: i64, seed: u8) -> Vec<boxoffice::domain::Made> {
    let mut made = Vec::new();
    while let Some(m) = event
        .room_work(Timestamp::from_millis(now), [seed; 32])
        .expect("room work")
    {
        made.push(m);
    }
    made
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_room_keeps_its_order_its_pace_and_its_rules(
        start in 0i64..4_000,
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let ids = BookingIdSequence::default();
        let mut settings = EventSettings::new(None, 100, 1);
        settings.sales_start = Some(Timestamp::from_millis(start));
        let room = RoomSettings { admit_per_minute: 60, admit_secs: 2 };
        let (mut event, _) = Event::create_with_room(EventId::try_from(1).expect("id"), settings, room, Timestamp::from_millis(0)).expect("event");
        let mut model = Model { per_minute: 60, ..Model::default() };
        let mut clock = 0i64;
        let mut stamps: Vec<i64> = Vec::new();
        let mut pace_since = 0i64;
        // The last admission before the current schedule, and the earliest
        // its first admission may come after a change between two paces
        // (contract v4, Corrections: a step of the new pace after it).
        let mut before_schedule: Option<i64> = None;
        let mut floor: Option<i64> = None;
        for (i, op) in ops.into_iter().enumerate() {
            let seed = i as u8;
            let made = work(&mut event, clock, seed);
            follow(&mut model, &made, &mut stamps);
            let now = Timestamp::from_millis(clock);
            match op {
                Op::Join(u) => {
                    let got = event.join_room(&user(u), now);
                    let active = model.latest.get(&u).is_some_and(|(s, _)| s.is_active());
                    if model.per_minute == 0 {
                        prop_assert_eq!(got, Err(DomainError::NoRoom));
                    } else {
                        let got = got.expect("joins");
                        prop_assert_eq!(got.made.is_none(), active, "a second join changes nothing");
                        if !active {
                            model.waiting.push_back(u);
                            model.latest.insert(u, (EntryStatus::Waiting, None));
                        }
                    }
                }
                Op::Leave(u) => {
                    let got = event.leave_room(&user(u), now);
                    match model.latest.get(&u).copied().filter(|(s, _)| s.is_active()) {
                        Some(_) => {
                            prop_assert_eq!(got.expect("leaves").value.status, EntryStatus::Left);
                            model.waiting.retain(|&w| w != u);
                            model.latest.insert(u, (EntryStatus::Left, None));
                        }
                        None => prop_assert!(got.is_err()),
                    }
                }
                Op::Book(u) => {
                    let got = event.book(&user(u), 1, &ids, now);
                    let booked = model.booked.contains(&u);
                    let admitted = model.latest.get(&u).is_some_and(|&(s, d)| s == EntryStatus::Admitted && d.is_some_and(|d| clock < d));
                    let open = clock >= start;
                    if booked {
                        prop_assert!(got.is_ok(), "the rebook rule first: {:?}", got);
                    } else if !open {
                        prop_assert_eq!(got, Err(DomainError::SalesNotOpen));
                    } else if model.per_minute > 0 && !admitted {
                        prop_assert_eq!(got, Err(DomainError::NotAdmitted));
                    } else {
                        prop_assert!(got.is_ok(), "{:?}", got);
                        model.booked.push(u);
                        if admitted || model.latest.get(&u).is_some_and(|(s, _)| *s == EntryStatus::Admitted) {
                            model.latest.insert(u, (EntryStatus::Used, None));
                        }
                    }
                }
                Op::Advance(ms) => clock += ms,
                Op::Pace(per_minute) => {
                    let patch = RoomPatch { admit_per_minute: Some(per_minute), admit_secs: None };
                    event.update_with_room(EventPatch::default(), patch, now).expect("pace");
                    if per_minute != model.per_minute {
                        // A new pace is a new schedule: windows are checked
                        // within one pace, and its first admission a step
                        // of it after the last one.
                        before_schedule = stamps.last().copied().or(before_schedule);
                        floor = match before_schedule {
                            Some(last) if model.per_minute > 0 && per_minute > 0 => {
                                Some(last + i64::from(60_000u32.div_ceil(per_minute)))
                            }
                            _ => None,
                        };
                        stamps.clear();
                        pace_since = clock;
                    }
                    model.per_minute = per_minute;
                }
                Op::Restart => {
                    let bytes = codec::encode(&event.to_snapshot()).expect("encodes");
                    let back = codec::decode(&bytes).expect("decodes");
                    event = Event::from_snapshot(back).expect("restores");
                }
            }
            let made = work(&mut event, clock, seed.wrapping_add(100));
            follow(&mut model, &made, &mut stamps);

            // Every entry as the model has it; positions 1..n in its order.
            event.verify().expect("invariants");
            for (&u, &(status, _)) in &model.latest {
                let view = event.room_entry(&user(u)).expect("an entry");
                prop_assert_eq!(view.status, status, "p{}", u);
                let expected = (status == EntryStatus::Waiting && model.drawn)
                    .then(|| model.waiting.iter().position(|&w| w == u).expect("queued") as u64 + 1);
                prop_assert_eq!(view.position, expected, "p{}", u);
            }
            let room = event.status().room;
            prop_assert_eq!(room.waiting as usize, model.waiting.len());
            if let (Some(floor), Some(&first)) = (floor, stamps.first()) {
                prop_assert!(first >= floor, "admitted at {} after a pace change; not before {}", first, floor);
            }
            // Never above the pace in any 60 s of one schedule.
            let mut end = 0;
            for (j, &first) in stamps.iter().enumerate() {
                prop_assert!(first >= pace_since.min(first));
                while end < stamps.len() && stamps[end] < first + 60_000 {
                    end += 1;
                }
                prop_assert!(end - j <= model.per_minute.max(1) as usize, "{} admitted in the minute from {}", end - j, first);
            }
        }
    }
}
