//! What the bench tools share: their knobs from the environment and the
//! booking load they measure throughput with, and the tally of a load run
//! reported in the shape of oha's JSON (`mixed` and `load`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use boxoffice_testkit::percentile;
use serde_json::json;

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

/// `GET url`'s JSON body.
pub async fn get_json(client: &reqwest::Client, url: &str) -> serde_json::Value {
    client
        .get(url)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json")
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
    puts_per_sec(
        client,
        base,
        &format!("/api/events/{event}/bookings/{prefix}"),
        secs,
    )
    .await
}

/// `PUT`s per second for `secs`, 64 at a time, each to `path` followed by
/// a fresh user id, and the p99 latency in milliseconds. Every answer must
/// be 2xx.
pub async fn puts_per_sec(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    secs: u64,
) -> (f64, f64) {
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let until = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let workers: Vec<_> = (0..64)
        .map(|w| {
            let client = client.clone();
            let base = base.to_string();
            let path = path.to_string();
            let latencies = Arc::clone(&latencies);
            tokio::spawn(async move {
                let mut mine = Vec::new();
                let mut n = 0;
                while Instant::now() < until {
                    let url = format!("{base}{path}{w}x{n}");
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

/// A `boxoffice` process in its own data directory.
pub struct Service {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    dir: std::path::PathBuf,
}

impl Service {
    /// Starts `binary` with the bench's settings plus `extra` environment
    /// variables, in a fresh directory named after `name`; waits until it
    /// listens.
    pub fn start(binary: &str, name: &str, extra: &[(&str, String)]) -> Self {
        let dir =
            std::env::temp_dir().join(format!("boxoffice-bench-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("data dir");
        let mut cmd = Command::new(binary);
        cmd.env("RUST_LOG", "info")
            .env("BOXOFFICE__SERVER__PORT", "0")
            .env("BOXOFFICE__SNAPSHOT__DIR", &dir)
            .env("BOXOFFICE__RATE_LIMIT__ENABLED", "false")
            .env("BOXOFFICE__LOG__ACCESS_LOG", "false")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in extra {
            cmd.env(key, value);
        }
        let mut child = cmd.spawn().expect("boxoffice starts");
        let stderr = child.stderr.take().expect("stderr");
        let (found, address) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(a) = boxoffice_testkit::listening_address(&line) {
                    let _ = found.send(a.to_string());
                }
            }
        });
        let Ok(address) = address.recv_timeout(Duration::from_secs(30)) else {
            // Not left running behind a failed bench.
            let _ = child.kill();
            let _ = child.wait();
            panic!("boxoffice did not start listening within 30 s");
        };
        Self {
            child,
            base: format!("http://{address}"),
            dir,
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The median of `v` (0 when empty).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// The answers of a load run (or of one of its connections).
#[derive(Default)]
pub struct Tally {
    pub latencies: Vec<Duration>,
    pub codes: BTreeMap<u16, u64>,
    pub errors: BTreeMap<String, u64>,
}

impl Tally {
    /// Adds another connection's answers to these.
    pub fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        for (k, v) in other.codes {
            *self.codes.entry(k).or_default() += v;
        }
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
    }

    /// The fields of oha's JSON that the bench scripts read:
    /// summary.requestsPerSec, latencyPercentiles (seconds),
    /// statusCodeDistribution and errorDistribution.
    pub fn oha_json(mut self, elapsed: Duration) -> serde_json::Value {
        self.latencies.sort_unstable();
        let pct = |q: f64| percentile(&self.latencies, q).as_secs_f64();
        let secs = elapsed.as_secs_f64();
        json!({
            "summary": {"requestsPerSec": self.latencies.len() as f64 / secs, "total": secs},
            "latencyPercentiles": {"p50": pct(0.50), "p99": pct(0.99), "p99.9": pct(0.999)},
            "statusCodeDistribution": self.codes.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>(),
            "errorDistribution": self.errors,
        })
    }
}
