//! The crash harness, in the spirit of sled's `test_crash_recovery`: the real
//! binary takes concurrent books and cancels, is SIGKILLed at a random moment,
//! and must come back with every acknowledged change, nothing sold twice and
//! every queue numbered 1..n.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::future::join_all;
use nix::sys::signal::Signal;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::process::{command, Server};

/// Kill-and-restart rounds per run.
const ROUNDS: usize = 24;
/// Client tasks; each owns its users, so each user has one request in flight at most.
const CLIENTS: usize = 8;
/// Users per client.
const USERS_PER_CLIENT: usize = 6;
/// Events and their tickets: small, so queues form and promotions happen.
const EVENTS: [(u64, u64); 3] = [(1, 3), (2, 5), (3, 8)];
/// The whole harness must finish within this.
const HARNESS_DEADLINE: Duration = Duration::from_secs(240);

/// A small deterministic generator, so a failing seed can be replayed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the clients know of one (event, user): the last acknowledged fact,
/// and the request whose answer never came.
#[derive(Debug, Clone, Default)]
struct Known {
    /// The booking id and status last acknowledged (status as of that answer).
    acked: Option<(u64, String)>,
    /// A request sent but never answered: "book" or "cancel".
    unanswered: Option<&'static str>,
}

type Ledger = BTreeMap<(u64, String), Known>;

fn user_name(client: usize, i: usize) -> String {
    format!("c{client}u{i}")
}

/// One client: sequential random books and cancels until told to stop.
async fn client_loop(
    base: String,
    client: usize,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> (Ledger, Vec<u64>) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let mut rng = XorShift(seed | 1);
    let mut ledger = Ledger::new();
    let mut promoted = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let (event, _) = EVENTS[rng.below(EVENTS.len() as u64) as usize];
        let user = user_name(client, rng.below(USERS_PER_CLIENT as u64) as usize);
        let book = rng.below(10) < 6;
        let (method, op) = if book {
            (Method::PUT, "book")
        } else {
            (Method::DELETE, "cancel")
        };
        let url = format!("{base}/api/events/{event}/bookings/{user}");
        let entry = ledger.entry((event, user)).or_default();
        entry.unanswered = Some(op);
        let Ok(res) = http.request(method, url).send().await else {
            break;
        };
        let status = res.status();
        let Ok(body) = res.json::<Value>().await else {
            break;
        };
        entry.unanswered = None;
        match status {
            StatusCode::OK if book => {
                let b = &body["booking"];
                entry.acked = Some((
                    b["id"].as_u64().expect("id"),
                    b["status"].as_str().expect("status").into(),
                ));
            }
            StatusCode::OK => {
                let b = &body["booking"];
                entry.acked = Some((b["id"].as_u64().expect("id"), "cancelled".into()));
                if let Some(p) = body["promoted"]["id"].as_u64() {
                    promoted.push(p);
                }
            }
            StatusCode::NOT_FOUND if !book => {}
            other => panic!("unexpected answer {other}: {body}"),
        }
    }
    (ledger, promoted)
}

async fn get(http: &reqwest::Client, url: String) -> (StatusCode, Value) {
    let res = http.get(url).send().await.expect("sent");
    let status = res.status();
    (status, res.json().await.expect("json"))
}

/// Checks the restarted service against everything acknowledged, and
/// returns the ledger as the service now stands.
async fn verify(base: &str, ledger: &Ledger, promoted: &[u64]) -> Ledger {
    let http = reqwest::Client::new();
    let mut now = Ledger::new();
    let mut ids = HashSet::new();
    let mut confirmed_ids = HashSet::new();
    for (event, tickets) in EVENTS {
        let (code, status) = get(&http, format!("{base}/api/status/{event}")).await;
        assert_eq!(code, StatusCode::OK, "event {event} lost: {status}");
        let confirmed = status["confirmedCount"].as_u64().expect("confirmed");
        let available = status["availableTickets"].as_u64().expect("available");
        let waiting = status["waitingListCount"].as_u64().expect("waiting");
        assert_eq!(confirmed + available, tickets, "event {event}: {status}");
        assert!(waiting == 0 || available == 0, "event {event}: {status}");
        let (_, list) = get(
            &http,
            format!("{base}/api/events/{event}/waiting-list?limit=1000"),
        )
        .await;
        let positions: Vec<u64> = list["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| i["waiting_position"].as_u64().expect("position"))
            .collect();
        assert_eq!(
            positions,
            (1..=waiting).collect::<Vec<_>>(),
            "event {event}: queue positions"
        );
        let mut confirmed_seen = 0;
        for client in 0..CLIENTS {
            for i in 0..USERS_PER_CLIENT {
                let user = user_name(client, i);
                let (code, body) =
                    get(&http, format!("{base}/api/events/{event}/bookings/{user}")).await;
                let restored = (code == StatusCode::OK).then(|| {
                    let b = &body["booking"];
                    (
                        b["id"].as_u64().expect("id"),
                        b["status"].as_str().expect("status").to_string(),
                    )
                });
                if let Some((id, status)) = &restored {
                    assert!(ids.insert(*id), "booking id {id} appears twice");
                    if status == "confirmed" {
                        confirmed_seen += 1;
                        confirmed_ids.insert(*id);
                    }
                }
                let known = ledger
                    .get(&(event, user.clone()))
                    .cloned()
                    .unwrap_or_default();
                check_user(event, &user, &known, restored.as_ref());
                now.insert(
                    (event, user),
                    Known {
                        acked: restored,
                        unanswered: None,
                    },
                );
            }
        }
        assert_eq!(
            confirmed_seen, confirmed,
            "event {event}: confirmed bookings vs count (sold twice?)"
        );
    }
    for id in promoted {
        // An acknowledged promotion survives: that booking is no longer waiting.
        let still_waiting = now.values().any(|k| {
            k.acked
                .as_ref()
                .is_some_and(|(i, s)| i == id && s == "waiting")
        });
        assert!(!still_waiting, "promoted booking {id} is waiting again");
    }
    now
}

/// One user's restored booking against what was acknowledged.
fn check_user(event: u64, user: &str, known: &Known, restored: Option<&(u64, String)>) {
    let ctx = format!("event {event} user {user}: known {known:?}, restored {restored:?}");
    let active = |s: &str| s == "confirmed" || s == "waiting";
    match (&known.acked, known.unanswered, restored) {
        (None, None, None) => {}
        (None, Some("book"), r) => assert!(r.is_none_or(|(_, s)| active(s)), "{ctx}"),
        (None, _, r) => assert!(r.is_none(), "{ctx}"),
        (Some((id, s)), unanswered, Some((rid, rs))) if active(s) => {
            let kept = rid == id && active(rs);
            let cancelled_late = unanswered == Some("cancel") && rid == id && rs == "cancelled";
            assert!(kept || cancelled_late, "{ctx}");
        }
        (Some((id, _)), unanswered, Some((rid, rs))) => {
            let kept = rid == id && rs == "cancelled";
            let rebooked_late = unanswered == Some("book") && rid > id && active(rs);
            assert!(kept || rebooked_late, "{ctx}");
        }
        (Some(_), _, None) => panic!("acknowledged booking lost: {ctx}"),
    }
}

fn crash_command(dir: &Path) -> std::process::Command {
    let mut cmd = command(dir);
    // No periodic snapshot: every round must come back from the journal.
    cmd.env("BOXOFFICE__SNAPSHOT__INTERVAL_SECS", "86400");
    cmd
}

/// Kill -9 at random moments under concurrent load, ROUNDS times: every
/// acknowledged change survives, nothing is sold twice, queues stay 1..n.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_change_survives_sigkill() {
    let started = Instant::now();
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    println!("crash harness seed {seed}");
    let mut rng = XorShift(seed | 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(crash_command(dir.path()));
    let http = reqwest::Client::new();
    for (event, tickets) in EVENTS {
        let res = http
            .post(format!("{}/api/initialize", server.base))
            .json(&json!({"totalTickets": tickets, "eventId": event}))
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    let mut ledger = Ledger::new();
    let mut server = Some(server);
    let mut acknowledged = 0usize;
    for round in 0..ROUNDS {
        assert!(
            started.elapsed() < HARNESS_DEADLINE,
            "harness over its time budget at round {round}"
        );
        let running = server.take().expect("server");
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                tokio::spawn(client_loop(
                    running.base.clone(),
                    c,
                    rng.next(),
                    Arc::clone(&stop),
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50 + rng.below(400))).await;
        let (status, log) = running.stop_with(Signal::SIGKILL);
        assert!(status.code().is_none(), "killed by a signal; log:\n{log}");
        stop.store(true, Ordering::Relaxed);
        let mut promoted = Vec::new();
        for (client_ledger, client_promoted) in join_all(clients)
            .await
            .into_iter()
            .map(|r| r.expect("client task"))
        {
            for (key, known) in client_ledger {
                if known.acked.is_some() {
                    acknowledged += 1;
                }
                let slot = ledger.entry(key).or_default();
                if known.acked.is_some() {
                    slot.acked = known.acked;
                }
                slot.unanswered = known.unanswered;
            }
            promoted.extend(client_promoted);
        }
        let restarted = Server::start_with(crash_command(dir.path()));
        ledger = verify(&restarted.base, &ledger, &promoted).await;
        server = Some(restarted);
    }
    assert!(
        acknowledged > ROUNDS * 10,
        "the load was too light to prove much: {acknowledged} answers"
    );
    let (status, log) = server.take().expect("server").stop_with(Signal::SIGTERM);
    assert_eq!(status.code(), Some(0), "{log}");
    println!(
        "crash harness: {ROUNDS} rounds, {acknowledged} acknowledged changes, {:?}",
        started.elapsed()
    );
}
