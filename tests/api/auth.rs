//! Access control: the organiser's token, customers' JWTs, and the order in
//! which a request is judged (401 before anything else).

use std::path::Path;

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app_with, TestApp};

const ADMIN: &str = "organiser-token-for-tests";
const SECRET: &str = "a-test-secret-of-at-least-32-bytes!";
const FAR: u64 = 4_000_000_000;

fn hs256(claims: Value, key: &str) -> String {
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(key.as_bytes()),
    )
    .expect("signed")
}

fn token_for(user: &str) -> String {
    hs256(json!({"sub": user, "exp": FAR}), SECRET)
}

async fn jwt_app() -> TestApp {
    spawn_app_with(|s| {
        s.auth.admin_token = ADMIN.into();
        s.auth.users = boxoffice::config::UserAuth::Jwt;
        s.auth.jwt_secret = SECRET.into();
        s.auth.jwt_issuer = "https://id.example".into();
        s.auth.jwt_audience = "boxoffice".into();
    })
    .await
}

/// A request with an optional bearer token: status, JSON and whether it
/// asked for a bearer token.
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value, bool) {
    let mut req = app.client.request(method, format!("{}{path}", app.base));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.expect("sent");
    let status = res.status();
    let challenge = res
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer"));
    let body = res.json().await.expect("JSON answer");
    (status, body, challenge)
}

async fn expect(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    status: StatusCode,
    code: &str,
) {
    let (got, answer, challenge) = call(app, method.clone(), path, token, body).await;
    assert_error(&(got, answer.clone()), status, code);
    if status == StatusCode::UNAUTHORIZED {
        assert!(challenge, "{method} {path}: 401 without WWW-Authenticate");
    }
}

fn claims(extra: Value) -> Value {
    let mut c =
        json!({"sub": "alice", "exp": FAR, "iss": "https://id.example", "aud": "boxoffice"});
    if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            c.insert(k.clone(), v.clone());
        }
    }
    c
}

#[actix_web::test]
async fn organiser_routes_need_the_admin_token_and_public_ones_do_not() {
    let app = spawn_app_with(|s| s.auth.admin_token = ADMIN.into()).await;
    let create = || Some(json!({"totalTickets": 3}));
    expect(
        &app,
        Method::POST,
        "/api/events",
        None,
        create(),
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    )
    .await;
    expect(
        &app,
        Method::POST,
        "/api/initialize",
        Some("wrong"),
        create(),
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    )
    .await;
    // Unauthenticated and invalid: 401, not 400.
    expect(
        &app,
        Method::POST,
        "/api/events",
        None,
        Some(json!({"totalTickets": -1})),
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    )
    .await;
    let (status, created, _) = call(&app, Method::POST, "/api/events", Some(ADMIN), create()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["event"]["id"].as_u64().expect("id");

    let patch = Some(json!({"totalTickets": 5}));
    expect(
        &app,
        Method::PATCH,
        &format!("/api/events/{id}"),
        None,
        patch.clone(),
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    )
    .await;
    let (status, _, _) = call(
        &app,
        Method::PATCH,
        &format!("/api/events/{id}"),
        Some(ADMIN),
        patch,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let list = format!("/api/events/{id}/waiting-list");
    expect(
        &app,
        Method::GET,
        &list,
        None,
        None,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    )
    .await;
    assert_eq!(
        call(&app, Method::GET, &list, Some(ADMIN), None).await.0,
        StatusCode::OK
    );

    // Public: status, the list, health; customers are trusted by default.
    for path in [
        format!("/api/status/{id}"),
        format!("/api/events/{id}"),
        "/api/events".into(),
        "/health".into(),
    ] {
        assert_eq!(
            call(&app, Method::GET, &path, None, None).await.0,
            StatusCode::OK,
            "{path}"
        );
    }
    let (status, _, _) = call(
        &app,
        Method::PUT,
        &format!("/api/events/{id}/bookings/alice"),
        None,
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "users = trusted: no token needed to book"
    );
    app.stop().await;
}

#[actix_web::test]
async fn customer_routes_need_the_users_own_token() {
    let app = jwt_app().await;
    let (_, created, _) = call(
        &app,
        Method::POST,
        "/api/events",
        Some(ADMIN),
        Some(json!({"totalTickets": 1})),
    )
    .await;
    let id = created["event"]["id"].as_u64().expect("id");
    let alice = format!("/api/events/{id}/bookings/alice");
    let good = hs256(claims(json!({})), SECRET);
    let unauthenticated = [
        None,
        Some("not-a-jwt".to_string()),
        Some(hs256(
            claims(json!({})),
            "another secret entirely, 32 bytes+",
        )),
        Some(hs256(claims(json!({"exp": 1_000})), SECRET)),
        Some(hs256(
            json!({"sub": "alice", "iss": "https://id.example", "aud": "boxoffice"}),
            SECRET,
        )),
        Some(hs256(
            claims(json!({"iss": "https://evil.example"})),
            SECRET,
        )),
        Some(hs256(claims(json!({"aud": "another-service"})), SECRET)),
        Some(hs256(claims(json!({"nbf": FAR - 10})), SECRET)),
        // With an issuer and an audience configured, a token without the
        // claim is refused like one with a wrong one.
        Some(hs256(
            json!({"sub": "alice", "exp": FAR, "aud": "boxoffice"}),
            SECRET,
        )),
        Some(hs256(
            json!({"sub": "alice", "exp": FAR, "iss": "https://id.example"}),
            SECRET,
        )),
    ];
    for token in &unauthenticated {
        expect(
            &app,
            Method::PUT,
            &alice,
            token.as_deref(),
            None,
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
        )
        .await;
        expect(
            &app,
            Method::POST,
            "/api/book",
            token.as_deref(),
            Some(json!({"eventId": id, "userId": "alice"})),
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
        )
        .await;
    }
    // A header that is not "Bearer <token>".
    let res = app
        .client
        .put(format!("{}{alice}", app.base))
        .header("authorization", "Basic YWxpY2U6eA==")
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // Unauthenticated and invalid: 401 before 400 and 404.
    expect(
        &app,
        Method::PUT,
        "/api/events/zero/bookings/alice",
        None,
        None,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    )
    .await;
    expect(
        &app,
        Method::GET,
        "/api/events/999/bookings/alice",
        None,
        None,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    )
    .await;

    // Another user's token: 403, through the path and through the body.
    let bob = token_for_full("bob");
    expect(
        &app,
        Method::PUT,
        &alice,
        Some(&bob),
        None,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    expect(
        &app,
        Method::POST,
        "/api/book",
        Some(&bob),
        Some(json!({"eventId": id, "userId": "alice"})),
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    expect(
        &app,
        Method::POST,
        "/api/cancel",
        Some(&bob),
        Some(json!({"eventId": id, "userId": "alice"})),
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    // Nothing was booked by any of that.
    let (_, status, _) = call(&app, Method::GET, &format!("/api/status/{id}"), None, None).await;
    assert_eq!(status["availableTickets"], 1, "{status}");

    // The user's own token works on every customer route.
    let (s, booked, _) = call(&app, Method::PUT, &alice, Some(&good), None).await;
    assert_eq!(s, StatusCode::OK, "{booked}");
    assert_eq!(
        call(&app, Method::GET, &alice, Some(&good), None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(
            &app,
            Method::GET,
            &format!("/api/booking-status/{id}/alice"),
            Some(&good),
            None
        )
        .await
        .0,
        StatusCode::OK
    );
    // The admin token acts for anyone; a user token is no organiser.
    let (s, body, _) = call(
        &app,
        Method::POST,
        "/api/book",
        Some(ADMIN),
        Some(json!({"eventId": id, "userId": "carol"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "waiting");
    expect(
        &app,
        Method::POST,
        "/api/events",
        Some(&good),
        Some(json!({"totalTickets": 1})),
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    expect(
        &app,
        Method::GET,
        &format!("/api/events/{id}/waiting-list"),
        Some(&good),
        None,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    let (s, cancelled, _) = call(&app, Method::DELETE, &alice, Some(&good), None).await;
    assert_eq!(s, StatusCode::OK, "{cancelled}");
    // v3: Alice's own token does not see who got her ticket.
    assert_eq!(cancelled["promoted"], Value::Null, "{cancelled}");
    let (_, carol, _) = call(
        &app,
        Method::GET,
        &format!("/api/events/{id}/bookings/carol"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(carol["booking"]["status"], "confirmed", "{carol}");
    app.stop().await;
}

fn token_for_full(user: &str) -> String {
    hs256(claims(json!({"sub": user})), SECRET)
}

#[actix_web::test]
async fn a_public_key_file_checks_es256_tokens() {
    let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/keys");
    let app = spawn_app_with(|s| {
        s.auth.admin_token = ADMIN.into();
        s.auth.users = boxoffice::config::UserAuth::Jwt;
        s.auth.jwt_public_key_file = keys.join("es256_public.pem");
    })
    .await;
    let create = Some(json!({"totalTickets": 2}));
    let (status, created, _) = call(&app, Method::POST, "/api/events", Some(ADMIN), create).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["eventId"].as_u64().expect("event id");
    let private = std::fs::read(keys.join("es256_private.pem")).expect("key");
    let key = EncodingKey::from_ec_pem(&private).expect("EC key");
    let es = encode(
        &Header::new(Algorithm::ES256),
        &json!({"sub": "dana", "exp": FAR}),
        &key,
    )
    .expect("signed");
    let path = format!("/api/events/{id}/bookings/dana");
    assert_eq!(
        call(&app, Method::PUT, &path, Some(&es), None).await.0,
        StatusCode::OK
    );
    // An HS256 token is refused when a public key is configured.
    let hs = token_for("dana");
    expect(
        &app,
        Method::GET,
        &path,
        Some(&hs),
        None,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    )
    .await;
    app.stop().await;
}

#[test]
fn tokens_never_reach_the_log() {
    use crate::process::{command, Server};
    let dir = tempfile::tempdir().expect("dir");
    let mut cmd = command(dir.path());
    cmd.env("RUST_LOG", "debug")
        .env("BOXOFFICE__LOG__ACCESS_LOG", "true")
        .env("BOXOFFICE__AUTH__ADMIN_TOKEN", ADMIN)
        .env("BOXOFFICE__AUTH__USERS", "jwt")
        .env("BOXOFFICE__AUTH__JWT_SECRET", SECRET);
    let server = Server::start_with(cmd);
    let bad = hs256(json!({"sub": "erin", "exp": 1_000}), SECRET);
    let good = token_for("erin");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let http = reqwest::Client::new();
        let create = http
            .post(format!("{}/api/events", server.base))
            .bearer_auth(ADMIN)
            .json(&json!({"totalTickets": 1}))
            .send()
            .await
            .expect("sent");
        assert_eq!(create.status(), StatusCode::CREATED);
        // Probes stay out of the access log (a proxy checks several times
        // a second).
        for probe in ["/leader", "/health", "/ready"] {
            http.get(format!("{}{probe}", server.base))
                .send()
                .await
                .expect("sent");
        }
        let path = format!("{}/api/events/1/bookings/erin", server.base);
        for token in [&bad, &good, &"garbage".to_string()] {
            http.put(&path)
                .bearer_auth(token)
                .send()
                .await
                .expect("sent");
        }
    });
    let (status, log) = server.stop_with(nix::sys::signal::Signal::SIGTERM);
    assert!(status.success(), "{log}");
    assert!(
        log.contains("/api/events/1/bookings/erin"),
        "the requests were logged: {log}"
    );
    for secret in [ADMIN, SECRET, &bad, &good] {
        assert!(!log.contains(secret), "a credential is in the log:\n{log}");
    }
    for probe in ["\"GET /leader", "\"GET /health", "\"GET /ready"] {
        assert!(!log.contains(probe), "{probe} in the access log:\n{log}");
    }
}

/// With `users = "jwt"`, a customer's own token sees no other user in a
/// reply: a cancellation that promotes someone says `cancelled` with the
/// caller, no `promoted`, no `promotions`; a quantity change lists no
/// promotions. The admin token still sees everything.
#[actix_web::test]
async fn replies_to_a_customer_name_no_other_user() {
    let app = jwt_app().await;
    let (status, created) = call(
        &app,
        Method::POST,
        "/api/events",
        Some(ADMIN),
        Some(json!({"totalTickets": 2})),
    )
    .await
    .into_pair();
    assert_eq!(status, StatusCode::CREATED);
    let id = created["event"]["id"].as_u64().expect("id");
    let token = |user: &str| hs256(claims(json!({"sub": user})), SECRET);
    for (user, quantity) in [("alice", 2), ("bob", 1), ("carol", 1), ("dave", 1)] {
        let (status, _) = call(
            &app,
            Method::PUT,
            &format!("/api/events/{id}/bookings/{user}"),
            Some(&token(user)),
            Some(json!({"quantity": quantity})),
        )
        .await
        .into_pair();
        assert_eq!(status, StatusCode::OK, "{user} books");
    }
    // Alice gives back one ticket: Bob (waiting) is promoted, unseen by her.
    let (status, lowered) = call(
        &app,
        Method::PATCH,
        &format!("/api/events/{id}/bookings/alice"),
        Some(&token("alice")),
        Some(json!({"quantity": 1})),
    )
    .await
    .into_pair();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(lowered["promotions"], json!([]), "{lowered}");
    assert_eq!(lowered["booking"]["user_id"], "alice");
    // Alice cancels: Carol is promoted, and Alice's reply names only Alice.
    let (status, cancelled) = call(
        &app,
        Method::DELETE,
        &format!("/api/events/{id}/bookings/alice"),
        Some(&token("alice")),
        None,
    )
    .await
    .into_pair();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cancelled["promoted"], Value::Null, "{cancelled}");
    assert_eq!(cancelled["promotions"], json!([]));
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["userId"], "alice");
    assert_eq!(cancelled["booking"]["status"], "cancelled");
    let text = cancelled.to_string();
    for other in ["bob", "carol", "dave"] {
        assert!(!text.contains(other), "{other} named in {text}");
    }
    // The promotion happened all the same.
    let (_, carol) = call(
        &app,
        Method::GET,
        &format!("/api/events/{id}/bookings/carol"),
        Some(&token("carol")),
        None,
    )
    .await
    .into_pair();
    assert_eq!(carol["booking"]["status"], "confirmed");
    // The admin token, acting for Bob, sees Dave promoted.
    let (status, by_admin) = call(
        &app,
        Method::DELETE,
        &format!("/api/events/{id}/bookings/bob"),
        Some(ADMIN),
        None,
    )
    .await
    .into_pair();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_admin["promoted"]["user_id"], "dave", "{by_admin}");
    assert_eq!(by_admin["status"], "reassigned");
    app.stop().await;
}

trait IntoPair {
    fn into_pair(self) -> (StatusCode, Value);
}

impl IntoPair for (StatusCode, Value, bool) {
    fn into_pair(self) -> (StatusCode, Value) {
        (self.0, self.1)
    }
}

/// Contract v4, Corrections: `X-Boxoffice-Min-Index` is looked at only
/// after authentication. Unauthenticated, a bad value was 400 and an index
/// from the future waited 2 s for 503 (on c0394eb); both are 401 now, and
/// with the right credentials the header is read as before.
#[actix_web::test]
async fn min_index_is_looked_at_only_after_authentication() {
    let app = jwt_app().await;
    let admin = format!("Bearer {ADMIN}");
    let id = {
        let res = app
            .client
            .post(format!("{}/api/events", app.base))
            .header("authorization", &admin)
            .json(&json!({"totalTickets": 2}))
            .send()
            .await
            .expect("create");
        let body: Value = res.json().await.expect("JSON");
        body["eventId"].as_u64().expect("id")
    };
    let reads = [
        format!("/api/events/{id}/waiting-list"),
        format!("/api/events/{id}/bookings/ann"),
        "/metrics".to_string(),
    ];
    for path in &reads {
        for min in ["not a number", "999999999"] {
            let res = app
                .client
                .get(format!("{}{path}", app.base))
                .header("x-boxoffice-min-index", min)
                .send()
                .await
                .expect("sent");
            // Before: 400 for the bad value, 503 after a 2 s wait for the
            // index from the future.
            assert_eq!(
                res.status(),
                StatusCode::UNAUTHORIZED,
                "{path} with {min:?}"
            );
        }
        let res = app
            .client
            .get(format!("{}{path}", app.base))
            .header("authorization", &admin)
            .header("x-boxoffice-min-index", "not a number")
            .send()
            .await
            .expect("sent");
        assert_eq!(
            res.status(),
            StatusCode::BAD_REQUEST,
            "{path}, authenticated"
        );
    }
    app.stop().await;
}
