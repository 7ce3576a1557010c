//! Many clients at once: no ticket sold twice, the queue in arrival order.

use std::collections::{BTreeSet, HashSet};

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::spawn_app;

/// 1,000 concurrent bookings on 100 tickets: exactly 100 confirmed, positions
/// exactly 1..900; then 50 concurrent cancels promote the first 50 in queue order.
#[actix_web::test]
async fn a_thousand_concurrent_bookings_then_fifty_concurrent_cancels() {
    let app = spawn_app().await;
    let event = app.create_event(100).await;
    let users: Vec<String> = (0..1000).map(|i| format!("user{i}")).collect();
    let bookings: Vec<Value> = join_all(users.iter().map(|u| app.book(event, u))).await;

    let ids: HashSet<u64> = bookings
        .iter()
        .map(|b| b["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids.len(), 1000, "every booking has its own id");
    let confirmed: Vec<&Value> = bookings
        .iter()
        .filter(|b| b["status"] == "confirmed")
        .collect();
    assert_eq!(confirmed.len(), 100);
    let mut positions: Vec<u64> = bookings
        .iter()
        .filter_map(|b| b["waiting_position"].as_u64())
        .collect();
    positions.sort_unstable();
    assert_eq!(positions, (1..=900).collect::<Vec<_>>());

    assert_eq!(app.counts(event).await, (100, 0, 900));
    let queue = app.waiting(event, "limit=1000").await.0;
    assert_eq!(
        queue.iter().map(|(_, p)| *p).collect::<Vec<_>>(),
        (1..=900).collect::<Vec<_>>()
    );
    for (user, position) in &queue {
        let booked = bookings
            .iter()
            .find(|b| b["user_id"] == user.as_str())
            .expect("booked");
        assert_eq!(
            booked["waiting_position"].as_u64(),
            Some(*position),
            "queue order is arrival order"
        );
    }

    let cancelling: Vec<&str> = confirmed
        .iter()
        .take(50)
        .map(|b| b["user_id"].as_str().expect("user"))
        .collect();
    let cancels = join_all(
        cancelling
            .iter()
            .map(|u| app.post("/api/cancel", json!({"eventId": event, "userId": u}))),
    )
    .await;
    let mut promoted = BTreeSet::new();
    for (status, body) in &cancels {
        assert_eq!(*status, StatusCode::OK, "{body}");
        assert_eq!(body["promoted"]["status"], "confirmed");
        promoted.insert(
            body["promoted"]["user_id"]
                .as_str()
                .expect("promoted")
                .to_string(),
        );
    }
    let first_fifty: BTreeSet<String> = queue.iter().take(50).map(|(u, _)| u.clone()).collect();
    assert_eq!(
        promoted, first_fifty,
        "the head of the queue is served first"
    );

    let rest = app.waiting(event, "limit=1000").await.0;
    assert_eq!(
        rest.iter().map(|(_, p)| *p).collect::<Vec<_>>(),
        (1..=850).collect::<Vec<_>>()
    );
    assert_eq!(
        rest.first().map(|(u, _)| u.clone()),
        Some(queue[50].0.clone())
    );
    assert_eq!(app.counts(event).await, (100, 0, 850));
}

/// 40 concurrent bookings by one user make exactly one booking.
#[actix_web::test]
async fn forty_concurrent_bookings_by_one_user_make_one_booking() {
    let app = spawn_app().await;
    let event = app.create_event(10).await;
    let bookings = join_all((0..40).map(|_| app.book(event, "same-user"))).await;
    let ids: HashSet<u64> = bookings
        .iter()
        .map(|b| b["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(app.counts(event).await, (1, 9, 0));
}
