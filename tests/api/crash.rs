//! The crash harness, in the spirit of sled's `test_crash_recovery`: the real
//! binary takes concurrent books of parties, cancels, quantity changes and
//! capacity changes, is SIGKILLed at a random moment, and must come back
//! with every acknowledged change, nothing sold twice, every queue numbered
//! 1..n and its head never fitting in the available tickets.
//!
//! The seed is printed; `CRASH_SEED=<n>` replays a run's choices (the kill
//! moments are the same; what the server answered by then depends on timing).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::Mutex;

use futures_util::future::join_all;
use nix::sys::signal::Signal;
use reqwest::StatusCode;
use serde_json::{json, Value};

use boxoffice_testkit::XorShift;

use crate::process::{command, request, Server};

/// Kill-and-restart rounds per run.
const ROUNDS: usize = 24;
/// Client tasks; each owns its users, so each user has one request in flight at most.
const CLIENTS: usize = 8;
/// Users per client.
const USERS_PER_CLIENT: usize = 6;
/// Events and their tickets: small, so queues form and promotions happen.
const EVENTS: [(u64, u64); 3] = [(1, 3), (2, 5), (3, 8)];
/// The event whose bookings are held for a second (and offered for a
/// second on promotion), so holds, confirms and expiries happen all the time.
const WITH_HOLDS: u64 = 2;
/// The event whose capacity the organiser task changes, and the totals it
/// moves between.
const RESIZED: (u64, [u64; 3]) = (3, [6, 8, 11]);
/// The whole harness must finish within this.
const HARNESS_DEADLINE: Duration = Duration::from_secs(240);

/// A booking as acknowledged: id, status (as of that answer), quantity.
type Acked = (u64, String, u64);

/// A request whose answer never came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Book,
    Cancel,
    /// Lower the quantity to this.
    Lower(u64),
    /// Confirm a hold.
    Confirm,
}

/// What the clients know of one (event, user): the last acknowledged fact,
/// and the request whose answer never came.
#[derive(Debug, Clone, Default)]
struct Known {
    /// The booking last acknowledged.
    acked: Option<Acked>,
    /// A request sent but never answered.
    unanswered: Option<Pending>,
}

/// What the organiser knows of the resized event's total: the last
/// acknowledged one and a change whose answer never came.
#[derive(Debug, Clone, Copy)]
struct KnownTotal {
    acked: u64,
    unanswered: Option<u64>,
}

type Ledger = BTreeMap<(u64, String), Known>;

fn user_name(client: usize, i: usize) -> String {
    format!("c{client}u{i}")
}

/// The party size a user asks for when booking afresh: 1 to 3.
fn party_of(user: &str) -> u64 {
    user.bytes().map(u64::from).sum::<u64>() % 3 + 1
}

fn acked_of(body: &Value) -> Acked {
    let b = &body["booking"];
    (
        b["id"].as_u64().expect("id"),
        b["status"].as_str().expect("status").into(),
        b["quantity"].as_u64().expect("quantity"),
    )
}

/// One client: sequential random books, cancels and quantity changes until
/// told to stop.
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
    let mut rng = XorShift::new(seed);
    let mut ledger = Ledger::new();
    let mut promoted = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let (event, _) = EVENTS[rng.below(EVENTS.len() as u64) as usize];
        let user = user_name(client, rng.below(USERS_PER_CLIENT as u64) as usize);
        let entry = ledger.entry((event, user.clone())).or_default();
        let held = entry
            .acked
            .as_ref()
            .filter(|(_, s, _)| is_active(s))
            .map(|(_, _, q)| *q);
        let on_hold = entry.acked.as_ref().is_some_and(|(_, s, _)| s == "held");
        let roll = rng.below(10);
        let op = match (roll, held) {
            (0..=4, _) => Pending::Book,
            (5..=6, _) if on_hold => Pending::Confirm,
            (5..=6, Some(q)) if q > 1 => Pending::Lower(q - 1),
            _ => Pending::Cancel,
        };
        let url = format!("{base}/api/events/{event}/bookings/{user}");
        let request = match op {
            // A user rebooks with what they hold, so a retry is the same
            // request; afresh, with their party size.
            Pending::Book => http
                .put(url)
                .json(&json!({"quantity": held.unwrap_or_else(|| party_of(&user))})),
            Pending::Lower(q) => http.patch(url).json(&json!({ "quantity": q })),
            Pending::Confirm => http.post(format!("{url}/confirm")),
            Pending::Cancel => http.delete(url),
        };
        entry.unanswered = Some(op);
        let Ok(res) = request.send().await else {
            break;
        };
        let status = res.status();
        let Ok(body) = res.json::<Value>().await else {
            break;
        };
        entry.unanswered = None;
        match (op, status) {
            (Pending::Book | Pending::Lower(_) | Pending::Confirm, StatusCode::OK) => {
                entry.acked = Some(acked_of(&body));
                collect_promotions(&body, &mut promoted);
            }
            (Pending::Cancel, StatusCode::OK) => {
                let (id, _, q) = acked_of(&body);
                entry.acked = Some((id, "cancelled".into(), q));
                collect_promotions(&body, &mut promoted);
            }
            // Not known this round (the client's ledger starts empty): the
            // booking was lowered earlier, or is gone. Nothing changed.
            (Pending::Book, StatusCode::CONFLICT) => {
                assert_eq!(body["code"], "BOOKING_EXISTS", "{body}");
            }
            (Pending::Cancel | Pending::Lower(_) | Pending::Confirm, StatusCode::NOT_FOUND) => {}
            // The hold lapsed (or the offer became a wait again: never) first.
            (Pending::Confirm, StatusCode::CONFLICT) => {
                assert!(
                    body["code"] == "HOLD_EXPIRED" || body["code"] == "NOT_HELD",
                    "{body}"
                );
            }
            (_, other) => panic!("unexpected answer {other} to {op:?}: {body}"),
        }
    }
    (ledger, promoted)
}

fn collect_promotions(body: &Value, promoted: &mut Vec<u64>) {
    if let Some(list) = body["promotions"].as_array() {
        promoted.extend(list.iter().filter_map(|p| p["id"].as_u64()));
    }
}

/// The organiser: moves the resized event's total between a few values.
async fn organiser_loop(
    base: String,
    seed: u64,
    stop: Arc<AtomicBool>,
    known: Arc<Mutex<KnownTotal>>,
) -> usize {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let mut rng = XorShift::new(seed);
    let (event, totals) = RESIZED;
    let mut changed = 0;
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(10 + rng.below(30))).await;
        let total = totals[rng.below(totals.len() as u64) as usize];
        known.lock().await.unanswered = Some(total);
        let Ok(res) = http
            .patch(format!("{base}/api/events/{event}"))
            .json(&json!({ "totalTickets": total }))
            .send()
            .await
        else {
            break;
        };
        let status = res.status();
        let Ok(body) = res.json::<Value>().await else {
            break;
        };
        let mut known = known.lock().await;
        known.unanswered = None;
        match status {
            StatusCode::OK => {
                known.acked = total;
                changed += 1;
            }
            StatusCode::CONFLICT => assert_eq!(body["code"], "CAPACITY_CONFLICT", "{body}"),
            other => panic!("unexpected answer {other} to a capacity change: {body}"),
        }
    }
    changed
}

async fn get(http: &reqwest::Client, url: String) -> (StatusCode, Value) {
    request(http, reqwest::Method::GET, url, None).await
}

/// Checks the restarted service against everything acknowledged, and
/// returns the ledger and the resized event's total as the service now
/// stands.
async fn verify(
    base: &str,
    ledger: &Ledger,
    promoted: &[u64],
    total: KnownTotal,
) -> (Ledger, u64, HoldsSeen) {
    let http = reqwest::Client::new();
    let mut now = Ledger::new();
    let mut ids = HashSet::new();
    let mut restored_total = 0;
    let mut seen = HoldsSeen::default();
    for (event, tickets) in EVENTS {
        let EventRead {
            status,
            list,
            bookings,
        } = read_event(&http, base, event).await;
        let confirmed = status["confirmedCount"].as_u64().expect("confirmed");
        let available = status["availableTickets"].as_u64().expect("available");
        let waiting = status["waitingListCount"].as_u64().expect("waiting");
        let waiting_tickets = status["waitingTickets"].as_u64().expect("waiting tickets");
        let total_now = status["totalTickets"].as_u64().expect("total");
        if event == RESIZED.0 {
            assert!(
                total_now == total.acked || Some(total_now) == total.unanswered,
                "event {event}: total {total_now}, acknowledged {total:?}"
            );
            restored_total = total_now;
        } else {
            assert_eq!(total_now, tickets, "event {event}: {status}");
        }
        let held = status["heldTickets"].as_u64().expect("held");
        assert_eq!(
            confirmed + held + available,
            total_now,
            "event {event}: {status}"
        );
        let items = list["items"].as_array().expect("items");
        let positions: Vec<u64> = items
            .iter()
            .map(|i| i["waiting_position"].as_u64().expect("position"))
            .collect();
        assert_eq!(
            positions,
            (1..=waiting).collect::<Vec<_>>(),
            "event {event}: queue positions"
        );
        let queued: u64 = items
            .iter()
            .map(|i| i["quantity"].as_u64().expect("quantity"))
            .sum();
        assert_eq!(queued, waiting_tickets, "event {event}: waiting tickets");
        if let Some(head) = items.first() {
            let head = head["quantity"].as_u64().expect("quantity");
            assert!(head > available, "event {event}: the head fits: {status}");
        }
        let mut confirmed_seen = 0;
        let mut held_seen = 0;
        for client in 0..CLIENTS {
            for i in 0..USERS_PER_CLIENT {
                let user = user_name(client, i);
                let (code, body) = &bookings[client * USERS_PER_CLIENT + i];
                let restored = (*code == StatusCode::OK).then(|| acked_of(body));
                if let Some((id, status, quantity)) = &restored {
                    assert!(ids.insert(*id), "booking id {id} appears twice");
                    match status.as_str() {
                        "confirmed" => confirmed_seen += quantity,
                        "held" => {
                            held_seen += quantity;
                            seen.held += 1;
                        }
                        "expired" => seen.lapsed += 1,
                        _ => {}
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
            (confirmed_seen, held_seen),
            (confirmed, held),
            "event {event}: confirmed and held tickets vs counts (sold twice?)"
        );
    }
    for id in promoted {
        // An acknowledged promotion survives: that booking is no longer waiting.
        let still_waiting = now.values().any(|k| {
            k.acked
                .as_ref()
                .is_some_and(|(i, s, _)| i == id && s == "waiting")
        });
        assert!(!still_waiting, "promoted booking {id} is waiting again");
    }
    (now, restored_total, seen)
}

/// Held and lapsed bookings found after the restarts, to show the harness
/// exercised holds.
#[derive(Debug, Default, Clone, Copy)]
struct HoldsSeen {
    held: usize,
    lapsed: usize,
}

/// One event as read back: status, waiting list, and every user's booking
/// (in client, user order).
struct EventRead {
    status: Value,
    list: Value,
    bookings: Vec<(StatusCode, Value)>,
}

/// Reads an event whole, again until no hold lapsed while it was being read:
/// the reads are separate requests, and a lapse between them would make
/// the counters and the bookings disagree although both are right.
async fn read_event(http: &reqwest::Client, base: &str, event: u64) -> EventRead {
    let now = || chrono::Utc::now().timestamp_millis();
    let millis = |v: &Value| {
        v.as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp_millis())
    };
    for _ in 0..50 {
        let started = now();
        let (code, status) = get(http, format!("{base}/api/status/{event}")).await;
        assert_eq!(code, StatusCode::OK, "event {event} lost: {status}");
        let (_, list) = get(
            http,
            format!("{base}/api/events/{event}/waiting-list?limit=1000"),
        )
        .await;
        let mut bookings = Vec::new();
        for client in 0..CLIENTS {
            for i in 0..USERS_PER_CLIENT {
                let user = user_name(client, i);
                bookings
                    .push(get(http, format!("{base}/api/events/{event}/bookings/{user}")).await);
            }
        }
        let finished = now();
        let lapsed_meanwhile = bookings.iter().any(|(_, body)| {
            let b = &body["booking"];
            let moment = match b["status"].as_str() {
                Some("held") => millis(&b["expires_at"]),
                Some("expired") => millis(&b["updated_at"]),
                _ => None,
            };
            moment.is_some_and(|m| m > started - 50 && m <= finished + 50)
        });
        if !lapsed_meanwhile {
            return EventRead {
                status,
                list,
                bookings,
            };
        }
    }
    panic!("event {event}: holds kept lapsing while it was read");
}

/// A status in which the user holds an active booking.
fn is_active(status: &str) -> bool {
    matches!(status, "confirmed" | "held" | "waiting")
}

/// One user's restored booking against what was acknowledged. Holds may
/// have lapsed meanwhile (a held or waiting booking may come back expired);
/// a confirmed one never does.
fn check_user(event: u64, user: &str, known: &Known, restored: Option<&Acked>) {
    let ctx = format!("event {event} user {user}: known {known:?}, restored {restored:?}");
    let active = is_active;
    match (&known.acked, known.unanswered, restored) {
        (None, None, None) => {}
        (None, Some(Pending::Book), r) => assert!(r.is_none_or(|(_, s, _)| active(s)), "{ctx}"),
        (None, _, r) => assert!(r.is_none(), "{ctx}"),
        (Some((id, s, q)), unanswered, Some((rid, rs, rq))) if active(s) => {
            let same_quantity =
                rq == q || matches!(unanswered, Some(Pending::Lower(to)) if *rq == to);
            let kept = rid == id && active(rs) && same_quantity;
            let cancelled_late =
                unanswered == Some(Pending::Cancel) && rid == id && rs == "cancelled";
            let lapsed = rid == id && rs == "expired" && s != "confirmed";
            let rebooked_after_lapse =
                unanswered == Some(Pending::Book) && rid > id && active(rs) && s != "confirmed";
            assert!(
                kept || cancelled_late || lapsed || rebooked_after_lapse,
                "{ctx}"
            );
        }
        (Some((id, s, q)), unanswered, Some((rid, rs, rq))) => {
            let kept = rid == id && rs == s && rq == q;
            let rebooked_late = unanswered == Some(Pending::Book) && rid > id && active(rs);
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
    let seed = match std::env::var("CRASH_SEED") {
        Ok(raw) => raw.parse().expect("CRASH_SEED is a whole number"),
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
    };
    // eprintln: shown by `cargo test` only when the test fails, which is
    // when the seed is wanted.
    eprintln!("crash harness seed {seed} (replay with CRASH_SEED={seed})");
    let mut rng = XorShift::new(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(crash_command(dir.path()));
    let http = reqwest::Client::new();
    for (event, tickets) in EVENTS {
        let holds = if event == WITH_HOLDS { 1 } else { 0 };
        let res = http
            .post(format!("{}/api/initialize", server.base))
            .json(&json!({"totalTickets": tickets, "eventId": event,
                          "holdSecs": holds, "offerSecs": holds}))
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    let mut ledger = Ledger::new();
    let mut total = KnownTotal {
        acked: EVENTS[2].1,
        unanswered: None,
    };
    let mut server = Some(server);
    let mut acknowledged = 0usize;
    let mut capacity_changes = 0usize;
    let mut holds_seen = HoldsSeen::default();
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
                    rng.next_u64(),
                    Arc::clone(&stop),
                ))
            })
            .collect();
        let known_total = Arc::new(Mutex::new(total));
        let organiser = tokio::spawn(organiser_loop(
            running.base.clone(),
            rng.next_u64(),
            Arc::clone(&stop),
            Arc::clone(&known_total),
        ));
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
        capacity_changes += organiser.await.expect("organiser task");
        let acked_total = *known_total.lock().await;
        let restarted = Server::start_with(crash_command(dir.path()));
        let (now, restored_total, seen) =
            verify(&restarted.base, &ledger, &promoted, acked_total).await;
        holds_seen.held += seen.held;
        holds_seen.lapsed += seen.lapsed;
        ledger = now;
        total = KnownTotal {
            acked: restored_total,
            unanswered: None,
        };
        server = Some(restarted);
    }
    assert!(
        acknowledged > ROUNDS * 10,
        "the load was too light to prove much: {acknowledged} answers"
    );
    assert!(
        holds_seen.held > 0,
        "no held booking came back in the whole run: holds were not exercised"
    );
    assert!(
        capacity_changes > ROUNDS,
        "too few capacity changes to prove much: {capacity_changes}"
    );
    let (status, log) = server.take().expect("server").stop_with(Signal::SIGTERM);
    assert_eq!(status.code(), Some(0), "{log}");
    println!(
        "crash harness (seed {seed}): {ROUNDS} rounds, {acknowledged} acknowledged booking changes, {capacity_changes} capacity changes, {} held and {} lapsed bookings seen after restarts, {:?}",
        holds_seen.held,
        holds_seen.lapsed,
        started.elapsed()
    );
}
