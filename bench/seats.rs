//! Reserved seating in the domain, on the hall: 20 sections × 50
//! rows × 100 seats (100,000 seats), a gap every 20 seats:
//!
//! 1. bookings, as whole domain operations (the choice and its apply), at
//!    0%, 50% and 95% sold: best available of 1-8 seats together, and
//!    exact seats; median and p99, each booking timed alone, each on the
//!    same state (a waiting one is cancelled again, untimed);
//! 2. the choice alone (`Seating::choose`), on the same states;
//! 3. heap bytes a seat at 95% sold: the seat state, the free-run trees
//!    and the bookings' seat lists (the shared layout apart);
//! 4. the event's snapshot size at 95% sold, with and without its
//!    bookings, and its restore (decode and rebuild, as a restart does).
//!
//! `cargo bench --bench seats` (`SEATS_SMOKE=1` for a small, quick pass).
//! Prints a markdown report.

use std::hint::black_box;
use std::time::{Duration, Instant};

use boxoffice::domain::seating::{RowShape, SeatRequest, SeatShape, SeatState, SectionShape, Want};
use boxoffice::domain::{
    BookingIdSequence, BookingStatus, Event, EventId, EventSettings, EventSnapshot, RoomSettings,
    Timestamp, UserId,
};
use boxoffice::persistence::codec;
use boxoffice_testkit::{percentile, XorShift};

/// `sections` × 50 rows × 100 seats, a gap every 20; every fourth section
/// premium.
fn hall(sections: u32) -> SeatShape {
    let row = |r: u32| RowShape {
        name: format!("R{r}"),
        seats: 100,
        gaps_after: vec![20, 40, 60, 80],
    };
    SeatShape {
        sections: (0..sections)
            .map(|s| SectionShape {
                name: format!("S{s}"),
                category: if s % 4 == 0 { "premium" } else { "standard" }.into(),
                rows: (0..50).map(row).collect(),
            })
            .collect(),
    }
}

fn user(i: u64) -> UserId {
    UserId::try_from(format!("u{i}").as_str()).expect("user id")
}

/// A seated event with about `sold` of its seats booked, by exact
/// bookings of one to four random free seats; and how many users booked.
fn sold_hall(
    shape: &SeatShape,
    sold: f64,
    rng: &mut XorShift,
    ids: &BookingIdSequence,
) -> (Event, u64) {
    let settings = EventSettings::new(None, 1, 10);
    let now = Timestamp::from_millis(0);
    let id = EventId::try_from(1).expect("id");
    let (mut event, _) = Event::create_seated(
        id,
        settings,
        RoomSettings::default(),
        shape.clone(),
        u64::MAX,
        now,
    )
    .expect("hall");
    let seats = event.settings().total_tickets;
    let target = (seats as f64 * sold) as u64;
    let mut users = 0;
    while seats - event.status().available_tickets < target {
        let first = (rng.next_u64() % seats) as u32;
        let n = 1 + (rng.next_u64() % 4) as u32;
        let wanted: Vec<u32> = (first..first + n)
            .filter(|&s| u64::from(s) < seats)
            .collect();
        let seating = event.seating().expect("seated");
        if wanted.iter().any(|&s| seating.state(s) != SeatState::Free) {
            continue;
        }
        users += 1;
        event
            .book_seats(&user(users), SeatRequest::Exact(wanted), ids, now)
            .expect("free seats book");
    }
    (event, users)
}

/// Median and p99, in microseconds.
fn stats(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort_unstable();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    (
        us(percentile(&samples, 0.5)),
        us(percentile(&samples, 0.99)),
    )
}

/// Section 1: `samples` bookings at one fill level; (median, p99,
/// seated, waited).
fn bookings(
    base: &Event,
    exact: bool,
    samples: usize,
    users: &mut u64,
    rng: &mut XorShift,
    ids: &BookingIdSequence,
) -> (f64, f64, u64, u64) {
    let seats = base.settings().total_tickets;
    let now = Timestamp::from_millis(1);
    let mut event = base.clone();
    let mut times = Vec::with_capacity(samples);
    let (mut seated, mut waited) = (0, 0);
    for i in 0..samples {
        // A fresh copy now and then keeps the fill level where it is measured.
        if i % 100 == 0 {
            event = base.clone();
        }
        let request = if exact {
            let seating = event.seating().expect("seated");
            let first = loop {
                let s = (rng.next_u64() % seats) as u32;
                if seating.state(s) == SeatState::Free {
                    break s;
                }
            };
            SeatRequest::Exact(vec![first])
        } else {
            let quantity = 1 + (i % 8) as u32;
            SeatRequest::Best {
                quantity,
                category: None,
                together: true,
            }
        };
        *users += 1;
        let who = user(*users);
        let started = Instant::now();
        let booked = event.book_seats(&who, request, ids, now).expect("books");
        times.push(started.elapsed());
        if booked.value.status == BookingStatus::Waiting {
            waited += 1;
            event.cancel(&who, now).expect("cancels");
        } else {
            seated += 1;
        }
        black_box(booked);
    }
    let (median, p99) = stats(times);
    (median, p99, seated, waited)
}

/// Section 2: the choice alone; (median, p99, found, not found).
fn choices(base: &Event, samples: usize) -> (f64, f64, u64, u64) {
    let seating = base.seating().expect("seated");
    let mut times = Vec::with_capacity(samples);
    let mut found = 0;
    for i in 0..samples {
        let want = Want {
            category: (i % 3 == 0).then_some(1),
            apart: false,
        };
        let started = Instant::now();
        let chosen = seating.choose(1 + (i % 8) as u32, want);
        times.push(started.elapsed());
        found += u64::from(chosen.is_some());
        black_box(chosen);
    }
    let (median, p99) = stats(times);
    (median, p99, found, samples as u64 - found)
}

fn main() {
    let smoke = std::env::var_os("SEATS_SMOKE").is_some();
    let (sections, samples) = if smoke { (2, 2_000) } else { (20, 20_000) };
    let shape = hall(sections);
    let smoke_note = if smoke { " (smoke)" } else { "" };
    println!("# boxoffice seats bench{smoke_note}\n");
    println!("Hall: {sections} sections × 50 rows × 100 seats, a gap every 20 seats.\n");
    println!("| sold | what | median (µs) | p99 (µs) | seated or found / waited or not |");
    println!("| ---: | --- | ---: | ---: | ---: |");
    let ids = BookingIdSequence::default();
    let mut rng = XorShift::new(7);
    for sold in [0.0, 0.5, 0.95] {
        let pct = sold * 100.0;
        let (base, mut users) = sold_hall(&shape, sold, &mut rng, &ids);
        for (exact, what) in [
            (false, "booking: best available, 1-8 together"),
            (true, "booking: exact, 1 seat"),
        ] {
            let (median, p99, ok, not) =
                bookings(&base, exact, samples, &mut users, &mut rng, &ids);
            println!("| {pct:.0}% | {what} | {median:.2} | {p99:.2} | {ok} / {not} |");
        }
        let (median, p99, ok, not) = choices(&base, samples);
        let what = "choice alone: 1-8 together, a third in one category";
        println!("| {pct:.0}% | {what} | {median:.2} | {p99:.2} | {ok} / {not} |");
    }
    let (event, users) = sold_hall(&shape, 0.95, &mut rng, &ids);
    let seats = event.settings().total_tickets;
    let seating = event.seating().expect("seated");
    let (states, trees, lists) = seating.heap_parts();
    let per_seat = |b: usize| b as f64 / seats as f64;
    println!("\n| at 95% sold | value |\n| --- | ---: |");
    println!("| seats / bookings | {seats} / {users} |");
    println!(
        "| heap bytes a seat: state + free-run trees + bookings' seat lists | {:.2} + {:.2} + {:.2} = {:.2} |",
        per_seat(states),
        per_seat(trees),
        per_seat(lists),
        per_seat(states + trees + lists)
    );
    let whole = codec::encode(&event.to_snapshot()).expect("encodes");
    let mut map_only = seating.to_snapshot();
    map_only.bookings.clear();
    let map = codec::encode(&map_only).expect("encodes");
    println!(
        "| snapshot of the event, bytes (bytes a seat) | {} ({:.2}) |",
        whole.len(),
        per_seat(whole.len())
    );
    println!(
        "| of which the map and blocked seats, bytes (bytes a seat) | {} ({:.3}) |",
        map.len(),
        per_seat(map.len())
    );
    let started = Instant::now();
    let decoded: EventSnapshot = codec::decode(&whole).expect("decodes");
    let restored = Event::from_snapshot(decoded).expect("restores");
    let restore = started.elapsed();
    black_box(restored);
    println!(
        "| restore (decode and rebuild, as at start), ms | {:.1} |",
        restore.as_secs_f64() * 1e3
    );
}
