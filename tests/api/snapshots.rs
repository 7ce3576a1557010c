//! Snapshots taken by the running service, and restores from them.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with};

fn snapshot_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    crate::process::files_in(dir, "snapshot-")
}

/// The periodic task writes a snapshot after a change, without any stop.
#[actix_web::test]
async fn a_change_is_snapshotted_within_an_interval() {
    let app = spawn_app_with(|s| s.snapshot.interval_secs = 1).await;
    assert!(
        snapshot_files(app.dir.path()).is_empty(),
        "nothing changed, nothing written"
    );
    let event = app.create_event(3).await;
    app.book(event, "a").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while snapshot_files(app.dir.path()).is_empty() {
        assert!(Instant::now() < deadline, "no snapshot after 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let written = snapshot_files(app.dir.path());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        snapshot_files(app.dir.path()),
        written,
        "idle intervals write nothing"
    );
}

/// A clean stop writes a final snapshot, and a service started on the same
/// directory serves the same state with ids continuing after it.
#[actix_web::test]
async fn a_stopped_service_restarts_with_its_state() {
    let app = spawn_app().await;
    let event = app.create_event(1).await;
    let a = app.book(event, "a").await;
    let b = app.book(event, "b").await;
    let (_, status_before) = app.get(&format!("/api/status/{event}")).await;
    let dir = app.stop().await;
    assert_eq!(snapshot_files(dir.path()).len(), 1);

    let restarted = spawn_app_with(|s| s.snapshot.dir = dir.path().to_path_buf()).await;
    assert_eq!(
        restarted.get(&format!("/api/status/{event}")).await,
        (StatusCode::OK, status_before)
    );
    let (_, b_after) = restarted
        .get(&format!("/api/events/{event}/bookings/b"))
        .await;
    assert_eq!(b_after["booking"], b);
    let (_, cancelled) = restarted
        .post("/api/cancel", json!({"eventId": event, "userId": "a"}))
        .await;
    assert_eq!(cancelled["booking"]["id"], a["id"]);
    assert_eq!(cancelled["promoted"]["id"], b["id"]);
    let c = restarted.book(event, "c").await;
    assert!(
        c["id"].as_u64() > b["id"].as_u64(),
        "ids continue after a restore"
    );
    assert_eq!(
        restarted.create_event(1).await,
        event + 1,
        "event ids continue too"
    );
}
