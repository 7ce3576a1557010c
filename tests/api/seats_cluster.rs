//! Seats on a 3-node cluster through a leader's SIGKILL: every
//! acknowledged seat is on every node, and no seat is sold twice.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::cluster::{change, Cluster};
use crate::process::request;

/// The seats each acknowledged user holds, as the answers said.
type Acked = BTreeMap<String, Vec<String>>;

async fn book_some(cluster: &Cluster, event: u64, from: usize, to: usize, acked: &mut Acked) {
    for n in from..to {
        let user = format!("s{n}");
        let body = match n % 3 {
            0 => json!({"quantity": 1 + n % 4}),
            1 => json!({"quantity": 2, "together": false}),
            _ => json!({"quantity": 2, "category": "premium"}),
        };
        let path = format!("/api/events/{event}/bookings/{user}");
        let (status, got) = change(cluster, Method::PUT, &path, body).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_seat_survives_a_leader_kill_on_every_node() {
    let mut cluster = Cluster::start(3);
    let http = reqwest::Client::new();
    let seating = json!({"name": "Hall", "seating": {"sections": [
        {"name": "Stalls", "rowCount": 4, "seatsPerRow": 12},
        {"name": "Balcony", "category": "premium", "rows": [{"name": "A", "seats": 10, "gapsAfter": [5]}]}]}});
    let (status, created) = change(&cluster, Method::POST, "/api/events", seating).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let event = created["eventId"].as_u64().expect("id");
    let mut acked = Acked::new();
    book_some(&cluster, event, 0, 12, &mut acked).await;
    let leader = cluster.leader().await;
    cluster.kill(leader);
    book_some(&cluster, event, 12, 24, &mut acked).await;
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
        let (map, held) = seats_on(&cluster, i, event, &acked, index).await;
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
