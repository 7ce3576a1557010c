//! What the bench tools share: their knobs from the environment and the
//! booking load they measure throughput with.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The environment variable `name` as a number, else `default`.
pub fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Creates an event with `body` (a create request) and returns its id.
pub async fn create_event(client: &reqwest::Client, base: &str, body: serde_json::Value) -> u64 {
    let created: serde_json::Value = client
        .post(format!("{base}/api/events"))
        .json(&body)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    created["event"]["id"].as_u64().expect("event id")
}

/// Bookings per second on `event` for `secs`, 64 at a time, for fresh users, and the
/// p99 latency in milliseconds.
pub async fn throughput(
    client: &reqwest::Client,
    base: &str,
    event: u64,
    prefix: &str,
    secs: u64,
) -> (f64, f64) {
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let until = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let workers: Vec<_> = (0..64)
        .map(|w| {
            let client = client.clone();
            let base = base.to_string();
            let prefix = prefix.to_string();
            let latencies = Arc::clone(&latencies);
            tokio::spawn(async move {
                let mut mine = Vec::new();
                let mut n = 0;
                while Instant::now() < until {
                    let url = format!("{base}/api/events/{event}/bookings/{prefix}{w}x{n}");
                    let sent = Instant::now();
                    let res = client.put(url).send().await.expect("sent");
                    assert!(res.status().is_success(), "{}", res.status());
                    mine.push(sent.elapsed().as_secs_f64() * 1e3);
                    n += 1;
                }
                if let Ok(mut all) = latencies.lock() {
                    all.extend(mine);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("worker");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut all = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    all.sort_by(|a, b| a.total_cmp(b));
    let p99 = all.get(all.len() * 99 / 100).copied().unwrap_or(0.0);
    (all.len() as f64 / elapsed, p99)
}
