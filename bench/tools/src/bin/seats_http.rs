//! Reserved seating over HTTP (issue 37), against a running server:
//! 1. best-available bookings of 1-6 seats on a 100,000-seat hall against
//!    the same bookings on an unseated event of 100,000 tickets, in
//!    alternating rounds (each round a fresh pair of events, each load
//!    stopped at 85% of the tickets so that both measure selling, not
//!    queueing);
//! 2. `GET .../seats` of that hall: body sizes, and the time of a read
//!    between two changes (the kept body) and of the first read after a
//!    change (the map read from the event's actor and rendered);
//! 3. `WATCHERS` streams of `GET .../seats/live` on a hall while it sells,
//!    against halls nobody watches (before and after): throughput, p99,
//!    and how long after the load every watcher's map equals `GET .../seats`.
//!
//! usage: seats_http BASE_URL            (all three)
//!        seats_http fill BASE_URL PCT   (a hall sold to PCT%, by best-
//!                                        available bookings of 1-4; prints
//!                                        its id, for the restart figure)
//! env:   ROUNDS (5), SEATS_LOAD_SECS (5): the most a load runs;
//!        WATCHERS (10000); GETS (500).
//! Prints one JSON object.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use boxoffice_bench::{create_event, env, get_json};
use boxoffice_testkit::percentile;
use futures_util::StreamExt;
use serde_json::{json, Value};

const SECTIONS: usize = 20;
const ROWS: usize = 50;
const SEATS_PER_ROW: u64 = 100;
const HALL_SEATS: u64 = SECTIONS as u64 * ROWS as u64 * SEATS_PER_ROW;
/// Loads stop once this many tickets are asked for.
const SOLD_AT: u64 = HALL_SEATS * 85 / 100;

/// The hall: 20 sections × 50 rows × 100 seats, a gap every 20
/// seats, every fourth section premium.
fn hall() -> Value {
    let sections: Vec<Value> = (0..SECTIONS)
        .map(|s| {
            let rows: Vec<Value> = (0..ROWS)
                .map(|r| json!({"name": format!("R{r}"), "seats": SEATS_PER_ROW, "gapsAfter": [20, 40, 60, 80]}))
                .collect();
            let category = if s % 4 == 3 { "premium" } else { "standard" };
            json!({"name": format!("S{s}"), "category": category, "rows": rows})
        })
        .collect();
    json!({"name": "Hall", "seating": {"sections": sections}})
}

/// What one load did: bookings a second and the p99 in milliseconds.
struct Load {
    per_sec: f64,
    p99_ms: f64,
}

/// Bookings of `quantity` (cycling through `sizes`) for fresh users on
/// `event`, 64 at a time, until `secs` pass or `SOLD_AT` tickets are asked
/// for. Every answer must be 200 (confirmed or waiting).
async fn book(
    client: &reqwest::Client,
    base: &str,
    event: u64,
    user: &str,
    sizes: u64,
    secs: u64,
) -> Load {
    let asked = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let workers: Vec<_> = (0..64)
        .map(|w| {
            let (client, asked) = (client.clone(), Arc::clone(&asked));
            let url = format!("{base}/api/events/{event}/bookings/{user}w{w}x");
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                for n in 0u64.. {
                    let quantity = 1 + (w + n) % sizes;
                    if Instant::now() >= until
                        || asked.fetch_add(quantity, Ordering::Relaxed) >= SOLD_AT
                    {
                        break;
                    }
                    let sent = Instant::now();
                    let res = client
                        .put(format!("{url}{n}"))
                        .json(&json!({"quantity": quantity}))
                        .send()
                        .await
                        .expect("sent");
                    assert_eq!(
                        res.status(),
                        200,
                        "{}",
                        res.text().await.unwrap_or_default()
                    );
                    latencies.push(sent.elapsed().as_secs_f64() * 1e3);
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.expect("worker"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.total_cmp(b));
    Load {
        per_sec: all.len() as f64 / elapsed,
        p99_ms: percentile(&all, 0.99),
    }
}

/// CPU seconds (user and system) process `pid` ("self" for this one) has
/// used, from /proc (clock ticks of 1/100 s, Linux's USER_HZ); 0 when
/// unreadable.
fn cpu_secs(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command's closing parenthesis: utime is the 12th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<f64> = after
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    match (fields.get(11), fields.get(12)) {
        (Some(user), Some(system)) => (user + system) / 100.0,
        _ => 0.0,
    }
}

/// The CPU seconds of this client and of the server (`SERVER_PID`, when
/// the script gives it) that `load` took.
async fn with_cpu<T>(load: impl std::future::Future<Output = T>) -> (T, f64, f64) {
    let server = std::env::var("SERVER_PID").unwrap_or_default();
    let (client0, server0) = (cpu_secs("self"), cpu_secs(&server));
    let out = load.await;
    (out, cpu_secs("self") - client0, cpu_secs(&server) - server0)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

/// Part 1: seated against unseated, alternating; the last hall's id.
async fn booking_ratio(
    client: &reqwest::Client,
    base: &str,
    rounds: usize,
    secs: u64,
) -> (Value, u64) {
    let (mut seated, mut unseated, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let mut last_hall = 0;
    for round in 0..rounds {
        let mut pair = [0.0; 2];
        // Each round swaps which goes first.
        for turn in 0..2 {
            let is_seated = (round + turn) % 2 == 0;
            let load = if is_seated {
                last_hall = create_event(client, base, hall()).await;
                book(client, base, last_hall, &format!("s{round}"), 6, secs).await
            } else {
                let event = create_event(
                    client,
                    base,
                    json!({"name": "Flat", "totalTickets": HALL_SEATS}),
                )
                .await;
                book(client, base, event, &format!("u{round}"), 6, secs).await
            };
            eprintln!(
                "round {round}: {} {:.0}/s p99 {:.2} ms",
                if is_seated { "seated" } else { "unseated" },
                load.per_sec,
                load.p99_ms
            );
            pair[usize::from(is_seated)] = load.per_sec;
            let list = if is_seated {
                &mut seated
            } else {
                &mut unseated
            };
            list.push((load.per_sec, load.p99_ms));
        }
        ratios.push(pair[1] / pair[0]);
    }
    let report = json!({
        "seated_per_sec": seated.iter().map(|l| l.0).collect::<Vec<_>>(),
        "seated_p99_ms": seated.iter().map(|l| l.1).collect::<Vec<_>>(),
        "unseated_per_sec": unseated.iter().map(|l| l.0).collect::<Vec<_>>(),
        "unseated_p99_ms": unseated.iter().map(|l| l.1).collect::<Vec<_>>(),
        "ratios": ratios.clone(),
        "median_ratio": median(ratios),
    });
    (report, last_hall)
}

/// Milliseconds of one GET of `url`, reading the whole body; its length.
async fn timed_get(client: &reqwest::Client, url: &str, gzip: bool) -> (f64, usize) {
    let mut req = client.get(url);
    if gzip {
        req = req.header("accept-encoding", "gzip");
    }
    let sent = Instant::now();
    let res = req.send().await.expect("sent");
    assert_eq!(res.status(), 200);
    let body = res.bytes().await.expect("body");
    (sent.elapsed().as_secs_f64() * 1e3, body.len())
}

/// Part 2: reads of the map, one at a time (so each is the server's time
/// plus loopback, an upper bound on the server's own).
async fn map_reads(client: &reqwest::Client, base: &str, hall: u64, gets: usize) -> Value {
    let url = format!("{base}/api/events/{hall}/seats");
    let (_, plain_bytes) = timed_get(client, &url, false).await;
    let (_, gzip_bytes) = timed_get(client, &url, true).await;
    let mut kept = Vec::new();
    let mut kept_gzip = Vec::new();
    for _ in 0..gets {
        kept.push(timed_get(client, &url, false).await.0);
        kept_gzip.push(timed_get(client, &url, true).await.0);
    }
    let mut fresh = Vec::new();
    for n in 0..gets {
        let res = client
            .put(format!("{base}/api/events/{hall}/bookings/reader{n}"))
            .json(&json!({"quantity": 1}))
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), 200);
        fresh.push(timed_get(client, &url, false).await.0);
    }
    let summary = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        json!({"p50_ms": percentile(&v, 0.5), "p99_ms": percentile(&v, 0.99)})
    };
    json!({
        "body_bytes": plain_bytes,
        "gzip_bytes": gzip_bytes,
        "between_changes": summary(kept),
        "between_changes_gzip": summary(kept_gzip),
        "first_after_a_change": summary(fresh),
    })
}

/// A watcher's map: each seat's letter and the stream id it is as of.
type Seen = Arc<Mutex<(u64, Letters)>>;

/// A whole map's letters, shared by the watchers that received it.
type Letters = Arc<Vec<u8>>;

/// Seats that changed (by index in the map) and their new letters.
type Changes = Arc<Vec<(usize, u8)>>;

/// Parsed messages, shared by watchers that received the same data (the
/// server sends them the same bytes): whole maps by their id and length
/// (one serialisation per frame on the server), seat changes by a hash of
/// their data. Hashing or copying every 167 KB map for each of 10,000
/// watchers would make this client, on the same two cores, the load.
#[derive(Default)]
struct Parsed {
    maps: Mutex<HashMap<(u64, usize), Letters>>,
    changes: Mutex<HashMap<(u64, u64), Changes>>,
    /// Seat id to its index in the map, from the first whole map.
    ids: std::sync::OnceLock<HashMap<String, usize>>,
}

impl Parsed {
    fn map(&self, id: u64, data: &[u8]) -> Letters {
        let key = (id, data.len());
        if let Some(map) = self.maps.lock().expect("lock").get(&key) {
            return Arc::clone(map);
        }
        let value: Value = serde_json::from_slice(data).expect("a map");
        let mut letters = Vec::new();
        let mut ids = HashMap::new();
        for section in value["sections"].as_array().expect("sections") {
            let section_name = section["name"].as_str().expect("name");
            for row in section["rows"].as_array().expect("rows") {
                let row_name = row["name"].as_str().expect("name");
                let states = row["states"].as_str().expect("states");
                for (n, letter) in states.bytes().enumerate() {
                    ids.insert(
                        format!("{section_name}-{row_name}-{}", n + 1),
                        letters.len(),
                    );
                    letters.push(letter);
                }
            }
        }
        let _ = self.ids.set(ids);
        let letters = Arc::new(letters);
        let mut maps = self.maps.lock().expect("lock");
        if maps.len() > 64 {
            maps.clear();
        }
        maps.insert(key, Arc::clone(&letters));
        letters
    }

    fn changes(&self, id: u64, data: &[u8]) -> Changes {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        data.hash(&mut hasher);
        let key = (id, hasher.finish());
        if let Some(changes) = self.changes.lock().expect("lock").get(&key) {
            return Arc::clone(changes);
        }
        let value: Value = serde_json::from_slice(data).expect("changes");
        let ids = self.ids.get().expect("a map came first");
        let changes: Vec<(usize, u8)> = value["seats"]
            .as_object()
            .expect("seats")
            .iter()
            .map(|(id, letter)| {
                (
                    ids[id.as_str()],
                    letter.as_str().expect("letter").as_bytes()[0],
                )
            })
            .collect();
        let changes = Arc::new(changes);
        let mut kept = self.changes.lock().expect("lock");
        if kept.len() > 4096 {
            kept.clear();
        }
        kept.insert(key, Arc::clone(&changes));
        changes
    }
}

/// One watcher: applies every message of the stream to its map. Works on
/// the received bytes in place (no copy of a message, no UTF-8 pass over
/// a map already parsed): see [`Parsed`].
async fn watch(url: String, seen: Seen, parsed: Arc<Parsed>, opened: Arc<AtomicUsize>) {
    let client = reqwest::Client::new();
    let res = client.get(url).send().await.expect("stream opened");
    assert!(res.status().is_success(), "stream: {}", res.status());
    let mut body = res.bytes_stream();
    let mut buffer = Vec::new();
    // How far `buffer` is known to hold no message end: a whole map comes
    // in many chunks, and scanning it from the start for each would be
    // quadratic in its size.
    let mut scanned = 0;
    let mut first = true;
    while let Some(Ok(chunk)) = body.next().await {
        buffer.extend_from_slice(&chunk);
        while let Some(end) = message_end(&buffer, scanned) {
            if apply(&buffer[..end], &seen, &parsed) && std::mem::take(&mut first) {
                opened.fetch_add(1, Ordering::Relaxed);
            }
            buffer.drain(..end + 2);
            scanned = 0;
        }
        scanned = buffer.len();
    }
}

/// Where the first message of `buffer` ends (its blank line), searching
/// from `from` (everything before it was searched).
fn message_end(buffer: &[u8], from: usize) -> Option<usize> {
    let start = from.saturating_sub(1);
    buffer[start..]
        .iter()
        .enumerate()
        .find(|&(i, &b)| b == b'\n' && buffer.get(start + i + 1) == Some(&b'\n'))
        .map(|(i, _)| start + i)
}

/// Applies one message to a watcher's map; whether it was a map message.
fn apply(message: &[u8], seen: &Seen, parsed: &Parsed) -> bool {
    let (mut kind, mut data, mut id): (&[u8], &[u8], Option<u64>) = (b"", b"", None);
    for line in message.split(|&b| b == b'\n') {
        if let Some(k) = line.strip_prefix(b"event: ") {
            kind = k;
        } else if let Some(d) = line.strip_prefix(b"data: ") {
            data = d;
        } else if let Some(i) = line.strip_prefix(b"id: ") {
            id = std::str::from_utf8(i).ok().and_then(|i| i.parse().ok());
        }
    }
    let Some(id) = id else { return false };
    match kind {
        b"seats" => {
            let map = parsed.map(id, data);
            *seen.lock().expect("lock") = (id, map);
        }
        b"seat_changes" => {
            let changes = parsed.changes(id, data);
            let mut seen = seen.lock().expect("lock");
            // A copy of the shared map only when it changes.
            let letters = Arc::make_mut(&mut seen.1);
            for &(seat, letter) in changes.iter() {
                letters[seat] = letter;
            }
            seen.0 = id;
        }
        _ => return false,
    }
    true
}

/// The letters of `GET .../seats`, and its index.
async fn map_letters(client: &reqwest::Client, base: &str, hall: u64) -> (u64, Vec<u8>) {
    let map = get_json(client, &format!("{base}/api/events/{hall}/seats")).await;
    let mut letters = Vec::new();
    for section in map["sections"].as_array().expect("sections") {
        for row in section["rows"].as_array().expect("rows") {
            letters.extend_from_slice(row["states"].as_str().expect("states").as_bytes());
        }
    }
    (map["index"].as_u64().expect("index"), letters)
}

/// Part 3: bookings on a watched hall against unwatched ones.
async fn watched(client: &reqwest::Client, base: &str, watchers: usize, secs: u64) -> Value {
    let before_hall = create_event(client, base, hall()).await;
    let (before, client_before, server_before) =
        with_cpu(book(client, base, before_hall, "before", 6, secs)).await;

    let hall_id = create_event(client, base, hall()).await;
    let parsed = Arc::new(Parsed::default());
    let opened = Arc::new(AtomicUsize::new(0));
    let mut seen = Vec::new();
    let mut tasks = Vec::new();
    let url = format!("{base}/api/events/{hall_id}/seats/live");
    for _ in 0..watchers {
        let mine: Seen = Arc::default();
        seen.push(Arc::clone(&mine));
        tasks.push(tokio::spawn(watch(
            url.clone(),
            mine,
            Arc::clone(&parsed),
            Arc::clone(&opened),
        )));
    }
    let wait = Instant::now();
    while opened.load(Ordering::Relaxed) < watchers {
        assert!(
            wait.elapsed() < Duration::from_secs(300),
            "only {} of {watchers} watchers have their map",
            opened.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let opening_secs = wait.elapsed().as_secs_f64();
    let (during, client_during, server_during) =
        with_cpu(book(client, base, hall_id, "watched", 6, secs)).await;
    let stopped = Instant::now();
    let (index, truth) = map_letters(client, base, hall_id).await;
    // How long until every watcher's map is the map (at most 10 s).
    let mut behind = watchers;
    let mut converged_ms = None;
    while stopped.elapsed() < Duration::from_secs(10) {
        behind = seen
            .iter()
            .filter(|s| *s.lock().expect("lock").1 != truth)
            .count();
        if behind == 0 {
            converged_ms = Some(stopped.elapsed().as_secs_f64() * 1e3);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for task in tasks {
        task.abort();
    }
    let after_hall = create_event(client, base, hall()).await;
    let after = book(client, base, after_hall, "after", 6, secs).await;
    let unwatched = (before.per_sec + after.per_sec) / 2.0;
    json!({
        "watchers": watchers,
        "opening_secs": opening_secs,
        "unwatched_per_sec": [before.per_sec, after.per_sec],
        "unwatched_p99_ms": [before.p99_ms, after.p99_ms],
        "watched_per_sec": during.per_sec,
        "watched_p99_ms": during.p99_ms,
        "ratio": during.per_sec / unwatched,
        "cpu_secs_unwatched_before": {"client": client_before, "server": server_before},
        "cpu_secs_watched": {"client": client_during, "server": server_during},
        "map_index_after_load": index,
        "ms_until_every_map_equal_after_load": converged_ms,
        "watchers_still_different_at_10s": behind,
    })
}

/// A hall sold to `pct`% by best-available bookings of 1-4 seats.
async fn fill(client: &reqwest::Client, base: &str, pct: u64) -> u64 {
    let hall_id = create_event(client, base, hall()).await;
    let target = HALL_SEATS * pct / 100;
    let mut n = 0u64;
    loop {
        let status = get_json(client, &format!("{base}/api/events/{hall_id}")).await;
        let available = status["event"]["available_tickets"]
            .as_u64()
            .expect("available");
        // Bounded: a booking that waits takes no seat, so at most one
        // booking a seat is tried.
        if HALL_SEATS - available >= target || n > HALL_SEATS {
            break;
        }
        // Batches of 64 in flight (at most 256 seats past the target).
        let batch: Vec<_> = (0..64)
            .map(|_| {
                n += 1;
                let quantity = 1 + n % 4;
                client
                    .put(format!("{base}/api/events/{hall_id}/bookings/f{n}"))
                    .json(&json!({"quantity": quantity}))
                    .send()
            })
            .collect();
        for res in futures_util::future::join_all(batch).await {
            assert_eq!(res.expect("sent").status(), 200);
        }
    }
    hall_id
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(usize::MAX)
        .build()
        .expect("client");
    if args.get(1).map(String::as_str) == Some("fill") {
        let base = args.get(2).expect("usage: seats_http fill BASE_URL PCT");
        let pct = args.get(3).and_then(|p| p.parse().ok()).expect("PCT");
        println!("{}", fill(&client, base, pct).await);
        return;
    }
    let base = args.get(1).expect("usage: seats_http BASE_URL");
    let rounds = env("ROUNDS", 5);
    let secs = env("SEATS_LOAD_SECS", 5) as u64;
    let (ratio, hall_id) = booking_ratio(&client, base, rounds, secs).await;
    let reads = map_reads(&client, base, hall_id, env("GETS", 500)).await;
    let watch = watched(&client, base, env("WATCHERS", 10_000), secs).await;
    println!(
        "{}",
        json!({"bookings": ratio, "map_reads": reads, "watchers": watch})
    );
}
