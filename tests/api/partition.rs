//! A real partition: three nodes, each in its own network namespace on a
//! bridge, and the leader cut off from its peers (not from clients) by
//! HTB classes whose queue holds nothing (`pfifo limit 0`), selected by
//! `u32` filters on the peers' addresses. These kernels have no netem and
//! no iptables; this drops exactly the peer traffic, both ways.
//!
//! What it checks, on the isolated old leader (issue 35, findings 1-3; on
//! c0394eb a change there waited until the partition healed, 47 s, and
//! answers came from its stale state):
//! - a change is answered 503 within `2 × election_timeout_ms` (plus a
//!   margin for a loaded machine), not held until the heal;
//! - reads of that event are answered at once from its durable state,
//!   not held behind the pending change;
//! - once the others moved on, it answers nothing from its old state (a
//!   rebook is not "confirmed", a booking made since is not 404) and its
//!   `GET /leader` is 503;
//!
//! and after the heal: every node has the same state, every acknowledged
//! change is there, nothing is oversold. Failover and heal gaps are printed.
//!
//! Needs root (namespaces, links, qdiscs): ignored in a plain `cargo test`,
//! run by `.ci/run` as root (`cargo test --test api partition -- --ignored`).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::cluster::{
    assert_not_oversold, converged_on, metric, metrics, new_secret, probe_client, ELECTION_DEADLINE,
};
use super::history::{assert_linearizable, settle, settled_on, unanswered_users, History, Op};
use super::process::{binary, configure, request, Server};

/// The nodes' election timeout here (the default).
const ELECTION_TIMEOUT: Duration = Duration::from_millis(1_000);
/// What a loaded machine may add to a bound the service keeps.
const MARGIN: Duration = Duration::from_millis(1_500);

/// Runs `ip`/`tc` arguments; panics with their error output on failure.
fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A bridge and one namespace per node, removed on drop.
struct Net {
    /// Names start with it (unique to this process).
    tag: String,
    /// The third octet of 10.254.S.0/24.
    subnet: u32,
    size: usize,
}

impl Net {
    fn new(size: usize) -> Net {
        // Unique to this process and this test within it (tests run in
        // parallel); interface names stay within 15 bytes.
        static NETS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NETS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pid = std::process::id();
        let net = Net {
            tag: format!("bo{}{}", pid % 100_000, n % 10),
            subnet: (pid + n * 97) % 250,
            size,
        };
        let bridge = net.bridge();
        run("ip", &["link", "add", &bridge, "type", "bridge"]);
        run("ip", &["link", "set", &bridge, "up"]);
        let gateway = format!("10.254.{}.254/24", net.subnet);
        run("ip", &["addr", "add", &gateway, "dev", &bridge]);
        for i in 0..size {
            let (ns, host, inner) = (net.ns(i), format!("{}h{i}", net.tag), net.inner(i));
            run("ip", &["netns", "add", &ns]);
            run(
                "ip",
                &["link", "add", &host, "type", "veth", "peer", "name", &inner],
            );
            run("ip", &["link", "set", &inner, "netns", &ns]);
            run("ip", &["link", "set", &host, "master", &bridge, "up"]);
            let address = format!("{}/24", net.ip(i));
            run("ip", &["-n", &ns, "addr", "add", &address, "dev", &inner]);
            run("ip", &["-n", &ns, "link", "set", &inner, "up"]);
            run("ip", &["-n", &ns, "link", "set", "lo", "up"]);
        }
        net
    }

    fn bridge(&self) -> String {
        format!("{}br", self.tag)
    }

    fn ns(&self, i: usize) -> String {
        format!("{}n{i}", self.tag)
    }

    /// The node's end of its link, inside its namespace.
    fn inner(&self, i: usize) -> String {
        format!("{}c{i}", self.tag)
    }

    fn ip(&self, i: usize) -> String {
        format!("10.254.{}.{}", self.subnet, i + 1)
    }

    /// Drops every packet node `i` sends to `peers` (HTB class 1:20 with
    /// an empty queue; other traffic is unclassified and passes).
    fn drop_to(&self, i: usize, peers: &[usize]) {
        let (ns, dev) = (self.ns(i), self.inner(i));
        let tc = |args: &[&str]| {
            let mut all = vec!["-n", ns.as_str()];
            all.extend_from_slice(args);
            run("tc", &all);
        };
        tc(&[
            "qdisc", "add", "dev", &dev, "root", "handle", "1:", "htb", "default", "10",
        ]);
        tc(&[
            "class", "add", "dev", &dev, "parent", "1:", "classid", "1:20", "htb", "rate", "1mbit",
        ]);
        tc(&[
            "qdisc", "add", "dev", &dev, "parent", "1:20", "handle", "20:", "pfifo", "limit", "0",
        ]);
        for &peer in peers {
            let dst = format!("{}/32", self.ip(peer));
            tc(&[
                "filter", "add", "dev", &dev, "parent", "1:", "protocol", "ip", "prio", "1", "u32",
                "match", "ip", "dst", &dst, "flowid", "1:20",
            ]);
        }
    }

    /// Cuts node `i` off from every other node, both ways; clients (the
    /// bridge's own address) still reach it.
    fn isolate(&self, i: usize) {
        let others: Vec<usize> = (0..self.size).filter(|j| *j != i).collect();
        self.drop_to(i, &others);
        for &j in &others {
            self.drop_to(j, &[i]);
        }
    }

    /// What each node's drop queue has dropped so far (`tc -s`), one line
    /// a node: evidence of whether a cut was in effect.
    fn drops(&self) -> String {
        (0..self.size)
            .map(|i| {
                let out = Command::new("tc")
                    .args([
                        "-s",
                        "-n",
                        &self.ns(i),
                        "qdisc",
                        "show",
                        "dev",
                        &self.inner(i),
                    ])
                    .output()
                    .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
                    .unwrap_or_else(|e| e.to_string());
                let drop_queue = out
                    .split("qdisc ")
                    .find(|q| q.starts_with("pfifo 20:"))
                    .map_or("no drop queue", |q| q.trim());
                format!("node {i}: {}", drop_queue.replace('\n', " "))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Every link passes everything again.
    fn heal(&self) {
        for i in 0..self.size {
            let (ns, dev) = (self.ns(i), self.inner(i));
            // A link without the qdisc refuses the delete: not an error.
            let _ = Command::new("tc")
                .args(["-n", &ns, "qdisc", "del", "dev", &dev, "root"])
                .output();
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for i in 0..self.size {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(i)])
                .output();
            // Gone with its peer in the namespace, unless that never got it.
            let _ = Command::new("ip")
                .args(["link", "del", &format!("{}h{i}", self.tag)])
                .output();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge()])
            .output();
    }
}

/// Three nodes, one per namespace.
struct Nodes {
    _servers: Vec<Server>,
    bases: Vec<String>,
    // Dropped after the servers (fields drop in order).
    net: Net,
    _root: tempfile::TempDir,
}

impl Nodes {
    fn start(size: usize) -> Nodes {
        let net = Net::new(size);
        let root = tempfile::tempdir().expect("temp dir");
        let secret = new_secret();
        let members: Vec<String> = (0..size)
            .map(|i| {
                format!(
                    "{{ id = {}, peer = \"{ip}:7101\", http = \"http://{ip}:8101\" }}",
                    i + 1,
                    ip = net.ip(i)
                )
            })
            .collect();
        let mut servers = Vec::new();
        for i in 0..size {
            let dir = root.path().join(format!("node{}", i + 1));
            std::fs::create_dir_all(&dir).expect("node dir");
            let config = format!(
                "[cluster]\nnode_id = {}\nsecret = \"{secret}\"\nnodes = [{}]\n",
                i + 1,
                members.join(", ")
            );
            std::fs::write(dir.join("config.toml"), config).expect("config written");
            servers.push(start_in(&net.ns(i), &dir));
        }
        let bases = (0..size)
            .map(|i| format!("http://{}:8101", net.ip(i)))
            .collect();
        Nodes {
            _servers: servers,
            bases,
            net,
            _root: root,
        }
    }

    /// The node other than `not` that answers `/leader` 200, waiting.
    async fn leader_other_than(&self, not: Option<usize>) -> usize {
        let http = probe_client();
        let deadline = Instant::now() + ELECTION_DEADLINE;
        loop {
            for (i, base) in self.bases.iter().enumerate() {
                if Some(i) == not {
                    continue;
                }
                let answer = http.get(format!("{base}/leader")).send().await;
                if answer.is_ok_and(|r| r.status() == StatusCode::OK) {
                    return i;
                }
            }
            assert!(Instant::now() < deadline, "no leader other than {not:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until every node shows the same state of `event`.
    async fn converged(&self, event: u64) -> Value {
        converged_on(&self.bases, event, Duration::from_secs(30)).await
    }
}

/// The binary in namespace `ns`, listening on every address there.
fn start_in(ns: &str, dir: &Path) -> Server {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns]).arg(binary());
    configure(&mut cmd, dir);
    // `ip netns exec` execs the binary: the child's PID is the server's.
    cmd.env("BOXOFFICE__SERVER__HOST", "0.0.0.0")
        .env("BOXOFFICE__SERVER__PORT", "8101");
    Server::start_with(cmd)
}

/// A client that gives up on a node that does not answer.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root for network namespaces; .ci/run runs it as root"]
async fn an_isolated_leader_answers_within_its_bound_and_nothing_from_its_old_state() {
    let nodes = Nodes::start(3);
    let http = client();
    let old = nodes.leader_other_than(None).await;
    let at = |i: usize, path: &str| format!("{}{path}", nodes.bases[i]);
    let (status, created) = request(
        &http,
        Method::POST,
        at(old, "/api/events"),
        Some(json!({"name": "partitioned", "totalTickets": 2})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let event = created["eventId"].as_u64().expect("id");
    let booking = |user: &str| format!("/api/events/{event}/bookings/{user}");
    for user in ["x", "q"] {
        let (status, booked) =
            request(&http, Method::PUT, at(old, &booking(user)), Some(json!({}))).await;
        assert_eq!(status, StatusCode::OK, "{booked}");
    }
    nodes.converged(event).await;

    nodes.net.isolate(old);
    let cut = Instant::now();
    // A change on the isolated leader: answered within its bound.
    let started = Instant::now();
    let bound = 2 * ELECTION_TIMEOUT + MARGIN;
    let answered = tokio::time::timeout(
        bound + Duration::from_secs(1),
        request(
            &http,
            Method::PUT,
            at(old, &booking("during")),
            Some(json!({})),
        ),
    )
    .await;
    let Ok((status, answer)) = answered else {
        panic!("a change on the isolated leader was held past {bound:?} (until the heal?)");
    };
    let waited = started.elapsed();
    println!("a change on the isolated leader: {status} after {waited:?}");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert!(
        waited <= bound,
        "held {waited:?}, over 2 x election_timeout_ms"
    );
    // Reads of that event there do not wait behind its pending change
    // (finding 3; before, each waited for the bound and answered 503):
    // they show the durable state, without the change.
    for (path, want) in [
        (format!("/api/events/{event}"), StatusCode::OK),
        (booking("x"), StatusCode::OK),
        (booking("during"), StatusCode::NOT_FOUND),
        ("/api/events".to_owned(), StatusCode::OK),
    ] {
        let started = Instant::now();
        let (status, seen) = request(&http, Method::GET, at(old, &path), None).await;
        println!(
            "GET {path} on the isolated leader: {status} after {:?}",
            started.elapsed()
        );
        assert_eq!(status, want, "GET {path}: {seen}");
    }
    let (_, seen) = request(
        &http,
        Method::GET,
        at(old, &format!("/api/events/{event}")),
        None,
    )
    .await;
    assert_eq!(
        seen["waitingListCount"], 0,
        "the pending booking is not shown: {seen}"
    );

    // The others elect a leader and move on.
    let new = nodes.leader_other_than(Some(old)).await;
    println!(
        "failover: node {new} leads {:?} after the cut",
        cut.elapsed()
    );
    let (status, cancelled) = request(&http, Method::DELETE, at(new, &booking("x")), None).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    let (status, booked) =
        request(&http, Method::PUT, at(new, &booking("z")), Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{booked}");
    assert_eq!(booked["booking"]["status"], "confirmed", "{booked}");

    // The old leader, still cut off, answers nothing from its old state.
    let (status, answer) =
        request(&http, Method::PUT, at(old, &booking("x")), Some(json!({}))).await;
    assert!(
        status == StatusCode::SERVICE_UNAVAILABLE || answer["booking"]["status"] != "confirmed",
        "the isolated node answered x's rebook {status} {answer}"
    );
    let (status, answer) = request(&http, Method::DELETE, at(old, &booking("z")), None).await;
    assert_ne!(
        status,
        StatusCode::NOT_FOUND,
        "z is unknown there: {answer}"
    );
    let leader = probe_client()
        .get(at(old, "/leader"))
        .send()
        .await
        .expect("leader check");
    assert_eq!(leader.status(), StatusCode::SERVICE_UNAVAILABLE);

    nodes.net.heal();
    let healed = Instant::now();
    // Changes go on through the new leader (or its successor) at once.
    let mut gap = Duration::ZERO;
    for n in 0..20 {
        let target = nodes.leader_other_than(None).await;
        let user = format!("after{n}");
        let started = Instant::now();
        let (status, answer) = request(
            &http,
            Method::PUT,
            at(target, &booking(&user)),
            Some(json!({})),
        )
        .await;
        gap = gap.max(started.elapsed());
        if status != StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(status, StatusCode::OK, "{answer}");
        }
    }
    println!(
        "after the heal: the slowest of 20 changes took {gap:?}; {:?} since the heal",
        healed.elapsed()
    );

    // Every node has the same state: x cancelled, q and z confirmed.
    let state = nodes.converged(event).await;
    assert_not_oversold(&state);
    for base in &nodes.bases {
        for (user, want) in [("x", "cancelled"), ("q", "confirmed"), ("z", "confirmed")] {
            let (status, seen) =
                request(&http, Method::GET, format!("{base}{}", booking(user)), None).await;
            assert_eq!(status, StatusCode::OK, "{seen}");
            assert_eq!(seen["booking"]["status"], want, "{user} on {base}: {seen}");
        }
    }
}

/// `boxoffice_cluster_term` of the node at `base`.
async fn term(base: &str) -> u64 {
    metric(&metrics(base).await, "boxoffice_cluster_term") as u64
}

/// Issue 35, finding 4: on c0394eb a follower cut off for 10 s went from
/// term 1 to 11 and, back, deposed the healthy leader (2.64 s without an
/// answered change). openraft 0.9 has no Pre-Vote; a node that does not
/// reach a majority of the voters does not campaign, so its term stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root for network namespaces; .ci/run runs it as root"]
async fn a_follower_cut_off_and_back_does_not_depose_the_leader() {
    let nodes = Nodes::start(3);
    let http = client();
    let leader = nodes.leader_other_than(None).await;
    let follower = (leader + 1) % 3;
    let at = |i: usize, path: &str| format!("{}{path}", nodes.bases[i]);
    let (status, created) = request(
        &http,
        Method::POST,
        at(leader, "/api/events"),
        Some(json!({"totalTickets": 1000})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let event = created["eventId"].as_u64().expect("id");
    nodes.converged(event).await;
    let before = term(&nodes.bases[leader]).await;

    nodes.net.isolate(follower);
    // Several election timeouts: without the guard, an election each.
    tokio::time::sleep(6 * ELECTION_TIMEOUT).await;
    let cut_off_term = term(&nodes.bases[follower]).await;
    println!("the cut-off follower's term: {before} before, {cut_off_term} after 6 s");
    nodes.net.heal();

    // Changes through the leader for 3 s after the heal: the longest wait
    // for an answer, and whether the leadership moved.
    let healed = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut n = 0;
    while healed.elapsed() < Duration::from_secs(3) {
        let started = Instant::now();
        let target = nodes.leader_other_than(None).await;
        let path = format!("/api/events/{event}/bookings/u{n}");
        let (status, answer) =
            request(&http, Method::PUT, at(target, &path), Some(json!({}))).await;
        if status == StatusCode::OK {
            n += 1;
        } else {
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
        }
        slowest = slowest.max(started.elapsed());
    }
    let after = term(&nodes.bases[leader]).await;
    println!("after the heal: {n} changes in 3 s, the slowest {slowest:?}; the leader's term {before} -> {after}");
    assert_eq!(cut_off_term, before, "the cut-off follower campaigned");
    assert_eq!(after, before, "the returning follower deposed the leader");
    assert_eq!(nodes.leader_other_than(None).await, leader);
    nodes.converged(event).await;
}

/// One booking a client asked for and what it was answered.
#[derive(Debug)]
struct Asked {
    node: usize,
    user: String,
    sent: Instant,
    answered: Instant,
    /// 0 when no answer came.
    status: u16,
    booking_id: Option<u64>,
    /// A repeat of a booking already answered.
    rebook: bool,
}

/// Books unique users through every node, round robin, until `stop`;
/// every third request books again the last user it was answered for (the
/// rebook rule: the same booking, no change, so a deposed node could only
/// answer it from its old state).
async fn book_until(
    bases: Vec<String>,
    event: u64,
    client: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    history: std::sync::Arc<History>,
) -> Vec<Asked> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let mut asked: Vec<Asked> = Vec::new();
    let mut n = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let node = (client + n) % bases.len();
        let again = asked.iter().rev().find(|a| a.status == 200);
        let (user, rebook) = match again {
            Some(a) if n % 3 == 2 => (a.user.clone(), true),
            _ => (format!("c{client}-{n}"), false),
        };
        n += 1;
        let sent = Instant::now();
        let res = http
            .put(format!(
                "{}/api/events/{event}/bookings/{user}",
                bases[node]
            ))
            .json(&json!({}))
            .send()
            .await;
        let answer = match res {
            Ok(res) => {
                let status = res.status();
                Some((status, res.json().await.unwrap_or(Value::Null)))
            }
            Err(_) => None,
        };
        let answered = Instant::now();
        let seen = answer.as_ref().map(|(status, body)| (*status, body));
        history.record(sent, answered, Op::book(&user, seen));
        let (status, booking_id) = answer.map_or((0, None), |(status, body)| {
            (status.as_u16(), body["booking"]["id"].as_u64())
        });
        asked.push(Asked {
            node,
            user,
            sent,
            answered,
            status,
            booking_id,
            rebook,
        });
    }
    asked
}

/// Bookings answered before another was sent, whose id is not below it:
/// real-time order broken (booking ids are handed out in commit order,
/// and a committed booking's id is below every later one's, across
/// leaders too).
fn out_of_order(asked: &[&Asked]) -> Vec<String> {
    let mut firsts: Vec<&&Asked> = asked.iter().filter(|a| !a.rebook).collect();
    let mut by_answer = firsts.clone();
    by_answer.sort_by_key(|a| a.answered);
    firsts.sort_by_key(|a| a.sent);
    let mut broken = Vec::new();
    let mut before = by_answer.iter().peekable();
    let mut highest: Option<(u64, &str)> = None;
    for b in firsts {
        while let Some(a) = before.next_if(|a| a.answered < b.sent) {
            let id = a.booking_id.unwrap_or(0);
            if highest.is_none_or(|(h, _)| id > h) {
                highest = Some((id, &a.user));
            }
        }
        if let (Some((h, user)), Some(id)) = (highest, b.booking_id) {
            if id <= h {
                broken.push(format!("{} (id {id}) after {user} (id {h})", b.user));
            }
        }
    }
    broken
}

/// The longest stretch in `[from, to]` without a 2xx answer.
fn longest_gap(asked: &[Asked], from: Instant, to: Instant) -> Duration {
    let mut times: Vec<Instant> = asked
        .iter()
        .filter(|a| a.status == 200 && a.answered >= from && a.answered <= to)
        .map(|a| a.answered)
        .collect();
    times.sort();
    let mut last = from;
    let mut gap = Duration::ZERO;
    for t in times.into_iter().chain([to]) {
        gap = gap.max(t - last);
        last = t;
    }
    gap
}

/// Bookings through all three nodes while the leader is cut off and after
/// the heal, then a check of the whole history: every acknowledged booking
/// is on every node with the id it was answered (0 lost, none twice), no
/// oversell, and no 2xx from the cut-off node for a request sent after the
/// cut (0 stale), and a booking answered before another was sent has the
/// lower id (real-time order: nobody overtaken). Failover and heal gaps are
/// printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root for network namespaces; .ci/run runs it as root"]
async fn bookings_through_every_node_across_a_partition_lose_nothing_and_answer_nothing_stale() {
    const TICKETS: u64 = 100;
    let nodes = Nodes::start(3);
    let http = client();
    let old = nodes.leader_other_than(None).await;
    let (status, created) = request(
        &http,
        Method::POST,
        format!("{}/api/events", nodes.bases[old]),
        Some(json!({"totalTickets": TICKETS})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let event = created["eventId"].as_u64().expect("id");
    nodes.converged(event).await;

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let history = std::sync::Arc::new(History::new());
    let clients: Vec<_> = (0..6)
        .map(|c| {
            let client = book_until(nodes.bases.clone(), event, c, stop.clone(), history.clone());
            tokio::spawn(client)
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    nodes.net.isolate(old);
    let cut = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let drops = nodes.net.drops();
    println!("drop queues before the heal:\n{drops}");
    nodes.net.heal();
    let healed = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut asked = Vec::new();
    for client in clients {
        asked.extend(client.await.expect("client task"));
    }
    let end = Instant::now();

    let state = nodes.converged(event).await;
    assert_not_oversold(&state);
    let acknowledged: Vec<&Asked> = asked.iter().filter(|a| a.status == 200).collect();
    let mut lost = Vec::new();
    for a in &acknowledged {
        for base in &nodes.bases {
            let url = format!("{base}/api/events/{event}/bookings/{}", a.user);
            let (status, seen) = request(&http, Method::GET, url, None).await;
            let held = status == StatusCode::OK
                && seen["booking"]["id"].as_u64() == a.booking_id
                && matches!(
                    seen["booking"]["status"].as_str(),
                    Some("confirmed" | "waiting")
                );
            if !held {
                lost.push(format!("{} on {base}: {status} {seen}", a.user));
            }
        }
    }
    let stale: Vec<&&Asked> = acknowledged
        .iter()
        .filter(|a| a.node == old && a.sent > cut && a.sent < healed)
        .collect();
    let overtaken = out_of_order(&acknowledged);
    let unanswered = asked.iter().filter(|a| a.status == 0).count();
    let refused = asked.iter().filter(|a| a.status == 503).count();
    let other: Vec<u16> = asked
        .iter()
        .map(|a| a.status)
        .filter(|s| ![0, 200, 503].contains(s))
        .collect();
    println!(
        "{} bookings asked, {} acknowledged, {refused} 503, {unanswered} unanswered; lost {}, stale {}, out of order {}; \
         longest stretch without a 2xx: {:?} after the cut, {:?} after the heal",
        asked.len(),
        acknowledged.len(),
        lost.len(),
        stale.len(),
        overtaken.len(),
        longest_gap(&asked, cut, healed),
        longest_gap(&asked, healed, end),
    );
    assert!(lost.is_empty(), "acknowledged and not held: {lost:#?}");
    let when: Vec<String> = stale
        .iter()
        .map(|a| {
            format!(
                "{} sent {:?} after the cut, answered {:?} after",
                a.user,
                a.sent - cut,
                a.answered - cut
            )
        })
        .collect();
    assert!(
        stale.is_empty(),
        "2xx from the cut-off node {old}: {when:#?}\n{stale:#?}\ndrop queues before the heal:\n{drops}"
    );
    assert!(
        overtaken.is_empty(),
        "real-time order broken: {overtaken:#?}"
    );
    assert!(other.is_empty(), "unexpected answers: {other:?}");
    let calls = history.calls();
    let settled = settled_on(&nodes.bases[0], event, &unanswered_users(&calls)).await;
    assert_linearizable(
        TICKETS,
        settle(calls, &settled),
        "every booking through every node",
    );
    let confirmed = state[0]["confirmedCount"].as_u64().expect("confirmed");
    // Answers lost on the way may still have been made: at least as many
    // confirmed as were acknowledged, up to the tickets.
    assert!(
        confirmed >= TICKETS.min(acknowledged.len() as u64),
        "{confirmed}"
    );
}
