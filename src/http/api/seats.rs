//! Reserved seating's routes (contract v4): the map and blocking seats,
//! with their OpenAPI descriptions. Booking seats goes through the booking
//! routes (their bodies carry `seats`, `category` and `together`).

use std::sync::Arc;

use actix_web::{http::header, web, HttpMessage, HttpRequest, HttpResponse, Responder};
use actix_web_lab::sse::Sse;

use crate::http::api::auth::Organiser;
use crate::http::api::error::{json_line_bytes, ApiError, ErrorBody, JsonLine};
use crate::http::api::event_bodies::EventChangeResponse;
use crate::http::api::extract::{event_id, ValidJson};
use crate::http::api::handlers::stream_headers;
use crate::http::api::params::EventIdParam;
use crate::http::api::seat_bodies::{SeatMapJson, SeatsPatchRequest};
use crate::http::identity::client_ip_of;
use crate::http::transport::stream::ClientGone;
use crate::http::AppState;

type State = web::Data<AppState>;

/// `GET /api/events/{eventId}/seats`: the body kept for the event's
/// newest change, gzip-compressed (once, and kept beside it) for a client
/// that takes gzip: a 100,000-seat map's 167 KB of letters are 4 KB so.
/// Not actix-web's `Compress`, which would compress it for every reader
/// (and answers a client that refuses every coding with a plain-text 406;
/// this route sends such a client the plain body).
pub async fn seat_map(
    req: HttpRequest,
    state: State,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = event_id(&path)?;
    let map = state
        .service
        .seat_map_body(id, |map| {
            json_line_bytes(&SeatMapJson {
                event_id: id.get(),
                index: map.index,
                sections: map.sections,
            })
            .map_err(ApiError::Internal)
        })
        .await?;
    let mut reply = HttpResponse::Ok();
    reply
        .content_type(header::ContentType::json())
        .insert_header((header::VARY, "Accept-Encoding"));
    if !takes_gzip(&req) {
        return Ok(reply.body(map.plain.clone()));
    }
    let zipped = map.encoded(gzip)?;
    Ok(reply
        .insert_header((header::CONTENT_ENCODING, "gzip"))
        .body(zipped))
}

/// Whether the client's `Accept-Encoding` prefers gzip to no coding.
fn takes_gzip(req: &HttpRequest) -> bool {
    let offered = [header::Encoding::identity(), header::Encoding::gzip()];
    req.get_header::<header::AcceptEncoding>()
        .and_then(|accept| accept.negotiate(offered.iter()))
        == Some(header::Encoding::gzip())
}

/// `plain` gzip-compressed, at flate2's default level.
fn gzip(plain: &[u8]) -> Result<bytes::Bytes, ApiError> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(plain.len() / 8),
        flate2::Compression::default(),
    );
    encoder
        .write_all(plain)
        .and_then(|()| encoder.finish())
        .map(bytes::Bytes::from)
        .map_err(|e| ApiError::Internal(format!("gzip: {e}")))
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
    Ok(HttpResponse::Ok().json_line(EventChangeResponse::from(changed)))
}

/// `GET /api/events/{eventId}/seats/live`: the map as Server-Sent Events.
pub async fn seats_live(
    req: HttpRequest,
    state: State,
    path: web::Path<String>,
) -> Result<impl Responder, ApiError> {
    let id = event_id(&path)?;
    let stream = state
        .seat_frames
        .open(
            &state.live,
            Arc::clone(&state.service),
            id,
            client_ip_of(&req),
            req.conn_data::<Arc<ClientGone>>().cloned(),
        )
        .await?;
    Ok(Sse::from_infallible_stream(stream).with_keep_alive(state.live.keep_alive))
}

/// `HEAD /api/events/{eventId}/seats/live`: the stream's headers, without
/// opening it (404 or 409 as the stream would answer).
pub async fn seats_live_head(
    state: State,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = event_id(&path)?;
    state.service.seat_map(id).await?;
    Ok(stream_headers())
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

/// A seated event's map as Server-Sent Events: at once `event: seats` whose
/// `data` is the JSON of `GET .../seats`, then `event: seat_changes` with
/// `{"index": n, "seats": {"Stalls-A-12": "b", ...}}` for the seats that
/// changed, coalesced under the event's message budget (as the other
/// streams); a client that falls behind gets `event: seats` again instead
/// of a backlog, as does one whose changes would outweigh the whole map.
/// `id` is the index.
#[utoipa::path(get, path = "/api/events/{eventId}/seats/live", tag = "live",
    params(EventIdParam),
    responses(
        (status = 200, description = "The stream", content_type = "text/event-stream", body = String),
        (status = 400, description = "The id is invalid", body = ErrorBody),
        (status = 404, description = "No such event", body = ErrorBody),
        (status = 409, description = "`NOT_SEATED`: the event has no seat map", body = ErrorBody),
        (status = 503, description = "`live.max_streams` streams are open, or the service is stopping", body = ErrorBody),
    ),
)]
#[allow(dead_code)] // Carries the path's description alone.
pub(crate) fn get_seats_live() {}
