//! The real `boxoffice` binary: exit codes and a restart that loses nothing.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// How long the binary gets to start or stop before the test fails.
const PROCESS_DEADLINE: Duration = Duration::from_secs(30);

/// A `boxoffice` process started by a test.
struct Server {
    /// The child process.
    child: Child,
    /// `http://127.0.0.1:PORT`.
    base: String,
    /// Everything it logged, for failure messages.
    log: Arc<Mutex<String>>,
}

fn command(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_boxoffice"));
    cmd.current_dir(dir)
        .env_clear()
        .env("RUST_LOG", "info")
        .env("BOXOFFICE__SERVER__PORT", "0")
        .env("BOXOFFICE__SNAPSHOT__DIR", dir.join("snapshots"))
        .env("BOXOFFICE__RATE_LIMIT__ENABLED", "false")
        .env("BOXOFFICE__LOG__ACCESS_LOG", "false")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

impl Server {
    /// Starts the binary in `dir` and waits for its "listening on" line.
    fn start(dir: &Path) -> Server {
        let mut child = command(dir).spawn().expect("binary starts");
        let stderr = child.stderr.take().expect("stderr piped");
        let log = Arc::new(Mutex::new(String::new()));
        let (found, listening) = std::sync::mpsc::channel();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(address) = line.split("listening on ").nth(1) {
                    let _ = found.send(address.trim().to_string());
                }
                sink.lock().expect("log lock").push_str(&(line + "\n"));
            }
        });
        let base = listening
            .recv_timeout(PROCESS_DEADLINE)
            .unwrap_or_else(|_| {
                panic!("no listening line; log:\n{}", log.lock().expect("log lock"))
            });
        Server { child, base, log }
    }

    /// Sends `signal` and waits for the exit status.
    fn stop_with(mut self, signal: Signal) -> (ExitStatus, String) {
        kill(Pid::from_raw(self.child.id() as i32), signal).expect("signal sent");
        let deadline = Instant::now() + PROCESS_DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                std::thread::sleep(Duration::from_millis(50));
                return (status, self.log.lock().expect("log lock").clone());
            }
            assert!(Instant::now() < deadline, "binary did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Only our own child, by its PID; a no-op when it already exited.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> Value {
    let mut req = client.request(method, url);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.expect("sent");
    assert!(res.status().is_success(), "{}", res.status());
    res.json().await.expect("json")
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
    let log = server.log.lock().expect("log").clone();
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
