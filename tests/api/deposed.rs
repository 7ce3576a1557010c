//! A leader deposed while it was paused (SIGSTOP past the election
//! timeout; the others elect a new one and move on) must not answer from
//! its old state when it wakes: not a rebook's "confirmed" for a booking
//! the new leader cancelled, not a 404 for a booking made since, not
//! `GET /leader` 200 (issue 35, findings 1 and 2: on c0394eb the woken
//! node answered both from its stale state within milliseconds).

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::cluster::{book, change, create_event, probe_client, Cluster, ELECTION_DEADLINE};
use super::process::request;

fn signal(cluster: &Cluster, node: usize, signal: Signal) {
    let server = cluster.nodes[node].server.as_ref().expect("running");
    kill(Pid::from_raw(server.child.id() as i32), signal).expect("signal sent");
}

/// The node, other than `not`, that answers `/leader` with 200.
async fn other_leader(cluster: &Cluster, not: usize) -> usize {
    let http = probe_client();
    let deadline = Instant::now() + ELECTION_DEADLINE;
    loop {
        for (i, node) in cluster.nodes.iter().enumerate() {
            if i == not {
                continue;
            }
            let answer = http.get(format!("{}/leader", node.base())).send().await;
            if answer.is_ok_and(|r| r.status() == StatusCode::OK) {
                return i;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no new leader while node {not} was paused"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_woken_from_a_pause_answers_nothing_from_its_old_state() {
    let cluster = Cluster::start(3);
    for round in 0..3 {
        let old = cluster.leader().await;
        let event = create_event(&cluster, &format!("deposed {round}"), 2).await;
        for user in ["x", "q"] {
            let (status, booked) = book(&cluster, event, user).await;
            assert_eq!(status, StatusCode::OK, "{booked}");
        }
        // Every node has both bookings before the pause.
        cluster.converged(event).await;

        signal(&cluster, old, Signal::SIGSTOP);
        let new = other_leader(&cluster, old).await;
        let (status, cancelled) = change(
            &cluster,
            Method::DELETE,
            &format!("/api/events/{event}/bookings/x"),
            json!({}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{cancelled}");
        let (status, booked) = book(&cluster, event, "z").await;
        assert_eq!(status, StatusCode::OK, "{booked}");
        assert_eq!(booked["booking"]["status"], "confirmed", "{booked}");
        signal(&cluster, old, Signal::SIGCONT);
        // A connection of its own: one pooled from an earlier round sat
        // idle through the pause, and the woken node closes it (its
        // keep-alive ran out), racing the request sent on it.
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .expect("client");

        // At once, straight to the woken node: x's rebook must not be
        // "confirmed" (x has no ticket), z's cancel must not be 404 (z
        // holds a ticket), and it must not claim the leadership.
        let base = cluster.nodes[old].base();
        let rebook = format!("{base}/api/events/{event}/bookings/x");
        let (status, answer) = request(&http, Method::PUT, rebook, Some(json!({}))).await;
        assert!(
            status == StatusCode::SERVICE_UNAVAILABLE || answer["booking"]["status"] != "confirmed",
            "round {round}: the deposed node {old} answered x's rebook {status} {answer}"
        );
        let cancel = format!("{base}/api/events/{event}/bookings/z");
        let (status, answer) = request(&http, Method::DELETE, cancel, None).await;
        assert_ne!(
            status,
            StatusCode::NOT_FOUND,
            "round {round}: the deposed node {old} did not know z's booking: {answer}"
        );
        let leader = http
            .get(format!("{base}/leader"))
            .send()
            .await
            .expect("leader check");
        assert_eq!(
            leader.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "round {round}: node {old} woke and claimed the leadership node {new} holds"
        );

        // The cluster's state: x cancelled, z confirmed, no oversell.
        let state = cluster.converged(event).await;
        super::cluster::assert_not_oversold(&state);
    }
}
