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

/// GETs `/api/events` as if forwarded for `client`; the status.
async fn as_forwarded(app: &crate::helpers::TestApp, client: &str) -> StatusCode {
    app.client
        .get(format!("{}/api/events", app.base))
        .header("x-forwarded-for", client)
        .send()
        .await
        .expect("sent")
        .status()
}

/// Behind a trusted proxy each forwarded client has its own quota.
#[actix_web::test]
async fn clients_behind_a_trusted_proxy_are_limited_separately() {
    let app = spawn_app_with(|s| {
        s.rate_limit.enabled = true;
        s.rate_limit.requests = 2;
        s.rate_limit.period_secs = 600;
        s.server.trusted_proxies = vec!["127.0.0.1".into(), "10.0.0.0/8".into()];
    })
    .await;
    // The client wrote the first hop itself; the proxies the rest.
    let one = "203.0.113.50, 198.51.100.1, 10.1.2.3";
    assert_eq!(as_forwarded(&app, one).await, StatusCode::OK);
    assert_eq!(as_forwarded(&app, "198.51.100.1").await, StatusCode::OK);
    assert_eq!(
        as_forwarded(&app, "198.51.100.1").await,
        StatusCode::TOO_MANY_REQUESTS,
        "the same client, whatever it wrote on the left"
    );
    assert_eq!(as_forwarded(&app, "198.51.100.2").await, StatusCode::OK);
    app.stop().await;
}

/// From a peer that is not a trusted proxy, `X-Forwarded-For` is ignored.
#[actix_web::test]
async fn an_untrusted_peers_forwarded_for_is_ignored() {
    let app = spawn_app_with(|s| {
        s.rate_limit.enabled = true;
        s.rate_limit.requests = 2;
        s.rate_limit.period_secs = 600;
        s.server.trusted_proxies = vec!["10.0.0.0/8".into()];
    })
    .await;
    assert_eq!(as_forwarded(&app, "198.51.100.1").await, StatusCode::OK);
    assert_eq!(as_forwarded(&app, "198.51.100.2").await, StatusCode::OK);
    assert_eq!(
        as_forwarded(&app, "198.51.100.3").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    app.stop().await;
}
