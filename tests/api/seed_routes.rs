//! The five seed endpoints, answering as the original services did.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_error, spawn_app};

fn is_rfc3339_millis(v: &serde_json::Value) -> bool {
    let s = v.as_str().unwrap_or("");
    s.len() == 24 && s.ends_with('Z') && s.as_bytes()[19] == b'.' && chrono_like(s)
}

fn chrono_like(s: &str) -> bool {
    s.chars().enumerate().all(|(i, c)| match i {
        4 | 7 => c == '-',
        10 => c == 'T',
        13 | 16 => c == ':',
        19 => c == '.',
        23 => c == 'Z',
        _ => c.is_ascii_digit(),
    })
}

/// Initialize answers 201 with a Location header and the contract's event shape.
#[actix_web::test]
async fn initialize_creates_an_event_with_location_and_exact_shape() {
    let app = spawn_app().await;
    let res = app
        .client
        .post(format!("{}/api/initialize", app.base))
        .json(&json!({"totalTickets": 5}))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["location"], "/api/events/1");
    assert!(res.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("application/json"));
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["message"], "Event initialized");
    let event = &body["event"];
    let mut keys: Vec<_> = event.as_object().expect("object").keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "available_tickets",
            "blocked_seats",
            "created_at",
            "held_tickets",
            "hold_secs",
            "id",
            "max_per_user",
            "name",
            "offer_secs",
            "room_admit_per_minute",
            "room_admit_secs",
            "room_admitted",
            "room_waiting",
            "sales_end",
            "sales_open",
            "sales_start",
            "seated",
            "total_tickets",
            "updated_at",
            "waiting_list_count",
            "waiting_tickets"
        ]
    );
    assert_eq!(
        (event["id"].as_u64(), event["total_tickets"].as_u64()),
        (Some(1), Some(5))
    );
    assert_eq!(event["available_tickets"], 5);
    assert!(event["name"].is_null());
    assert!(
        is_rfc3339_millis(&event["created_at"]),
        "{}",
        event["created_at"]
    );
    // v3: the status reply's flat keys too, which the second original
    // service's own tests read from the create reply.
    assert_eq!(body["eventId"], 1);
    assert_eq!(body["name"], serde_json::Value::Null);
    assert_eq!(body["totalTickets"], 5);
    assert_eq!(body["availableTickets"], 5);
    assert_eq!(body["confirmedCount"], 0);
}

/// A chosen eventId is used, a taken one is 409, and auto ids skip past it.
#[actix_web::test]
async fn initialize_with_an_event_id_uses_it_and_refuses_it_twice() {
    let app = spawn_app().await;
    let (status, body) = app
        .post(
            "/api/initialize",
            json!({"totalTickets": 1, "eventId": 7, "name": "Gig"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        (body["event"]["id"].as_u64(), body["event"]["name"].as_str()),
        (Some(7), Some("Gig"))
    );
    let again = app
        .post("/api/initialize", json!({"totalTickets": 1, "eventId": 7}))
        .await;
    assert_error(&again, StatusCode::CONFLICT, "EVENT_EXISTS");
    assert_eq!(
        app.create_event(1).await,
        8,
        "auto ids continue after the largest used"
    );
}

/// Booking confirms while tickets remain, then queues; a repeat returns the same booking.
#[actix_web::test]
async fn book_confirms_then_queues_and_a_repeat_is_idempotent() {
    let app = spawn_app().await;
    let event = app.create_event(1).await;
    let a = app.book(event, "alice").await;
    assert_eq!(
        (a["status"].as_str(), a["waiting_position"].is_null()),
        (Some("confirmed"), true)
    );
    assert_eq!(a["event_id"], event);
    assert!(is_rfc3339_millis(&a["updated_at"]));
    let b = app.book(event, "bob").await;
    assert_eq!(
        (b["status"].as_str(), b["waiting_position"].as_u64()),
        (Some("waiting"), Some(1))
    );
    let b_again = app.book(event, "bob").await;
    assert_eq!(b_again, b, "same id, same everything");
    assert_eq!(app.counts(event).await, (1, 0, 1));
}

/// Cancel of a confirmed booking promotes the head of the queue in the same answer.
#[actix_web::test]
async fn cancel_promotes_the_first_in_queue() {
    let app = spawn_app().await;
    let event = app.create_event(1).await;
    app.book(event, "a").await;
    let b = app.book(event, "b").await;
    app.book(event, "c").await;
    let (status, body) = app
        .post("/api/cancel", json!({"eventId": event, "userId": "a"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["success"], true);
    assert_eq!(body["message"], "Booking cancelled successfully");
    assert_eq!(body["booking"]["status"], "cancelled");
    assert_eq!(body["promoted"]["id"], b["id"]);
    assert_eq!(body["promoted"]["status"], "confirmed");
    let (_, c) = app.get(&format!("/api/booking-status/{event}/c")).await;
    assert_eq!(c["booking"]["waiting_position"], 1);
    let (_, d) = app
        .post("/api/cancel", json!({"eventId": event, "userId": "c"}))
        .await;
    assert!(d["promoted"].is_null(), "a waiting cancel promotes nobody");
}

/// Booking status shows the active booking, else the latest cancelled one, else 404.
#[actix_web::test]
async fn booking_status_shows_active_then_cancelled_then_not_found() {
    let app = spawn_app().await;
    let event = app.create_event(2).await;
    let a = app.book(event, "a").await;
    let (status, body) = app.get(&format!("/api/booking-status/{event}/a")).await;
    assert_eq!((status, &body["booking"]), (StatusCode::OK, &a));
    app.post("/api/cancel", json!({"eventId": event, "userId": "a"}))
        .await;
    let (_, body) = app.get(&format!("/api/booking-status/{event}/a")).await;
    assert_eq!(
        (
            body["booking"]["id"].clone(),
            body["booking"]["status"].as_str()
        ),
        (a["id"].clone(), Some("cancelled"))
    );
    let missing = app
        .get(&format!("/api/booking-status/{event}/nobody"))
        .await;
    assert_error(&missing, StatusCode::NOT_FOUND, "BOOKING_NOT_FOUND");
    let cancel_again = app
        .post("/api/cancel", json!({"eventId": event, "userId": "a"}))
        .await;
    assert_error(&cancel_again, StatusCode::NOT_FOUND, "BOOKING_NOT_FOUND");
}

/// Status carries both original shapes, and they agree.
#[actix_web::test]
async fn status_has_both_the_event_object_and_the_flat_keys() {
    let app = spawn_app().await;
    let (_, created) = app
        .post(
            "/api/initialize",
            json!({"totalTickets": 100, "name": "Show"}),
        )
        .await;
    let event = created["event"]["id"].as_u64().expect("id");
    // Timestamps have millisecond resolution: make the booking's visibly later.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    app.book(event, "u1").await;
    let (status, body) = app.get(&format!("/api/status/{event}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({
            "event": {"id": event, "name": "Show", "total_tickets": 100, "available_tickets": 99,
                      "held_tickets": 0, "waiting_list_count": 0, "waiting_tickets": 0,
                      "max_per_user": 10, "hold_secs": 0, "offer_secs": 0, "sales_open": true,
                      "sales_start": null, "sales_end": null,
                      "created_at": created["event"]["created_at"],
                      "updated_at": body["event"]["updated_at"],
                      "room_admit_per_minute": 0, "room_admit_secs": 600,
                      "room_waiting": 0, "room_admitted": 0,
                      "seated": false, "blocked_seats": 0},
            "eventId": event, "name": "Show", "totalTickets": 100, "availableTickets": 99,
            "confirmedCount": 1, "heldTickets": 0, "waitingListCount": 0, "waitingTickets": 0,
            "roomWaiting": 0, "roomAdmitted": 0
        })
    );
    assert_ne!(
        body["event"]["updated_at"], created["event"]["updated_at"],
        "a booking updates the event"
    );
}

/// Unknown body fields are ignored rather than refused.
#[actix_web::test]
async fn unknown_body_fields_are_ignored() {
    let app = spawn_app().await;
    let (status, _) = app
        .post(
            "/api/initialize",
            json!({"totalTickets": 1, "colour": "red"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = app
        .post(
            "/api/book",
            json!({"eventId": 1, "userId": "a", "extra": [1, 2]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}
