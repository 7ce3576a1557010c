//! The operator surface: `/ready` and `/metrics`.

use std::collections::HashMap;

use reqwest::StatusCode;

use crate::helpers::spawn_app_with;

const ADMIN: &str = "metrics-test-token";

/// Samples of an OpenMetrics text: `name{labels}` to value.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_string(), value.parse().ok()?))
        })
        .collect()
}

async fn scrape(app: &crate::helpers::TestApp) -> HashMap<String, f64> {
    let res = app
        .client
        .get(format!("{}/metrics", app.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::OK);
    let kind = res.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    let text = res.text().await.expect("body");
    assert!(text.ends_with("# EOF\n"), "{text}");
    samples(&text)
}

#[actix_web::test]
async fn metrics_count_requests_by_route_pattern_and_what_bookings_got() {
    let app = spawn_app_with(|s| s.auth.admin_token = ADMIN.into()).await;
    let res = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("sent");
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "metrics are an organiser route"
    );

    let id = {
        let res = app
            .client
            .post(format!("{}/api/events", app.base))
            .bearer_auth(ADMIN)
            .json(&serde_json::json!({"totalTickets": 1}))
            .send()
            .await
            .expect("sent");
        let body: serde_json::Value = res.json().await.expect("json");
        body["event"]["id"].as_u64().expect("id")
    };
    for user in ["alice", "bob"] {
        let url = format!("{}/api/events/{id}/bookings/{user}", app.base);
        assert_eq!(
            app.client.put(url).send().await.expect("sent").status(),
            StatusCode::OK
        );
    }
    let url = format!("{}/api/events/{id}/bookings/alice", app.base);
    assert_eq!(
        app.client.delete(url).send().await.expect("sent").status(),
        StatusCode::OK
    );
    assert_eq!(app.get("/api/status/424242").await.0, StatusCode::NOT_FOUND);

    let m = scrape(&app).await;
    let put = r#"boxoffice_http_requests_total{route="/api/events/{eventId}/bookings/{userId}",method="PUT",status="200"}"#;
    assert_eq!(m.get(put), Some(&2.0), "{m:#?}");
    let missing =
        r#"boxoffice_http_requests_total{route="/api/status/{eventId}",method="GET",status="404"}"#;
    assert_eq!(m.get(missing), Some(&1.0));
    assert_eq!(
        m.get(r#"boxoffice_bookings_total{outcome="confirmed"}"#),
        Some(&1.0)
    );
    assert_eq!(
        m.get(r#"boxoffice_bookings_total{outcome="waiting"}"#),
        Some(&1.0)
    );
    assert_eq!(m.get("boxoffice_cancellations_total"), Some(&1.0));
    assert_eq!(m.get("boxoffice_promotions_total"), Some(&1.0));
    assert_eq!(m.get("boxoffice_events"), Some(&1.0));
    // A single node is its own leader in term 0, its journal's positions;
    // behind the proxy, the cluster's leader answers, in a term of its own.
    assert_eq!(m.get("boxoffice_cluster_is_leader"), Some(&1.0));
    let cluster = crate::helpers::cluster_mode();
    let term = m.get("boxoffice_cluster_term").copied().unwrap_or(-1.0);
    assert!(
        if cluster { term >= 1.0 } else { term == 0.0 },
        "term {term}"
    );
    let changes = m.get("boxoffice_cluster_leader_changes_total").copied();
    assert_eq!(changes >= Some(1.0), cluster, "{changes:?}");
    assert_eq!(m.get("boxoffice_cluster_snapshot_index"), Some(&0.0));
    assert_eq!(m.get("boxoffice_cluster_purged_index"), Some(&0.0));
    let applied = m.get("boxoffice_cluster_applied_index").copied();
    assert!(
        applied >= Some(3.0),
        "create, two bookings, a cancel: {m:#?}"
    );
    assert!(m.get("boxoffice_cluster_commit_index").copied() <= applied);
    let resident = m
        .get("boxoffice_resident_memory_bytes")
        .copied()
        .unwrap_or(0.0);
    assert!(resident > 1e6, "resident memory is reported: {resident}");
    let batches = m
        .get("boxoffice_journal_batch_records_count")
        .copied()
        .unwrap_or(0.0);
    // (A cluster node keeps its changes in its Raft log, not the journal.)
    assert!(
        batches >= 1.0 || cluster,
        "journal batches are counted: {m:#?}"
    );
    assert!(
        m.keys()
            .all(|k| !k.contains("alice") && !k.contains("/424242")),
        "no user id or raw path in a label"
    );

    // The 401 above and these scrapes are counted too.
    let again = scrape(&app).await;
    let scrapes = r#"boxoffice_http_requests_total{route="/metrics",method="GET",status="200"}"#;
    assert_eq!(again.get(scrapes), Some(&1.0));
    app.stop().await;
}

#[actix_web::test]
async fn ready_is_public_and_says_ready() {
    let app = spawn_app_with(|s| s.auth.admin_token = ADMIN.into()).await;
    let (status, body) = app.get("/ready").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready");
    app.stop().await;
}

/// A single node is its own leader: `/leader` says so to anyone, past the
/// rate limit too, and `/api/cluster` (organiser) shows no members.
#[actix_web::test]
async fn a_single_node_is_its_own_leader() {
    let app = spawn_app_with(|s| {
        s.auth.admin_token = ADMIN.into();
        s.rate_limit.enabled = true;
        s.rate_limit.requests = 2;
    })
    .await;
    // More than the quota: /leader is not counted.
    for _ in 0..3 {
        let (status, body) = app.get("/leader").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, serde_json::json!({"leader": true}));
    }
    let res = app
        .client
        .get(format!("{}/api/cluster", app.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::OK);
    let cluster: serde_json::Value = res.json().await.expect("json");
    assert_eq!(cluster["node_id"], 0);
    assert_eq!(cluster["role"], "leader");
    assert_eq!(cluster["members"], serde_json::json!([]));
    assert!(cluster["commit_index"].as_u64().is_some(), "{cluster}");
    let (status, _) = app.get("/api/cluster").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "an organiser route");
    app.stop().await;
}

/// A cluster node that stops closes its peer listener with its Raft
/// runtime: the port is free again, and no peer can reach a node that is
/// gone (a leaked listener once kept a stopped test cluster answering).
#[actix_web::test]
async fn a_stopped_cluster_node_lets_go_of_its_peer_port() {
    use crate::cluster::{hold_node_ports, new_secret, ELECTION_DEADLINE};
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = crate::helpers::test_settings(dir.path());
    // Held (bound, never listening) for the whole test: a bind below
    // fails only while the node itself listens.
    let held = hold_node_ports();
    let (http, peer) = (held.0.port, held.1.port);
    settings.server.port = http;
    settings.cluster.node_id = 1;
    settings.cluster.secret = new_secret();
    settings.cluster.nodes = vec![boxoffice::config::NodeAddress {
        id: 1,
        peer: format!("127.0.0.1:{peer}"),
        http: format!("http://127.0.0.1:{http}"),
    }];
    let app = crate::helpers::serve(settings, dir);
    let deadline = std::time::Instant::now() + ELECTION_DEADLINE;
    while app.get("/leader").await.0 != StatusCode::OK {
        assert!(std::time::Instant::now() < deadline, "no leader");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let event = app.create_event(1).await;
    assert_eq!(app.counts(event).await, (0, 1, 0));
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", peer)).is_err(),
        "the running node listens for peers"
    );
    app.stop().await;
    std::net::TcpListener::bind(("127.0.0.1", peer)).expect("the peer port is free once stopped");
}
