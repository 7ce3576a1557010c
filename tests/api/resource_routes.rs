//! The REST routes: the same operations as the seed API.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{assert_error, spawn_app};

/// PUT books, GET reads, DELETE cancels, and each agrees with the seed routes.
#[actix_web::test]
async fn put_get_delete_a_booking() {
    let app = spawn_app().await;
    let (status, created) = app.post("/api/events", json!({"totalTickets": 1})).await;
    assert_eq!(status, StatusCode::CREATED);
    let event = created["event"]["id"].as_u64().expect("id");
    let (status, a) = app
        .call(
            Method::PUT,
            &format!("/api/events/{event}/bookings/a"),
            None,
        )
        .await;
    assert_eq!(
        (status, a["booking"]["status"].as_str()),
        (StatusCode::OK, Some("confirmed"))
    );
    let (_, b) = app
        .call(
            Method::PUT,
            &format!("/api/events/{event}/bookings/b"),
            None,
        )
        .await;
    assert_eq!(b["booking"]["waiting_position"], 1);
    let (status, read) = app.get(&format!("/api/events/{event}/bookings/b")).await;
    assert_eq!((status, &read["booking"]), (StatusCode::OK, &b["booking"]));
    assert_eq!(
        (b["status"].as_str(), b["userId"].as_str()),
        (Some("waiting"), Some("b"))
    );
    let (status, cancelled) = app
        .call(
            Method::DELETE,
            &format!("/api/events/{event}/bookings/a"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cancelled["promoted"]["user_id"], "b");
    let (_, by_resource) = app.get(&format!("/api/events/{event}")).await;
    let (_, by_seed) = app.get(&format!("/api/status/{event}")).await;
    assert_eq!(by_resource, by_seed, "both routes give the same status");
    assert_eq!(app.counts(event).await, (1, 0, 0));
}

/// The event list pages in id order with total, offset and limit.
#[actix_web::test]
async fn events_list_pages_in_id_order() {
    let app = spawn_app().await;
    for tickets in 1..=5 {
        app.create_event(tickets).await;
    }
    let (status, page) = app.get("/api/events?offset=1&limit=2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            page["total"].as_u64(),
            page["offset"].as_u64(),
            page["limit"].as_u64()
        ),
        (Some(5), Some(1), Some(2))
    );
    let ids: Vec<u64> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids, [2, 3]);
    assert_eq!(page["items"][0]["total_tickets"], 2);
    let (_, default_page) = app.get("/api/events").await;
    assert_eq!(
        (
            default_page["limit"].as_u64(),
            default_page["items"].as_array().map(Vec::len)
        ),
        (Some(100), Some(5))
    );
    let bad = app.get("/api/events?limit=1001").await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    assert_eq!(bad.1["details"][0]["field"], "limit");
}

/// The waiting list comes back in queue order, paged, with live positions.
#[actix_web::test]
async fn waiting_list_is_in_queue_order_with_positions() {
    let app = spawn_app().await;
    let event = app.create_event(1).await;
    for user in ["a", "b", "c", "d", "e"] {
        app.book(event, user).await;
    }
    app.call(
        Method::DELETE,
        &format!("/api/events/{event}/bookings/c"),
        None,
    )
    .await;
    let (items, page) = app.waiting(event, "offset=1&limit=2").await;
    assert_eq!(page["total"], 3);
    assert_eq!(items, [("d".to_string(), 2), ("e".to_string(), 3)]);
    let (_, d) = app.get(&format!("/api/events/{event}/bookings/d")).await;
    assert_eq!(page["items"][0]["booking_id"], d["booking"]["id"]);
    let missing = app.get("/api/events/999/waiting-list").await;
    assert_error(&missing, StatusCode::NOT_FOUND, "EVENT_NOT_FOUND");
}

/// /health answers ok.
#[actix_web::test]
async fn health_is_ok() {
    let app = spawn_app().await;
    assert_eq!(
        app.get("/health").await,
        (StatusCode::OK, json!({"status": "ok"}))
    );
}
