//! Three nodes of the binary behind Debian's HAProxy, configured by
//! `deploy/cluster/haproxy.cfg` (its ports rewritten), under a steady load
//! of bookings and cancellations through the proxy, through each fault of
//! issue 21: SIGKILL of the leader (3 rounds), SIGSTOP of the leader for
//! 4 s, SIGKILL of a follower, an impostor with the wrong secret on a
//! dead node's addresses, SIGKILL of every node at once, and a node whose
//! disk is lost removed and replaced by a new member. After each:
//! every 2xx the proxy gave is in every node's state with the id it was
//! answered with, nothing is oversold, every node shows the same state,
//! and the time from the fault to the next 2xx through the proxy is
//! printed.
//!
//! Ignored by default (it needs `haproxy` on the PATH); `.ci/run` installs
//! haproxy and runs it against the release build:
//! `cargo test --test api cluster_proxy -- --ignored --nocapture`. Also
//! here: HAProxy answers the contract's JSON when no node can.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::sync::RwLock;

use boxoffice_testkit::linearizability::Call;

use super::cluster::{assert_not_oversold, wait_until_voter, Cluster, Proxy, ELECTION_DEADLINE};
use super::history::{assert_linearizable, settle, settled_on, unanswered_users, History, Op};
use super::process::{command, request, Server};

/// Workers sending changes through the proxy at once.
const WORKERS: usize = 8;
/// Each worker's pause between changes.
const PACE: Duration = Duration::from_millis(10);
/// The load stops by itself after this long, whatever the test does.
const LOAD_LIMIT: Duration = Duration::from_secs(600);
/// The event's tickets: the queue starts to fill in the third round.
const TICKETS: u64 = 300;
/// How long a fault may keep the proxy from answering 2xx.
const RECOVERY_DEADLINE: Duration = Duration::from_secs(20);

/// A change the proxy answered with 2xx.
#[derive(Debug, Clone)]
enum Answer {
    Booked { user: String, id: u64 },
    Cancelled { user: String },
}

/// Bookings and cancellations through the proxy, recording each 2xx.
struct Load {
    /// When each answered request was sent and answered, and the answer.
    answers: Arc<Mutex<Vec<(Instant, Instant, Answer)>>>,
    /// Every request, answered or not, for the linearizability check.
    history: Arc<History>,
    /// Workers hold it for reading around each request; a check takes it
    /// for writing, so it sees no request in flight.
    gate: Arc<RwLock<()>>,
    stop: Arc<AtomicBool>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(proxy: &str, event: u64) -> Load {
        let answers = Arc::new(Mutex::new(Vec::new()));
        let history = Arc::new(History::new());
        let gate = Arc::new(RwLock::new(()));
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let workers = (0..WORKERS)
            .map(|w| {
                let (answers, gate, stop) = (answers.clone(), gate.clone(), stop.clone());
                let history = history.clone();
                let base = format!("{proxy}/api/events/{event}/bookings");
                tokio::spawn(async move {
                    let http = reqwest::Client::builder()
                        .timeout(Duration::from_secs(3))
                        .build()
                        .expect("client");
                    let mut booked: Vec<String> = Vec::new();
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) && started.elapsed() < LOAD_LIMIT {
                        let _open = gate.read().await;
                        let sent_at = Instant::now();
                        n += 1;
                        // Every fourth change cancels this worker's oldest booking.
                        let (answer, sent) = if n.is_multiple_of(4) && !booked.is_empty() {
                            let user = booked.remove(0);
                            let sent = http.delete(format!("{base}/{user}")).send().await;
                            (Answer::Cancelled { user }, sent)
                        } else {
                            let user = format!("w{w}-{n}");
                            let sent = http
                                .put(format!("{base}/{user}"))
                                .json(&json!({}))
                                .send()
                                .await;
                            (Answer::Booked { user, id: 0 }, sent)
                        };
                        let answered = match sent {
                            Ok(res) => {
                                let status = res.status();
                                res.json::<serde_json::Value>()
                                    .await
                                    .ok()
                                    .map(|body| (status, body))
                            }
                            Err(_) => None,
                        };
                        let answered_at = Instant::now();
                        let seen = answered.as_ref().map(|(status, body)| (*status, body));
                        let op = match &answer {
                            Answer::Booked { user, .. } => Op::book(user, seen),
                            Answer::Cancelled { user } => Op::cancel(user, seen),
                        };
                        history.record(sent_at, answered_at, op);
                        let ok = match answered {
                            Some((status, body)) if status.is_success() => {
                                let answer = match answer {
                                    Answer::Booked { user, .. } => {
                                        let id = body["booking"]["id"]
                                            .as_u64()
                                            .unwrap_or_else(|| panic!("booking id in {body}"));
                                        booked.push(user.clone());
                                        Answer::Booked { user, id }
                                    }
                                    cancelled => cancelled,
                                };
                                answers.lock().expect("answers").push((
                                    sent_at,
                                    answered_at,
                                    answer,
                                ));
                                true
                            }
                            // Not answered 2xx: it may or may not have
                            // happened, so it is not checked here (a
                            // booking retried later under the same user
                            // could be); the history keeps it as unknown.
                            _ => false,
                        };
                        drop(_open);
                        // Paced, so the checks stay short; a refusal waits longer.
                        let pause = if ok { PACE } else { PACE * 2 };
                        tokio::time::sleep(pause).await;
                    }
                })
            })
            .collect();
        Load {
            answers,
            history,
            gate,
            stop,
            workers,
        }
    }

    /// How long after `since` the proxy first answered 2xx to a request
    /// sent after `since`.
    async fn next_success_after(&self, since: Instant) -> Duration {
        let deadline = since + RECOVERY_DEADLINE;
        loop {
            let answered = self
                .answers
                .lock()
                .expect("answers")
                .iter()
                .filter(|(sent, _, _)| *sent > since)
                .map(|(_, answered, _)| *answered)
                .min();
            if let Some(answered) = answered {
                return answered - since;
            }
            assert!(Instant::now() < deadline, "no 2xx through the proxy");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// 2xx answers to requests sent after `since`.
    fn answered_since(&self, since: Instant) -> usize {
        let answers = self.answers.lock().expect("answers");
        answers.iter().filter(|(sent, _, _)| *sent > since).count()
    }

    /// Stops the load: every 2xx answer, and every call made.
    async fn finish(self) -> (Vec<Answer>, Vec<Call<Op>>) {
        self.stop.store(true, Ordering::Relaxed);
        for worker in self.workers {
            worker.await.expect("load worker");
        }
        let answers = self.answers.lock().expect("answers");
        let answers = answers.iter().map(|(_, _, a)| a.clone()).collect();
        (answers, self.history.calls())
    }
}

/// Every 2xx since answer `from` is in every running node's state with
/// its id, the nodes agree, nothing is oversold; load is held while it
/// checks. Returns where the next check starts.
async fn check(cluster: &Cluster, event: u64, load: &Load, from: usize, fault: &str) -> usize {
    let _quiet = load.gate.write().await;
    let answers: Vec<Answer> = load
        .answers
        .lock()
        .expect("answers")
        .iter()
        .map(|(_, _, a)| a.clone())
        .collect();
    check_answers(cluster, event, &answers, from, fault).await;
    answers.len()
}

/// [`check`] of `answers[from..]`, with nothing in flight.
async fn check_answers(
    cluster: &Cluster,
    event: u64,
    answers: &[Answer],
    from: usize,
    fault: &str,
) {
    let state = cluster.converged(event).await;
    assert_not_oversold(&state);
    // What each user's booking must show: the id it was booked with and,
    // if its cancellation was answered, cancelled.
    let mut expected: BTreeMap<&str, (Option<u64>, bool)> = BTreeMap::new();
    for answer in answers {
        match answer {
            Answer::Booked { user, id } => {
                expected.insert(user, (Some(*id), false));
            }
            Answer::Cancelled { user } => {
                expected.entry(user).or_insert((None, false)).1 = true;
            }
        }
    }
    let mut users: Vec<&str> = answers[from..]
        .iter()
        .map(|a| match a {
            Answer::Booked { user, .. } | Answer::Cancelled { user } => user.as_str(),
        })
        .collect();
    users.sort_unstable();
    users.dedup();
    let http = reqwest::Client::new();
    for node in cluster.nodes.iter().filter(|n| n.server.is_some()) {
        let base = node.base();
        for chunk in users.chunks(32) {
            let reads = chunk.iter().map(|user| {
                request(
                    &http,
                    Method::GET,
                    format!("{base}/api/events/{event}/bookings/{user}"),
                    None,
                )
            });
            let read = futures_util::future::join_all(reads).await;
            for (user, (status, body)) in chunk.iter().zip(read) {
                assert_eq!(status, StatusCode::OK, "{fault}: {user} on {base}: {body}");
                let (id, cancelled) = expected[user];
                if let Some(id) = id {
                    assert_eq!(
                        body["booking"]["id"].as_u64(),
                        Some(id),
                        "{fault}: {user} on {base} was answered with id {id}: {body}"
                    );
                }
                if cancelled {
                    assert_eq!(
                        body["booking"]["status"], "cancelled",
                        "{fault}: {user} on {base} was answered cancelled: {body}"
                    );
                }
            }
        }
    }
    println!(
        "{fault}: {} answers ({} users) checked on every node; {} confirmed, {} waiting",
        answers.len() - from,
        users.len(),
        state[0]["confirmedCount"],
        state[0]["waitingListCount"],
    );
}

/// The term node `i` is in.
async fn term_of(cluster: &Cluster, i: usize) -> u64 {
    let http = reqwest::Client::new();
    let (status, body) = request(
        &http,
        Method::GET,
        format!("{}/api/cluster", cluster.nodes[i].base()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["term"].as_u64().expect("term")
}

fn signal(cluster: &Cluster, i: usize, signal: Signal) {
    let server = cluster.nodes[i].server.as_ref().expect("node running");
    kill(Pid::from_raw(server.child.id() as i32), signal).expect("signal sent");
}

/// A node with a fresh directory and the wrong secret, on node `i`'s
/// addresses (which must be free: node `i` is down).
fn impostor(cluster: &Cluster, i: usize, dir: &std::path::Path) -> Server {
    let node = &cluster.nodes[i];
    let config = std::fs::read_to_string(node.dir.join("config.toml")).expect("node config");
    let wrong = config.replace(&cluster.secret, "an-impostor-secret-of-at-least-32-bytes");
    assert_ne!(config, wrong);
    std::fs::write(dir.join("config.toml"), wrong).expect("impostor config");
    let mut cmd = command(dir);
    cmd.env("BOXOFFICE__SERVER__PORT", node.port.to_string());
    Server::start_with(cmd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs haproxy; .ci/run runs it against the release build"]
async fn cluster_proxy_keeps_every_answer_through_every_fault() {
    let mut cluster = Cluster::start(3);
    cluster.leader().await;
    let ports: Vec<u16> = cluster.nodes.iter().map(|n| n.port).collect();
    let proxy = Proxy::start(&ports);
    let http = reqwest::Client::new();

    // The proxy finds the leader by its health check.
    let deadline = Instant::now() + ELECTION_DEADLINE;
    let event = loop {
        let res = http
            .post(format!("{}/api/events", proxy.base))
            .json(&json!({"name": "proxied on-sale", "totalTickets": TICKETS}))
            .send()
            .await;
        if let Ok(res) = res {
            if res.status() == StatusCode::CREATED {
                let body: serde_json::Value = res.json().await.expect("JSON");
                break body["eventId"].as_u64().expect("eventId");
            }
        }
        assert!(Instant::now() < deadline, "no create through the proxy");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let load = Load::start(&proxy.base, event);
    load.next_success_after(Instant::now()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut checked = check(&cluster, event, &load, 0, "before any fault").await;

    for round in 1..=3 {
        let leader = cluster.leader().await;
        // From the moment it is gone (kill waits for the exit): requests
        // it answered while being killed are not the new leader's.
        cluster.kill(leader);
        let at = Instant::now();
        let window = load.next_success_after(at).await;
        println!("leader SIGKILL round {round}: next 2xx through the proxy after {window:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        cluster.boot(leader);
        checked = check(
            &cluster,
            event,
            &load,
            checked,
            &format!("leader SIGKILL round {round}"),
        )
        .await;
    }

    let leader = cluster.leader().await;
    let at = Instant::now();
    signal(&cluster, leader, Signal::SIGSTOP);
    let window = load.next_success_after(at).await;
    println!("leader SIGSTOP: next 2xx through the proxy after {window:?}");
    tokio::time::sleep(Duration::from_secs(4).saturating_sub(at.elapsed())).await;
    signal(&cluster, leader, Signal::SIGCONT);
    checked = check(
        &cluster,
        event,
        &load,
        checked,
        "leader SIGSTOP 4 s, SIGCONT",
    )
    .await;

    let leader = cluster.leader().await;
    let follower = (leader + 1) % 3;
    cluster.kill(follower);
    let at = Instant::now();
    let window = load.next_success_after(at).await;
    println!("follower SIGKILL: next 2xx through the proxy after {window:?}");
    checked = check(
        &cluster,
        event,
        &load,
        checked,
        "follower SIGKILL (two nodes up)",
    )
    .await;

    // An impostor on the dead follower's addresses: it is never sent a
    // change, cannot vote the leader out, and is never the proxy's leader.
    let impostor_dir = tempfile::tempdir().expect("temp dir");
    let term = term_of(&cluster, leader).await;
    let fake = impostor(&cluster, follower, impostor_dir.path());
    let impostor_up = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        term_of(&cluster, leader).await,
        term,
        "the impostor moved the term"
    );
    assert_eq!(
        cluster.leader().await,
        leader,
        "the impostor unseated the leader"
    );
    let (status, body) = request(&http, Method::GET, format!("{}/leader", fake.base), None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "impostor: {body}");
    let (status, body) = request(
        &http,
        Method::GET,
        format!("{}/api/events/{event}", fake.base),
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the impostor got a change: {body}"
    );
    let served = load.answered_since(impostor_up);
    println!("impostor up 3 s: {served} changes answered 2xx through the proxy meanwhile");
    assert!(served > 0, "the impostor stopped the cluster");
    drop(fake);
    cluster.boot(follower);
    checked = check(
        &cluster,
        event,
        &load,
        checked,
        "impostor with the wrong secret",
    )
    .await;

    for i in 0..3 {
        cluster.kill(i);
    }
    let at = Instant::now();
    for i in 0..3 {
        cluster.boot(i);
    }
    let window = load.next_success_after(at).await;
    println!("every node SIGKILLed and restarted: next 2xx through the proxy after {window:?}");
    checked = check(&cluster, event, &load, checked, "every node SIGKILL").await;

    // A follower's disk is lost: removed through the proxy, and a new node
    // (not behind the proxy) joins, catches up and votes.
    let leader = cluster.leader().await;
    let lost = (leader + 1) % 3;
    cluster.kill(lost);
    std::fs::remove_dir_all(cluster.nodes[lost].dir.join("snapshots")).expect("wiped");
    let at = Instant::now();
    let (status, removed) = request(
        &http,
        Method::DELETE,
        format!("{}/api/cluster/members/{}", proxy.base, lost + 1),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    let new_dir = tempfile::tempdir().expect("temp dir");
    let (added, peer) = cluster.add_joining(new_dir.path(), 4);
    let member = json!({"peer": peer, "http": cluster.nodes[added].base()});
    let (status, accepted) = request(
        &http,
        Method::PUT,
        format!("{}/api/cluster/members/4", proxy.base),
        Some(member),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    wait_until_voter(&proxy.base, 4, RECOVERY_DEADLINE).await;
    println!(
        "node {} wiped, removed and replaced by node 4: node 4 votes {:?} after the removal began",
        lost + 1,
        at.elapsed()
    );
    check(
        &cluster,
        event,
        &load,
        checked,
        "a wiped node replaced by a new member",
    )
    .await;

    let (answers, calls) = load.finish().await;
    // Every answer again, on every node, after all the faults.
    check_answers(&cluster, event, &answers, 0, "at the end, every answer").await;
    // And the whole history, answered or not, in one order the contract's
    // rules explain: no stale answer, nobody overtaken, no id out of order.
    let node = cluster
        .nodes
        .iter()
        .find(|n| n.server.is_some())
        .expect("a node");
    let settled = settled_on(&node.base(), event, &unanswered_users(&calls)).await;
    assert_linearizable(
        TICKETS,
        settle(calls, &settled),
        "every call through the proxy",
    );
    let booked = answers
        .iter()
        .filter(|a| matches!(a, Answer::Booked { .. }))
        .count();
    println!(
        "{} answers through the proxy ({booked} bookings, {} cancellations)",
        answers.len(),
        answers.len() - booked
    );
    assert!(
        booked > 0 && booked < answers.len(),
        "bookings and cancellations answered"
    );
}

/// When no node can answer (every one down, or a failover under way),
/// HAProxy answers the contract's JSON error with `Retry-After`, not its
/// own HTML page (issue 35: clients got HTML 502/503 during a failover).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs haproxy; .ci/run runs it with the cluster behind HAProxy"]
async fn cluster_proxy_answers_json_when_no_node_can() {
    // Three nodes' ports, held and never listened on: every node is down.
    let held: Vec<_> = (0..3).map(|_| super::cluster::hold_port()).collect();
    let proxy = Proxy::start(&held.iter().map(|h| h.port).collect::<Vec<_>>());
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let res = loop {
        // Until HAProxy listens.
        match http
            .get(format!("{}/api/status/1", proxy.base))
            .send()
            .await
        {
            Ok(res) => break res,
            Err(e) => assert!(Instant::now() < deadline, "the proxy never answered: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let status = res.status();
    assert!(
        status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::BAD_GATEWAY,
        "{status}"
    );
    let headers = res.headers().clone();
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["retry-after"], "1");
    let body: serde_json::Value = res.json().await.expect("a JSON body");
    assert_eq!(body["code"], "UNAVAILABLE", "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| e.len() > 20),
        "{body}"
    );
}
