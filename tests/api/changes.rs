//! The change feed (`GET /api/changes`, `/api/changes/live`): every
//! committed change in order, the same after a crash, 410 past what the
//! journal keeps; and webhooks: the feed POSTed, signed, to a receiver
//! that fails, stalls and answers late, with nothing skipped across a
//! SIGKILL of the service.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use nix::sys::signal::Signal;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app, spawn_app_with, TestApp};
use crate::process::{command, Server};

async fn page(client: &reqwest::Client, base: &str, query: &str) -> (StatusCode, Value) {
    let res = client
        .get(format!("{base}/api/changes?{query}"))
        .send()
        .await
        .expect("sent");
    let status = res.status();
    (status, res.json().await.expect("json"))
}

/// Every item after `after`, a page of `limit` at a time.
async fn all_after(client: &reqwest::Client, base: &str, after: u64, limit: u64) -> Vec<Value> {
    let mut items = Vec::new();
    let mut after = after;
    loop {
        let (status, body) = page(client, base, &format!("after={after}&limit={limit}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let got = body["items"].as_array().expect("items").clone();
        if got.is_empty() {
            assert_eq!(
                body["next"], after,
                "next stays at after when nothing comes"
            );
            return items;
        }
        after = body["next"].as_u64().expect("next");
        assert_eq!(Some(after), got.last().and_then(|i| i["index"].as_u64()));
        items.extend(got);
    }
}

fn summary(items: &[Value]) -> Vec<(u64, String, String)> {
    items
        .iter()
        .map(|i| {
            let kind = i["type"].as_str().expect("type").to_string();
            let what = match kind.as_str() {
                "event" => format!("event {}", i["event"]["available_tickets"]),
                _ => format!("{} {}", i["booking"]["user_id"], i["booking"]["status"]),
            };
            (i["index"].as_u64().expect("index"), kind, what)
        })
        .collect()
}

#[actix_web::test]
async fn the_feed_shows_every_change_in_order_with_promotions_after_their_cause() {
    let app = spawn_app().await;
    let id = app.create_event(1).await;
    app.book(id, "ann").await;
    app.book(id, "bob").await;
    let (status, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/events/{id}/bookings/ann"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let items = all_after(&app.client, &app.base, 0, 2).await;
    assert_eq!(
        summary(&items),
        vec![
            (1, "event".into(), "event 1".into()),
            (2, "booking".into(), "\"ann\" \"confirmed\"".into()),
            (3, "booking".into(), "\"bob\" \"waiting\"".into()),
            (4, "booking".into(), "\"ann\" \"cancelled\"".into()),
            (5, "booking".into(), "\"bob\" \"confirmed\"".into()),
        ]
    );
    // The cancellation and the promotion it made share their moment.
    assert_eq!(items[3]["at"], items[4]["at"]);
    assert_ne!(items[2]["at"], items[3]["at"]);
    for item in &items {
        assert_eq!(item["event_id"], id);
        assert_eq!(item["entry"], Value::Null);
        let kind = item["type"].as_str().expect("type");
        assert_eq!(item["event"].is_null(), kind != "event");
        assert_eq!(item["booking"].is_null(), kind != "booking");
    }
    // Past the end: nothing, and `next` stays.
    let (status, body) = page(&app.client, &app.base, "after=99").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"items": [], "next": 99}));
    // Bad queries change nothing and say which field.
    for bad in ["after=-1", "after=x", "limit=0", "limit=1001"] {
        let got = page(&app.client, &app.base, bad).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    }
    app.stop().await;
}

#[actix_web::test]
async fn the_feed_is_for_the_organiser_only() {
    let app = spawn_app_with(|s| s.auth.admin_token = "sesame-sesame".into()).await;
    let got = app.get("/api/changes").await;
    assert_error(&got, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let res = app
        .client
        .get(format!("{}/api/changes/live", app.base))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = app
        .client
        .get(format!("{}/api/changes", app.base))
        .bearer_auth("sesame-sesame")
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::OK);
    app.stop().await;
}

/// Reads SSE messages from `res` until `n` have come: (id, data).
async fn sse_messages(res: &mut reqwest::Response, n: usize) -> Vec<(u64, Value)> {
    let mut buffer = String::new();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, res.chunk())
            .await
            .expect("messages in time")
            .expect("read")
            .expect("the stream goes on");
        buffer.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        while let Some(end) = buffer.find("\n\n") {
            let message: String = buffer.drain(..end + 2).collect();
            let mut id = None;
            let mut data = None;
            for line in message.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    id = v.parse().ok();
                }
                if let Some(v) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(v).ok();
                }
                if let Some(v) = line.strip_prefix("event: ") {
                    assert_eq!(v, "change");
                }
            }
            if let (Some(id), Some(data)) = (id, data) {
                out.push((id, data));
            }
        }
    }
    out
}

#[actix_web::test]
async fn the_live_feed_sends_what_is_kept_then_each_new_change_and_resumes_by_id() {
    let app = spawn_app().await;
    let id = app.create_event(5).await;
    app.book(id, "ann").await;
    let mut res = app
        .client
        .get(format!("{}/api/changes/live?after=0", app.base))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::OK);
    let first = sse_messages(&mut res, 2).await;
    assert_eq!(
        first.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        vec![1, 2]
    );
    app.book(id, "bob").await;
    let next = sse_messages(&mut res, 1).await;
    assert_eq!(next[0].0, 3);
    assert_eq!(next[0].1["booking"]["user_id"], "bob");
    assert_eq!(next[0].1["index"], 3);
    drop(res);
    // A reconnecting client's Last-Event-ID wins over `after`.
    let mut res = app
        .client
        .get(format!("{}/api/changes/live?after=0", app.base))
        .header("Last-Event-ID", "2")
        .send()
        .await
        .expect("sent");
    let resumed = sse_messages(&mut res, 1).await;
    assert_eq!(resumed[0].0, 3);
    drop(res);
    let res = app
        .client
        .head(format!("{}/api/changes/live", app.base))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    app.stop().await;
}

/// Books and cancels through a process, so it can be killed.
async fn churn(client: &reqwest::Client, base: &str, event: u64, users: std::ops::Range<u32>) {
    for u in users {
        let url = format!("{base}/api/events/{event}/bookings/u{u}");
        let res = client.put(&url).send().await.expect("book");
        assert!(res.status().is_success(), "{}", res.status());
        if u % 3 == 0 {
            let res = client.delete(&url).send().await.expect("cancel");
            assert!(res.status().is_success());
        }
    }
}

async fn create(client: &reqwest::Client, base: &str, tickets: u64) -> u64 {
    let res = client
        .post(format!("{base}/api/events"))
        .json(&json!({"totalTickets": tickets}))
        .send()
        .await
        .expect("create");
    let body: Value = res.json().await.expect("json");
    body["eventId"].as_u64().expect("id")
}

#[actix_web::test]
async fn indexes_are_the_same_after_a_crash_and_go_on_from_there() {
    let dir = tempfile::tempdir().expect("dir");
    let client = reqwest::Client::new();
    let server = Server::start(dir.path());
    let event = create(&client, &server.base, 10).await;
    churn(&client, &server.base, event, 0..40).await;
    let before = all_after(&client, &server.base, 0, 7).await;
    let indexes: Vec<u64> = before
        .iter()
        .map(|i| i["index"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(
        indexes,
        (1..=before.len() as u64).collect::<Vec<_>>(),
        "no gaps"
    );
    server.stop_with(Signal::SIGKILL);

    let server = Server::start(dir.path());
    assert_eq!(all_after(&client, &server.base, 0, 1000).await, before);
    churn(&client, &server.base, event, 40..45).await;
    let after = all_after(&client, &server.base, before.len() as u64, 1000).await;
    assert_eq!(
        after.first().and_then(|i| i["index"].as_u64()),
        Some(before.len() as u64 + 1),
        "numbering goes on"
    );
    // And through a clean stop (a final snapshot) too.
    assert_eq!(server.stop_with(Signal::SIGTERM).0.code(), Some(0));
    let server = Server::start(dir.path());
    let total = all_after(&client, &server.base, 0, 1000).await;
    assert_eq!(total.len(), before.len() + after.len());
    server.stop_with(Signal::SIGKILL);
}

#[actix_web::test]
async fn changes_no_longer_kept_are_gone_with_the_earliest_kept() {
    let dir = tempfile::tempdir().expect("dir");
    let client = reqwest::Client::new();
    let start = || {
        let mut cmd = command(dir.path());
        cmd.env("BOXOFFICE__CHANGES__RETAIN_BYTES", "0")
            .env("BOXOFFICE__JOURNAL__SEGMENT_BYTES", "4096")
            .env("BOXOFFICE__SNAPSHOT__KEEP", "1");
        Server::start_with(cmd)
    };
    let server = start();
    let event = create(&client, &server.base, 10).await;
    churn(&client, &server.base, event, 0..60).await;
    let total = all_after(&client, &server.base, 0, 1000).await.len() as u64;
    // The final snapshot covers everything: with nothing retained, the
    // covered segments go.
    assert_eq!(server.stop_with(Signal::SIGTERM).0.code(), Some(0));
    let server = start();
    let (status, body) = page(&client, &server.base, "after=0").await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert_eq!(body["code"], "GONE");
    let earliest = body["earliest"].as_u64().expect("earliest");
    assert!(earliest > 0 && earliest <= total, "{earliest} of {total}");
    // From `earliest` on, everything kept is served.
    let kept = all_after(&client, &server.base, earliest, 1000).await;
    assert_eq!(kept.len() as u64, total - earliest);
    let res = client
        .get(format!("{}/api/changes/live?after=0", server.base))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::GONE);
    server.stop_with(Signal::SIGKILL);
}

/// What the test's receiver saw.
#[derive(Default)]
struct Received {
    /// Every index of every accepted delivery, in arrival order.
    accepted: Vec<u64>,
    /// Deliveries answered, by what was done with them.
    attempts: u32,
    /// A delivery whose signature did not check out.
    bad_signature: bool,
}

const SECRET: &str = "webhook-secret-for-the-test";

/// A receiver that fails the first delivery with 500, lets the second time
/// out, answers the third late (but in time) and then accepts each after
/// 100 ms, so a crash can fall in the middle of the deliveries.
async fn receiver(
    req: HttpRequest,
    body: web::Bytes,
    seen: web::Data<Arc<Mutex<Received>>>,
) -> HttpResponse {
    let signature = req
        .headers()
        .get("x-boxoffice-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let attempt = {
        let mut seen = seen.lock().expect("lock");
        seen.attempts += 1;
        if signature != boxoffice::webhooks::signature(SECRET.as_bytes(), &body) {
            seen.bad_signature = true;
        }
        seen.attempts
    };
    match attempt {
        1 => return HttpResponse::InternalServerError().finish(),
        2 => tokio::time::sleep(Duration::from_millis(1_500)).await,
        3 => tokio::time::sleep(Duration::from_millis(300)).await,
        _ => tokio::time::sleep(Duration::from_millis(100)).await,
    }
    accept(&body, &mut seen.lock().expect("lock").accepted);
    HttpResponse::Ok().finish()
}

/// Notes the indexes of a delivery's items as accepted.
fn accept(body: &[u8], accepted: &mut Vec<u64>) {
    let delivery: Value = serde_json::from_slice(body).expect("json");
    for item in delivery["items"].as_array().expect("items") {
        accepted.push(item["index"].as_u64().expect("index"));
    }
}

#[actix_web::test]
async fn webhooks_deliver_every_change_in_order_signed_through_failures_and_a_crash() {
    let seen = Arc::new(Mutex::new(Received::default()));
    let data = web::Data::new(Arc::clone(&seen));
    let receiving = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/hook", web::post().to(receiver))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .expect("bind");
    let port = receiving.addrs()[0].port();
    let receiving = receiving.run();
    let receiving_handle = receiving.handle();
    actix_web::rt::spawn(receiving);

    let dir = tempfile::tempdir().expect("dir");
    let client = reqwest::Client::new();
    let start = || {
        let mut cmd = command(dir.path());
        cmd.env(
            "BOXOFFICE__WEBHOOKS__URL",
            format!("http://127.0.0.1:{port}/hook"),
        )
        .env("BOXOFFICE__WEBHOOKS__SECRET", SECRET)
        .env("BOXOFFICE__WEBHOOKS__BATCH_MAX", "7")
        .env("BOXOFFICE__WEBHOOKS__TIMEOUT_MS", "1000");
        Server::start_with(cmd)
    };
    let server = start();
    let event = create(&client, &server.base, 5).await;
    churn(&client, &server.base, event, 0..30).await;
    let first_total = all_after(&client, &server.base, 0, 1000).await.len() as u64;
    // Killed once the failures are behind it and deliveries are under way.
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.lock().expect("lock").accepted.is_empty() {
        assert!(Instant::now() < deadline, "no delivery accepted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop_with(Signal::SIGKILL);
    let at_crash = seen.lock().expect("lock").accepted.last().copied();
    assert!(
        at_crash < Some(first_total),
        "the crash fell during deliveries"
    );
    let server = start();
    churn(&client, &server.base, event, 30..50).await;
    let total = all_after(&client, &server.base, 0, 1000).await.len() as u64;
    assert!(total > first_total);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let delivered = seen.lock().expect("lock").accepted.last().copied();
        if delivered == Some(total) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "delivered up to {delivered:?} of {total}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The receiver counts a delivery before it answers; the sender's gauge
    // moves once it has read that answer, a moment later.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let metrics = client
            .get(format!("{}/metrics", server.base))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        if metrics.contains(&format!("boxoffice_webhook_delivered_index {total}\n")) {
            break;
        }
        assert!(Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Caught up, the sender writes the index at once (while deliveries
    // stream, only every second), so a restart now sends nothing again.
    let ack = dir
        .path()
        .join("snapshots")
        .join(boxoffice::webhooks::ACK_FILE);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let kept = std::fs::read_to_string(&ack).unwrap_or_default();
        if kept.trim() == total.to_string() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "webhooks.ack holds {kept:?}, not {total}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop_with(Signal::SIGKILL);
    receiving_handle.stop(false).await;

    let seen = seen.lock().expect("lock");
    assert!(!seen.bad_signature, "every delivery is signed");
    assert!(seen.attempts >= 4, "the failures were retried");
    // At least once and in order: each delivery continues from an index
    // already seen or the next one (a repeat after the crash starts over
    // after the last acknowledged), so the indexes seen, deduplicated in
    // order of first arrival, are exactly 1..=total.
    let mut firsts = Vec::new();
    for &i in &seen.accepted {
        if !firsts.contains(&i) {
            assert_eq!(i, firsts.len() as u64 + 1, "nothing skipped or reordered");
            firsts.push(i);
        }
    }
    assert_eq!(firsts.len() as u64, total);
}

#[actix_web::test]
async fn a_feed_page_reads_what_a_restarted_in_process_service_kept() {
    // The in-process service: the feed starts empty and the first create
    // is index 1.
    let app: TestApp = spawn_app().await;
    let (status, body) = app.get("/api/changes").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"items": [], "next": 0}));
    app.create_event(3).await;
    let (_, body) = app.get("/api/changes?limit=1").await;
    assert_eq!(body["next"], 1);
    app.stop().await;
}

/// What the redirecting receiver saw.
#[derive(Default)]
struct Redirected {
    /// Requests to /hook.
    attempts: u32,
    /// Requests anywhere else (a followed redirect).
    elsewhere: u32,
    /// Indexes of the deliveries /hook accepted.
    accepted: Vec<u64>,
}

async fn redirecting(
    seen: web::Data<Arc<Mutex<Redirected>>>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let mut seen = seen.lock().expect("lock");
    if req.path() != "/hook" {
        seen.elsewhere += 1;
        return HttpResponse::Ok().finish();
    }
    seen.attempts += 1;
    match seen.attempts {
        1 => HttpResponse::Found()
            .insert_header(("Location", "/elsewhere"))
            .finish(),
        2 => HttpResponse::TemporaryRedirect()
            .insert_header(("Location", "/elsewhere"))
            .finish(),
        _ => {
            accept(&body, &mut seen.accepted);
            HttpResponse::Ok().finish()
        }
    }
}

/// Contract v4, Corrections: a 3xx is a failed delivery, retried, never
/// followed (a followed 302 turned the POST into a bodiless GET that
/// "succeeded", a 307 sent the changes elsewhere), and the URL's user
/// information and query string are never logged.
#[actix_web::test]
async fn a_redirect_is_a_failed_delivery_and_the_url_s_secrets_stay_out_of_the_log() {
    let seen = Arc::new(Mutex::new(Redirected::default()));
    let data = web::Data::new(Arc::clone(&seen));
    let receiving = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .default_service(web::to(redirecting))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .expect("bind");
    let port = receiving.addrs()[0].port();
    let receiving = receiving.run();
    let receiving_handle = receiving.handle();
    actix_web::rt::spawn(receiving);

    let dir = tempfile::tempdir().expect("dir");
    let client = reqwest::Client::new();
    let mut cmd = command(dir.path());
    cmd.env(
        "BOXOFFICE__WEBHOOKS__URL",
        format!("http://hook-user:pw-s3cret@127.0.0.1:{port}/hook?token=t0ken-s3cret"),
    )
    .env("BOXOFFICE__WEBHOOKS__SECRET", SECRET)
    .env("BOXOFFICE__WEBHOOKS__TIMEOUT_MS", "1000");
    let server = Server::start_with(cmd);
    let event = create(&client, &server.base, 5).await;
    churn(&client, &server.base, event, 0..3).await;
    let total = all_after(&client, &server.base, 0, 1000).await.len() as u64;
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.lock().expect("lock").accepted.last() != Some(&total) {
        assert!(Instant::now() < deadline, "the changes were not delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    {
        let seen = seen.lock().expect("lock");
        assert_eq!(seen.elsewhere, 0, "a redirect was followed");
        assert_eq!(
            seen.accepted,
            (1..=total).collect::<Vec<_>>(),
            "every change delivered once the receiver accepted, from the first"
        );
    }
    let log = server.log();
    assert!(log.contains("a redirect to /elsewhere"), "{log}");
    assert!(
        !log.contains("s3cret") && !log.contains("hook-user"),
        "{log}"
    );
    drop(server);
    receiving_handle.stop(true).await;
}
