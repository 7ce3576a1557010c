//! Route handlers: parse at the boundary, forward to the event's actor,
//! shape the answer.

use actix_web::http::header;
use actix_web::{web, HttpResponse, ResponseError};
use futures_util::future::join_all;

use super::dto::{
    BookingJson, BookingRequest, BookingResponse, CancelResponse, CreateEventRequest,
    CreatedResponse, EventJson, PageResponse, StatusResponse, WaitingItemJson,
};
use super::error::ApiError;
use super::extract::{event_id, user_id, PageQuery, ValidJson};
use super::AppState;
use actix::Addr;

use crate::actors::messages::{Book, Cancel, Durable, GetBooking, GetStatus, GetWaitingPage};
use crate::actors::{ask, EventActor};
use crate::domain::{EventId, Timestamp, UserId};

type State = web::Data<AppState>;

/// `POST /api/initialize`, `POST /api/events`.
pub async fn create_event(
    state: State,
    body: ValidJson<CreateEventRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let total = body
        .total_tickets
        .ok_or_else(|| ApiError::field("totalTickets", "is required"))?;
    let max = state.limits.max_tickets_per_event;
    if total > max {
        return Err(ApiError::field(
            "totalTickets",
            &format!("must be an integer from 1 to {max}"),
        ));
    }
    let requested = body.event_id.map(EventId::try_from).transpose()?;
    let (event, lsn) = state
        .registry
        .create(requested, body.name, total, Timestamp::now())?;
    if state.journal.wait_durable(lsn).await.is_err() {
        // Never announced, and its record is not on disk: it must not exist.
        state.registry.remove(event.id);
        return Err(ApiError::Unavailable);
    }
    let location = format!("/api/events/{}", event.id);
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .json(CreatedResponse {
            event: event.into(),
            message: "Event initialized",
        }))
}

/// `GET /api/events`.
pub async fn list_events(state: State, page: PageQuery) -> Result<HttpResponse, ApiError> {
    let (ids, total) = state.registry.page(page.offset, page.limit);
    let statuses = join_all(ids.into_iter().map(|id| status_of(&state, id))).await;
    let items = statuses
        .into_iter()
        // An event whose creation failed may vanish between listing and reading.
        .filter(|s| !matches!(s, Err(ApiError::EventNotFound)))
        .map(|s| s.map(EventJson::from))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(PageResponse {
        items,
        total: total as u64,
        offset: page.offset,
        limit: page.limit,
    }))
}

/// `GET /api/status/{eventId}`, `GET /api/events/{eventId}`.
pub async fn event_status(state: State, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = event_id(&path)?;
    Ok(HttpResponse::Ok().json(StatusResponse::from(status_of(&state, id).await?)))
}

/// `POST /api/book`.
pub async fn book_body(
    state: State,
    body: ValidJson<BookingRequest>,
) -> Result<HttpResponse, ApiError> {
    let (id, user) = booking_target(body.0)?;
    book(&state, id, user).await
}

/// `PUT /api/events/{eventId}/bookings/{userId}`.
pub async fn book_path(
    state: State,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, user) = path_target(&path)?;
    book(&state, id, user).await
}

/// `POST /api/cancel`.
pub async fn cancel_body(
    state: State,
    body: ValidJson<BookingRequest>,
) -> Result<HttpResponse, ApiError> {
    let (id, user) = booking_target(body.0)?;
    cancel(&state, id, user).await
}

/// `DELETE /api/events/{eventId}/bookings/{userId}`.
pub async fn cancel_path(
    state: State,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, user) = path_target(&path)?;
    cancel(&state, id, user).await
}

/// `GET /api/booking-status/{eventId}/{userId}`, `GET /api/events/{eventId}/bookings/{userId}`.
pub async fn booking_status(
    state: State,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, user) = path_target(&path)?;
    let addr = actor_of(&state, id)?;
    let answer = ask(&addr, |reply| GetBooking { user, reply }).await?;
    let booking = durable(&state, answer).await??;
    Ok(HttpResponse::Ok().json(BookingResponse {
        booking: booking.into(),
    }))
}

/// `GET /api/events/{eventId}/waiting-list`.
pub async fn waiting_list(
    state: State,
    path: web::Path<String>,
    page: PageQuery,
) -> Result<HttpResponse, ApiError> {
    let id = event_id(&path)?;
    let addr = actor_of(&state, id)?;
    let PageQuery { offset, limit } = page;
    let answer = ask(&addr, |reply| GetWaitingPage {
        offset,
        limit,
        reply,
    })
    .await?;
    let waiting = durable(&state, answer).await?;
    let items = waiting
        .entries
        .into_iter()
        .map(WaitingItemJson::from)
        .collect();
    Ok(HttpResponse::Ok().json(PageResponse {
        items,
        total: waiting.total,
        offset,
        limit,
    }))
}

/// `GET /health`: 200 while changes can be made durable, else 503 with why.
pub async fn health(state: State) -> HttpResponse {
    let fault = state.journal.state().fault.clone();
    match fault {
        None => HttpResponse::Ok().json(serde_json::json!({"status": "ok"})),
        Some(reason) => HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "status": "unavailable",
            "code": "UNAVAILABLE",
            "error": reason,
        })),
    }
}

/// A known route with the wrong method.
pub async fn method_not_allowed() -> HttpResponse {
    ApiError::MethodNotAllowed.error_response()
}

async fn book(state: &AppState, id: EventId, user: UserId) -> Result<HttpResponse, ApiError> {
    let addr = actor_of(state, id)?;
    let answer = ask(&addr, |reply| Book { user, reply }).await??;
    let outcome = durable(state, answer).await?;
    Ok(HttpResponse::Ok().json(BookingResponse {
        booking: outcome.booking.into(),
    }))
}

async fn cancel(state: &AppState, id: EventId, user: UserId) -> Result<HttpResponse, ApiError> {
    let addr = actor_of(state, id)?;
    let answer = ask(&addr, |reply| Cancel { user, reply }).await??;
    let outcome = durable(state, answer).await?;
    Ok(HttpResponse::Ok().json(CancelResponse {
        success: true,
        message: "Booking cancelled successfully",
        booking: outcome.booking.into(),
        promoted: outcome.promoted.map(BookingJson::from),
    }))
}

async fn status_of(state: &AppState, id: EventId) -> Result<crate::domain::EventStatus, ApiError> {
    let addr = actor_of(state, id)?;
    let answer = ask(&addr, |reply| GetStatus { reply }).await?;
    durable(state, answer).await
}

/// The actor of event `id`, or 404 `EVENT_NOT_FOUND`.
fn actor_of(state: &AppState, id: EventId) -> Result<Addr<EventActor>, ApiError> {
    state.registry.get(id).ok_or(ApiError::EventNotFound)
}

/// Holds an answer back until everything it shows is durable: no client
/// sees a change that a crash could take away.
async fn durable<T>(state: &AppState, answer: Durable<T>) -> Result<T, ApiError> {
    state
        .journal
        .wait_durable(answer.lsn)
        .await
        .map_err(|_| ApiError::Unavailable)?;
    Ok(answer.value)
}

/// A validated body's event and user, as domain values.
fn booking_target(body: BookingRequest) -> Result<(EventId, UserId), ApiError> {
    let id = body
        .event_id
        .ok_or_else(|| ApiError::field("eventId", "is required"))?;
    let user = body
        .user_id
        .ok_or_else(|| ApiError::field("userId", "is required"))?;
    Ok((EventId::try_from(id)?, UserId::try_from(user.as_str())?))
}

/// Both path ids, reporting every bad one at once.
fn path_target(path: &(String, String)) -> Result<(EventId, UserId), ApiError> {
    match (event_id(&path.0), user_id(&path.1)) {
        (Ok(id), Ok(user)) => Ok((id, user)),
        (Err(ApiError::Validation(mut a)), Err(ApiError::Validation(b))) => {
            a.extend(b);
            Err(ApiError::Validation(a))
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}
