//! Starting the service in-process and talking to it.

use boxoffice::config::Settings;
use boxoffice::startup::Application;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::oneshot;

/// A running service on a free port with its own snapshot directory.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// A client with connection reuse.
    pub client: reqwest::Client,
    /// Completing this stops the service.
    stop: Option<oneshot::Sender<()>>,
    /// The service task, which returns after the final snapshot.
    task: Option<tokio::task::JoinHandle<Result<(), boxoffice::startup::StopError>>>,
    /// Snapshot directory, removed when the test ends.
    pub dir: tempfile::TempDir,
}

/// Settings for tests: port 0, a temporary snapshot dir, no rate limit, quiet.
pub fn test_settings(dir: &std::path::Path) -> Settings {
    let mut s = Settings::default();
    s.server.port = 0;
    s.server.workers = 2;
    s.rate_limit.enabled = false;
    s.snapshot.dir = dir.to_path_buf();
    s.log.access_log = false;
    s
}

/// Starts the service with default test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the service after `tweak` adjusts the test settings.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = test_settings(dir.path());
    tweak(&mut settings);
    let app = Application::build(settings).expect("service builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = actix_web::rt::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp {
        base,
        client: reqwest::Client::new(),
        stop: Some(stop),
        task: Some(task),
        dir,
    }
}

impl TestApp {
    /// Sends a request with an optional JSON body; returns status and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status();
        let text = res.text().await.expect("body read");
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("non-JSON answer {status}: {text:?}"));
        (status, body)
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    /// `GET path` as text (`/metrics`).
    pub async fn text(&self, path: &str) -> String {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("sent")
            .text()
            .await
            .expect("body read")
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    /// Creates an event with `tickets` tickets; returns its id.
    pub async fn create_event(&self, tickets: u64) -> u64 {
        let (status, body) = self
            .post("/api/initialize", json!({"totalTickets": tickets}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["event"]["id"].as_u64().expect("event id")
    }

    /// An event's counters from its status: (confirmed, available, waiting).
    pub async fn counts(&self, event: u64) -> (u64, u64, u64) {
        let (status, body) = self.get(&format!("/api/status/{event}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let n = |key: &str| {
            body[key]
                .as_u64()
                .unwrap_or_else(|| panic!("{key} in {body}"))
        };
        (
            n("confirmedCount"),
            n("availableTickets"),
            n("waitingListCount"),
        )
    }

    /// A page of an event's waiting list as (user, position) pairs, with the
    /// whole answer for any further checks.
    pub async fn waiting(&self, event: u64, query: &str) -> (Vec<(String, u64)>, Value) {
        let (status, page) = self
            .get(&format!("/api/events/{event}/waiting-list?{query}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| {
                let user = i["user_id"].as_str().expect("user").to_string();
                (user, i["waiting_position"].as_u64().expect("position"))
            })
            .collect();
        (items, page)
    }

    /// Books through the seed route; returns the booking object.
    pub async fn book(&self, event: u64, user: &str) -> Value {
        let (status, body) = self
            .post("/api/book", json!({"eventId": event, "userId": user}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["booking"].clone()
    }

    /// Stops the service (final snapshot included), waits for it, and hands
    /// back the snapshot directory.
    pub async fn stop(self) -> tempfile::TempDir {
        let TestApp {
            stop, task, dir, ..
        } = self;
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
        if let Some(task) = task {
            task.await.expect("service task").expect("clean stop");
        }
        dir
    }
}

/// Asserts an error answer: status, code, and a human sentence.
pub fn assert_error(got: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["code"], code, "{}", got.1);
    assert!(
        got.1["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{}",
        got.1
    );
}
