//! The live-updates bench: many booking streams on one event with a long
//! queue, then a burst of cancels at the head that moves every position.
//!
//! usage: live BASE_URL SERVER_PID
//! env:   LIVE_STREAMS (10000), LIVE_QUEUE (100000), LIVE_CANCELS (10000),
//!        LIVE_LOAD_SECS (5): booking throughput is measured for this long
//!        with no stream open and again with every stream open.
//! Prints one JSON object: how long until every stream showed its final
//! state, the server's CPU seconds over the burst, and the throughputs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use boxoffice_bench::{create_event, env, throughput};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::Notify;

/// utime + stime of `pid`, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat: 12 and 13 after ')'.
    (ticks(11) + ticks(12)) / 100.0
}

/// Sends `requests` with at most `parallel` in flight; panics on any non-2xx.
async fn run_all(client: &reqwest::Client, requests: Vec<reqwest::Request>, parallel: usize) {
    futures_util::stream::iter(requests)
        .for_each_concurrent(parallel, |req| async {
            let url = req.url().to_string();
            let res = client.execute(req).await.expect("sent");
            assert!(res.status().is_success(), "{url}: {}", res.status());
        })
        .await;
}

/// What a booking first seen at `place` shows once `cancels` tickets at the
/// head are freed: `None` for confirmed, else its new place. (The set-up
/// books concurrently, so a user's place is read, not derived from its name.)
fn final_place(place: u64, cancels: usize) -> Option<u64> {
    let cancels = cancels as u64;
    (place > cancels).then(|| place - cancels)
}

fn shows(data: &Value, want: Option<u64>) -> bool {
    let booking = &data["booking"];
    match want {
        None => booking["status"] == "confirmed",
        Some(place) => booking["waiting_position"] == place,
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let base = args.next().expect("usage: live BASE_URL SERVER_PID");
    let pid: u32 = args
        .next()
        .and_then(|p| p.parse().ok())
        .expect("SERVER_PID");
    let streams = env("LIVE_STREAMS", 10_000);
    let queue = env("LIVE_QUEUE", 100_000);
    let cancels = env("LIVE_CANCELS", 10_000);
    let load_secs = env("LIVE_LOAD_SECS", 5) as u64;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(usize::MAX)
        .build()
        .expect("client");

    // An event whose `cancels` tickets are held by `h*`, with `queue` users
    // `w*` waiting behind them.
    let event = create_event(
        &client,
        &base,
        json!({"totalTickets": cancels, "maxPerUser": 1}),
    )
    .await;
    let setup = Instant::now();
    let book = |user: String| {
        client
            .put(format!("{base}/api/events/{event}/bookings/{user}"))
            .build()
            .expect("request")
    };
    run_all(
        &client,
        (0..cancels).map(|i| book(format!("h{i}"))).collect(),
        128,
    )
    .await;
    run_all(
        &client,
        (0..queue).map(|i| book(format!("w{i}"))).collect(),
        128,
    )
    .await;
    eprintln!(
        "set up {cancels} holders and {queue} waiting in {:.1} s",
        setup.elapsed().as_secs_f64()
    );

    let (before, _) = throughput(&client, &base, event, "b", load_secs).await;

    // One stream per watched user, spread over the whole queue.
    let watched: Vec<usize> = (0..streams).map(|s| s * queue / streams).collect();
    let opened = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let all_final = Arc::new(Notify::new());
    let messages = Arc::new(AtomicUsize::new(0));
    let last_seen = Arc::new(std::sync::Mutex::new(vec![String::new(); streams]));
    let mut tasks = Vec::new();
    for (slot, &index) in watched.iter().enumerate() {
        let last_seen = Arc::clone(&last_seen);
        let client = client.clone();
        let url = format!("{base}/api/events/{event}/bookings/w{index}/live");
        let (opened, finished, all_final, messages) = (
            Arc::clone(&opened),
            Arc::clone(&finished),
            Arc::clone(&all_final),
            Arc::clone(&messages),
        );
        tasks.push(tokio::spawn(async move {
            let res = client.get(url).send().await.expect("stream opened");
            assert!(res.status().is_success(), "stream: {}", res.status());
            let mut body = res.bytes_stream();
            let mut buffer = String::new();
            let mut want = None;
            let mut first = true;
            while let Some(chunk) = body.next().await {
                let Ok(chunk) = chunk else { return };
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let frame: String = buffer.drain(..end + 2).collect();
                    let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) else {
                        continue;
                    };
                    if let Ok(mut seen) = last_seen.lock() {
                        seen[slot] = data.to_string();
                    }
                    let data: Value = serde_json::from_str(data).expect("JSON data");
                    messages.fetch_add(1, Ordering::Relaxed);
                    if first {
                        first = false;
                        let place = data["booking"]["waiting_position"]
                            .as_u64()
                            .expect("waiting");
                        want = final_place(place, cancels);
                        opened.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    if shows(&data, want) {
                        if finished.fetch_add(1, Ordering::AcqRel) + 1 == streams {
                            all_final.notify_one();
                        }
                        return;
                    }
                }
            }
        }));
    }
    let wait_open = Instant::now();
    while opened.load(Ordering::Relaxed) < streams {
        assert!(
            wait_open.elapsed() < Duration::from_secs(120),
            "only {} of {streams} streams opened",
            opened.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let opened_in = wait_open.elapsed();

    let (during, _) = throughput(&client, &base, event, "d", load_secs).await;

    // The burst: every holder cancels, so each watched user's place drops
    // by `cancels` (or they get tickets).
    let cpu_before = cpu_seconds(pid);
    let messages_before = messages.load(Ordering::Relaxed);
    let burst = Instant::now();
    let cancel = |i: usize| {
        client
            .delete(format!("{base}/api/events/{event}/bookings/h{i}"))
            .build()
            .expect("request")
    };
    let final_wait = all_final.notified();
    run_all(&client, (0..cancels).map(cancel).collect(), 64).await;
    let burst_took = burst.elapsed();
    let last_answered = Instant::now();
    if finished.load(Ordering::Acquire) < streams {
        let waited = tokio::time::timeout(Duration::from_secs(60), final_wait).await;
        if waited.is_err() {
            if let Ok(seen) = last_seen.lock() {
                for (slot, data) in seen.iter().enumerate().take(20) {
                    eprintln!("w{}: {data}", watched[slot]);
                }
            }
        }
        assert!(
            waited.is_ok(),
            "only {} of {streams} streams showed their final state within 60 s",
            finished.load(Ordering::Acquire)
        );
    }
    let after_last = last_answered.elapsed();
    let from_burst = burst.elapsed();
    let cpu = cpu_seconds(pid) - cpu_before;
    let burst_messages = messages.load(Ordering::Relaxed) - messages_before;
    for t in tasks {
        t.abort();
    }
    let report = json!({
        "streams": streams,
        "queue": queue,
        "cancels": cancels,
        "streams_opened_secs": opened_in.as_secs_f64(),
        "burst_secs": burst_took.as_secs_f64(),
        "all_final_after_last_cancel_secs": after_last.as_secs_f64(),
        "all_final_after_burst_start_secs": from_burst.as_secs_f64(),
        "server_cpu_secs_burst_to_final": cpu,
        "messages_during_burst": burst_messages,
        "bookings_per_sec_no_streams": before,
        "bookings_per_sec_streams_open": during,
        "throughput_ratio": during / before,
    });
    println!("{report}");
}
