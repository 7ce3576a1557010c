//! Starting the service in-process and talking to it.

use boxoffice::config::Settings;
use boxoffice::startup::Application;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::oneshot;

/// A running service on a free port with its own snapshot directory; with
/// `BOXOFFICE_TEST_CLUSTER=1`, three nodes of a cluster behind HAProxy
/// (see [`spawn_app_with`]).
pub struct TestApp {
    /// `http://127.0.0.1:PORT`: the service, or the proxy in front of it.
    pub base: String,
    /// A client with connection reuse.
    pub client: reqwest::Client,
    /// Completing these stops the service (each node).
    stops: Vec<oneshot::Sender<()>>,
    /// The service tasks, which return after the final snapshot.
    tasks: Vec<tokio::task::JoinHandle<Result<(), boxoffice::startup::StopError>>>,
    /// Snapshot directory (a cluster's: each node's below it), removed
    /// when the test ends.
    pub dir: tempfile::TempDir,
    /// HAProxy in front of a cluster.
    _proxy: Option<crate::cluster::Proxy>,
    /// A cluster's nodes' ports, held until the test ends.
    _ports: Vec<(crate::cluster::HeldPort, crate::cluster::HeldPort)>,
}

/// Whether the tests run against a cluster behind HAProxy
/// (`BOXOFFICE_TEST_CLUSTER=1`; `.ci/run` does so after the plain run).
pub fn cluster_mode() -> bool {
    std::env::var_os("BOXOFFICE_TEST_CLUSTER").is_some_and(|v| v == "1")
}

/// Settings for tests: port 0, a temporary snapshot dir, no rate limit, quiet.
pub fn test_settings(dir: &std::path::Path) -> Settings {
    let mut s = Settings::default();
    s.server.port = 0;
    s.server.workers = 2;
    s.rate_limit.enabled = false;
    s.snapshot.dir = dir.to_path_buf();
    s.log.access_log = false;
    s
}

/// Starts the service with default test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the service after `tweak` adjusts the test settings. In cluster
/// mode ([`cluster_mode`]) the same settings start three nodes of a
/// cluster in this process, each with its own directory and ports, behind
/// HAProxy from `deploy/cluster/haproxy.cfg`, and `base` is the proxy.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = test_settings(dir.path());
    tweak(&mut settings);
    if cluster_mode() {
        return spawn_cluster(settings, dir).await;
    }
    serve(settings, dir)
}

/// Starts one process's service with `settings` as they are (whatever the
/// mode), with `dir` removed when the test ends.
pub fn serve(settings: Settings, dir: tempfile::TempDir) -> TestApp {
    let app = Application::build(settings).expect("service builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let (stop, task) = run(app);
    TestApp {
        base,
        client: reqwest::Client::new(),
        stops: vec![stop],
        tasks: vec![task],
        dir,
        _proxy: None,
        _ports: Vec::new(),
    }
}

type ServiceTask = tokio::task::JoinHandle<Result<(), boxoffice::startup::StopError>>;

fn run(app: Application) -> (oneshot::Sender<()>, ServiceTask) {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = actix_web::rt::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    (stop, task)
}

/// Three cluster nodes with `settings` behind HAProxy, once a leader is
/// elected and the proxy routes to it.
async fn spawn_cluster(settings: Settings, dir: tempfile::TempDir) -> TestApp {
    use crate::cluster::{hold_node_ports, new_secret, Proxy};
    // The nodes' warnings and errors (elections, lost heartbeats) on the
    // test binary's stderr, timestamped: a test that fails because the
    // proxy lost its leader shows why (installed once per process).
    boxoffice::logging::init("warn");
    let held: Vec<_> = (0..3).map(|_| hold_node_ports()).collect();
    let ports: Vec<(u16, u16)> = held.iter().map(|(h, p)| (h.port, p.port)).collect();
    let nodes: Vec<boxoffice::config::NodeAddress> = ports
        .iter()
        .enumerate()
        .map(|(i, (http, peer))| boxoffice::config::NodeAddress {
            id: i as u64 + 1,
            peer: format!("127.0.0.1:{peer}"),
            http: format!("http://127.0.0.1:{http}"),
        })
        .collect();
    let secret = new_secret();
    let (mut stops, mut tasks) = (Vec::new(), Vec::new());
    for (i, (http, _)) in ports.iter().enumerate() {
        let mut node = settings.clone();
        node.server.port = *http;
        node.snapshot.dir = dir.path().join(format!("node{}", i + 1));
        node.cluster.node_id = i as u64 + 1;
        node.cluster.nodes = nodes.clone();
        node.cluster.secret = secret.clone();
        // This suite checks the API, not failover (tests/api/cluster*.rs
        // do): three debug-build nodes and a burst of 1,000 requests on two
        // cores can hold a heartbeat's answer past the default second, and
        // the leader's check (`/leader`: a quorum within the election
        // timeout) would take it out of HAProxy with its sessions.
        node.cluster.election_timeout_ms = 3_000;
        // As deploy/cluster/node*.toml: every connection is the proxy's,
        // which forwards the client's address.
        if node.server.trusted_proxies.is_empty() {
            node.server.trusted_proxies = vec!["127.0.0.1".into()];
        }
        let app = Application::build(node).expect("cluster node builds");
        let (stop, task) = run(app);
        stops.push(stop);
        tasks.push(task);
    }
    // Live streams to the leader too: these tests read their own writes
    // on a stream right after making them, which a follower may not have
    // applied yet (tests/api/cluster.rs checks streams on every node).
    let any_node = "    use_backend any_node if live METH_GET\n";
    // And, as with the election timeout above, a leader slowed by a burst
    // stays in: a check may take 5 s, it takes three failed checks to mark
    // it down, and marking it down would not cut its sessions. The deploy
    // config drops a leader after one check of 1 s, for a quick failover
    // (tests/api/cluster_proxy.rs measures that with it as it is).
    let rewrites = [
        (any_node, ""),
        (
            "default-server inter 250ms fall 1 rise 1 on-marked-down shutdown-sessions",
            "default-server inter 250ms fall 3 rise 1",
        ),
        ("    timeout check 1s\n", "    timeout check 5s\n"),
    ];
    let proxy = Proxy::start_with(
        &ports.iter().map(|(http, _)| *http).collect::<Vec<_>>(),
        |mut config| {
            for (deploy, here) in rewrites {
                assert!(config.contains(deploy), "the deploy config has {deploy:?}");
                config = config.replace(deploy, here);
            }
            config
        },
    );
    // HAProxy counts every server up until its first checks: wait until
    // it sends every request to the leader (followers answer 503 until
    // their checks mark them down).
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + crate::cluster::ELECTION_DEADLINE;
    let mut in_a_row = 0;
    while in_a_row < 12 {
        let leader = client.get(format!("{}/leader", proxy.base)).send().await;
        if leader.is_ok_and(|r| r.status() == StatusCode::OK) {
            in_a_row += 1;
        } else {
            in_a_row = 0;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no leader behind the proxy"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    TestApp {
        base: proxy.base.clone(),
        client,
        stops,
        tasks,
        dir,
        _proxy: Some(proxy),
        _ports: held,
    }
}

impl TestApp {
    /// Sends a request with an optional JSON body; returns status and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status();
        let text = res.text().await.expect("body read");
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("non-JSON answer {status}: {text:?}"));
        (status, body)
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    /// `GET path` as text (`/metrics`).
    pub async fn text(&self, path: &str) -> String {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("sent")
            .text()
            .await
            .expect("body read")
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    /// Creates an event with `tickets` tickets; returns its id.
    pub async fn create_event(&self, tickets: u64) -> u64 {
        let (status, body) = self
            .post("/api/initialize", json!({"totalTickets": tickets}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["event"]["id"].as_u64().expect("event id")
    }

    /// An event's counters from its status: (confirmed, available, waiting).
    pub async fn counts(&self, event: u64) -> (u64, u64, u64) {
        let (status, body) = self.get(&format!("/api/status/{event}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let n = |key: &str| {
            body[key]
                .as_u64()
                .unwrap_or_else(|| panic!("{key} in {body}"))
        };
        (
            n("confirmedCount"),
            n("availableTickets"),
            n("waitingListCount"),
        )
    }

    /// A page of an event's waiting list as (user, position) pairs, with the
    /// whole answer for any further checks.
    pub async fn waiting(&self, event: u64, query: &str) -> (Vec<(String, u64)>, Value) {
        let (status, page) = self
            .get(&format!("/api/events/{event}/waiting-list?{query}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| {
                let user = i["user_id"].as_str().expect("user").to_string();
                (user, i["waiting_position"].as_u64().expect("position"))
            })
            .collect();
        (items, page)
    }

    /// Books through the seed route; returns the booking object.
    pub async fn book(&self, event: u64, user: &str) -> Value {
        let (status, body) = self
            .post("/api/book", json!({"eventId": event, "userId": user}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["booking"].clone()
    }

    /// Stops the service (final snapshot included), waits for it, and hands
    /// back the snapshot directory.
    pub async fn stop(self) -> tempfile::TempDir {
        let TestApp {
            stops,
            tasks,
            dir,
            _proxy,
            ..
        } = self;
        drop(_proxy);
        for stop in stops {
            let _ = stop.send(());
        }
        for task in tasks {
            task.await.expect("service task").expect("clean stop");
        }
        dir
    }
}

/// Asserts an error answer: status, code, and a human sentence.
pub fn assert_error(got: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["code"], code, "{}", got.1);
    assert!(
        got.1["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{}",
        got.1
    );
}
