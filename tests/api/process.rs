//! Starting and stopping the real `boxoffice` binary.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// How long the binary gets to start or stop before the test fails.
pub const PROCESS_DEADLINE: Duration = Duration::from_secs(30);

/// A `boxoffice` process started by a test.
pub struct Server {
    /// The child process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Everything it logged, for failure messages.
    pub log: Arc<Mutex<String>>,
}

pub fn command(dir: &Path) -> Command {
    let mut cmd = Command::new(binary());
    configure(&mut cmd, dir);
    cmd
}

/// The server binary the process tests run: another build (the release
/// one, say) when the environment names it.
pub fn binary() -> std::ffi::OsString {
    std::env::var_os("BOXOFFICE_TEST_BINARY")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_boxoffice").into())
}

/// The settings of [`command`] on a command that runs the binary another
/// way (`ip netns exec NS BINARY`, say).
pub fn configure(cmd: &mut Command, dir: &Path) {
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
    // A coverage run (cargo tarpaulin --engine llvm --follow-exec) names
    // where each process writes its profile; the cleared environment
    // would send it to the process's scratch directory, unread.
    if let Some(profile) = std::env::var_os("LLVM_PROFILE_FILE") {
        cmd.env("LLVM_PROFILE_FILE", profile);
    }
}

impl Server {
    /// Starts the binary in `dir` and waits for its "listening on" line.
    pub fn start(dir: &Path) -> Server {
        Self::start_with(command(dir))
    }

    /// Starts a prepared command and waits for its "listening on" line.
    pub fn start_with(mut cmd: Command) -> Server {
        let mut child = cmd.spawn().expect("binary starts");
        let stderr = child.stderr.take().expect("stderr piped");
        let log = Arc::new(Mutex::new(String::new()));
        let (found, listening) = std::sync::mpsc::channel();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(address) = boxoffice_testkit::listening_address(&line) {
                    let _ = found.send(format!("http://{address}"));
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
    pub fn stop_with(mut self, signal: Signal) -> (ExitStatus, String) {
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

/// How long a server dropped by its test gets to stop on SIGTERM before
/// it is killed.
const DROP_GRACE: Duration = Duration::from_secs(5);

impl Drop for Server {
    fn drop(&mut self) {
        // Only our own child, by its PID. SIGTERM first: a process that
        // stops cleanly writes its coverage profile in a coverage run, one
        // that is killed does not (tests that need the kill send it
        // themselves with `stop_with`). SIGKILL if it is still there
        // after the grace.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
            let deadline = Instant::now() + DROP_GRACE;
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Everything the binary logged so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }
}

/// One request with an optional JSON body; the status and the JSON answer.
pub async fn request(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<serde_json::Value>,
) -> (reqwest::StatusCode, serde_json::Value) {
    let mut req = http.request(method, url);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.expect("request sent");
    let status = res.status();
    let text = res.text().await.expect("body read");
    let json = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("non-JSON answer {status}: {text:?}"));
    (status, json)
}

/// `GET url`, which must answer 200; its JSON.
pub async fn get_ok(http: &reqwest::Client, url: String) -> serde_json::Value {
    let (status, body) = request(http, reqwest::Method::GET, url, None).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    body
}

/// What every client can read of one event: its status and its whole queue.
pub async fn event_state(base: &str, event: u64) -> serde_json::Value {
    try_event_state(base, event)
        .await
        .unwrap_or_else(|(status, body)| panic!("{status}: {body}"))
}

/// [`event_state`], or the first answer that was not 200 (a node that has
/// not applied the event's creation yet answers 404).
pub async fn try_event_state(
    base: &str,
    event: u64,
) -> Result<serde_json::Value, (reqwest::StatusCode, serde_json::Value)> {
    let http = reqwest::Client::new();
    let mut parts = Vec::new();
    for path in [
        format!("/api/status/{event}"),
        format!("/api/events/{event}/waiting-list?limit=1000"),
    ] {
        let (status, body) =
            request(&http, reqwest::Method::GET, format!("{base}{path}"), None).await;
        if status != reqwest::StatusCode::OK {
            return Err((status, body));
        }
        parts.push(body);
    }
    Ok(serde_json::Value::Array(parts))
}

/// Files in `dir` whose names start with `prefix`, sorted (so oldest first
/// for snapshot and journal files).
pub fn files_in(dir: &Path, prefix: &str) -> Vec<std::path::PathBuf> {
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .expect("readable directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    found.sort();
    found
}
