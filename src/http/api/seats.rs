//! Reserved seating's routes (contract v4): the map and blocking seats,
//! with their OpenAPI descriptions. Booking seats goes through the booking
//! routes (their bodies carry `seats`, `category` and `together`).

use actix_web::{web, HttpResponse};

use crate::http::api::auth::Organiser;
use crate::http::api::dto::{BookingJson, EventChangeResponse};
use crate::http::api::error::{ApiError, ErrorBody, JsonLine};
use crate::http::api::extract::{event_id, ValidJson};
use crate::http::api::params::EventIdParam;
use crate::http::api::seat_bodies::{SeatMapJson, SeatsPatchRequest};
use crate::http::AppState;

type State = web::Data<AppState>;

/// `GET /api/events/{eventId}/seats`.
pub async fn seat_map(state: State, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = event_id(&path)?;
    let map = state.service.seat_map(id).await?;
    Ok(HttpResponse::Ok().json_line(SeatMapJson {
        event_id: id.get(),
        index: map.index,
        sections: map.sections,
    }))
}

/// `PATCH /api/events/{eventId}/seats` (organiser).
pub async fn block_seats(
    _: Organiser,
    state: State,
    path: web::Path<String>,
    body: ValidJson<SeatsPatchRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = event_id(&path)?;
    let body = body.0;
    let changed = state
        .service
        .block_seats(id, body.block, body.unblock)
        .await?;
    Ok(HttpResponse::Ok().json_line(EventChangeResponse {
        event: changed.status.into(),
        promotions: changed
            .promotions
            .into_iter()
            .map(BookingJson::from)
            .collect(),
    }))
}

/// A seated event's map and each seat's state, never who holds it.
#[utoipa::path(get, path = "/api/events/{eventId}/seats", tag = "seats",
    params(EventIdParam),
    responses(
        (status = 200, description = "The map", body = SeatMapJson),
        (status = 400, description = "The id is invalid", body = ErrorBody),
        (status = 404, description = "No such event", body = ErrorBody),
        (status = 409, description = "`NOT_SEATED`: the event has no seat map", body = ErrorBody),
    ),
)]
#[allow(dead_code)] // Carries the path's description alone.
pub(crate) fn get_seats() {}

/// Blocks and unblocks seats (organiser): blocked seats are not for sale;
/// unblocking may serve the queue at once.
#[utoipa::path(patch, path = "/api/events/{eventId}/seats", tag = "seats",
    security((), ("organiser" = [])),
    params(EventIdParam),
    request_body = SeatsPatchRequest,
    responses(
        (status = 200, description = "The event as it now stands, and who was promoted", body = EventChangeResponse),
        (status = 400, description = "The id or a seat id is invalid, or a seat is in both lists", body = ErrorBody),
        (status = 404, description = "No such event", body = ErrorBody),
        (status = 409, description = "`SEATS_UNAVAILABLE`: a seat to block is held or booked (`seats` lists them); `NOT_SEATED`", body = ErrorBody),
        (status = 503, description = "Changes cannot be made durable now; nothing changed", body = ErrorBody),
    ),
)]
#[allow(dead_code)] // Carries the path's description alone.
pub(crate) fn patch_seats() {}
