//! The per-IP quota.

use reqwest::StatusCode;

use crate::helpers::{assert_error, spawn_app_with};

/// Past the quota an IP gets 429 RATE_LIMITED with Retry-After; /health is never limited.
#[actix_web::test]
async fn over_the_quota_is_429_with_retry_after_and_health_is_exempt() {
    let app = spawn_app_with(|s| {
        s.rate_limit.enabled = true;
        s.rate_limit.requests = 5;
        s.rate_limit.period_secs = 60;
    })
    .await;
    for _ in 0..5 {
        assert_eq!(app.get("/api/events").await.0, StatusCode::OK);
    }
    let res = app
        .client
        .get(format!("{}/api/events", app.base))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(
        (1..=12).contains(&retry),
        "one request refills every 12 s, got {retry}"
    );
    let body = res.json().await.expect("json");
    assert_error(
        &(StatusCode::TOO_MANY_REQUESTS, body),
        StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMITED",
    );
    for _ in 0..20 {
        assert_eq!(app.get("/health").await.0, StatusCode::OK);
    }
}

/// With rate_limit.enabled = false nothing is ever limited.
#[actix_web::test]
async fn a_disabled_limit_never_answers_429() {
    let app = spawn_app_with(|s| {
        s.rate_limit.enabled = false;
        s.rate_limit.requests = 1;
    })
    .await;
    for _ in 0..20 {
        assert_eq!(app.get("/api/events").await.0, StatusCode::OK);
    }
}
