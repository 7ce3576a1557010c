//! The waiting-room bench (issue 22), against one running service:
//!
//! 1. fills one event's room with ROOM_ENTRIES people (default 1,000,000)
//!    before its sales start, and reads the service's resident memory
//!    before and after: bytes per entry;
//! 2. the draw of all of them: the sales start is moved to now, and the
//!    time until the draw shows is measured while a client keeps reading
//!    the event's status (the reads' worst and p99 latency);
//! 3. join throughput on that event (1,000,000+ entries in its room)
//!    against booking throughput on the same event with its room turned
//!    off, alternately, ROOM_ROUNDS times each (64 connections, fresh
//!    users, fsync as the service is configured);
//! 4. admissions at 60,000 a minute while ROOM_STREAMS entry streams
//!    (default 10,000) watch: booking throughput and p99 on another event
//!    meanwhile, against the same with no admissions and no streams.
//!
//! usage: room BASE_URL SERVER_PID
//! env:   ROOM_ENTRIES (1000000), ROOM_STREAMS (10000), ROOM_LOAD_SECS (5),
//!        ROOM_ROUNDS (3).
//! Prints one JSON object.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use boxoffice_bench::{create_event, env, median, puts_per_sec, throughput};
use futures_util::StreamExt;
use serde_json::{json, Value};

/// VmRSS of `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn rfc3339_in(ms: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::milliseconds(ms))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

async fn patch(client: &reqwest::Client, base: &str, event: u64, body: Value) {
    let res = client
        .patch(format!("{base}/api/events/{event}"))
        .json(&body)
        .send()
        .await
        .expect("sent");
    assert!(res.status().is_success(), "PATCH {body}: {}", res.status());
}

async fn get(client: &reqwest::Client, url: &str) -> Value {
    client
        .get(url)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json")
}

fn p99(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() * 99 / 100).copied().unwrap_or(0.0)
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let base = args.next().expect("usage: room BASE_URL SERVER_PID");
    let pid: u32 = args
        .next()
        .and_then(|p| p.parse().ok())
        .expect("SERVER_PID");
    let entries = env("ROOM_ENTRIES", 1_000_000);
    let streams = env("ROOM_STREAMS", 10_000);
    let secs = env("ROOM_LOAD_SECS", 5) as u64;
    let rounds = env("ROOM_ROUNDS", 3);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(usize::MAX)
        .build()
        .expect("client");

    // 1. The fill, before sales start (no draw yet).
    let event = create_event(
        &client,
        &base,
        json!({"totalTickets": 10_000_000, "roomAdmitPerMinute": 1, "salesStart": rfc3339_in(86_400_000)}),
    )
    .await;
    let before = rss(pid);
    let filled = Instant::now();
    futures_util::stream::iter(0..entries)
        .for_each_concurrent(128, |n| {
            let client = client.clone();
            let url = format!("{base}/api/events/{event}/room/f{n:07}");
            async move {
                let res = client.put(url).send().await.expect("sent");
                assert!(res.status().is_success(), "join: {}", res.status());
            }
        })
        .await;
    let fill_secs = filled.elapsed().as_secs_f64();
    let after = rss(pid);
    let per_entry = after.saturating_sub(before) as f64 / entries as f64;
    eprintln!("filled {entries} in {fill_secs:.1} s: {per_entry:.1} bytes resident per entry");

    // 2. The draw, with reads of the event meanwhile.
    let reads = {
        let client = client.clone();
        let url = format!("{base}/api/status/{event}");
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let until = Instant::now() + Duration::from_secs(10);
            while Instant::now() < until {
                let sent = Instant::now();
                let res = client.get(&url).send().await.expect("sent");
                assert!(res.status().is_success());
                latencies.push(sent.elapsed().as_secs_f64() * 1e3);
            }
            latencies
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    patch(&client, &base, event, json!({"salesStart": rfc3339_in(0)})).await;
    let probe = format!("{base}/api/events/{event}/room/f0000000");
    let draw_secs = loop {
        let e = get(&client, &probe).await;
        if !e["entry"]["position"].is_null() || e["entry"]["status"] != "waiting" {
            break started.elapsed().as_secs_f64();
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no draw");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let latencies = reads.await.expect("reads");
    let worst = latencies.iter().copied().fold(0.0, f64::max);
    let reads_during = latencies.len();
    let reads_p99 = p99(latencies);
    eprintln!("draw of {entries}: seen after {draw_secs:.3} s; status reads p99 {reads_p99:.1} ms, worst {worst:.1} ms");

    // 3. Joins against bookings on the same event, alternately.
    let (mut joins, mut books) = (Vec::new(), Vec::new());
    let (mut join_p99, mut book_p99) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        patch(&client, &base, event, json!({"roomAdmitPerMinute": 1})).await;
        let (rate, p) = puts_per_sec(
            &client,
            &base,
            &format!("/api/events/{event}/room/j{round}x"),
            secs,
        )
        .await;
        joins.push(rate);
        join_p99.push(p);
        patch(&client, &base, event, json!({"roomAdmitPerMinute": 0})).await;
        let (rate, p) = throughput(&client, &base, event, &format!("b{round}x"), secs).await;
        books.push(rate);
        book_p99.push(p);
    }
    let (join_rate, book_rate) = (median(joins.clone()), median(books.clone()));
    eprintln!(
        "joins {join_rate:.0}/s against bookings {book_rate:.0}/s: {:.2}",
        join_rate / book_rate
    );

    // 4. Admissions at 60,000 a minute with entry streams watching; the
    // cost is read on bookings of another event.
    let other = create_event(&client, &base, json!({"totalTickets": 10_000_000})).await;
    let (quiet_rate, quiet_p99) = throughput(&client, &base, other, "q", secs).await;
    let opened = Arc::new(AtomicUsize::new(0));
    let messages = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for s in 0..streams {
        // Spread over the room's drawn order (by join name, so random).
        let n = s * (entries / streams.max(1)).max(1);
        let url = format!("{base}/api/events/{event}/room/f{n:07}/live");
        let client = client.clone();
        let (opened, messages) = (Arc::clone(&opened), Arc::clone(&messages));
        tasks.push(tokio::spawn(async move {
            let Ok(res) = client.get(url).send().await else {
                return;
            };
            if !res.status().is_success() {
                return;
            }
            opened.fetch_add(1, Ordering::Relaxed);
            let mut body = res.bytes_stream();
            while let Some(Ok(chunk)) = body.next().await {
                let n = chunk.windows(13).filter(|w| w == b"event: entry\n").count();
                messages.fetch_add(n, Ordering::Relaxed);
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while opened.load(Ordering::Relaxed) < streams && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let open = opened.load(Ordering::Relaxed);
    let admitted_before = get(&client, &format!("{base}/api/status/{event}")).await["roomAdmitted"]
        .as_u64()
        .unwrap_or(0);
    patch(&client, &base, event, json!({"roomAdmitPerMinute": 60_000})).await;
    let messages_before = messages.load(Ordering::Relaxed);
    let admitting = Instant::now();
    let (busy_rate, busy_p99) = throughput(&client, &base, other, "a", secs).await;
    let admit_secs = admitting.elapsed().as_secs_f64();
    let status = get(&client, &format!("{base}/api/status/{event}")).await;
    let admitted = status["roomAdmitted"].as_u64().unwrap_or(0) - admitted_before;
    let stream_messages = messages.load(Ordering::Relaxed) - messages_before;
    patch(&client, &base, event, json!({"roomAdmitPerMinute": 1})).await;
    for t in tasks {
        t.abort();
    }
    eprintln!(
        "admitting at 60,000/min with {open} entry streams: {admitted} admitted in {admit_secs:.1} s; bookings elsewhere {busy_rate:.0}/s p99 {busy_p99:.1} ms (quiet: {quiet_rate:.0}/s p99 {quiet_p99:.1} ms)"
    );

    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "entries": entries,
            "fill_secs": fill_secs,
            "fill_joins_per_sec": entries as f64 / fill_secs,
            "rss_growth_bytes": after.saturating_sub(before),
            "bytes_per_entry": per_entry,
            "draw_seen_after_secs": draw_secs,
            "status_reads_during_draw": reads_during,
            "status_read_p99_ms_during_draw": reads_p99,
            "status_read_worst_ms_during_draw": worst,
            "join_rates": joins,
            "booking_rates_same_event": books,
            "join_p99_ms": join_p99,
            "booking_p99_ms": book_p99,
            "join_rate_median": join_rate,
            "booking_rate_median": book_rate,
            "join_to_booking_ratio": join_rate / book_rate,
            "streams_open": open,
            "admitted_at_60000_per_min": admitted,
            "admission_window_secs": admit_secs,
            "admitted_per_sec": admitted as f64 / admit_secs,
            "entry_stream_messages": stream_messages,
            "other_event_bookings_quiet": quiet_rate,
            "other_event_p99_ms_quiet": quiet_p99,
            "other_event_bookings_admitting": busy_rate,
            "other_event_p99_ms_admitting": busy_p99,
        }))
        .unwrap_or_default()
    );
}
