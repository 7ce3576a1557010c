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
    // The first tick may have caught the create alone; the next one then
    // writes the booking. Let that settle before watching for idle writes.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let written = snapshot_files(app.dir.path());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        snapshot_files(app.dir.path()),
        written,
        "idle intervals write nothing"
    );
}

fn metric(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from {metrics}"))
}

/// With the journal on, a snapshot is rewritten only once the journal
/// written since the last one reaches `journal_percent` of that snapshot's
/// size: a change or two does not rewrite a large state, enough changes do.
#[actix_web::test]
async fn a_snapshot_waits_until_the_journal_since_the_last_one_outweighs_it() {
    let app = spawn_app_with(|s| {
        s.snapshot.interval_secs = 1;
        s.snapshot.journal_percent = 100;
    })
    .await;
    let event = app.create_event(10_000).await;
    for n in 0..200 {
        app.book(event, &format!("base{n}")).await;
    }
    // Nothing changes now, so once the first snapshot (due at once) and
    // any catching up on the bookings are written, the files stay as they are.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut files = snapshot_files(app.dir.path());
    loop {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let now = snapshot_files(app.dir.path());
        if !now.is_empty() && now == files {
            break;
        }
        assert!(Instant::now() < deadline, "snapshots never settled");
        files = now;
    }
    let newest = files.last().expect("a snapshot").clone();
    let snapshot_bytes = std::fs::metadata(&newest).expect("newest").len();
    let journal_at_rest = metric(
        &app.text("/metrics").await,
        "boxoffice_journal_written_bytes_total",
    );

    app.book(event, "one-more").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        snapshot_files(app.dir.path()),
        files,
        "one booking's journal bytes do not rewrite a {snapshot_bytes}-byte snapshot"
    );

    let mut n = 0;
    while metric(
        &app.text("/metrics").await,
        "boxoffice_journal_written_bytes_total",
    ) < journal_at_rest + snapshot_bytes
    {
        app.book(event, &format!("more{n}")).await;
        n += 1;
        assert!(n < 10_000, "the journal never outgrew the snapshot");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while snapshot_files(app.dir.path()).last() == Some(&newest) {
        assert!(
            Instant::now() < deadline,
            "no snapshot after the journal outgrew the last one"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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

/// Snapshot-only mode (journal off): when a snapshot cannot be written,
/// changes are refused (503) and /health says why, instead of answering 200
/// for changes a restart would lose; once a snapshot succeeds again, changes
/// are taken again.
#[actix_web::test]
async fn snapshot_only_mode_refuses_changes_while_snapshots_fail() {
    let app = spawn_app_with(|s| {
        s.journal.enabled = false;
        s.snapshot.interval_secs = 1;
    })
    .await;
    let event = app.create_event(10).await;
    // Pull the directory away and put a file where it was: as root too,
    // nothing can be created inside a file.
    let dir = app.dir.path().to_path_buf();
    let aside = dir.with_extension("aside");
    std::fs::rename(&dir, &aside).expect("move the data directory away");
    std::fs::write(&dir, b"not a directory").expect("block its path");
    app.book(event, "before").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let health = loop {
        let got = app.get("/health").await;
        if got.0 != StatusCode::OK || Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(health.0, StatusCode::SERVICE_UNAVAILABLE, "{}", health.1);
    assert!(
        health.1["error"]
            .as_str()
            .is_some_and(|e| e.contains("snapshot")),
        "{}",
        health.1
    );
    crate::helpers::assert_error(
        &app.post("/api/book", json!({"eventId": event, "userId": "during"}))
            .await,
        StatusCode::SERVICE_UNAVAILABLE,
        "UNAVAILABLE",
    );
    std::fs::remove_file(&dir).expect("unblock");
    std::fs::rename(&aside, &dir).expect("put the directory back");
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.get("/health").await.0 != StatusCode::OK {
        assert!(Instant::now() < deadline, "health did not come back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.book(event, "after").await;
    let (_, during) = app
        .get(&format!("/api/booking-status/{event}/during"))
        .await;
    assert_eq!(
        during["code"], "BOOKING_NOT_FOUND",
        "the refused booking left no trace"
    );
}
