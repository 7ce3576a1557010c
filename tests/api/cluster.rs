//! Three nodes of the real binary on loopback, replicated by Raft: changes
//! only on the leader, reads anywhere (and read-your-writes with
//! `X-Boxoffice-Min-Index`), and no answered change lost when the leader
//! is SIGKILLed, when every node is, or when a node restarts.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::process::{command, request, try_event_state, Server};

/// A secret of its own for each cluster a test starts. Tests run side by
/// side in one process and a stopped node's port may be handed to another
/// test's node at once: with one shared secret the first cluster's leader
/// would go on appending to the second cluster's node (openraft itself
/// panicked on such a message carrying its own vote), with its own they
/// are refused at the handshake.
pub fn new_secret() -> String {
    static CLUSTERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = CLUSTERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(
        "cluster-test-secret-{}-{n}-of-32-bytes-or-more",
        std::process::id()
    )
}
/// How long the cluster may take to elect a leader before the test fails.
pub const ELECTION_DEADLINE: Duration = Duration::from_secs(20);

/// HAProxy started by a test from `deploy/cluster/haproxy.cfg` with its
/// listener and nodes moved to the test's ports; stopped (by its PID) when
/// dropped.
pub struct Proxy {
    child: std::process::Child,
    pub base: String,
    dir: tempfile::TempDir,
    _port: HeldPort,
}

impl Proxy {
    /// In front of the nodes listening on `ports` (at most 3).
    pub fn start(ports: &[u16]) -> Proxy {
        Self::start_with(ports, |config| config)
    }

    /// [`Self::start`], with the deploy config passed through `edit`
    /// first.
    pub fn start_with(ports: &[u16], edit: impl FnOnce(String) -> String) -> Proxy {
        let template = edit(
            std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/deploy/cluster/haproxy.cfg"
            ))
            .expect("deploy/cluster/haproxy.cfg"),
        );
        let held = hold_port();
        let port = held.port;
        let mut config = template.replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"));
        for (i, node) in ports.iter().enumerate() {
            config = config.replace(
                &format!("127.0.0.1:810{}", i + 1),
                &format!("127.0.0.1:{node}"),
            );
        }
        assert!(!config.contains(":810"), "every node's port rewritten");
        // Sessions that ended abnormally (a 5xx, a cut connection) with
        // their termination state, so a failing test says what the proxy
        // saw (printed by `Drop` when the test panics).
        assert!(config.contains("\ndefaults\n"), "a defaults section");
        let config = config.replacen(
            "\ndefaults\n",
            "\n    log stderr format raw daemon\n\ndefaults\n    log global\n    \
             option httplog\n    option dontlog-normal\n",
            1,
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config).expect("haproxy.cfg written");
        let log = std::fs::File::create(dir.path().join("haproxy.log")).expect("haproxy.log");
        let child = std::process::Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("haproxy on the PATH (apt-get install haproxy)");
        Proxy {
            child,
            base: format!("http://127.0.0.1:{port}"),
            dir,
            _port: held,
        }
    }

    /// What HAProxy logged: abnormal sessions, servers going up and down.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("haproxy.log")).unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // For a diagnosis of runs that pass: every proxy's log kept in
        // that directory, by HAProxy's PID.
        if let Some(keep) = std::env::var_os("BOXOFFICE_TEST_PROXY_LOGS") {
            let to = PathBuf::from(keep).join(format!("haproxy-{}.log", self.child.id()));
            let _ = std::fs::copy(self.dir.path().join("haproxy.log"), to);
        }
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("HAProxy's log, last {} lines:", tail.len());
            for line in tail.iter().rev() {
                eprintln!("  {line}");
            }
        }
    }
}

/// A loopback port held for one of a test's servers for as long as the
/// test keeps this value: bound with `SO_REUSEADDR` and never listening.
/// The kernel gives a port in use to no automatic bind, so no other test's
/// port 0 lands on it, while our servers (the binary, HAProxy, a peer
/// listener: each binds with `SO_REUSEADDR`) may listen on it, stop, and
/// listen on it again; with nobody listening a connect is refused, as for a
/// free port. A port found free and released before its server binds it
/// could be handed to another test in between (CI once failed with
/// "binding peer address ...: Address already in use").
pub struct HeldPort {
    _socket: socket2::Socket,
    pub port: u16,
}

pub fn hold_port() -> HeldPort {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("a socket");
    socket.set_reuse_address(true).expect("SO_REUSEADDR");
    let any: std::net::SocketAddr = ([127, 0, 0, 1], 0).into();
    socket.bind(&any.into()).expect("a free loopback port");
    let port = socket
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map(|a| a.port())
        .expect("the held port");
    HeldPort {
        _socket: socket,
        port,
    }
}

/// A node's HTTP and peer ports, held for the node's life.
pub fn hold_node_ports() -> (HeldPort, HeldPort) {
    (hold_port(), hold_port())
}

pub struct Node {
    pub dir: PathBuf,
    pub port: u16,
    pub server: Option<Server>,
    /// Its HTTP and peer ports, held across its restarts.
    _ports: (HeldPort, HeldPort),
}

impl Node {
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    /// More `[cluster]` keys every node gets.
    extra: String,
    /// Environment variables every node gets (after the test defaults).
    env: Vec<(String, String)>,
    /// This cluster's `cluster.secret`.
    pub secret: String,
    _root: tempfile::TempDir,
}

impl Cluster {
    pub fn start(size: usize) -> Cluster {
        Self::start_with(size, "")
    }

    /// [`Self::start`], with `extra` lines in every node's `[cluster]`.
    pub fn start_with(size: usize, extra: &str) -> Cluster {
        Self::start_with_env(size, extra, &[])
    }

    /// [`Self::start_with`], with `env` in every node's environment.
    pub fn start_with_env(size: usize, extra: &str, env: &[(&str, &str)]) -> Cluster {
        let root = tempfile::tempdir().expect("temp dir");
        let secret = new_secret();
        let ports: Vec<(HeldPort, HeldPort)> = (0..size).map(|_| hold_node_ports()).collect();
        let members: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (http, peer))| {
                format!(
                    "{{ id = {}, peer = \"127.0.0.1:{}\", http = \"http://127.0.0.1:{}\" }}",
                    i + 1,
                    peer.port,
                    http.port
                )
            })
            .collect();
        let mut nodes = Vec::new();
        for (i, held) in ports.into_iter().enumerate() {
            let dir = root.path().join(format!("node{}", i + 1));
            std::fs::create_dir_all(&dir).expect("node dir");
            let config = format!(
                "[cluster]\nnode_id = {}\nsecret = \"{secret}\"\nnodes = [{}]\n{extra}",
                i + 1,
                members.join(", ")
            );
            std::fs::write(dir.join("config.toml"), config).expect("config written");
            nodes.push(Node {
                dir,
                port: held.0.port,
                server: None,
                _ports: held,
            });
        }
        let mut cluster = Cluster {
            nodes,
            extra: extra.to_string(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            secret,
            _root: root,
        };
        for i in 0..size {
            cluster.boot(i);
        }
        cluster
    }

    /// A new node that joins (`cluster.join = true`) with id `id`, a fresh
    /// directory and fresh ports, started; its index.
    pub fn add_joining(&mut self, root: &std::path::Path, id: u64) -> (usize, String) {
        let (i, peer) = self.prepare_joining(root, id);
        self.boot(i);
        (i, peer)
    }

    /// [`Self::add_joining`] without starting it.
    pub fn prepare_joining(&mut self, root: &std::path::Path, id: u64) -> (usize, String) {
        let held = hold_node_ports();
        let (http, peer) = (held.0.port, held.1.port);
        let dir = root.join(format!("node{id}"));
        std::fs::create_dir_all(&dir).expect("node dir");
        let config = format!(
            "[cluster]\nnode_id = {id}\nsecret = \"{}\"\njoin = true\nnodes = [{{ id = {id}, peer = \"127.0.0.1:{peer}\", http = \"http://127.0.0.1:{http}\" }}]\n{}",
            self.secret, self.extra
        );
        std::fs::write(dir.join("config.toml"), config).expect("config written");
        self.nodes.push(Node {
            dir,
            port: http,
            server: None,
            _ports: held,
        });
        (self.nodes.len() - 1, format!("127.0.0.1:{peer}"))
    }

    pub fn boot(&mut self, i: usize) {
        self.boot_with_env(i, &[]);
    }

    /// [`Self::boot`], with `env` added for this start only.
    pub fn boot_with_env(&mut self, i: usize, env: &[(&str, &str)]) {
        let node = &mut self.nodes[i];
        let mut cmd = command(&node.dir);
        cmd.env("BOXOFFICE__SERVER__PORT", node.port.to_string());
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.envs(env.iter().copied());
        node.server = Some(Server::start_with(cmd));
    }

    /// Stops node `i` with SIGTERM and waits for it.
    pub fn stop(&mut self, i: usize) {
        if let Some(server) = self.nodes[i].server.take() {
            server.stop_with(Signal::SIGTERM);
        }
    }

    pub fn kill(&mut self, i: usize) {
        if let Some(server) = self.nodes[i].server.take() {
            server.stop_with(Signal::SIGKILL);
        }
    }

    /// The node that answers `/leader` with 200, waiting for one.
    pub async fn leader(&self) -> usize {
        let http = probe_client();
        let deadline = Instant::now() + ELECTION_DEADLINE;
        loop {
            for (i, node) in self.nodes.iter().enumerate() {
                if node.server.is_none() {
                    continue;
                }
                let answer = http.get(format!("{}/leader", node.base())).send().await;
                if answer.is_ok_and(|r| r.status() == StatusCode::OK) {
                    return i;
                }
            }
            assert!(Instant::now() < deadline, "no leader elected");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until node `i` names node `leader` as the leader (its
    /// `/leader` answer's `leader_url`): a follower that has not heard from
    /// a new leader yet (a loaded machine delays heartbeats) has nobody to
    /// forward a change to and answers `NOT_LEADER` after the election
    /// timeout, as the contract says.
    pub async fn knows_leader(&self, i: usize, leader: usize) {
        let http = probe_client();
        let want = json!(self.nodes[leader].base());
        let deadline = Instant::now() + ELECTION_DEADLINE;
        loop {
            let url = format!("{}/leader", self.nodes[i].base());
            if let Ok(res) = http.get(url).send().await {
                if res
                    .json::<Value>()
                    .await
                    .is_ok_and(|b| b["leader_url"] == want)
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "node {i} never named node {leader} the leader"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until every running node shows the same state of `event`
    /// (a node that has not applied its creation yet answers 404).
    pub async fn converged(&self, event: u64) -> Value {
        let bases: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| n.server.is_some())
            .map(Node::base)
            .collect();
        converged_on(&bases, event, Duration::from_secs(15)).await
    }
}

/// Waits up to `within` until every node at `bases` shows the same state
/// of `event` (a node that has not applied its creation yet answers 404).
pub async fn converged_on(bases: &[String], event: u64, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let mut states = Vec::new();
        for base in bases {
            states.push(try_event_state(base, event).await.unwrap_or_else(
                |(status, answer)| json!({"not yet": status.as_u16(), "answer": answer}),
            ));
        }
        if states.windows(2).all(|w| w[0] == w[1]) && states[0].get("not yet").is_none() {
            return states.swap_remove(0);
        }
        assert!(
            Instant::now() < deadline,
            "nodes did not converge: {states:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A reply's `X-Boxoffice-Index`.
pub fn index_of(res: &reqwest::Response) -> u64 {
    res.headers()
        .get("x-boxoffice-index")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("X-Boxoffice-Index on the reply")
}

impl Cluster {
    /// Waits until every running node serves the same change feed
    /// (`GET /api/changes`, all of it) and it passes `complete`; its items.
    pub async fn feeds_agree(&self, complete: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let mut feeds = Vec::new();
            for node in self.nodes.iter().filter(|n| n.server.is_some()) {
                let mut items = Vec::new();
                let mut after = 0;
                loop {
                    let url = format!("{}/api/changes?after={after}&limit=1000", node.base());
                    let (status, page) = request(&http, Method::GET, url, None).await;
                    assert_eq!(status, StatusCode::OK, "{page}");
                    let page_items = page["items"].as_array().cloned().unwrap_or_default();
                    if page_items.is_empty() {
                        break;
                    }
                    after = page["next"].as_u64().expect("next");
                    items.extend(page_items);
                }
                feeds.push(items);
            }
            if feeds.windows(2).all(|w| w[0] == w[1]) && complete(&feeds[0]) {
                return feeds.swap_remove(0);
            }
            let lengths: Vec<usize> = feeds.iter().map(Vec::len).collect();
            assert!(
                Instant::now() < deadline,
                "the nodes' feeds differ or lack answered changes (lengths {lengths:?}): {feeds:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The first message of the live stream at `url`: its id and data.
pub async fn first_live_message(url: &str) -> (u64, Value) {
    use futures_util::StreamExt;
    let res = reqwest::get(url).await.expect("stream opened");
    assert_eq!(res.status(), StatusCode::OK, "{url}");
    let mut body = res.bytes_stream();
    let mut buffer = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(end) = buffer.find("\n\n") {
            let frame = &buffer[..end];
            let field = |name: &str| {
                frame
                    .lines()
                    .find_map(|line| line.strip_prefix(name).map(str::to_string))
            };
            if let Some(data) = field("data: ") {
                let id = field("id: ").and_then(|id| id.parse().ok()).expect("an id");
                return (id, serde_json::from_str(&data).expect("JSON data"));
            }
            buffer.drain(..end + 2);
            continue;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, body.next())
            .await
            .unwrap_or_else(|_| panic!("no message on {url}"))
            .expect("the stream ended")
            .expect("a chunk");
        buffer.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
    }
}

/// Every running node's first live message at `path` is the same, id
/// included (ids are change indexes); that id.
pub async fn live_ids_agree(cluster: &Cluster, path: &str) -> u64 {
    let mut firsts = Vec::new();
    for node in cluster.nodes.iter().filter(|n| n.server.is_some()) {
        firsts.push(first_live_message(&format!("{}{path}", node.base())).await);
    }
    assert!(
        firsts.windows(2).all(|w| w[0] == w[1]),
        "{path} differs between nodes: {firsts:#?}"
    );
    firsts[0].0
}

/// Every `(user, booking id)` answered is on the node at `base` with
/// that id.
pub async fn assert_answered_on(base: &str, event: u64, answered: &[(String, u64)]) {
    let http = reqwest::Client::new();
    for (user, id) in answered {
        let url = format!("{base}/api/events/{event}/bookings/{user}");
        let (status, booking) = request(&http, Method::GET, url, None).await;
        assert_eq!(status, StatusCode::OK, "{booking}");
        assert_eq!(booking["booking"]["id"].as_u64(), Some(*id), "{booking}");
    }
}

/// Books `user` on `event` through the leader (retried while it elects).
pub async fn book(cluster: &Cluster, event: u64, user: &str) -> (StatusCode, Value) {
    let path = format!("/api/events/{event}/bookings/{user}");
    change(cluster, Method::PUT, &path, json!({})).await
}

/// A client for `/leader` probes: a node that is paused (SIGSTOP) still
/// accepts connections in its kernel backlog but never answers, so a probe
/// gives up on it and moves to the next node.
pub fn probe_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .expect("probe client")
}

/// Creates an event named `name` through the leader; its id.
pub async fn create_event(cluster: &Cluster, name: &str, tickets: u64) -> u64 {
    let body = json!({"name": name, "totalTickets": tickets});
    let (status, created) = change(cluster, Method::POST, "/api/events", body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["eventId"].as_u64().expect("event id")
}

/// A change through the leader, retried on another leader while the
/// cluster elects one; the answer and the node that gave it.
pub async fn change(
    cluster: &Cluster,
    method: Method,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + ELECTION_DEADLINE;
    loop {
        let leader = cluster.leader().await;
        let url = format!("{}{path}", cluster.nodes[leader].base());
        let (status, answer) = request(&http, method.clone(), url, Some(body.clone())).await;
        if status != StatusCode::SERVICE_UNAVAILABLE {
            return (status, answer);
        }
        assert!(Instant::now() < deadline, "no leader took {path}: {answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of the label-less sample `name` in a Prometheus text page.
pub fn metric(page: &str, name: &str) -> f64 {
    page.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} in {page}"))
}

/// `GET {base}/metrics`.
pub async fn metrics(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text")
}

/// Waits (up to the election deadline) until `name` on `base` passes
/// `ready`; its value then.
async fn wait_for_metric(base: &str, name: &str, ready: impl Fn(f64) -> bool) -> f64 {
    let deadline = Instant::now() + ELECTION_DEADLINE;
    loop {
        let value = metric(&metrics(base).await, name);
        if ready(value) {
            return value;
        }
        assert!(Instant::now() < deadline, "{name} on {base} stayed {value}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// No more tickets confirmed than the event has.
pub fn assert_not_oversold(state: &Value) {
    let status = &state[0];
    let confirmed = status["confirmedCount"].as_u64().expect("confirmedCount");
    let total = status["totalTickets"].as_u64().expect("totalTickets");
    assert!(confirmed <= total, "oversold: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_keep_every_answered_change_through_leader_and_whole_cluster_kills() {
    let mut cluster = Cluster::start(3);
    let http = reqwest::Client::new();
    let started = Instant::now();
    let leader = cluster.leader().await;
    println!(
        "first leader: node {} after {:?}",
        leader + 1,
        started.elapsed()
    );

    let event = create_event(&cluster, "on-sale", 5).await;

    // A change sent to a follower is forwarded to the leader (contract
    // v4, Corrections): the client gets the leader's answer and its index.
    let follower = (leader + 1) % 3;
    let other = create_event(&cluster, "forwarded", 1).await;
    cluster.knows_leader(follower, leader).await;
    let res = http
        .put(format!(
            "{}/api/events/{other}/bookings/via-follower",
            cluster.nodes[follower].base()
        ))
        .json(&json!({}))
        .send()
        .await
        .expect("booking sent");
    assert_eq!(res.status(), StatusCode::OK);
    let index = index_of(&res);
    let booked: Value = res.json().await.expect("JSON");
    assert_eq!(booked["booking"]["status"], "confirmed", "{booked}");
    // The leader made it: a read on the leader at that index shows it.
    let res = http
        .get(format!(
            "{}/api/events/{other}/bookings/via-follower",
            cluster.nodes[leader].base()
        ))
        .header("X-Boxoffice-Min-Index", index.to_string())
        .send()
        .await
        .expect("read sent");
    assert_eq!(res.status(), StatusCode::OK);
    let seen: Value = res.json().await.expect("JSON");
    assert_eq!(seen["booking"]["status"], "confirmed", "{seen}");
    // A follower is healthy (it serves reads and streams), only not the leader.
    for path in ["/health", "/ready"] {
        let (status, body) = request(
            &http,
            Method::GET,
            format!("{}{path}", cluster.nodes[follower].base()),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{path} on a follower: {body}");
    }
    let (status, body) = request(
        &http,
        Method::GET,
        format!("{}/leader", cluster.nodes[follower].base()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["leader"], false);

    // The cluster families of /metrics: the leader leads, the follower not.
    for (node, leads) in [(leader, 1), (follower, 0)] {
        let metrics = metrics(&cluster.nodes[node].base()).await;
        assert!(
            metrics.contains(&format!("\nboxoffice_cluster_is_leader {leads}\n")),
            "{metrics}"
        );
        let term = metric(&metrics, "boxoffice_cluster_term");
        assert!(term >= 1.0, "term {term}");
        assert!(metric(&metrics, "boxoffice_cluster_leader_changes_total") >= 1.0);
        assert!(metric(&metrics, "boxoffice_cluster_applied_index") >= 1.0);
    }

    let mut answered: Vec<(String, u64)> = Vec::new();
    let mut last_index = 0;
    for n in 0..8 {
        let user = format!("u{n}");
        let res = http
            .put(format!(
                "{}/api/events/{event}/bookings/{user}",
                cluster.nodes[leader].base()
            ))
            .json(&json!({}))
            .send()
            .await
            .expect("booking sent");
        assert!(res.status().is_success(), "{}", res.status());
        last_index = index_of(&res);
        let body: Value = res.json().await.expect("JSON");
        answered.push((user, body["booking"]["id"].as_u64().expect("id")));
    }
    // Read-your-writes on a follower.
    let res = http
        .get(format!(
            "{}/api/events/{event}/bookings/u7",
            cluster.nodes[follower].base()
        ))
        .header("X-Boxoffice-Min-Index", last_index.to_string())
        .send()
        .await
        .expect("read sent");
    assert_eq!(res.status(), StatusCode::OK);
    let index = index_of(&res);
    assert!(index >= last_index);
    let res = http
        .get(format!(
            "{}/api/events/{event}",
            cluster.nodes[follower].base()
        ))
        .header("X-Boxoffice-Min-Index", "x")
        .send()
        .await
        .expect("read sent");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // SIGKILL the leader; the others elect a new one and go on.
    let killed_at = Instant::now();
    cluster.kill(leader);
    let (status, cancelled) = change(
        &cluster,
        Method::DELETE,
        &format!("/api/events/{event}/bookings/u0"),
        json!({}),
    )
    .await;
    println!("leader SIGKILL: next 2xx after {:?}", killed_at.elapsed());
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(
        cancelled["promoted"]["user_id"], "u5",
        "the first waiting is promoted"
    );
    for n in 8..10 {
        let user = format!("u{n}");
        let (status, booked) = book(&cluster, event, &user).await;
        assert!(status.is_success(), "{booked}");
        answered.push((user, booked["booking"]["id"].as_u64().expect("id")));
    }
    // The killed node comes back with its disk and catches up.
    cluster.boot(leader);
    let state = cluster.converged(event).await;
    assert_not_oversold(&state);
    for node in &cluster.nodes {
        for (user, id) in &answered[1..] {
            let (status, booking) = request(
                &http,
                Method::GET,
                format!("{}/api/events/{event}/bookings/{user}", node.base()),
                None,
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{booking}");
            assert_eq!(booking["booking"]["id"].as_u64(), Some(*id), "{booking}");
        }
    }

    // Live streams: the same first message, id included, on every node.
    let status_id = live_ids_agree(&cluster, &format!("/api/events/{event}/live")).await;
    let booking_id =
        live_ids_agree(&cluster, &format!("/api/events/{event}/bookings/u7/live")).await;
    assert!(status_id >= booking_id && booking_id > 0);

    // Every node SIGKILLed at once, then started again: the same state.
    for i in 0..3 {
        cluster.kill(i);
    }
    for i in 0..3 {
        cluster.boot(i);
    }
    let restarted_at = Instant::now();
    cluster.leader().await;
    println!(
        "whole cluster restart: leader after {:?}",
        restarted_at.elapsed()
    );
    let again = cluster.converged(event).await;
    assert_eq!(again, state, "the state after every node was killed");
    assert_eq!(
        live_ids_agree(&cluster, &format!("/api/events/{event}/live")).await,
        status_id,
        "the same state, the same id, after every node restarted"
    );
    let (status, booked) = book(&cluster, event, "late").await;
    assert!(status.is_success(), "{booked}");
    let ids: Vec<u64> = answered.iter().map(|(_, id)| *id).collect();
    let id = booked["booking"]["id"].as_u64().expect("id");
    assert!(!ids.contains(&id), "booking id {id} given twice");

    // The change feed: the same items with the same indexes on every node,
    // gap-free from 1, across the leader's death and every node's restart.
    // (A node writes a committed change's items to its feed just after
    // applying it: wait for the last answered booking to be there too.)
    answered.push((String::from("late"), id));
    let holds = |feed: &[Value], (user, id): &(String, u64)| {
        feed.iter().any(|i| {
            i["type"] == "booking"
                && i["booking"]["user_id"] == user.as_str()
                && i["booking"]["id"].as_u64() == Some(*id)
        })
    };
    let feed = cluster
        .feeds_agree(|feed| answered.iter().all(|booking| holds(feed, booking)))
        .await;
    let indexes: Vec<u64> = feed
        .iter()
        .map(|i| i["index"].as_u64().expect("index"))
        .collect();
    assert_eq!(indexes, (1..=indexes.len() as u64).collect::<Vec<_>>());
}

/// Waits until `GET {base}/api/cluster` lists member `id` as a voter.
pub async fn wait_until_voter(base: &str, id: u64, within: Duration) {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + within;
    loop {
        let (_, view) = request(&http, Method::GET, format!("{base}/api/cluster"), None).await;
        let votes = view["members"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|m| m["id"] == id && m["voter"] == true);
        if votes {
            return;
        }
        assert!(Instant::now() < deadline, "node {id} never voted: {view}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `GET /api/cluster` on node `i`.
async fn cluster_view(cluster: &Cluster, i: usize) -> Value {
    let http = reqwest::Client::new();
    let (status, body) = request(
        &http,
        Method::GET,
        format!("{}/api/cluster", cluster.nodes[i].base()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_node_is_replaced_by_a_new_member_that_catches_up_and_votes() {
    // A snapshot every 10 entries: the leader's log is cut long before the
    // new member comes, so it catches up from a snapshot.
    let mut cluster = Cluster::start_with(3, "snapshot_entries = 10\n");
    let http = reqwest::Client::new();
    let event = create_event(&cluster, "replaced", 4).await;
    let mut answered = Vec::new();
    for n in 0..30 {
        let user = format!("r{n}");
        let (status, booked) = book(&cluster, event, &user).await;
        assert!(status.is_success(), "{booked}");
        answered.push((user, booked["booking"]["id"].as_u64().expect("id")));
    }

    // A follower's disk is lost: it is stopped, wiped and removed.
    let leader = cluster.leader().await;
    let lost = (leader + 1) % 3;
    cluster.kill(lost);
    std::fs::remove_dir_all(cluster.nodes[lost].dir.join("snapshots")).expect("wiped");
    let base = cluster.nodes[leader].base();
    let (status, removed) = request(
        &http,
        Method::DELETE,
        format!("{base}/api/cluster/members/{}", lost + 1),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    assert_eq!(
        removed["members"].as_array().map(Vec::len),
        Some(2),
        "{removed}"
    );
    let (status, again) = request(
        &http,
        Method::DELETE,
        format!("{base}/api/cluster/members/{}", lost + 1),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{again}");

    // The leader has dropped the start of its log: what it holds from
    // there is in its snapshot, which is what a new member gets.
    let purged = wait_for_metric(&base, "boxoffice_cluster_purged_index", |v| v > 0.0).await;
    let snapshot = metric(&metrics(&base).await, "boxoffice_cluster_snapshot_index");
    assert!(snapshot > purged, "snapshot {snapshot}, purged {purged}");
    assert!(
        std::fs::metadata(
            cluster.nodes[leader]
                .dir
                .join("snapshots/raft/snapshot.bin")
        )
        .is_ok_and(|m| m.len() > 0),
        "the leader's snapshot file"
    );

    // A new node, started to join, is added on the leader.
    let root = tempfile::tempdir().expect("temp dir");
    let (added, peer) = cluster.add_joining(root.path(), 4);
    let member = json!({"peer": peer, "http": cluster.nodes[added].base()});
    // PUT /api/cluster/members/{id} on the node at `at`.
    let put_member = |at: String, id: u64, body: Value| {
        request(
            &http,
            Method::PUT,
            format!("{at}/api/cluster/members/{id}"),
            Some(body),
        )
    };
    let (status, bad) = put_member(
        base.clone(),
        4,
        json!({"peer": "no port", "http": cluster.nodes[added].base()}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    // Every refusal says what the field must be, never a bare rule name.
    let (status, short) = put_member(base.clone(), 4, json!({"peer": "a", "http": "h"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{short}");
    for detail in short["details"].as_array().expect("details") {
        let message = detail["message"].as_str().expect("a message");
        assert!(message.len() > 20 && message.contains(' '), "{short}");
    }
    // Sent to a follower, it is forwarded to the leader.
    let other = (leader + 2) % 3;
    let (status, accepted) = put_member(cluster.nodes[other].base(), 4, member.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    assert_eq!(accepted["member"]["id"], 4);
    let clashes = [
        // Node 4 at other addresses.
        (
            4,
            json!({"peer": "127.0.0.1:1", "http": "http://127.0.0.1:1"}),
        ),
        // Another id at node 4's address: a leader would send to itself.
        (5, member.clone()),
    ];
    for (id, body) in clashes {
        let (status, clash) = put_member(base.clone(), id, body).await;
        assert_eq!(status, StatusCode::CONFLICT, "{clash}");
        assert_eq!(clash["code"], "MEMBERSHIP_CONFLICT");
    }

    // It catches up as a learner and then votes.
    wait_until_voter(&base, 4, ELECTION_DEADLINE).await;
    let state = cluster.converged(event).await;
    assert_not_oversold(&state);
    let added_base = cluster.nodes[added].base();
    assert_answered_on(&added_base, event, &answered).await;
    let view = cluster_view(&cluster, added).await;
    assert_eq!(view["role"], "follower", "{view}");
    // Its streams' ids carry on from the snapshot's change indexes.
    live_ids_agree(&cluster, &format!("/api/events/{event}/live")).await;
    live_ids_agree(&cluster, &format!("/api/events/{event}/bookings/r3/live")).await;
    // Its state came from a snapshot: it holds one, and it never had the
    // entries before the leader's cut.
    wait_for_metric(&added_base, "boxoffice_cluster_snapshot_index", |v| {
        v >= purged
    })
    .await;

    // With the third original node gone too, the leader and node 4 are a
    // majority of three: changes still commit.
    cluster.kill(other);
    let (status, booked) = book(&cluster, event, "after").await;
    assert!(status.is_success(), "{booked}");

    // Node 4 SIGKILLed and restarted: its state comes back from its
    // snapshot and the log after it, and it votes again (the leader alone
    // is no majority: the next change commits only with it back).
    cluster.kill(added);
    cluster.boot(added);
    let (status, booked) = book(&cluster, event, "after-restart").await;
    assert!(status.is_success(), "{booked}");
    let state = cluster.converged(event).await;
    assert_not_oversold(&state);
    assert_answered_on(&added_base, event, &answered).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_finishes_making_its_predecessor_s_learner_a_voter() {
    let mut cluster = Cluster::start(3);
    let http = reqwest::Client::new();
    create_event(&cluster, "learner", 2).await;

    // Node 4 is added while it is not running yet: a learner that cannot
    // catch up, which the leader waits on.
    let root = tempfile::tempdir().expect("temp dir");
    let (added, peer) = cluster.prepare_joining(root.path(), 4);
    let leader = cluster.leader().await;
    let member = json!({"peer": peer, "http": cluster.nodes[added].base()});
    let (status, accepted) = request(
        &http,
        Method::PUT,
        format!("{}/api/cluster/members/4", cluster.nodes[leader].base()),
        Some(member),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");

    // That leader dies; the new one takes the waiting over.
    cluster.kill(leader);
    let (status, booked) = book(&cluster, 1, "after-failover").await;
    assert!(status.is_success(), "{booked}");
    let successor = cluster.leader().await;
    assert_ne!(successor, leader);
    cluster.boot(added);
    wait_until_voter(&cluster.nodes[successor].base(), 4, ELECTION_DEADLINE).await;
    let state = cluster.converged(1).await;
    assert_not_oversold(&state);
}
