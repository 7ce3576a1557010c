//! The on-sale audience bench: bookings on an event while many clients
//! watch that same event's public stream (`GET /api/events/{id}/live`),
//! against the same bookings with nobody watching, in one run.
//!
//! usage: watchers BASE_URL
//! env:   WATCHERS (2000): streams opened on the event;
//!        WATCH_LOAD_SECS (5): how long each throughput is measured.
//! Prints one JSON object: throughputs and their ratio, p99 of bookings
//! with the streams open, and the stream messages received meanwhile.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use boxoffice_bench::{create_event, env, throughput};
use futures_util::StreamExt;
use serde_json::json;

#[tokio::main]
async fn main() {
    let base = std::env::args().nth(1).expect("usage: watchers BASE_URL");
    let watchers = env("WATCHERS", 2_000);
    let secs = env("WATCH_LOAD_SECS", 5) as u64;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(usize::MAX)
        .build()
        .expect("client");
    let event = create_event(&client, &base, json!({"totalTickets": 10_000_000})).await;
    let (before, p99_before) = throughput(&client, &base, event, "b", secs).await;

    let opened = Arc::new(AtomicUsize::new(0));
    let messages = Arc::new(AtomicUsize::new(0));
    let mut streams = Vec::new();
    for _ in 0..watchers {
        // A client of its own per stream: one connection each, as browsers.
        let client = reqwest::Client::new();
        let url = format!("{base}/api/events/{event}/live");
        let (opened, messages) = (Arc::clone(&opened), Arc::clone(&messages));
        streams.push(tokio::spawn(async move {
            let res = client.get(url).send().await.expect("stream opened");
            assert!(res.status().is_success(), "stream: {}", res.status());
            opened.fetch_add(1, Ordering::Relaxed);
            let mut body = res.bytes_stream();
            while let Some(Ok(chunk)) = body.next().await {
                let frames = chunk.windows(2).filter(|w| w == b"\n\n").count();
                messages.fetch_add(frames, Ordering::Relaxed);
            }
        }));
    }
    let wait = Instant::now();
    while opened.load(Ordering::Relaxed) < watchers {
        assert!(
            wait.elapsed() < Duration::from_secs(120),
            "only {} of {watchers} streams opened",
            opened.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let messages_before = messages.load(Ordering::Relaxed);
    let (during, p99_during) = throughput(&client, &base, event, "d", secs).await;
    let received = messages.load(Ordering::Relaxed) - messages_before;
    for s in streams {
        s.abort();
    }
    println!(
        "{}",
        json!({
            "watchers": watchers,
            "bookings_per_sec_nobody_watching": before,
            "bookings_per_sec_watched": during,
            "throughput_ratio": during / before,
            "p99_ms_nobody_watching": p99_before,
            "p99_ms_watched": p99_during,
            "stream_messages_while_booking": received,
        })
    );
}
