//! Every error code of the contract, and proof that bad input changes nothing.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app, TestApp};

async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> (StatusCode, Value) {
    let mut req = app
        .client
        .request(method, format!("{}{path}", app.base))
        .body(body.to_string());
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let res = req.send().await.expect("sent");
    let status = res.status();
    (status, res.json().await.expect("every answer is JSON"))
}

fn detail_fields(body: &Value) -> Vec<String> {
    body["details"].as_array().map_or_else(Vec::new, |d| {
        d.iter()
            .map(|e| e["field"].as_str().unwrap_or("").to_string())
            .collect()
    })
}

/// Missing, mistyped and out-of-range fields are 400 VALIDATION_FAILED naming the field.
#[actix_web::test]
async fn bad_fields_are_validation_failed_with_details() {
    let app = spawn_app_with_event().await;
    let cases: &[(&str, Value, &str)] = &[
        ("/api/initialize", json!({}), "totalTickets"),
        (
            "/api/initialize",
            json!({"totalTickets": 0}),
            "totalTickets",
        ),
        (
            "/api/initialize",
            json!({"totalTickets": -3}),
            "totalTickets",
        ),
        (
            "/api/initialize",
            json!({"totalTickets": 1.5}),
            "totalTickets",
        ),
        (
            "/api/initialize",
            json!({"totalTickets": "5"}),
            "totalTickets",
        ),
        (
            "/api/initialize",
            json!({"totalTickets": 10_000_001}),
            "totalTickets",
        ),
        (
            "/api/initialize",
            json!({"totalTickets": 1, "name": "x".repeat(201)}),
            "name",
        ),
        (
            "/api/initialize",
            json!({"totalTickets": 1, "name": 5}),
            "name",
        ),
        (
            "/api/initialize",
            json!({"totalTickets": 1, "eventId": 0}),
            "eventId",
        ),
        (
            "/api/initialize",
            json!({"totalTickets": 1, "eventId": 9_007_199_254_740_992u64}),
            "eventId",
        ),
        ("/api/book", json!({"userId": "a"}), "eventId"),
        ("/api/book", json!({"eventId": 1}), "userId"),
        ("/api/book", json!({"eventId": 1, "userId": ""}), "userId"),
        (
            "/api/book",
            json!({"eventId": 1, "userId": "a".repeat(65)}),
            "userId",
        ),
        (
            "/api/book",
            json!({"eventId": 1, "userId": "semi;colon"}),
            "userId",
        ),
        ("/api/book", json!({"eventId": 1, "userId": 42}), "userId"),
        (
            "/api/cancel",
            json!({"eventId": "1", "userId": "a"}),
            "eventId",
        ),
    ];
    for (path, body, field) in cases {
        let got = app.post(path, body.clone()).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
        assert!(
            detail_fields(&got.1).contains(&field.to_string()),
            "{path} {body}: {}",
            got.1
        );
    }
    assert_eq!(app.counts(1).await, (0, 2, 0));
    let (_, list) = app.get("/api/events").await;
    assert_eq!(list["total"], 1, "no bad request created an event");
}

/// A body that is not JSON is 400 INVALID_JSON.
#[actix_web::test]
async fn malformed_json_is_invalid_json() {
    let app = spawn_app_with_event().await;
    for body in [
        "{",
        "not json",
        "{\"eventId\": 1,}",
        "",
        "{\"eventId\":1}{}",
        "[1,",
    ] {
        let got = raw(
            &app,
            Method::POST,
            "/api/book",
            Some("application/json"),
            body,
        )
        .await;
        assert_error(&got, StatusCode::BAD_REQUEST, "INVALID_JSON");
    }
    // Well-formed JSON of the wrong shape is a validation error, not a syntax one.
    let got = raw(
        &app,
        Method::POST,
        "/api/book",
        Some("application/json"),
        "[1, 2]",
    )
    .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
}

/// A body without the JSON content type is 415.
#[actix_web::test]
async fn wrong_content_type_is_unsupported_media_type() {
    let app = spawn_app_with_event().await;
    let body = r#"{"eventId": 1, "userId": "a"}"#;
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let got = raw(&app, Method::POST, "/api/book", ct, body).await;
        assert_error(
            &got,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
        );
    }
    let ok = raw(
        &app,
        Method::POST,
        "/api/book",
        Some("application/json; charset=utf-8"),
        body,
    )
    .await;
    assert_eq!(ok.0, StatusCode::OK, "a charset parameter is fine");
}

/// A body over limits.max_body_bytes is 413, whether or not it declares its length.
#[actix_web::test]
async fn oversized_bodies_are_payload_too_large() {
    let app = spawn_app_with_event().await;
    let big = format!(
        r#"{{"eventId": 1, "userId": "a", "pad": "{}"}}"#,
        "x".repeat(20_000)
    );
    let got = raw(
        &app,
        Method::POST,
        "/api/book",
        Some("application/json"),
        &big,
    )
    .await;
    assert_error(&got, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
    let chunks = vec![Ok::<_, std::io::Error>(big.into_bytes())];
    let res = app
        .client
        .post(format!("{}/api/book", app.base))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .expect("sent");
    assert_eq!(
        res.status(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "chunked bodies are counted too"
    );
    let (_, booking) = app.get("/api/booking-status/1/a").await;
    assert_eq!(booking["code"], "BOOKING_NOT_FOUND", "nothing was booked");
}

/// Unknown routes are 404 NOT_FOUND; known routes with a wrong method are 405.
#[actix_web::test]
async fn unknown_routes_and_wrong_methods() {
    let app = spawn_app_with_event().await;
    for path in [
        "/index.html",
        "/api",
        "/api/nothing",
        "/api/events/1/other",
        "/healthz",
    ] {
        assert_error(&app.get(path).await, StatusCode::NOT_FOUND, "NOT_FOUND");
    }
    let wrong = [
        (Method::GET, "/api/book"),
        (Method::DELETE, "/api/initialize"),
        (Method::PUT, "/api/status/1"),
        (Method::POST, "/api/events/1/bookings/a"),
        (Method::DELETE, "/api/events"),
        (Method::POST, "/health"),
        (Method::POST, "/"),
        (Method::POST, "/api/events/1/live"),
    ];
    for (method, path) in wrong {
        let got = app.call(method.clone(), path, None).await;
        assert_error(&got, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
    }
}

/// Path ids that are not positive integers (or valid user ids) are 400; unknown events 404.
#[actix_web::test]
async fn bad_path_ids_are_validation_failed() {
    let app = spawn_app_with_event().await;
    for id in [
        "0",
        "-1",
        "abc",
        "1.0",
        "9007199254740992",
        "%20",
        "00001",
        "01",
        "+1",
    ] {
        let got = app.get(&format!("/api/status/{id}")).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
        let got = app
            .call(Method::PUT, &format!("/api/events/{id}/bookings/a"), None)
            .await;
        assert_error(&got, StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    }
    let got = app
        .call(Method::PUT, "/api/events/1/bookings/bad%20user", None)
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    assert_eq!(detail_fields(&got.1), ["userId"]);
    assert_error(
        &app.get("/api/status/2").await,
        StatusCode::NOT_FOUND,
        "EVENT_NOT_FOUND",
    );
    let got = app
        .post("/api/book", json!({"eventId": 2, "userId": "a"}))
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "EVENT_NOT_FOUND");
    let got = app
        .call(Method::DELETE, "/api/events/2/bookings/a", None)
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "EVENT_NOT_FOUND");
}

async fn spawn_app_with_event() -> TestApp {
    let app = spawn_app().await;
    app.create_event(2).await;
    app
}

/// A wrong method's 405 names the allowed ones; HEAD is answered wherever
/// GET is, without a body.
#[actix_web::test]
async fn method_errors_say_what_is_allowed_and_head_works_on_reads() {
    let app = spawn_app_with_event().await;
    let res = app
        .client
        .post(format!("{}/api/events/1/bookings/a", app.base))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        res.headers()["allow"].to_str().expect("ascii"),
        "GET, HEAD, PUT, PATCH, DELETE"
    );
    for path in ["/api/status/1", "/api/events", "/health", "/api/events/1"] {
        let res = app
            .client
            .head(format!("{}{path}", app.base))
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), StatusCode::OK, "HEAD {path}");
        assert!(res.bytes().await.expect("body").is_empty(), "HEAD {path}");
    }
}

/// Names with control characters, the user ids "." and "..", and a null
/// eventId are refused with 400 and change nothing.
#[actix_web::test]
async fn hostile_names_dot_user_ids_and_null_ids_are_refused() {
    let app = spawn_app_with_event().await;
    // JSON escapes, as a client would send them.
    for name in [r"bad\u0000name", r"\u001b[31mred", r"two\r\nlines"] {
        let body: Value =
            serde_json::from_str(&format!("{{\"totalTickets\": 1, \"name\": \"{name}\"}}"))
                .expect("json");
        assert_error(
            &app.post("/api/events", body.clone()).await,
            StatusCode::BAD_REQUEST,
            "VALIDATION_FAILED",
        );
        let patch: Value =
            serde_json::from_str(&format!("{{\"name\": \"{name}\"}}")).expect("json");
        assert_error(
            &app.call(Method::PATCH, "/api/events/1", Some(patch)).await,
            StatusCode::BAD_REQUEST,
            "VALIDATION_FAILED",
        );
    }
    for user in [".", ".."] {
        assert_error(
            &app.post("/api/book", json!({"eventId": 1, "userId": user}))
                .await,
            StatusCode::BAD_REQUEST,
            "VALIDATION_FAILED",
        );
    }
    assert_error(
        &app.post("/api/events", json!({"totalTickets": 1, "eventId": null}))
            .await,
        StatusCode::BAD_REQUEST,
        "VALIDATION_FAILED",
    );
    let (_, list) = app.get("/api/events").await;
    assert_eq!(list["total"], 1, "nothing was created");
}

/// An explicit id at the very top of the range does not deny every later
/// create without an id: automatic ids wrap to the smallest free one.
#[actix_web::test]
async fn the_largest_explicit_id_does_not_exhaust_automatic_ids() {
    let app = spawn_app().await;
    let (status, _) = app
        .post(
            "/api/events",
            json!({"totalTickets": 1, "eventId": 9007199254740991u64}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    for expected in [1, 2] {
        let (status, body) = app.post("/api/events", json!({"totalTickets": 1})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["event"]["id"], expected);
    }
}

/// Past limits.max_events and limits.max_bookings_per_event: 409
/// LIMIT_REACHED and nothing changed; users already on the event go on.
#[actix_web::test]
async fn configured_limits_answer_limit_reached_and_change_nothing() {
    let app = crate::helpers::spawn_app_with(|s| {
        s.limits.max_events = 2;
        s.limits.max_bookings_per_event = 2;
    })
    .await;
    let event = app.create_event(5).await;
    app.create_event(5).await;
    assert_error(
        &app.post("/api/events", json!({"totalTickets": 1})).await,
        StatusCode::CONFLICT,
        "LIMIT_REACHED",
    );
    app.book(event, "a").await;
    app.book(event, "b").await;
    assert_error(
        &app.post("/api/book", json!({"eventId": event, "userId": "c"}))
            .await,
        StatusCode::CONFLICT,
        "LIMIT_REACHED",
    );
    let (status, _) = app
        .post("/api/cancel", json!({"eventId": event, "userId": "a"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let again = app.book(event, "a").await;
    assert_eq!(
        again["status"], "confirmed",
        "a user already on the event may book again"
    );
    let (_, list) = app.get("/api/events").await;
    assert_eq!(list["total"], 2);
    assert_eq!(app.counts(event).await, (2, 3, 0));
}

/// A client that sends the head and then never finishes the body gets 408
/// REQUEST_TIMEOUT as JSON once `client_request_timeout_ms` has passed, and
/// the server closes the connection, so such clients cannot pile up.
#[actix_web::test]
async fn a_body_that_never_arrives_is_408_and_the_connection_closes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = crate::helpers::spawn_app_with(|s| s.server.client_request_timeout_ms = 1_000).await;
    let address = app.base.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    stream
        .write_all(
            b"POST /api/book HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"eventId\"",
        )
        .await
        .expect("write");
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut answer),
    )
    .await;
    assert!(read.is_ok(), "the server did not close the connection");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"code\":\"REQUEST_TIMEOUT\""), "{text}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

/// Every reply carries a request id (the client's when it sent a plain one)
/// and JSON replies end in a newline.
#[actix_web::test]
async fn replies_carry_a_request_id_and_end_in_a_newline() {
    let app = crate::helpers::spawn_app().await;
    let res = app
        .client
        .get(format!("{}/api/events", app.base))
        .header("x-request-id", "trace-42")
        .send()
        .await
        .expect("sent");
    assert_eq!(res.headers()["x-request-id"], "trace-42");
    assert!(res.text().await.expect("body").ends_with("}\n"));
    let mut seen = std::collections::HashSet::new();
    for path in ["/api/events", "/api/status/77", "/nope"] {
        let res = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .expect("sent");
        let id = res.headers()["x-request-id"]
            .to_str()
            .expect("ascii")
            .to_string();
        assert!(seen.insert(id), "ids are fresh");
        assert!(res.text().await.expect("body").ends_with('\n'), "{path}");
    }
    app.stop().await;
}

/// What Schemathesis found: JSON Schema's integers include `2.0`, `null` is
/// not "absent" for a field that cannot be cleared, an array is not an
/// object, and an optional body may be `null`.
#[actix_web::test]
async fn bodies_are_read_as_the_openapi_document_describes_them() {
    let app = spawn_app_with_event().await;
    let json = Some("application/json");
    let booked = raw(
        &app,
        Method::POST,
        "/api/book",
        json,
        r#"{"eventId": 1.0, "userId": "ann", "quantity": 2.0}"#,
    )
    .await;
    assert_eq!(booked.0, StatusCode::OK, "{}", booked.1);
    assert_eq!(booked.1["booking"]["quantity"], 2);
    for body in [
        r#"{"eventId": 1, "userId": "bea", "quantity": 1.5}"#,
        r#"{"eventId": 1, "userId": "bea", "quantity": null}"#,
        r#"{"eventId": 1, "userId": "bea", "quantity": -1}"#,
        r#"{"eventId": 1, "userId": null}"#,
        r#"[1, "bea"]"#,
    ] {
        let got = raw(&app, Method::POST, "/api/book", json, body).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    }
    let got = raw(
        &app,
        Method::POST,
        "/api/events",
        json,
        r#"{"totalTickets": 5, "salesOpen": null}"#,
    )
    .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    assert_eq!(got.1["details"][0]["field"], "salesOpen");
    let got = raw(&app, Method::PUT, "/api/events/1/bookings/cid", json, "[]").await;
    assert_error(&got, StatusCode::BAD_REQUEST, "VALIDATION_FAILED");
    let got = raw(
        &app,
        Method::PUT,
        "/api/events/1/bookings/cid",
        json,
        "null",
    )
    .await;
    assert_eq!(got.0, StatusCode::OK, "a null body is no body: {}", got.1);
    assert_eq!(got.1["booking"]["quantity"], 1);
    // Cancel takes no quantity, so whatever is sent under that name is ignored.
    let got = raw(
        &app,
        Method::POST,
        "/api/cancel",
        json,
        r#"{"eventId": 1, "userId": "cid", "quantity": "x"}"#,
    )
    .await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    app.stop().await;
}
