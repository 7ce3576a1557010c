//! v2 parties, event changes and sales windows, over HTTP.

use std::collections::HashSet;

use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app, TestApp};

async fn book(app: &TestApp, event: u64, user: &str, quantity: u32) -> (StatusCode, Value) {
    app.post(
        "/api/book",
        json!({"eventId": event, "userId": user, "quantity": quantity}),
    )
    .await
}

fn users(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("array")
        .iter()
        .map(|b| b["user_id"].as_str().expect("user"))
        .collect()
}

/// Parties of 3 and 1 wait behind a party of 4 on a sold-out event; a
/// cancellation of 4 then promotes the 4, and the next of 4 promotes both,
/// in order. Nobody is overtaken.
#[actix_web::test]
async fn parties_wait_in_order_and_are_promoted_in_order() {
    let app = spawn_app().await;
    let event = app.create_event(4).await;
    let (status, first) = book(&app, event, "first", 4).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(
        (first["status"].as_str(), first["userId"].as_str()),
        (Some("booked"), Some("first"))
    );
    assert_eq!(first["booking"]["quantity"], 4);
    let (_, four) = book(&app, event, "four", 4).await;
    let (_, three) = book(&app, event, "three", 3).await;
    let (_, one) = book(&app, event, "one", 1).await;
    assert_eq!(four["status"], "waiting");
    assert_eq!(
        (
            &three["booking"]["waiting_position"],
            &three["booking"]["tickets_ahead"]
        ),
        (&json!(2), &json!(4))
    );
    assert_eq!(
        (
            &one["booking"]["waiting_position"],
            &one["booking"]["tickets_ahead"]
        ),
        (&json!(3), &json!(7))
    );
    let (_, status_body) = app.get(&format!("/api/status/{event}")).await;
    assert_eq!(status_body["waitingTickets"], 8);
    assert_eq!(status_body["event"]["waiting_tickets"], 8);

    let (status, cancelled) = app
        .post("/api/cancel", json!({"eventId": event, "userId": "first"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(
        (cancelled["status"].as_str(), cancelled["userId"].as_str()),
        (Some("reassigned"), Some("four"))
    );
    assert_eq!(users(&cancelled["promotions"]), vec!["four"]);
    assert_eq!(cancelled["promoted"]["user_id"], "four");

    let (_, cancelled) = app
        .call(
            Method::DELETE,
            &format!("/api/events/{event}/bookings/four"),
            None,
        )
        .await;
    assert_eq!(users(&cancelled["promotions"]), vec!["three", "one"]);
    assert_eq!(app.counts(event).await, (4, 0, 0));

    let (_, alone) = app
        .post("/api/cancel", json!({"eventId": event, "userId": "one"}))
        .await;
    assert_eq!(
        (alone["status"].as_str(), alone["userId"].as_str()),
        (Some("cancelled"), Some("one"))
    );
    assert_eq!(alone["promoted"], Value::Null);
}

/// Quantities are checked against the event, a retry with another quantity
/// is 409, and PUT takes an optional body.
#[actix_web::test]
async fn quantities_are_validated_and_a_retry_must_match() {
    let app = spawn_app().await;
    let event = app.create_event(5).await;
    assert_error(
        &book(&app, event, "a", 6).await,
        StatusCode::BAD_REQUEST,
        "VALIDATION_FAILED",
    );
    assert_error(
        &book(&app, event, "a", 0).await,
        StatusCode::BAD_REQUEST,
        "VALIDATION_FAILED",
    );
    let path = format!("/api/events/{event}/bookings/a");
    let (status, put) = app
        .call(Method::PUT, &path, Some(json!({"quantity": 2})))
        .await;
    assert_eq!(
        (status, &put["booking"]["quantity"]),
        (StatusCode::OK, &json!(2))
    );
    let (status, again) = app
        .call(Method::PUT, &path, Some(json!({"quantity": 2})))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["booking"]["id"], put["booking"]["id"]);
    assert_error(
        &app.call(Method::PUT, &path, None).await,
        StatusCode::CONFLICT,
        "BOOKING_EXISTS",
    );
    let (status, bare) = app
        .call(
            Method::PUT,
            &format!("/api/events/{event}/bookings/b"),
            None,
        )
        .await;
    assert_eq!(
        (status, &bare["booking"]["quantity"]),
        (StatusCode::OK, &json!(1))
    );
}

/// Lowering a quantity keeps the booking and promotes; raising is 409.
#[actix_web::test]
async fn lowering_a_quantity_frees_tickets_to_the_queue() {
    let app = spawn_app().await;
    let event = app.create_event(4).await;
    let (_, a) = book(&app, event, "a", 4).await;
    book(&app, event, "b", 2).await;
    let path = format!("/api/events/{event}/bookings/a");
    let (status, lowered) = app
        .call(Method::PATCH, &path, Some(json!({"quantity": 2})))
        .await;
    assert_eq!(status, StatusCode::OK, "{lowered}");
    assert_eq!(lowered["booking"]["id"], a["booking"]["id"]);
    assert_eq!(lowered["booking"]["quantity"], 2);
    assert_eq!(users(&lowered["promotions"]), vec!["b"]);
    assert_error(
        &app.call(Method::PATCH, &path, Some(json!({"quantity": 3})))
            .await,
        StatusCode::CONFLICT,
        "QUANTITY_INCREASE",
    );
    assert_error(
        &app.call(
            Method::PATCH,
            &format!("/api/events/{event}/bookings/nobody"),
            Some(json!({"quantity": 1})),
        )
        .await,
        StatusCode::NOT_FOUND,
        "BOOKING_NOT_FOUND",
    );
}

/// Raising capacity promotes at once; lowering below what is sold is 409
/// and changes nothing; every setting shows in the event and survives.
#[actix_web::test]
async fn changing_an_event_promotes_or_is_refused_whole() {
    let app = spawn_app().await;
    let event = app.create_event(2).await;
    book(&app, event, "a", 2).await;
    book(&app, event, "b", 2).await;
    let path = format!("/api/events/{event}");
    let before = app.get(&format!("/api/status/{event}")).await.1;
    assert_error(
        &app.call(
            Method::PATCH,
            &path,
            Some(json!({"totalTickets": 1, "name": "Smaller"})),
        )
        .await,
        StatusCode::CONFLICT,
        "CAPACITY_CONFLICT",
    );
    assert_eq!(app.get(&format!("/api/status/{event}")).await.1, before);
    let (status, changed) = app
        .call(
            Method::PATCH,
            &path,
            Some(json!({"totalTickets": 4, "name": "Bigger", "maxPerUser": 3})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(users(&changed["promotions"]), vec!["b"]);
    assert_eq!(changed["event"]["total_tickets"], 4);
    assert_eq!(changed["event"]["name"], "Bigger");
    assert_eq!(changed["event"]["max_per_user"], 3);
    assert_error(
        &app.call(Method::PATCH, &path, Some(json!({"maxPerUser": 11})))
            .await,
        StatusCode::BAD_REQUEST,
        "VALIDATION_FAILED",
    );
    assert_error(
        &app.call(Method::PATCH, "/api/events/999", Some(json!({"name": "x"})))
            .await,
        StatusCode::NOT_FOUND,
        "EVENT_NOT_FOUND",
    );
    let (status, cleared) = app
        .call(Method::PATCH, &path, Some(json!({"name": null})))
        .await;
    assert_eq!(
        (status, &cleared["event"]["name"]),
        (StatusCode::OK, &Value::Null)
    );
}

/// A sales window's start is a time, not a request: an event opening 2 s
/// from now refuses a booking at once and takes one after 2 s. Closing
/// sales refuses bookings; cancellations go on.
#[actix_web::test]
async fn a_sales_window_opens_on_time_and_closed_sales_refuse_bookings() {
    let app = spawn_app().await;
    let opens = chrono::Utc::now() + chrono::Duration::milliseconds(2_000);
    let start = opens.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (status, created) = app
        .post(
            "/api/events",
            json!({"totalTickets": 5, "salesStart": start}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["event"]["sales_start"], json!(start));
    let event = created["event"]["id"].as_u64().expect("id");
    assert_error(
        &book(&app, event, "early", 1).await,
        StatusCode::CONFLICT,
        "SALES_NOT_OPEN",
    );
    let wait = (opens - chrono::Utc::now()).num_milliseconds().max(0) as u64 + 100;
    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
    let (status, _) = book(&app, event, "early", 1).await;
    assert_eq!(status, StatusCode::OK);

    let path = format!("/api/events/{event}");
    app.call(Method::PATCH, &path, Some(json!({"salesOpen": false})))
        .await;
    assert_error(
        &book(&app, event, "late", 1).await,
        StatusCode::CONFLICT,
        "SALES_CLOSED",
    );
    let (status, _) = app
        .post("/api/cancel", json!({"eventId": event, "userId": "early"}))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "cancels go on while sales are closed"
    );
    assert_error(
        &app.post(
            "/api/events",
            json!({"totalTickets": 5, "salesStart": "2030-01-02T00:00:00Z", "salesEnd": "2030-01-01T00:00:00Z"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "VALIDATION_FAILED",
    );
    assert_error(
        &app.post(
            "/api/events",
            json!({"totalTickets": 5, "salesStart": "soon"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "VALIDATION_FAILED",
    );
}

/// Confirm with no holds: a confirmed booking is answered as it is, a
/// waiting one is NOT_HELD, none is 404.
#[actix_web::test]
async fn confirming_without_holds_answers_as_the_contract_says() {
    let app = spawn_app().await;
    let event = app.create_event(1).await;
    book(&app, event, "a", 1).await;
    book(&app, event, "b", 1).await;
    let (status, a) = app
        .post(
            &format!("/api/events/{event}/bookings/a/confirm"),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, &a["booking"]["status"]),
        (StatusCode::OK, &json!("confirmed"))
    );
    assert_error(
        &app.post("/api/confirm", json!({"eventId": event, "userId": "b"}))
            .await,
        StatusCode::CONFLICT,
        "NOT_HELD",
    );
    assert_error(
        &app.post("/api/confirm", json!({"eventId": event, "userId": "c"}))
            .await,
        StatusCode::NOT_FOUND,
        "BOOKING_NOT_FOUND",
    );
}

/// 1,000 concurrent bookings of quantity 1 to 4 on 500 tickets: never
/// oversold, the head never fits, and the queue is in the order in which
/// those who waited were answered a place.
#[actix_web::test]
async fn a_thousand_concurrent_parties_never_oversell() {
    let app = spawn_app().await;
    let event = app.create_event(500).await;
    let answers: Vec<(StatusCode, Value)> = join_all((0..1000u32).map(|i| {
        let app = &app;
        async move { book(app, event, &format!("u{i}"), i % 4 + 1).await }
    }))
    .await;
    let mut confirmed_tickets = 0u64;
    let mut waiting = Vec::new();
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::OK, "{body}");
        let b = &body["booking"];
        match b["status"].as_str() {
            Some("confirmed") => confirmed_tickets += b["quantity"].as_u64().expect("q"),
            Some("waiting") => waiting.push((
                b["id"].as_u64().expect("id"),
                b["waiting_position"].as_u64().expect("position"),
            )),
            other => panic!("status {other:?}"),
        }
    }
    assert!(confirmed_tickets <= 500);
    let (status, body) = app.get(&format!("/api/status/{event}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["confirmedCount"], confirmed_tickets);
    assert_eq!(
        body["availableTickets"].as_u64().expect("available") + confirmed_tickets,
        500
    );
    // Booking ids are taken in apply order, so the queue is in id order and
    // each waiting booking was told its place at the time.
    waiting.sort_unstable();
    let positions: Vec<u64> = waiting.iter().map(|&(_, p)| p).collect();
    assert_eq!(positions, (1..=waiting.len() as u64).collect::<Vec<_>>());
    let (_, page) = app
        .get(&format!("/api/events/{event}/waiting-list?limit=1000"))
        .await;
    let ids: Vec<u64> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["booking_id"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids, waiting.iter().map(|&(id, _)| id).collect::<Vec<_>>());
    let head = page["items"][0]["quantity"].as_u64();
    if let Some(head) = head {
        assert!(head > body["availableTickets"].as_u64().expect("available"));
    }
    let unique: HashSet<u64> = answers
        .iter()
        .map(|(_, b)| b["booking"]["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(unique.len(), 1000);
}
