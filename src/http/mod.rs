//! The HTTP API of `docs/API.md`: routes, bodies, errors, rate limiting.
//! Handlers parse, call the [`BoxOffice`] service and shape the reply.

pub mod auth;
pub mod bare_errors;
pub mod client;
pub mod connections;
pub mod dto;
pub mod error;
pub mod extract;
mod handlers;
pub mod live;
pub mod metrics;
pub mod openapi;
pub mod pipeline;
pub mod rate_limit;
pub mod server;
pub mod stream;

use std::sync::Arc;

use actix_web::{web, HttpRequest, ResponseError};

pub use error::ApiError;

use crate::service::BoxOffice;

/// What every handler shares.
pub struct AppState {
    /// The booking service.
    pub service: Arc<BoxOffice>,
    /// Who may call which routes.
    pub gate: auth::Gate,
    /// Requests counted by route, method and status.
    pub http_stats: Arc<metrics::HttpStats>,
    /// Renders `/metrics`.
    pub exporter: boxoffice_metrics::Exporter,
    /// `/api/openapi.json`, rendered at start with the configured limits.
    pub openapi: actix_web::web::Bytes,
    /// Open live streams.
    pub live: Arc<live::Live>,
    /// Set once the service has begun to stop; `/ready` then says 503 and
    /// every answer closes its connection.
    pub stopping: std::sync::atomic::AtomicBool,
    /// Requests being handled now: a stop waits for them to finish before
    /// the final snapshot.
    pub in_flight: std::sync::atomic::AtomicUsize,
    /// A request body must arrive whole within this (actix's own timeout
    /// covers only the head).
    pub body_timeout: std::time::Duration,
}

/// A resource that answers a method it does not serve with 405 and an
/// `Allow` header listing `allow`.
fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path.to_string()).default_service(web::to(move || async move {
        let mut response = ApiError::MethodNotAllowed.error_response();
        response.headers_mut().insert(
            actix_web::http::header::ALLOW,
            actix_web::http::header::HeaderValue::from_static(allow),
        );
        response
    }))
}

/// A resource that serves `handler` for `GET` and `HEAD` (actix sends no
/// body for the latter) and 405 with `Allow: GET, HEAD` for the rest.
fn readable<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    resource(path, "GET, HEAD")
        .route(web::get().to(handler.clone()))
        .route(web::head().to(handler))
}

/// Registers every route, the busiest first. Each resource answers a wrong
/// method with 405 and `Allow`, `HEAD` wherever `GET` is served (actix
/// sends no body for it), and anything else falls through to the app's 404.
pub fn routes(cfg: &mut web::ServiceConfig) {
    use handlers::*;
    cfg.app_data(
        web::PathConfig::default()
            .error_handler(|e, _: &HttpRequest| ApiError::field("path", &e.to_string()).into()),
    )
    // Dynamic routes are tried in this order, one regex each: the hot ones
    // (booking, status) first.
    .service(
        resource(
            "/api/events/{eventId}/bookings/{userId}",
            "GET, HEAD, PUT, PATCH, DELETE",
        )
        .route(web::get().to(booking_status))
        .route(web::head().to(booking_status))
        .route(web::put().to(book_path))
        .route(web::delete().to(cancel_path))
        .route(web::patch().to(change_quantity)),
    )
    .service(readable("/api/status/{eventId}", event_status))
    .service(readable(
        "/api/booking-status/{eventId}/{userId}",
        booking_status,
    ))
    .service(readable("/", page))
    .service(readable("/health", health))
    .service(readable("/ready", ready))
    .service(readable("/metrics", metrics))
    .service(readable("/api/openapi.json", openapi))
    .service(resource("/api/initialize", "POST").route(web::post().to(create_event)))
    .service(resource("/api/book", "POST").route(web::post().to(book_body)))
    .service(resource("/api/cancel", "POST").route(web::post().to(cancel_body)))
    .service(resource("/api/confirm", "POST").route(web::post().to(confirm_body)))
    .service(
        resource("/api/events", "GET, HEAD, POST")
            .route(web::get().to(list_events))
            .route(web::head().to(list_events))
            .route(web::post().to(create_event)),
    )
    .service(
        resource("/api/events/{eventId}", "GET, HEAD, PATCH")
            .route(web::get().to(event_status))
            .route(web::head().to(event_status))
            .route(web::patch().to(update_event)),
    )
    .service(
        resource("/api/events/{eventId}/bookings/{userId}/confirm", "POST")
            .route(web::post().to(confirm_path)),
    )
    .service(resource("/api/events/{eventId}/live", "GET").route(web::get().to(event_live)))
    .service(
        resource("/api/events/{eventId}/bookings/{userId}/live", "GET")
            .route(web::get().to(booking_live)),
    )
    .service(readable("/api/events/{eventId}/waiting-list", waiting_list));
}

/// The app-wide fallback for unknown routes.
pub async fn not_found() -> actix_web::HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::NotFound)
}
