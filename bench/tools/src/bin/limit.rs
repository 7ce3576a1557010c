//! The speed limit: a stateless actix-web server that parses the same
//! requests as boxoffice and answers with replies of the same shape and
//! size, touching no state. boxoffice's throughput divided by this one's,
//! measured side by side, says what its state, actors and journal cost.
//!
//! `limit` listens on 127.0.0.1 (port from `LIMIT_PORT`, default 0) with one
//! worker per core, and logs `listening on http://ADDR` as boxoffice does.

use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde::Deserialize;
use serde_json::json;

/// Booking ids, so replies look like boxoffice's; the only shared value.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn bad(field: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(
        json!({"error": "Validation failed", "code": "VALIDATION_FAILED",
        "details": [{"field": field, "message": "is invalid"}]}),
    )
}

fn event_id(raw: &str) -> Option<u64> {
    raw.parse::<u64>()
        .ok()
        .filter(|n| (1..=(1u64 << 53) - 1).contains(n) && raw.bytes().all(|b| b.is_ascii_digit()))
}

fn user_ok(raw: &str) -> bool {
    (1..=64).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@' | b':'))
}

fn booking(event: u64, user: &str, status: &str) -> serde_json::Value {
    let at = now();
    json!({"id": NEXT_ID.fetch_add(1, Ordering::Relaxed), "event_id": event, "user_id": user, "status": status,
           "waiting_position": null, "created_at": at, "updated_at": at})
}

fn is_json(req: &HttpRequest) -> bool {
    req.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BookBody {
    event_id: Option<u64>,
    user_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    total_tickets: Option<u64>,
    name: Option<String>,
}

async fn book_path(path: web::Path<(String, String)>) -> HttpResponse {
    match (event_id(&path.0), user_ok(&path.1)) {
        (Some(id), true) => {
            HttpResponse::Ok().json(json!({"booking": booking(id, &path.1, "confirmed")}))
        }
        _ => bad("eventId"),
    }
}

async fn cancel_path(path: web::Path<(String, String)>) -> HttpResponse {
    match (event_id(&path.0), user_ok(&path.1)) {
        (Some(id), true) => HttpResponse::Ok().json(json!({"success": true,
            "message": "Booking cancelled successfully", "booking": booking(id, &path.1, "cancelled"),
            "promoted": null})),
        _ => bad("eventId"),
    }
}

async fn book_body(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    if !is_json(&req) {
        return HttpResponse::UnsupportedMediaType().finish();
    }
    match serde_json::from_slice::<BookBody>(&body) {
        Ok(BookBody {
            event_id: Some(id),
            user_id: Some(user),
        }) if user_ok(&user) => {
            HttpResponse::Ok().json(json!({"booking": booking(id, &user, "confirmed")}))
        }
        _ => bad("userId"),
    }
}

async fn create(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    if !is_json(&req) {
        return HttpResponse::UnsupportedMediaType().finish();
    }
    match serde_json::from_slice::<CreateBody>(&body) {
        Ok(CreateBody {
            total_tickets: Some(total),
            name,
        }) if total > 0 => {
            let at = now();
            HttpResponse::Created().json(json!({"event": {"id": 1, "name": name, "total_tickets": total,
                "available_tickets": total, "created_at": at, "updated_at": at}, "message": "Event initialized"}))
        }
        _ => bad("totalTickets"),
    }
}

async fn booking_status(path: web::Path<(String, String)>) -> HttpResponse {
    match (event_id(&path.0), user_ok(&path.1)) {
        (Some(id), true) => {
            HttpResponse::Ok().json(json!({"booking": booking(id, &path.1, "confirmed")}))
        }
        _ => bad("eventId"),
    }
}

async fn status(path: web::Path<String>) -> HttpResponse {
    let Some(id) = event_id(&path) else {
        return bad("eventId");
    };
    let at = now();
    HttpResponse::Ok().json(json!({
        "event": {"id": id, "name": null, "total_tickets": 10_000_000, "available_tickets": 9_000_000,
                  "waiting_list_count": 0, "created_at": at, "updated_at": at},
        "eventId": id, "name": null, "totalTickets": 10_000_000, "availableTickets": 9_000_000,
        "confirmedCount": 1_000_000, "waitingListCount": 0}))
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("LIMIT_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
    eprintln!("listening on http://{}", listener.local_addr()?);
    HttpServer::new(|| {
        App::new()
            .route("/api/initialize", web::post().to(create))
            .route("/api/events", web::post().to(create))
            .route("/api/book", web::post().to(book_body))
            .route("/api/status/{eventId}", web::get().to(status))
            .route("/api/events/{eventId}", web::get().to(status))
            .route(
                "/api/booking-status/{eventId}/{userId}",
                web::get().to(booking_status),
            )
            .route(
                "/api/events/{eventId}/bookings/{userId}",
                web::get().to(booking_status),
            )
            .route(
                "/api/events/{eventId}/bookings/{userId}",
                web::put().to(book_path),
            )
            .route(
                "/api/events/{eventId}/bookings/{userId}",
                web::delete().to(cancel_path),
            )
    })
    .workers(workers)
    .listen(listener)?
    .run()
    .await
}
