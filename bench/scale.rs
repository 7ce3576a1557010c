//! How costs grow with size, measured in one optimised run:
//!
//! 1. book, cancel and position look-up at queue lengths 10^3 to 10^6;
//! 2. resident memory per booking at 10,000,000 bookings;
//! 3. start-up cost and memory per event at 100,000 events (one actor each);
//! 4. snapshot write and restore (snapshot + journal) at 10,000,000 bookings;
//! 5. booking latency on that event while its snapshot is taken;
//! 6. an expiry storm: 100,000 holds on one event lapsing at the same
//!    moment, each offering its tickets to a waiting booking, with the
//!    journal in `always` mode, while clients keep reading the event;
//! 7. the change feed's read rate from a cold start (a new reader, no
//!    positions known) over 10,000,000 changes in the journal, read in
//!    pages of 1,000 as `GET /api/changes` reads them, alone and with each
//!    item written as the JSON the route serves;
//! 8. the waiting room at 1,000,000 entries: join cost, resident memory
//!    per entry, the draw, and reading a position after it;
//! 9. what a copy of an event costs (`Event::clone`) at 10^3 to 10^6
//!    bookings, half of them waiting, and what the first change after it
//!    pays for the chunks it shares: the price of serving booking reads
//!    from a copy the actor publishes (tried for issue 24, not kept; see
//!    bench/README.md).
//!
//! `cargo bench --bench scale` (`SCALE_SMOKE=1` for a small, quick pass).
//! Prints a markdown report and writes `bench/results/scale.json`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use boxoffice::actors::messages::MakeChange;
use boxoffice::actors::{ask, take_snapshot, Registry};
use boxoffice::clock::Clock;
use boxoffice::domain::{BookingIdSequence, Event, EventId, EventSettings, Timestamp, UserId};
use boxoffice::persistence::journal::{Journal, Lsn};
use boxoffice::persistence::recovery::recover;
use boxoffice::persistence::{ServiceSnapshot, SnapshotStore, StoredEvent};
use boxoffice_testkit::{percentile, XorShift};
use serde_json::json;

/// Resident set size of this process, in bytes.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn user(prefix: &str, i: u64) -> UserId {
    UserId::try_from(format!("{prefix}{i:010}").as_str()).expect("valid user")
}

fn event_id(n: u64) -> EventId {
    EventId::try_from(n).expect("valid id")
}

fn per_op(started: Instant, ops: u64) -> f64 {
    started.elapsed().as_nanos() as f64 / ops as f64
}

/// Users in the hot set of section 1.
const HOT: u64 = 100;

/// Section 1: operation cost against queue length.
fn queue_scale(lengths: &[u64], ops: u64) -> serde_json::Value {
    println!("\n## 1. Cost per operation by queue length ({ops} operations each, ns/op)\n");
    println!("| queue length | book (joins queue) | position and tickets ahead, random user | cancel from the middle, random user | cancel confirmed (promotes head) | position and tickets ahead, same 100 users | cancel + book again, same 100 users |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut rows = Vec::new();
    for &n in lengths {
        let ids = BookingIdSequence::default();
        let now = Timestamp::from_millis(0);
        let mut event = Event::create(event_id(1), EventSettings::new(None, 1, 10), now)
            .expect("event")
            .0;
        event.book(&user("holder", 0), 1, &ids, now).expect("book");
        for i in 0..n {
            event.book(&user("w", i), 1, &ids, now).expect("book");
        }
        let mut rng = XorShift::new(0x2545_f491_4f6c_dd1d);

        let started = Instant::now();
        for i in 0..ops {
            black_box(event.book(&user("x", i), 1, &ids, now).expect("book"));
        }
        let book = per_op(started, ops);

        // The same 100 users spread over the queue, each used ops/1,000
        // times: their records and index paths stay in cache, so this shows
        // the structures' own cost apart from cache misses.
        let hot: Vec<UserId> = (0..HOT).map(|k| user("w", k * n / HOT)).collect();
        let started = Instant::now();
        for i in 0..ops {
            black_box(
                event
                    .booking(&hot[(i % HOT) as usize])
                    .expect("booked")
                    .tickets_ahead,
            );
        }
        let position_hot = per_op(started, ops);
        let started = Instant::now();
        for i in 0..ops / 2 {
            let u = &hot[(i % HOT) as usize];
            black_box(event.cancel(u, now).expect("cancel"));
            black_box(event.book(u, 1, &ids, now).expect("book again"));
        }
        let cancel_rebook_hot = per_op(started, ops / 2);

        let lookups: Vec<UserId> = (0..ops).map(|_| user("w", rng.below(n))).collect();
        let started = Instant::now();
        for u in &lookups {
            black_box(event.booking(u).expect("booked").tickets_ahead);
        }
        let position = per_op(started, ops);

        let hot_set: std::collections::HashSet<u64> = (0..HOT).map(|k| k * n / HOT).collect();
        let mut victims: Vec<u64> = (0..ops.min(n / 2))
            .map(|_| rng.below(n))
            .filter(|i| !hot_set.contains(i))
            .collect();
        victims.sort_unstable();
        victims.dedup();
        // Sorted ids would walk memory in order; shuffle back to random order.
        for i in (1..victims.len()).rev() {
            victims.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let cancels: Vec<UserId> = victims.iter().map(|&i| user("w", i)).collect();
        let started = Instant::now();
        for u in &cancels {
            black_box(event.cancel(u, now).expect("cancel"));
        }
        let cancel_middle = per_op(started, cancels.len() as u64);

        // Each cancel of the confirmed booking promotes the head of the queue,
        // which is then the one cancelled next.
        let mut confirmed = user("holder", 0);
        let started = Instant::now();
        for _ in 0..ops {
            let out = event.cancel(&confirmed, now).expect("cancel");
            confirmed = out
                .value
                .promotions
                .into_iter()
                .next()
                .expect("someone waits")
                .user_id;
        }
        let cancel_promote = per_op(started, ops);
        event.verify().expect("invariants hold");
        println!("| {n} | {book:.0} | {position:.0} | {cancel_middle:.0} | {cancel_promote:.0} | {position_hot:.0} | {cancel_rebook_hot:.0} |");
        rows.push(json!({"queue": n, "book_ns": book, "position_ns": position,
            "cancel_middle_ns": cancel_middle, "cancel_promote_ns": cancel_promote,
            "position_hot_ns": position_hot, "cancel_rebook_hot_ns": cancel_rebook_hot}));
    }
    let ratio = |k: &str| {
        rows.last().and_then(|l| l[k].as_f64()).unwrap_or(0.0) / rows[0][k].as_f64().unwrap_or(1.0)
    };
    println!(
        "\nlargest / smallest: book {:.2}x, position (random) {:.2}x, cancel middle (random) {:.2}x, cancel confirmed {:.2}x, position (same users) {:.2}x, cancel + book (same users) {:.2}x",
        ratio("book_ns"),
        ratio("position_ns"),
        ratio("cancel_middle_ns"),
        ratio("cancel_promote_ns"),
        ratio("position_hot_ns"),
        ratio("cancel_rebook_hot_ns")
    );
    json!(rows)
}

/// Section 2: resident memory per booking. Returns the event for the
/// snapshot sections.
fn memory_per_booking(bookings: u64) -> (Event, BookingIdSequence, serde_json::Value) {
    println!("\n## 2. Memory per booking at {bookings} bookings\n");
    let ids = BookingIdSequence::default();
    let now = Clock::system().now();
    let before = rss_bytes();
    let mut event = Event::create(event_id(1), EventSettings::new(None, bookings, 10), now)
        .expect("event")
        .0;
    let started = Instant::now();
    for i in 0..bookings {
        event.book(&user("u", i), 1, &ids, now).expect("book");
    }
    let took = started.elapsed();
    let after = rss_bytes();
    let per = (after.saturating_sub(before)) as f64 / bookings as f64;
    println!("resident memory grew by {:.1} MiB: {per:.1} bytes per booking (user ids of 11 characters); booking them took {took:?}", (after - before) as f64 / 1048576.0);
    (
        event,
        ids,
        json!({"bookings": bookings, "rss_growth_bytes": after - before, "bytes_per_booking": per}),
    )
}

/// Section 4: snapshot write and restore of the big event.
fn snapshot_and_restore(
    event: &Event,
    ids: &BookingIdSequence,
    dir: &std::path::Path,
) -> serde_json::Value {
    println!(
        "\n## 4. Snapshot write and restore at {} bookings\n",
        event.record_count()
    );
    let store = SnapshotStore::open(dir, 3).expect("store");
    let started = Instant::now();
    let state = event.to_snapshot();
    let handover = started.elapsed();
    let snapshot = ServiceSnapshot {
        taken_at: Clock::system().now(),
        journal_lsn: Lsn::ZERO,
        next_event_id: 2,
        next_booking_id: ids.peek(),
        create_keys: Vec::new(),
        next_change_index: 1,
        events: vec![StoredEvent {
            applied_lsn: Lsn::ZERO,
            event: state,
        }],
    };
    let written = store.write(&snapshot).expect("write");
    drop(snapshot);
    let started = Instant::now();
    let decoded = boxoffice::persistence::snapshot::read_file(&written.path).expect("read");
    let read = started.elapsed();
    let started = Instant::now();
    let rebuilt: Vec<Event> = decoded
        .events
        .into_iter()
        .map(|e| Event::from_snapshot(e.event).expect("rebuild"))
        .collect();
    let rebuild = started.elapsed();
    assert_eq!(rebuilt.len(), 1);
    drop(rebuilt);
    let started = Instant::now();
    let recovered = recover(&store, dir).expect("recover");
    let restore = started.elapsed();
    assert_eq!(recovered.bookings, event.record_count());
    println!("| step | time |\n| --- | ---: |");
    println!("| actor hands over its state (to_snapshot) | {handover:?} |");
    println!(
        "| encode + write + fsync ({:.1} MiB) | {:?} |",
        written.bytes as f64 / 1048576.0,
        written.duration
    );
    println!("| restore (read, CRC, decode, rebuild indexes, verify, id check) | {restore:?} |");
    println!("| of which: read + CRC + decode | {read:?} |");
    println!("| of which: rebuild the event (index, queue, invariants) | {rebuild:?} |");
    json!({"handover_ms": handover.as_secs_f64() * 1e3, "write_ms": written.duration.as_secs_f64() * 1e3,
           "snapshot_bytes": written.bytes, "restore_ms": restore.as_secs_f64() * 1e3,
           "restore_read_decode_ms": read.as_secs_f64() * 1e3, "restore_rebuild_ms": rebuild.as_secs_f64() * 1e3})
}

/// Sections 3 and 5, which need actors.
async fn actor_sections(
    events: u64,
    big: Event,
    ids_next: u64,
    dir: &std::path::Path,
) -> serde_json::Value {
    println!("\n## 3. {events} events, one actor each\n");
    let registry = Arc::new(Registry::new(
        boxoffice::config::cores(),
        Journal::disabled(Lsn::FIRST),
        Clock::system(),
    ));
    let before = rss_bytes();
    let started = Instant::now();
    for _ in 0..events {
        registry
            .create(
                None,
                &EventSettings::new(None, 100, 10),
                Default::default(),
                None,
                Clock::system().now(),
            )
            .expect("create");
    }
    let took = started.elapsed();
    // Let every actor start before measuring memory.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let per_event = (rss_bytes().saturating_sub(before)) as f64 / events as f64;
    println!(
        "created in {took:?} ({:.1} µs per event); {per_event:.0} bytes resident per event",
        took.as_secs_f64() * 1e6 / events as f64
    );
    let store = Arc::new(SnapshotStore::open(&dir.join("many"), 3).expect("store"));
    let started = Instant::now();
    let (_, written) = take_snapshot(&registry, &store, false)
        .await
        .expect("snapshot");
    let many_snapshot = started.elapsed();
    println!(
        "snapshot of all {events} events (collect + encode + write): {many_snapshot:?}, {} bytes",
        written.bytes
    );
    registry.stop();

    println!(
        "\n## 5. Booking latency on an event of {} bookings while its snapshot is taken\n",
        big.record_count()
    );
    let registry = Arc::new(Registry::new(
        boxoffice::config::cores(),
        Journal::disabled(Lsn::FIRST),
        Clock::system(),
    ));
    let mut recovered = boxoffice::persistence::recovery::Recovered {
        next_event_id: 2,
        next_booking_id: ids_next,
        next_lsn: Lsn::FIRST,
        ..Default::default()
    };
    recovered.events.insert(event_id(1), (big, Lsn::ZERO));
    registry.install(recovered);
    let addr = registry.get(event_id(1)).expect("actor");
    let store = Arc::new(SnapshotStore::open(dir, 3).expect("store"));
    let load_for = Duration::from_secs(3);
    let until = Instant::now() + load_for;
    let clients: Vec<_> = (0..16u64)
        .map(|c| {
            let addr = addr.clone();
            actix_web::rt::spawn(async move {
                let mut latencies = Vec::new();
                let mut i = 0u64;
                while Instant::now() < until {
                    let started = Instant::now();
                    let u = user(&format!("late{c}x"), i);
                    let op = Box::new(move |e: &mut Event, ids: &_, now| e.book(&u, 1, ids, now));
                    let answer = ask(&addr, &std::sync::atomic::AtomicU64::new(0), |reply| {
                        MakeChange { op, reply }
                    })
                    .await;
                    assert!(answer.is_ok(), "booking failed");
                    latencies.push((started, started.elapsed()));
                    i += 1;
                }
                latencies
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let snap_started = Instant::now();
    let (_, written) = take_snapshot(&registry, &store, false)
        .await
        .expect("snapshot");
    let snap_took = snap_started.elapsed();
    let mut during = Vec::new();
    let mut all = Vec::new();
    for c in clients {
        for (at, lat) in c.await.expect("client") {
            all.push(lat);
            if at >= snap_started && at <= snap_started + snap_took {
                during.push(lat);
            }
        }
    }
    during.sort_unstable();
    all.sort_unstable();
    let (p50, p99, max) = (
        percentile(&during, 0.5),
        percentile(&during, 0.99),
        percentile(&during, 1.0),
    );
    println!(
        "snapshot took {snap_took:?} ({:.1} MiB written); {} bookings during it: p50 {p50:?}, p99 {p99:?}, max {max:?}; {} bookings in {load_for:?} overall, p99 {:?}",
        written.bytes as f64 / 1048576.0,
        during.len(),
        all.len(),
        percentile(&all, 0.99)
    );
    registry.stop();
    json!({"events": events, "create_us_per_event": took.as_secs_f64() * 1e6 / events as f64,
           "bytes_per_event": per_event, "snapshot_all_events_ms": many_snapshot.as_secs_f64() * 1e3,
           "snapshot_ms": snap_took.as_secs_f64() * 1e3,
           "bookings_during_snapshot": during.len(), "p50_during_ms": p50.as_secs_f64() * 1e3,
           "p99_during_ms": p99.as_secs_f64() * 1e3, "max_during_ms": max.as_secs_f64() * 1e3})
}

/// Section 6: `holds` held bookings lapse at one moment while as many wait;
/// every lapse is journalled (fsync "always") and offers its ticket on.
async fn expiry_storm(holds: u64, dir: &std::path::Path) -> serde_json::Value {
    println!("\n## 6. Expiry storm: {holds} holds lapsing at one moment, {holds} waiting\n");
    let hold_secs = 60;
    // Every hold lapses 1.5 s from now.
    let deadline_ms = Clock::system().now().millis() + 1_500;
    let booked_at = Timestamp::from_millis(deadline_ms - i64::from(hold_secs) * 1_000);
    let mut settings = EventSettings::new(None, holds, 10);
    settings.hold_secs = hold_secs;
    settings.offer_secs = 600;
    let (mut event, _) = Event::create(event_id(1), settings, booked_at).expect("event");
    let ids = BookingIdSequence::default();
    for i in 0..holds * 2 {
        event.book(&user("h", i), 1, &ids, booked_at).expect("book");
    }
    assert_eq!(event.status().held_tickets, holds);
    let options = boxoffice::persistence::journal::JournalOptions {
        dir: dir.join("storm"),
        fsync: boxoffice::persistence::journal::FsyncMode::Always,
        fsync_interval: Duration::from_millis(10),
        segment_bytes: 64 << 20,
        faults: None,
    };
    let journal = Journal::start(options, Lsn::FIRST).expect("journal");
    let registry = Arc::new(Registry::new(
        boxoffice::config::cores(),
        journal.clone(),
        Clock::system(),
    ));
    let mut recovered = boxoffice::persistence::recovery::Recovered {
        next_event_id: 2,
        next_booking_id: ids.peek(),
        next_lsn: Lsn::FIRST,
        ..Default::default()
    };
    recovered.events.insert(event_id(1), (event, Lsn::ZERO));
    registry.install(recovered);
    let addr = registry.get(event_id(1)).expect("actor");
    // Readers from 0.5 s before the deadline until the storm is over.
    let until = Instant::now() + Duration::from_millis(1_500 + 3_000);
    let readers: Vec<_> = (0..8)
        .map(|_| {
            let addr = addr.clone();
            let journal = journal.clone();
            actix_web::rt::spawn(async move {
                tokio::time::sleep(Duration::from_millis(1_000)).await;
                let mut latencies = Vec::new();
                let mut done_at = None;
                while Instant::now() < until {
                    let started = Instant::now();
                    let op = Box::new(|e: &Event| e.status());
                    let answer = ask(&addr, &std::sync::atomic::AtomicU64::new(0), |reply| {
                        boxoffice::actors::messages::Read {
                            op,
                            reply,
                            patience: None,
                        }
                    })
                    .await
                    .expect("read");
                    journal.wait_durable(answer.lsn).await.expect("durable");
                    latencies.push(started.elapsed());
                    if done_at.is_none() && answer.value.waiting_count == 0 {
                        done_at = Some(Clock::system().now().millis());
                    }
                }
                (latencies, done_at)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut done = Vec::new();
    for r in readers {
        let (l, d) = r.await.expect("reader");
        latencies.extend(l);
        done.extend(d);
    }
    latencies.sort_unstable();
    let (p50, p99, max) = (
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
    );
    let all_expired_after_ms = done.iter().min().map(|d| d - deadline_ms);
    let status = ask(&addr, &std::sync::atomic::AtomicU64::new(0), |reply| {
        boxoffice::actors::messages::Read {
            op: Box::new(|e: &Event| e.status()),
            reply,
            patience: None,
        }
    })
    .await
    .expect("read")
    .value;
    assert_eq!(
        status.waiting_count, 0,
        "every waiting booking was offered a ticket"
    );
    assert_eq!(status.held_tickets, holds, "the offers hold every ticket");
    println!(
        "all {holds} lapsed and {holds} offers made (durably) {} ms after the deadline; reads during the storm: {} , p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms",
        all_expired_after_ms.map_or_else(|| "n/a".into(), |ms| ms.to_string()),
        latencies.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3
    );
    registry.stop();
    journal.shutdown();
    json!({"holds": holds, "all_expired_after_deadline_ms": all_expired_after_ms,
           "reads": latencies.len(), "p50_ms": p50.as_secs_f64() * 1e3,
           "p99_ms": p99.as_secs_f64() * 1e3, "max_ms": max.as_secs_f64() * 1e3})
}

/// Section 7: the change feed read back from a journal of `changes`
/// booking changes (one item each, as a booking makes).
fn feed_read_rate(changes: u64, dir: &std::path::Path) -> serde_json::Value {
    use boxoffice::domain::{BookingId, BookingStatus, BookingView, Change, FeedItem};
    use boxoffice::http::api::change_bodies::ChangeJson;
    use boxoffice::persistence::journal::feed::FeedReader;
    use boxoffice::persistence::journal::{FsyncMode, JournalOptions, Record};
    println!("\n## 7. Change feed read rate over {changes} changes\n");
    let options = JournalOptions {
        dir: dir.to_path_buf(),
        fsync: FsyncMode::Interval,
        fsync_interval: Duration::from_millis(100),
        segment_bytes: 64 << 20,
        faults: None,
    };
    let journal = Journal::start(options, Lsn::FIRST).expect("journal");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let event = event_id(1);
    let started = Instant::now();
    for i in 0..changes {
        let at = Timestamp::from_millis(1_700_000_000_000 + i as i64);
        let user = user("u", i);
        let view = BookingView {
            id: BookingId::from_raw(i + 1),
            event_id: event,
            user_id: user.clone(),
            status: BookingStatus::Confirmed,
            quantity: 1,
            waiting_position: None,
            tickets_ahead: None,
            expires_at: None,
            created_at: at,
            updated_at: at,
            seats: None,
        };
        let record = Record::Published {
            first_index: 0,
            event,
            change: Change::Booked {
                booking: BookingId::from_raw(i + 1),
                user,
                quantity: 1,
                at,
            },
            items: vec![FeedItem::Booking(view)],
        };
        let lsn = loop {
            match journal.submit(record.clone(), 0) {
                Ok(lsn) => break lsn,
                // The writer's queue is full: let it catch up.
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
        };
        if (i + 1) % 50_000 == 0 || i + 1 == changes {
            runtime
                .block_on(journal.wait_durable(lsn))
                .expect("durable");
        }
    }
    let wrote = started.elapsed();
    let durable = journal.state().changes_durable;
    journal.shutdown();
    assert_eq!(durable, changes);
    let bytes: u64 = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("journal-"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    let read = |json: bool| {
        let reader = FeedReader::new(dir);
        let started = Instant::now();
        let mut after = 0;
        let mut out = Vec::with_capacity(1 << 20);
        while after < durable {
            let page = reader.read(after, 1_000, durable).expect("page");
            after = page.last().map(|e| e.index).expect("items");
            if json {
                out.clear();
                let items: Vec<ChangeJson> = page.into_iter().map(ChangeJson::from).collect();
                serde_json::to_writer(&mut out, &items).expect("json");
                black_box(&out);
            } else {
                black_box(&page);
            }
        }
        changes as f64 / started.elapsed().as_secs_f64()
    };
    let decoded = read(false);
    let served = read(true);
    println!(
        "wrote {changes} changes ({:.1} MiB of journal) in {wrote:?}; a cold reader read {decoded:.0} items/s decoded, {served:.0} items/s as JSON (pages of 1,000)",
        bytes as f64 / 1048576.0
    );
    json!({"changes": changes, "journal_bytes": bytes, "write_secs": wrote.as_secs_f64(),
           "items_per_sec_decoded": decoded, "items_per_sec_json": served})
}

/// Section 8: one room of `entries` people, in the domain alone.
fn room_scale(entries: u64) -> serde_json::Value {
    use boxoffice::domain::RoomSettings;
    println!("\n## 8. The waiting room at {entries} entries\n");
    let users: Vec<UserId> = (0..entries).map(|i| user("r", i)).collect();
    let mut settings = EventSettings::new(None, 1_000, 10);
    settings.sales_start = Some(Timestamp::from_millis(1_000_000));
    let room = RoomSettings {
        admit_per_minute: 60_000,
        admit_secs: 600,
    };
    let before = rss_bytes();
    let (mut event, _) =
        Event::create_with_room(event_id(1), settings, room, Timestamp::from_millis(0))
            .expect("event");
    let started = Instant::now();
    for u in &users {
        event
            .join_room(u, Timestamp::from_millis(1))
            .expect("joins");
    }
    let join_ns = per_op(started, entries);
    let per_entry = rss_bytes().saturating_sub(before) as f64 / entries as f64;
    let started = Instant::now();
    let drawn = event
        .room_work(Timestamp::from_millis(1_000_000), [42; 32])
        .expect("draws")
        .expect("a draw");
    let draw = started.elapsed();
    black_box(drawn);
    let mut rng = XorShift::new(7);
    let reads = 100_000u64;
    let started = Instant::now();
    for _ in 0..reads {
        let u = &users[(rng.next_u64() % entries) as usize];
        black_box(event.room_entry(u).expect("entry").position);
    }
    let read_ns = per_op(started, reads);
    println!("| entries | join (ns) | resident bytes per entry | draw | read an entry with its position (ns) |");
    println!("| ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| {entries} | {join_ns:.0} | {per_entry:.1} | {:.0} ms | {read_ns:.0} |",
        draw.as_secs_f64() * 1e3
    );
    json!({"entries": entries, "join_ns": join_ns, "bytes_per_entry": per_entry,
           "draw_ms": draw.as_secs_f64() * 1e3, "read_ns": read_ns})
}

/// Section 9: what a copy of the event costs, per entry, and the
/// copy-on-write the next change pays while the copy lives.
fn copy_cost(sizes: &[u64]) -> serde_json::Value {
    println!("\n## 9. The cost of a copy of an event\n");
    println!("| bookings (half waiting) | clone | per entry (ns) | next booking, copy alive | next booking, no copy |");
    println!("| ---: | ---: | ---: | ---: | ---: |");
    let mut rows = Vec::new();
    for &n in sizes {
        let ids = BookingIdSequence::default();
        let now = Timestamp::from_millis(0);
        let (mut event, _) =
            Event::create(event_id(1), EventSettings::new(None, n / 2, 10), now).expect("event");
        for i in 0..n {
            event.book(&user("c", i), 1, &ids, now).expect("book");
        }
        let rounds = (1_000_000 / n).clamp(3, 1_000);
        let started = Instant::now();
        for _ in 0..rounds {
            black_box(event.clone());
        }
        let clone = started.elapsed() / u32::try_from(rounds).unwrap_or(u32::MAX);
        let per_entry = clone.as_nanos() as f64 / n as f64;
        // The first change to a chunk shared with a copy copies that chunk.
        let mut shared_write = Duration::ZERO;
        let mut plain_write = Duration::ZERO;
        for r in 0..rounds.min(100) {
            let copy = event.clone();
            let started = Instant::now();
            event.book(&user("s", r), 1, &ids, now).expect("book");
            event.cancel(&user("c", r * 7 % n), now).expect("cancel");
            shared_write += started.elapsed();
            drop(copy);
            let started = Instant::now();
            event.book(&user("p", r), 1, &ids, now).expect("book");
            event
                .cancel(&user("c", (r * 7 + 1) % n), now)
                .expect("cancel");
            plain_write += started.elapsed();
        }
        let writes = u32::try_from(rounds.min(100)).unwrap_or(1);
        let (shared_write, plain_write) = (shared_write / writes, plain_write / writes);
        println!("| {n} | {clone:?} | {per_entry:.1} | {shared_write:?} | {plain_write:?} |");
        rows.push(
            json!({"bookings": n, "clone_ns": clone.as_nanos() as u64, "ns_per_entry": per_entry,
                         "book_and_cancel_copy_alive_ns": shared_write.as_nanos() as u64,
                         "book_and_cancel_ns": plain_write.as_nanos() as u64}),
        );
    }
    json!(rows)
}

fn main() {
    let smoke = std::env::var_os("SCALE_SMOKE").is_some();
    if let Ok(n) = std::env::var("SCALE_ONLY_ROOM") {
        println!("{}", room_scale(n.parse().unwrap_or(1_000_000)));
        return;
    }
    if std::env::var_os("SCALE_ONLY_COPY").is_some() {
        println!("{}", copy_cost(&[1_000, 10_000, 100_000, 1_000_000]));
        return;
    }
    if let Ok(n) = std::env::var("SCALE_ONLY_FEED") {
        let dir = tempfile::tempdir().expect("tempdir");
        let changes = n.parse().unwrap_or(10_000_000);
        println!("{}", feed_read_rate(changes, dir.path()));
        return;
    }
    let (lengths, ops, bookings, events, holds): (&[u64], u64, u64, u64, u64) = if smoke {
        (&[1_000, 10_000], 2_000, 200_000, 2_000, 2_000)
    } else {
        (
            &[1_000, 10_000, 100_000, 1_000_000],
            20_000,
            10_000_000,
            100_000,
            100_000,
        )
    };
    // Resident bytes per booking of 1,000,000 bookings that are all held
    // (`held`) or all confirmed (`confirmed`): run once each, in separate
    // processes, so the allocator's reuse cannot flatter the second.
    if let Ok(kind) = std::env::var("SCALE_ONLY_HOLD_MEMORY") {
        let n = 1_000_000u64;
        let mut settings = EventSettings::new(None, n, 10);
        settings.hold_secs = if kind == "held" { 3_600 } else { 0 };
        let users: Vec<UserId> = (0..n).map(|i| user("m", i)).collect();
        let ids = BookingIdSequence::default();
        let before = rss_bytes();
        let now = Timestamp::from_millis(0);
        let (mut event, _) = Event::create(event_id(1), settings, now).expect("event");
        for u in &users {
            event.book(u, 1, &ids, now).expect("book");
        }
        let per = (rss_bytes().saturating_sub(before)) as f64 / n as f64;
        println!(
            "{kind}: {per:.1} bytes resident per booking at {n} (held tickets {})",
            event.status().held_tickets
        );
        return;
    }
    // Section 3 alone, with N events and the snapshot of all of them.
    if let Some(n) = std::env::var("SCALE_ONLY_EVENTS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = Timestamp::from_millis(0);
        let (small, _) =
            Event::create(event_id(1), EventSettings::new(None, 1, 1), now).expect("event");
        actix_web::rt::System::new().block_on(actor_sections(n, small, 1, dir.path()));
        return;
    }
    if std::env::var_os("SCALE_ONLY_STORM").is_some() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storm = actix_web::rt::System::new().block_on(expiry_storm(holds, dir.path()));
        println!("{storm}");
        return;
    }
    println!(
        "# boxoffice scale bench{}",
        if smoke { " (smoke)" } else { "" }
    );
    let queue = queue_scale(lengths, ops);
    let (event, ids, memory) = memory_per_booking(bookings);
    let dir = tempfile::tempdir().expect("tempdir");
    let snapshot = snapshot_and_restore(&event, &ids, dir.path());
    let next = ids.peek();
    let actors =
        actix_web::rt::System::new().block_on(actor_sections(events, event, next, dir.path()));
    let storm = actix_web::rt::System::new().block_on(expiry_storm(holds, dir.path()));
    let feed_dir = tempfile::tempdir().expect("tempdir");
    let feed = feed_read_rate(if smoke { 100_000 } else { 10_000_000 }, feed_dir.path());
    let room = room_scale(if smoke { 10_000 } else { 1_000_000 });
    let copy = copy_cost(lengths);
    let report = json!({"smoke": smoke, "queue": queue, "memory": memory, "snapshot": snapshot,
                        "actors": actors, "expiry_storm": storm, "feed": feed, "room": room,
                        "copy": copy});
    if !smoke {
        let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/results/scale.json");
        std::fs::write(
            &out,
            serde_json::to_string_pretty(&report).unwrap_or_default(),
        )
        .expect("write results");
        println!("\nwritten to {}", out.display());
    }
}
