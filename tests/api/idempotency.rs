//! `Idempotency-Key` on creates: a repeat within a day answers the first
//! create and creates nothing, another body with the key is 409, and keys
//! survive a clean restart and a crash.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app, spawn_app_with, TestApp};

async fn create(app: &TestApp, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
    create_at(&app.client, &app.base, path, key, body).await
}

async fn create_at(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    key: &str,
    body: Value,
) -> (StatusCode, Value) {
    let res = client
        .post(format!("{base}{path}"))
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await
        .expect("sent");
    let status = res.status();
    (status, res.json().await.expect("json"))
}

async fn event_count(app: &TestApp) -> u64 {
    app.get("/api/events").await.1["total"]
        .as_u64()
        .expect("total")
}

#[actix_web::test]
async fn a_repeated_create_answers_the_first_reply_and_creates_nothing() {
    let app = spawn_app().await;
    let body = json!({"totalTickets": 3, "name": "Gig"});
    let (status, first) = create(&app, "/api/initialize", "order-1", body.clone()).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = first["event"]["id"].as_u64().expect("id");
    // The event changes; the repeat still answers the first reply.
    app.book(id, "alice").await;
    for path in ["/api/initialize", "/api/events"] {
        let (status, again) = create(&app, path, "order-1", body.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{path}");
        assert_eq!(again, first, "{path}: the first reply, as it was");
    }
    assert_eq!(event_count(&app).await, 1);
    // Another key is another create.
    let (status, other) = create(&app, "/api/events", "order-2", body.clone()).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_ne!(other["event"]["id"], first["event"]["id"]);
    // The same key with another request changes nothing.
    let got = create(&app, "/api/events", "order-1", json!({"totalTickets": 4})).await;
    assert_error(&got, StatusCode::CONFLICT, "IDEMPOTENCY_CONFLICT");
    assert_eq!(event_count(&app).await, 2);
    app.stop().await;
}

#[actix_web::test]
async fn concurrent_repeats_make_exactly_one_event() {
    let app = spawn_app().await;
    let mut answers = Vec::new();
    for _ in 0..20 {
        let (client, base) = (app.client.clone(), app.base.clone());
        answers.push(tokio::spawn(async move {
            create_at(
                &client,
                &base,
                "/api/events",
                "same-key",
                json!({"totalTickets": 5}),
            )
            .await
        }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for answer in answers {
        let (status, body) = answer.await.expect("joined");
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.insert(body["event"]["id"].as_u64().expect("id"));
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(event_count(&app).await, 1);
    app.stop().await;
}

#[actix_web::test]
async fn a_bad_key_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    for key in [String::new(), "k".repeat(256), "tab\there".into()] {
        let got = create(&app, "/api/events", &key, json!({"totalTickets": 1})).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
        assert_eq!(got.1["details"][0]["field"], "Idempotency-Key", "{}", got.1);
    }
    assert_eq!(event_count(&app).await, 0);
    app.stop().await;
}

/// Contract v4, Corrections: which of two keys a client meant cannot be
/// known, and taking either could create twice (c0394eb took one silently).
#[actix_web::test]
async fn a_key_sent_twice_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let res = app
        .client
        .post(format!("{}/api/events", app.base))
        .header("idempotency-key", "first")
        .header("idempotency-key", "second")
        .json(&json!({"totalTickets": 1}))
        .send()
        .await
        .expect("sent");
    let got = (res.status(), res.json().await.expect("json"));
    assert_error(&got, StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    assert_eq!(got.1["details"][0]["field"], "Idempotency-Key", "{}", got.1);
    assert_eq!(event_count(&app).await, 0);
    app.stop().await;
}

#[actix_web::test]
async fn keys_survive_a_clean_restart() {
    let app = spawn_app().await;
    // With a waiting room: the key keeps the room's settings too.
    let body = json!({"totalTickets": 2, "roomAdmitPerMinute": 30, "roomAdmitSecs": 120});
    let (_, first) = create(&app, "/api/events", "k", body.clone()).await;
    let dir = app.stop().await;
    let app = spawn_app_with(|s| s.snapshot.dir = dir.path().to_path_buf()).await;
    let (status, again) = create(&app, "/api/events", "k", body).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again, first);
    assert_eq!(event_count(&app).await, 1);
    assert_eq!(again["event"]["room_admit_per_minute"], 30);
    let got = create(&app, "/api/events", "k", json!({"totalTickets": 3})).await;
    assert_error(&got, StatusCode::CONFLICT, "IDEMPOTENCY_CONFLICT");
    let other_room = json!({"totalTickets": 2, "roomAdmitPerMinute": 31, "roomAdmitSecs": 120});
    let got = create(&app, "/api/events", "k", other_room).await;
    assert_error(&got, StatusCode::CONFLICT, "IDEMPOTENCY_CONFLICT");
    app.stop().await;
    drop(dir);
}

#[test]
fn keys_survive_a_crash() {
    use crate::process::{command, Server};
    let dir = tempfile::tempdir().expect("dir");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let client = reqwest::Client::new();
    let body = json!({"totalTickets": 2, "roomAdmitPerMinute": 5});
    let server = Server::start_with(command(dir.path()));
    let first = rt.block_on(create_at(
        &client,
        &server.base,
        "/api/events",
        "k",
        body.clone(),
    ));
    assert_eq!(first.0, StatusCode::CREATED);
    // Killed before any snapshot: only the journal has the key.
    let _ = server.stop_with(nix::sys::signal::Signal::SIGKILL);
    let server = Server::start_with(command(dir.path()));
    let again = rt.block_on(create_at(&client, &server.base, "/api/events", "k", body));
    assert_eq!(again, first);
    assert_eq!(again.1["event"]["room_admit_per_minute"], 5);
    let total = rt.block_on(async {
        client
            .get(format!("{}/api/events", server.base))
            .send()
            .await
            .expect("sent")
            .json::<Value>()
            .await
            .expect("json")["total"]
            .clone()
    });
    assert_eq!(total, 1);
    let _ = server.stop_with(nix::sys::signal::Signal::SIGTERM);
}
