//! The router is the route table: every method the table lists is served
//! (never 405), every other is 405 with the table's `Allow`, and who may
//! call each one is what the table says.

use reqwest::{Method, StatusCode};

use boxoffice::http::api::route_table::{Access, ROUTES};

use crate::helpers::spawn_app_with;

const ADMIN: &str = "route-table-admin-token";
const METHODS: [&str; 6] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];

fn concrete(pattern: &str) -> String {
    pattern.replace("{eventId}", "1").replace("{userId}", "u1")
}

/// Status, `Allow` and error code of one request (the body is not read
/// from streams, which never end).
async fn probe(
    client: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, Option<String>, Option<String>) {
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = client
        .request(method.clone(), format!("{base}{path}"))
        .timeout(std::time::Duration::from_secs(10));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if method != Method::GET && method != Method::HEAD {
        req = req.json(&serde_json::json!({"eventId": 1, "userId": "u1", "quantity": 1}));
    }
    let res = req.send().await.expect("sent");
    let status = res.status();
    let allow = res
        .headers()
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let streaming = res
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let code = if method == Method::HEAD || streaming {
        None
    } else {
        let body: serde_json::Value = res.json().await.unwrap_or_default();
        body["code"].as_str().map(String::from)
    };
    (status, allow, code)
}

#[actix_web::test]
async fn the_router_serves_exactly_the_route_table() {
    let app = spawn_app_with(|s| {
        s.auth.admin_token = ADMIN.into();
        s.rate_limit.enabled = false;
    })
    .await;
    let (status, _) = app
        .client
        .post(format!("{}/api/initialize", app.base))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"eventId": 1, "totalTickets": 5}))
        .send()
        .await
        .map(|r| (r.status(), ()))
        .expect("created");
    assert_eq!(status, StatusCode::CREATED);
    let client = reqwest::Client::new();
    for route in ROUTES {
        let path = concrete(route.path);
        for method in METHODS {
            let (status, allow, code) = probe(&client, &app.base, method, &path, Some(ADMIN)).await;
            match route.access(method) {
                Some(_) => {
                    assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
                    assert_ne!(code.as_deref(), Some("NOT_FOUND"), "{method} {path}");
                }
                None => {
                    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
                    assert_eq!(allow.as_deref(), Some(route.allow().as_str()), "{path}");
                }
            }
        }
    }
    app.stop().await;
}

#[actix_web::test]
async fn who_may_call_each_route_is_what_the_route_table_says() {
    let app = spawn_app_with(|s| {
        s.auth.admin_token = ADMIN.into();
        s.auth.users = boxoffice::config::UserAuth::Jwt;
        s.auth.jwt_secret = "route-table-jwt-secret-of-enough-length".into();
        s.rate_limit.enabled = false;
    })
    .await;
    let client = reqwest::Client::new();
    for route in ROUTES {
        let path = concrete(route.path);
        for operation in route.operations {
            let (status, _, _) = probe(&client, &app.base, operation.method, &path, None).await;
            let needs_a_token = operation.access != Access::Public;
            assert_eq!(
                status == StatusCode::UNAUTHORIZED,
                needs_a_token,
                "{} {path} without a token: {status}",
                operation.method
            );
        }
    }
    app.stop().await;
}
