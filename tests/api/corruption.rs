//! Damaged files at start-up: a torn tail is cut and start-up goes on;
//! damage anywhere else stops start-up with exit code 3, naming the file,
//! unless an older snapshot plus the journal covers it.

use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;
use reqwest::StatusCode;
use serde_json::json;

use crate::process::{command, event_state, files_in, Server};

fn journal_command(dir: &Path) -> std::process::Command {
    let mut cmd = command(dir);
    cmd.env("BOXOFFICE__SNAPSHOT__INTERVAL_SECS", "86400")
        .env("BOXOFFICE__JOURNAL__SEGMENT_BYTES", "4096");
    cmd
}

/// Creates event 1 (if `create`) and books `users`, one request at a time
/// so the journal rotates its small segments.
async fn book_all(server: &Server, create: bool, users: std::ops::Range<usize>) {
    let http = reqwest::Client::new();
    if create {
        let res = http
            .post(format!("{}/api/initialize", server.base))
            .json(&json!({"totalTickets": 50}))
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    for i in users {
        let res = http
            .put(format!("{}/api/events/1/bookings/user{i}", server.base))
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), StatusCode::OK);
    }
}

/// A killed service whose journal spans at least three small segments;
/// returns them, oldest first.
async fn killed_with_segments(dir: &Path) -> Vec<PathBuf> {
    let server = Server::start_with(journal_command(dir));
    book_all(&server, true, 0..500).await;
    server.stop_with(Signal::SIGKILL);
    let segments = files_in(&dir.join("snapshots"), "journal-");
    assert!(segments.len() >= 3, "small segments rotate: {segments:?}");
    segments
}

/// Runs the binary to completion and returns its exit code and log.
fn run_to_exit(dir: &Path) -> (Option<i32>, String) {
    let out = journal_command(dir).output().expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A record cut short at the end of the journal (a torn write whose request
/// was never answered) is cut off at start-up, whatever its length, and
/// every answered change is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_tail_is_cut_and_every_answered_change_survives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(journal_command(dir.path()));
    book_all(&server, true, 0..30).await;
    let expected = event_state(&server.base, 1).await;
    server.stop_with(Signal::SIGKILL);
    // The killed writer left zeros ahead of its records; a start cuts them
    // from what is then the last segment, and starts an empty one.
    let server = Server::start_with(journal_command(dir.path()));
    server.stop_with(Signal::SIGKILL);
    // A whole frame to tear: the last one of a full segment.
    let full = files_in(&dir.path().join("snapshots"), "journal-")
        .into_iter()
        .rev()
        .find(|p| std::fs::metadata(p).expect("meta").len() > 0);
    let bytes = std::fs::read(full.expect("a segment with records")).expect("read");
    // Frames are `[payload length u32][crc u32][lsn u64][payload]`.
    let mut last = 0;
    let mut at = 0;
    while at + 16 <= bytes.len() {
        last = at;
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        at += 16 + len as usize;
    }
    assert_eq!(at, bytes.len(), "the segment is whole frames");
    let frame = bytes[last..].to_vec();
    for cut in [1, 7, 15, 16, 17, 30, frame.len() - 1] {
        // Zeros after the cut would complete the frame: not torn at all.
        if frame[cut..].iter().all(|&b| b == 0) {
            continue;
        }
        let newest = files_in(&dir.path().join("snapshots"), "journal-")
            .pop()
            .expect("segment");
        let mut torn = std::fs::read(&newest).expect("read");
        torn.extend_from_slice(&frame[..cut]);
        // As the writer leaves it: zeros ahead of the record it was writing.
        torn.extend_from_slice(&[0; 4096]);
        std::fs::write(&newest, &torn).expect("tear");
        let server = Server::start_with(journal_command(dir.path()));
        assert_eq!(event_state(&server.base, 1).await, expected, "cut {cut}");
        // Torn bytes that happen to be all zeros look like the zeros ahead,
        // and are cut without a warning.
        if frame[..cut].iter().any(|&b| b != 0) {
            assert!(
                server.log().contains("torn tail"),
                "cut {cut}: {}",
                server.log()
            );
        }
        server.stop_with(Signal::SIGKILL);
    }
}

/// A flipped byte in a record before the tail stops start-up with exit 3,
/// naming the segment and the byte offset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_record_in_the_middle_exits_3_naming_file_and_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let segments = killed_with_segments(dir.path()).await;
    let victim = &segments[0];
    let mut bytes = std::fs::read(victim).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(victim, &bytes).expect("damage");
    let (code, log) = run_to_exit(dir.path());
    assert_eq!(code, Some(3), "{log}");
    let name = victim.file_name().and_then(|n| n.to_str()).expect("name");
    assert!(log.contains(name) && log.contains("byte offset"), "{log}");
}

/// A missing segment is a gap: exit 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_segment_exits_3() {
    let dir = tempfile::tempdir().expect("tempdir");
    let segments = killed_with_segments(dir.path()).await;
    std::fs::remove_file(&segments[1]).expect("remove");
    let (code, log) = run_to_exit(dir.path());
    assert_eq!(code, Some(3), "{log}");
    assert!(log.contains("gap"), "{log}");
}

/// The last segment deleted, or the whole journal: the manifest says how
/// far the journal reached, so start-up refuses with exit 3 naming what is
/// missing instead of starting without acknowledged records. Without the
/// manifest (as a v1 data directory has none) the rest is taken as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_last_segment_or_journal_exits_3() {
    let dir = tempfile::tempdir().expect("tempdir");
    let segments = killed_with_segments(dir.path()).await;
    let newest = segments.last().expect("a segment");
    std::fs::remove_file(newest).expect("remove the newest segment");
    let (code, log) = run_to_exit(dir.path());
    assert_eq!(code, Some(3), "{log}");
    assert!(log.contains("journal.manifest"), "{log}");
    assert!(log.contains(&newest.display().to_string()), "{log}");
    for segment in &segments[..segments.len() - 1] {
        std::fs::remove_file(segment).expect("remove");
    }
    let (code, log) = run_to_exit(dir.path());
    assert_eq!(code, Some(3), "{log}");
    assert!(log.contains("the newest on disk is none"), "{log}");
    std::fs::remove_file(dir.path().join("snapshots/journal.manifest")).expect("remove");
    // Without a manifest the journal is taken as it is: the service starts.
    let server = Server::start_with(journal_command(dir.path()));
    let (status, log) = server.stop_with(Signal::SIGTERM);
    assert_eq!(status.code(), Some(0), "{log}");
}

/// Two snapshots, then the newest is damaged: the older one plus the
/// journal bring everything back (with a warning); once the journal no
/// longer reaches back to the older one, start-up refuses with exit 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_newest_snapshot_falls_back_only_when_the_journal_covers_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(journal_command(dir.path()));
    book_all(&server, true, 0..40).await;
    assert_eq!(server.stop_with(Signal::SIGTERM).0.code(), Some(0));
    let server = Server::start_with(journal_command(dir.path()));
    book_all(&server, false, 40..80).await;
    let expected = event_state(&server.base, 1).await;
    assert_eq!(server.stop_with(Signal::SIGTERM).0.code(), Some(0));

    let snapshots = files_in(&dir.path().join("snapshots"), "snapshot-");
    assert_eq!(snapshots.len(), 2, "{snapshots:?}");
    let newest = &snapshots[1];
    let mut bytes = std::fs::read(newest).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(newest, &bytes).expect("damage");

    let server = Server::start_with(journal_command(dir.path()));
    assert_eq!(
        event_state(&server.base, 1).await,
        expected,
        "older snapshot plus journal restores everything"
    );
    assert!(
        server.log().contains("started from older snapshot"),
        "{}",
        server.log()
    );
    server.stop_with(Signal::SIGKILL);

    // Now take away the journal records the older snapshot needs: the
    // segment the second run wrote (the third run's is the newest; older
    // ones stay for the change feed).
    let segments = files_in(&dir.path().join("snapshots"), "journal-");
    std::fs::remove_file(&segments[segments.len() - 2]).expect("remove");
    let (code, log) = run_to_exit(dir.path());
    assert_eq!(code, Some(3), "{log}");
    let name = newest.file_name().and_then(|n| n.to_str()).expect("name");
    assert!(log.contains(name), "{log}");
}
