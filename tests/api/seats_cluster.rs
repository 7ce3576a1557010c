//! Seats on a 3-node cluster through a leader's SIGKILL, sent to the
//! leader and through HAProxy as clients reach a cluster: every
//! acknowledged seat is on every node, and no seat is sold twice.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::cluster::{change, Cluster, Proxy, ELECTION_DEADLINE};
use crate::process::request;

/// The seats each acknowledged user holds, as the answers said.
type Acked = BTreeMap<String, Vec<String>>;

/// Where changes go: to the leader the test finds, or through a proxy.
enum Via {
    Leader,
    Proxy(String),
}

impl Via {
    /// The answer of a node that decided `method path` (a 5xx of the
    /// cluster or the proxy, or no answer, is sent again: nothing changed,
    /// or the rebook rule answers the repeat with the same booking).
    async fn change(
        &self,
        cluster: &Cluster,
        method: Method,
        path: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let base = match self {
            Via::Leader => return change(cluster, method, path, body).await,
            Via::Proxy(base) => base,
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + ELECTION_DEADLINE;
        loop {
            let mut req = http
                .request(method.clone(), format!("{base}{path}"))
                .json(&body);
            if method == Method::POST {
                // A create is safe to send again only under a key.
                req = req.header("Idempotency-Key", "seats-through-the-proxy");
            }
            let res = req.send().await;
            if let Ok(res) = res {
                let status = res.status();
                // 503: nothing changed; 502 and 504 (the proxy's, for a
                // node that stopped answering): maybe changed. Either is
                // sent again, as the contract allows for these changes.
                let retry = [
                    StatusCode::BAD_GATEWAY,
                    StatusCode::SERVICE_UNAVAILABLE,
                    StatusCode::GATEWAY_TIMEOUT,
                ];
                if let Ok(answer) = res.json::<Value>().await {
                    if !retry.contains(&status) {
                        return (status, answer);
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "no node took {path} through the proxy"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn book_some(
    cluster: &Cluster,
    via: &Via,
    event: u64,
    users: std::ops::Range<usize>,
    acked: &mut Acked,
) {
    for n in users {
        let user = format!("s{n}");
        let body = match n % 3 {
            0 => json!({"quantity": 1 + n % 4}),
            1 => json!({"quantity": 2, "together": false}),
            _ => json!({"quantity": 2, "category": "premium"}),
        };
        let path = format!("/api/events/{event}/bookings/{user}");
        let (status, got) = via.change(cluster, Method::PUT, &path, body).await;
        assert_eq!(status, StatusCode::OK, "{got}");
        let seats: Vec<String> = got["booking"]["seats"]
            .as_array()
            .expect("seats")
            .iter()
            .map(|s| s.as_str().expect("id").to_string())
            .collect();
        if got["booking"]["status"] == "confirmed" {
            acked.insert(user, seats);
        }
    }
}

/// The map and every acknowledged user's seats on node `i`, once it has
/// applied everything acknowledged (reads wait for `X-Boxoffice-Min-Index`).
async fn seats_on(
    cluster: &Cluster,
    i: usize,
    event: u64,
    acked: &Acked,
    index: u64,
) -> (Value, Acked) {
    let http = reqwest::Client::new();
    let base = cluster.nodes[i].base();
    let read = |path: String| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                let res = http
                    .get(format!("{base}{path}"))
                    .header("X-Boxoffice-Min-Index", index.to_string())
                    .send()
                    .await;
                if let Ok(res) = res {
                    if res.status() == StatusCode::OK {
                        return res.json::<Value>().await.expect("JSON");
                    }
                }
                assert!(Instant::now() < deadline, "node {i} never answered {path}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let map = read(format!("/api/events/{event}/seats")).await;
    let mut held = Acked::new();
    for user in acked.keys() {
        let booking = read(format!("/api/events/{event}/bookings/{user}")).await;
        let seats = booking["booking"]["seats"]
            .as_array()
            .expect("seats")
            .iter()
            .map(|s| s.as_str().expect("id").to_string())
            .collect();
        held.insert(user.clone(), seats);
    }
    (map, held)
}

/// A hall of 58 seats: two sections, a category, a gap.
fn hall() -> Value {
    json!({"name": "Hall", "seating": {"sections": [
        {"name": "Stalls", "rowCount": 4, "seatsPerRow": 12},
        {"name": "Balcony", "category": "premium", "rows": [{"name": "A", "seats": 10, "gapsAfter": [5]}]}]}})
}

/// Books, kills the leader, books on, boots it again, then checks every
/// node: each acknowledged booking's seats, one map, no seat sold twice,
/// the map's booked seats exactly the acknowledged ones.
async fn through_a_leader_kill(cluster: &mut Cluster, via: Via) {
    let http = reqwest::Client::new();
    let (status, created) = via
        .change(cluster, Method::POST, "/api/events", hall())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let event = created["eventId"].as_u64().expect("id");
    let mut acked = Acked::new();
    book_some(cluster, &via, event, 0..12, &mut acked).await;
    let leader = cluster.leader().await;
    cluster.kill(leader);
    book_some(cluster, &via, event, 12..24, &mut acked).await;
    cluster.boot(leader);
    // The newest index any node has: reads everywhere wait for it.
    let new_leader = cluster.leader().await;
    let (_, probe) = request(
        &http,
        Method::GET,
        format!("{}/api/cluster", cluster.nodes[new_leader].base()),
        None,
    )
    .await;
    let index = probe["commit_index"].as_u64().unwrap_or(0);
    let mut maps = Vec::new();
    for i in 0..3 {
        let (map, held) = seats_on(cluster, i, event, &acked, index).await;
        assert_eq!(held, acked, "node {i}: every acknowledged booking's seats");
        maps.push(map["sections"].clone());
    }
    assert!(
        maps.windows(2).all(|w| w[0] == w[1]),
        "the same map on every node"
    );
    let sold: Vec<&String> = acked.values().flatten().collect();
    let mut distinct = sold.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), sold.len(), "no seat sold twice: {acked:?}");
    let booked: usize = maps[0]
        .as_array()
        .expect("sections")
        .iter()
        .flat_map(|s| s["rows"].as_array().expect("rows").iter())
        .map(|r| r["states"].as_str().expect("states").matches('b').count())
        .sum();
    assert_eq!(
        booked,
        sold.len(),
        "the map shows exactly the acknowledged seats"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_seat_survives_a_leader_kill_on_every_node() {
    let mut cluster = Cluster::start(3);
    through_a_leader_kill(&mut cluster, Via::Leader).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs haproxy; .ci/run runs it against the release build"]
async fn cluster_proxy_keeps_every_acknowledged_seat_through_a_leader_kill() {
    let mut cluster = Cluster::start(3);
    cluster.leader().await;
    let ports: Vec<u16> = cluster.nodes.iter().map(|n| n.port).collect();
    let proxy = Proxy::start(&ports);
    through_a_leader_kill(&mut cluster, Via::Proxy(proxy.base.clone())).await;
}
