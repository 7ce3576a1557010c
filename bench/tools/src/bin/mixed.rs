//! The mixed-load generator: 80% reads, 20% books and cancels over many
//! events, with no request that should fail. `oha` cannot do this: a random
//! cancel would hit users with no active booking and get a (correct) 404.
//! Here each connection owns its users and books or cancels each in turn.
//!
//! usage: mixed BASE_URL EVENTS CONNECTIONS SECONDS
//! Prints oha-shaped JSON: summary.requestsPerSec, latencyPercentiles (s),
//! statusCodeDistribution, errorDistribution.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use boxoffice_bench::Tally;
use boxoffice_testkit::XorShift;

/// Users each connection owns.
const USERS_PER_CONNECTION: u64 = 50;
/// Share of requests that change something.
const WRITE_SHARE: f64 = 0.2;

async fn connection(
    client: reqwest::Client,
    base: String,
    events: u64,
    id: u64,
    until: Instant,
) -> Tally {
    let mut rng =
        XorShift::new(0x9e37_79b9_7f4a_7c15 ^ (id + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let mut booked: HashSet<(u64, u64)> = HashSet::new();
    let mut booked_list: Vec<(u64, u64)> = Vec::new();
    let mut tally = Tally::default();
    while Instant::now() < until {
        let event = 1 + rng.next_u64() % events;
        let user = rng.next_u64() % USERS_PER_CONNECTION;
        let request = if rng.unit() < WRITE_SHARE {
            let url = format!("{base}/api/events/{event}/bookings/m{id}x{user}");
            if booked.remove(&(event, user)) {
                booked_list.retain(|&b| b != (event, user));
                client.delete(url)
            } else {
                booked.insert((event, user));
                booked_list.push((event, user));
                client.put(url)
            }
        } else if rng.next_u64().is_multiple_of(2) || booked_list.is_empty() {
            client.get(format!("{base}/api/status/{event}"))
        } else {
            let (e, u) = booked_list[(rng.next_u64() % booked_list.len() as u64) as usize];
            client.get(format!("{base}/api/events/{e}/bookings/m{id}x{u}"))
        };
        let started = Instant::now();
        match request.send().await {
            Ok(res) => {
                let code = res.status().as_u16();
                let _ = res.bytes().await;
                tally.latencies.push(started.elapsed());
                *tally.codes.entry(code).or_default() += 1;
            }
            Err(e) => *tally.errors.entry(e.to_string()).or_default() += 1,
        }
    }
    tally
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: mixed BASE_URL EVENTS CONNECTIONS SECONDS");
        std::process::exit(2);
    }
    let parse = |i: usize| {
        args[i]
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("argument {i} must be a number"))
    };
    let (base, events, connections, seconds) = (args[1].clone(), parse(2), parse(3), parse(4));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections as usize)
        .build()
        .expect("client");
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..connections)
        .map(|c| tokio::spawn(connection(client.clone(), base.clone(), events, c, until)))
        .collect();
    let mut all = Tally::default();
    for task in tasks {
        all.merge(task.await.expect("connection task"));
    }
    println!("{}", all.oha_json(started.elapsed()));
}
