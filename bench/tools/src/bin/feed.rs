//! The change feed's cost to bookings (issue 23): booking throughput on a
//! service that delivers every change to a webhook receiver and streams it
//! to a live feed reader (`/api/changes/live`), against a service with
//! neither. Both services are started here from one binary with the same
//! settings otherwise, and measured alternately in one run.
//!
//! usage: feed BINARY
//! env:   FEED_LOAD_SECS (5): each throughput measurement;
//!        FEED_ROUNDS (3): measurements of each, alternating.
//! Prints one JSON object: the medians and their ratio, p99s, and how long
//! after the load the receiver had every change.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use boxoffice_bench::{create_event, env, get_json, median, throughput, Service};
use futures_util::StreamExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the receiver saw.
#[derive(Default)]
struct Received {
    /// Items delivered.
    items: AtomicU64,
    /// The newest index delivered.
    last: AtomicU64,
    /// Deliveries whose first index did not follow the last one seen.
    out_of_order: AtomicU64,
}

/// A minimal HTTP/1.1 receiver: reads each POST whole, counts its items,
/// answers 200 and keeps the connection.
async fn receive(listener: tokio::net::TcpListener, seen: Arc<Received>) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            return;
        };
        let seen = Arc::clone(&seen);
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 64 * 1024];
            loop {
                let head_end = loop {
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break end + 4;
                    }
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + length {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                // Only the indexes, found by a byte scan: the receiver runs
                // on the same cores as the service and must cost little.
                let indexes = item_indexes(&buf[head_end..head_end + length]);
                let first = indexes.first().copied().unwrap_or(0);
                let last = indexes.last().copied().unwrap_or(0);
                if first > seen.last.load(Ordering::Relaxed) + 1 {
                    seen.out_of_order.fetch_add(1, Ordering::Relaxed);
                }
                seen.items
                    .fetch_add(indexes.len() as u64, Ordering::Relaxed);
                seen.last.fetch_max(last, Ordering::Relaxed);
                buf.drain(..head_end + length);
                let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                if socket.write_all(reply).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// The `index` of each item of a delivery body, in order.
fn item_indexes(body: &[u8]) -> Vec<u64> {
    const KEY: &[u8] = b"{\"index\":";
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(found) = body[at..].windows(KEY.len()).position(|w| w == KEY) {
        let digits = &body[at + found + KEY.len()..];
        let n = digits
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .fold(0u64, |n, b| n * 10 + u64::from(b - b'0'));
        out.push(n);
        at += found + KEY.len();
    }
    out
}

#[tokio::main]
async fn main() {
    let binary = std::env::args().nth(1).expect("usage: feed BINARY");
    let secs = env("FEED_LOAD_SECS", 5) as u64;
    let rounds = env("FEED_ROUNDS", 3);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(Received::default());
    tokio::spawn(receive(listener, Arc::clone(&seen)));

    let plain = Service::start(&binary, "plain", &[]);
    let hooked = Service::start(
        &binary,
        "hooked",
        &[
            (
                "BOXOFFICE__WEBHOOKS__URL",
                format!("http://127.0.0.1:{port}/hook"),
            ),
            ("BOXOFFICE__WEBHOOKS__SECRET", "bench-secret".into()),
        ],
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(usize::MAX)
        .build()
        .expect("client");
    let big = || json!({"totalTickets": 10_000_000});
    let plain_event = create_event(&client, &plain.base, big()).await;
    let hooked_event = create_event(&client, &hooked.base, big()).await;

    // The live feed reader, from the start.
    let streamed = Arc::new(AtomicU64::new(0));
    let reader = {
        let url = format!("{}/api/changes/live?after=0", hooked.base);
        let streamed = Arc::clone(&streamed);
        tokio::spawn(async move {
            let res = reqwest::get(url).await.expect("feed stream");
            assert!(res.status().is_success(), "feed: {}", res.status());
            let mut body = res.bytes_stream();
            // Messages end with a blank line; one may span two chunks.
            let mut pending = Vec::new();
            while let Some(Ok(chunk)) = body.next().await {
                pending.extend_from_slice(&chunk);
                let mut n = 0;
                while let Some(end) = pending.windows(2).position(|w| w == b"\n\n") {
                    if pending.starts_with(b"id: ") {
                        n += 1;
                    }
                    pending.drain(..end + 2);
                }
                streamed.fetch_add(n, Ordering::Relaxed);
            }
        })
    };

    let (mut plain_rates, mut hooked_rates) = (Vec::new(), Vec::new());
    let (mut plain_p99, mut hooked_p99) = (Vec::new(), Vec::new());
    let mut hooked_bookings = 0.0;
    for round in 0..rounds {
        let (rate, p99) = throughput(
            &client,
            &plain.base,
            plain_event,
            &format!("p{round}x"),
            secs,
        )
        .await;
        plain_rates.push(rate);
        plain_p99.push(p99);
        let (rate, p99) = throughput(
            &client,
            &hooked.base,
            hooked_event,
            &format!("h{round}x"),
            secs,
        )
        .await;
        hooked_rates.push(rate);
        hooked_p99.push(p99);
        hooked_bookings += rate * secs as f64;
    }
    // Every change made: the create and each booking.
    let page = get_json(
        &client,
        &format!("{}/api/changes?after=0&limit=1", hooked.base),
    )
    .await;
    assert_eq!(page["items"][0]["index"], 1);
    let newest = {
        let metrics = client
            .get(format!("{}/metrics", hooked.base))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        // Every booking (all confirmed: 10,000,000 tickets) is one change.
        let bookings: f64 = metrics
            .lines()
            .filter(|l| l.starts_with("boxoffice_bookings_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        bookings as u64 + 1
    };
    let load_ended = Instant::now();
    let deadline = load_ended + Duration::from_secs(120);
    while seen.last.load(Ordering::Relaxed) < newest && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let caught_up = load_ended.elapsed().as_secs_f64();
    while streamed.load(Ordering::Relaxed) < newest && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let streamed_up = load_ended.elapsed().as_secs_f64();
    reader.abort();
    let (plain_rate, hooked_rate) = (median(plain_rates.clone()), median(hooked_rates.clone()));
    let report = json!({
        "load_secs": secs,
        "rounds": rounds,
        "bookings_per_sec_none": plain_rate,
        "bookings_per_sec_webhook_and_feed_reader": hooked_rate,
        "ratio": hooked_rate / plain_rate,
        "all_rates_none": plain_rates,
        "all_rates_hooked": hooked_rates,
        "p99_ms_none": median(plain_p99),
        "p99_ms_hooked": median(hooked_p99),
        "changes_made_on_hooked": newest,
        "approx_bookings_on_hooked": hooked_bookings as u64,
        "webhook_items_received": seen.items.load(Ordering::Relaxed),
        "webhook_last_index": seen.last.load(Ordering::Relaxed),
        "webhook_deliveries_out_of_order": seen.out_of_order.load(Ordering::Relaxed),
        "webhook_caught_up_secs_after_load": caught_up,
        "feed_reader_items": streamed.load(Ordering::Relaxed),
        "feed_reader_caught_up_secs_after_load": streamed_up,
    });
    println!("{report}");
}
