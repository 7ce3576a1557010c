//! The HTTP API of `docs/API.md`: routes, bodies, errors, rate limiting.
//! Handlers parse, call the [`BoxOffice`] service and shape the reply.

pub mod dto;
pub mod error;
pub mod extract;
mod handlers;
pub mod rate_limit;

use std::sync::Arc;

use actix_web::{web, HttpRequest};

pub use error::ApiError;

use crate::service::BoxOffice;

/// What every handler shares.
pub struct AppState {
    /// The booking service.
    pub service: Arc<BoxOffice>,
}

/// Registers every route. Each resource answers a wrong method with 405,
/// and anything else falls through to the app's 404.
pub fn routes(cfg: &mut web::ServiceConfig) {
    use handlers::*;
    let resource =
        |path: &str| web::resource(path.to_string()).default_service(web::to(method_not_allowed));
    cfg.app_data(
        web::PathConfig::default()
            .error_handler(|e, _: &HttpRequest| ApiError::field("path", &e.to_string()).into()),
    )
    .service(resource("/health").route(web::get().to(health)))
    .service(resource("/api/initialize").route(web::post().to(create_event)))
    .service(resource("/api/book").route(web::post().to(book_body)))
    .service(resource("/api/cancel").route(web::post().to(cancel_body)))
    .service(resource("/api/confirm").route(web::post().to(confirm_body)))
    .service(
        resource("/api/booking-status/{eventId}/{userId}").route(web::get().to(booking_status)),
    )
    .service(resource("/api/status/{eventId}").route(web::get().to(event_status)))
    .service(
        resource("/api/events")
            .route(web::get().to(list_events))
            .route(web::post().to(create_event)),
    )
    .service(
        resource("/api/events/{eventId}")
            .route(web::get().to(event_status))
            .route(web::patch().to(update_event)),
    )
    .service(
        resource("/api/events/{eventId}/bookings/{userId}")
            .route(web::get().to(booking_status))
            .route(web::put().to(book_path))
            .route(web::delete().to(cancel_path))
            .route(web::patch().to(change_quantity)),
    )
    .service(
        resource("/api/events/{eventId}/bookings/{userId}/confirm")
            .route(web::post().to(confirm_path)),
    )
    .service(resource("/api/events/{eventId}/waiting-list").route(web::get().to(waiting_list)));
}

/// The app-wide fallback for unknown routes.
pub async fn not_found() -> actix_web::HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::NotFound)
}
