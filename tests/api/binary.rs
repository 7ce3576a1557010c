//! The real `boxoffice` binary: exit codes and a restart that loses nothing.

use nix::sys::signal::Signal;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::process::{command, files_in, request, Server};

async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> Value {
    let (status, body) = request(client, method, url, body).await;
    assert!(status.is_success(), "{status}: {body}");
    body
}

/// Everything a client can read: events, every user's booking, every queue.
async fn everything(base: &str, users: &[String]) -> Value {
    let client = reqwest::Client::new();
    let get = |path: String| send(&client, reqwest::Method::GET, format!("{base}{path}"), None);
    let events = get("/api/events?limit=1000".into()).await;
    let mut state = vec![events.clone()];
    for event in events["items"].as_array().expect("items") {
        let id = event["id"].as_u64().expect("id");
        state.push(get(format!("/api/status/{id}")).await);
        state.push(get(format!("/api/events/{id}/waiting-list?limit=1000")).await);
        for user in users {
            let res = client
                .get(format!("{base}/api/events/{id}/bookings/{user}"))
                .send()
                .await
                .expect("sent");
            if res.status() == StatusCode::OK {
                state.push(res.json().await.expect("json"));
            }
        }
    }
    Value::Array(state)
}

/// After SIGTERM the binary exits 0, and a restart brings back every event,
/// booking, status, queue order and timestamp unchanged; ids go on after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_after_sigterm_restores_everything_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    let client = reqwest::Client::new();
    let users: Vec<String> = (0..30).map(|i| format!("user{i}")).collect();
    for (tickets, name) in [(5, Value::Null), (12, json!("Second show"))] {
        let body = json!({"totalTickets": tickets, "name": name});
        send(
            &client,
            reqwest::Method::POST,
            format!("{}/api/initialize", server.base),
            Some(body),
        )
        .await;
    }
    for (i, user) in users.iter().enumerate() {
        let event = 1 + (i % 2) as u64;
        let body = json!({"eventId": event, "userId": user});
        send(
            &client,
            reqwest::Method::POST,
            format!("{}/api/book", server.base),
            Some(body),
        )
        .await;
    }
    for user in ["user0", "user3", "user14", "user21"] {
        for event in [1, 2] {
            let url = format!("{}/api/events/{event}/bookings/{user}", server.base);
            let _ = client.delete(url).send().await.expect("sent");
        }
    }
    let before = everything(&server.base, &users).await;
    let max_id = before
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|v| v["booking"]["id"].as_u64())
        .max()
        .expect("bookings exist");

    let (status, log) = server.stop_with(Signal::SIGTERM);
    assert_eq!(status.code(), Some(0), "clean stop exits 0; log:\n{log}");
    assert!(log.contains("final snapshot"), "{log}");

    let server = Server::start(dir.path());
    let after = everything(&server.base, &users).await;
    assert_eq!(after, before, "state after restart differs");
    let log = server.log();
    assert!(log.contains("restored 2 events and 30 bookings"), "{log}");

    let body = json!({"eventId": 1, "userId": "newcomer"});
    let booking = send(
        &client,
        reqwest::Method::POST,
        format!("{}/api/book", server.base),
        Some(body),
    )
    .await;
    assert!(
        booking["booking"]["id"].as_u64().expect("id") > max_id,
        "ids are never reused"
    );
    let (status, _) = server.stop_with(Signal::SIGINT);
    assert_eq!(status.code(), Some(0), "SIGINT stops cleanly too");
}

/// SIGTERM while keep-alive clients book as fast as they can: the binary
/// stops promptly with exit 0 (answers close their connections, so the
/// drain does not wait out its timeout), and every booking it answered 2xx
/// is there after the restart, in journal-off mode too, where the final
/// snapshot is the only copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_under_load_keeps_every_answered_booking() {
    for journal in ["true", "false"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = command(dir.path());
        cmd.env("BOXOFFICE__JOURNAL__ENABLED", journal);
        let server = Server::start_with(cmd);
        let client = reqwest::Client::new();
        send(
            &client,
            reqwest::Method::POST,
            format!("{}/api/initialize", server.base),
            Some(json!({"totalTickets": 1_000_000})),
        )
        .await;
        let clients: Vec<_> = (0..8)
            .map(|c| {
                let base = server.base.clone();
                tokio::spawn(async move {
                    let client = reqwest::Client::new();
                    let mut answered = Vec::new();
                    // Bounded: the stop ends it long before.
                    for n in 0..200_000 {
                        let user = format!("c{c}n{n}");
                        let url = format!("{base}/api/events/1/bookings/{user}");
                        match client.put(url).send().await {
                            Ok(reply) if reply.status().is_success() => answered.push(user),
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                    answered
                })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(1_000)).await;
        let started = std::time::Instant::now();
        let (status, log) = tokio::task::spawn_blocking(move || server.stop_with(Signal::SIGTERM))
            .await
            .expect("stopped");
        let took = started.elapsed();
        assert_eq!(status.code(), Some(0), "journal {journal}; log:\n{log}");
        assert!(
            took < std::time::Duration::from_secs(10),
            "journal {journal}: the stop took {took:?}"
        );
        let mut answered = Vec::new();
        for task in clients {
            answered.extend(task.await.expect("client"));
        }
        assert!(
            answered.len() > 50,
            "journal {journal}: only {} booked",
            answered.len()
        );

        let mut cmd = command(dir.path());
        cmd.env("BOXOFFICE__JOURNAL__ENABLED", journal);
        let server = Server::start_with(cmd);
        let (_, status) = request(
            &client,
            reqwest::Method::GET,
            format!("{}/api/status/1", server.base),
            None,
        )
        .await;
        assert!(
            status["confirmedCount"].as_u64().expect("count") >= answered.len() as u64,
            "journal {journal}: {status} after {} answered",
            answered.len()
        );
        for user in answered.iter().step_by(answered.len() / 50) {
            let (code, body) = request(
                &client,
                reqwest::Method::GET,
                format!("{}/api/events/1/bookings/{user}", server.base),
                None,
            )
            .await;
            assert_eq!(
                code,
                StatusCode::OK,
                "journal {journal}: {user} lost: {body}"
            );
        }
    }
}

/// An unknown key or a bad value stops start-up with exit code 2, naming it.
#[test]
fn bad_configuration_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: &[(&str, &str, &str)] = &[
        ("BOXOFFICE__SERVER__PROT", "1", "prot"),
        ("BOXOFFICE__SNAPSHOT__KEEP", "0", "snapshot.keep"),
        ("BOXOFFICE__SERVER__PORT", "eighty", "port"),
    ];
    for (key, value, named) in cases {
        let out = command(dir.path()).env(key, value).output().expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{key}={value}: {stderr}");
        assert!(
            stderr.to_lowercase().contains(named),
            "{key}={value}: {stderr}"
        );
    }
    let out = command(dir.path())
        .args(["--config", "/nonexistent.toml"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let out = command(dir.path()).arg("--bogus").output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
}

/// A snapshot directory whose files cannot be read stops start-up with exit
/// code 3 rather than serving an empty service over the data.
#[test]
fn unreadable_snapshots_exit_3() {
    let dir = tempfile::tempdir().expect("tempdir");
    let snapshots = dir.path().join("snapshots");
    std::fs::create_dir_all(&snapshots).expect("mkdir");
    std::fs::write(
        snapshots.join("snapshot-00000000000000000001.bin"),
        b"BOXOSNAP garbage",
    )
    .expect("write");
    let out = command(dir.path()).output().expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("snapshot-00000000000000000001.bin"),
        "{stderr}"
    );
}

/// A second instance on the same data directory (even on another port)
/// exits 1 naming the directory and the holder's pid, and leaves the first
/// one's files alone; `--help` and `--version` exit 0.
#[test]
fn a_second_instance_on_one_data_directory_exits_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = Server::start(dir.path());
    let files = |d: &std::path::Path| files_in(&d.join("snapshots"), "");
    let before = files(dir.path());
    let out = command(dir.path()).output().expect("second instance runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("in use by another boxoffice process"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("pid {}", first.child.id())),
        "{stderr}"
    );
    assert_eq!(files(dir.path()), before);
    let (status, _) = first.stop_with(Signal::SIGTERM);
    assert_eq!(status.code(), Some(0));

    for flag in ["--help", "--version"] {
        let out = command(dir.path())
            .arg(flag)
            .stdout(std::process::Stdio::piped())
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(0), "{flag}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("boxoffice"));
    }
}
