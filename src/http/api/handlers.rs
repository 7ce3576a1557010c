//! Route handlers: parse at the boundary, call the service, shape the answer.

use actix_web::http::header;
use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse, Responder};
use actix_web_lab::sse::Sse;

use crate::domain::{EventId, EventPatch, RoomPatch, UserId};
use crate::http::api::auth::{Customer, Organiser};
use crate::http::api::change_bodies::{ChangeJson, ChangesResponse};
use crate::http::api::dto::{
    check_window, timestamp, BookedResponse, BookingChangeResponse, BookingRequest,
    BookingResponse, BookingTargetRequest, CancelResponse, CreateEventRequest, CreatedResponse,
    EntryResponse, EventJson, PageResponse, QuantityChangeRequest, QuantityRequest, StatusResponse,
    UpdateEventRequest, WaitingItemJson,
};
use crate::http::api::error::{json_line_bytes, ApiError, JsonLine};
use crate::http::api::event_bodies::EventChangeResponse;
use crate::http::api::extract::{
    event_id, idempotency_key, user_id, ChangesQuery, LargeJson, OptionalJson, PageQuery, ValidJson,
};
use crate::http::api::live::Watched;
use crate::http::identity::client_ip_of;
use crate::http::transport::stream::ClientGone;
use crate::http::AppState;
use crate::service::{NewEvent, SeatAsk};

type State = web::Data<AppState>;
type Answer = Result<HttpResponse, ApiError>;

/// `POST /api/initialize`, `POST /api/events`.
pub async fn create_event(
    _: Organiser,
    req: HttpRequest,
    state: State,
    body: LargeJson<CreateEventRequest>,
) -> Answer {
    let key = idempotency_key(&req)?;
    let body = body.0;
    let sales_start = timestamp(body.sales_start.as_deref());
    let sales_end = timestamp(body.sales_end.as_deref());
    check_window(sales_start, sales_end)?;
    let bad_id = || ApiError::field("eventId", "must be an integer from 1 to 9007199254740991");
    let id = match body.event_id {
        None => None,
        Some(Some(raw)) => Some(EventId::try_from(raw).map_err(|_| bad_id())?),
        Some(None) => return Err(bad_id()),
    };
    let seating = match body.seating {
        Some(seating) => Some(seating.shape(state.service.limits().max_seats_per_event)?),
        None => None,
    };
    let total_tickets = match (&seating, body.total_tickets) {
        (_, Some(total)) => total,
        // The map's seat count.
        (Some(_), None) => 0,
        (None, None) => return Err(ApiError::field("totalTickets", "is required")),
    };
    let new = NewEvent {
        id,
        name: body.name,
        total_tickets,
        seating,
        max_per_user: body.max_per_user,
        hold_secs: body.hold_secs,
        offer_secs: body.offer_secs,
        sales_open: body.sales_open,
        sales_start,
        sales_end,
        room: RoomPatch {
            admit_per_minute: body.room_admit_per_minute,
            admit_secs: body.room_admit_secs,
        },
    };
    let event = state.service.create_event(new, key).await?;
    let location = format!("/api/events/{}", event.id);
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .json_line(CreatedResponse::from(event)))
}

/// `PATCH /api/events/{eventId}`.
pub async fn update_event(
    _: Organiser,
    state: State,
    path: web::Path<String>,
    body: ValidJson<UpdateEventRequest>,
) -> Answer {
    let id = event_id(&path)?;
    let body = body.0;
    let parse = |raw: Option<Option<String>>| raw.map(|t| timestamp(t.as_deref()));
    let patch = EventPatch {
        name: body.name,
        total_tickets: body.total_tickets,
        max_per_user: body.max_per_user,
        hold_secs: body.hold_secs,
        offer_secs: body.offer_secs,
        sales_open: body.sales_open,
        sales_start: parse(body.sales_start),
        sales_end: parse(body.sales_end),
    };
    check_window(patch.sales_start.flatten(), patch.sales_end.flatten())?;
    let room = RoomPatch {
        admit_per_minute: body.room_admit_per_minute,
        admit_secs: body.room_admit_secs,
    };
    let changed = state.service.update_event(id, patch, room).await?;
    Ok(HttpResponse::Ok().json_line(EventChangeResponse::from(changed)))
}

/// `GET /api/events`.
pub async fn list_events(state: State, page: PageQuery) -> Answer {
    let (events, total) = state.service.events(page.offset, page.limit).await?;
    Ok(HttpResponse::Ok().json_line(PageResponse {
        items: events.into_iter().map(EventJson::from).collect(),
        total,
        offset: page.offset,
        limit: page.limit,
    }))
}

/// `GET /api/status/{eventId}`, `GET /api/events/{eventId}`.
pub async fn event_status(state: State, path: web::Path<String>) -> Answer {
    let id = event_id(&path)?;
    let body = state
        .service
        .status_body(id, |status| {
            json_line_bytes(&StatusResponse::from(status.clone())).map_err(ApiError::Internal)
        })
        .await?;
    Ok(HttpResponse::Ok()
        .content_type(header::ContentType::json())
        .body(body))
}

/// `POST /api/book`.
pub async fn book_body(who: Customer, state: State, body: ValidJson<BookingRequest>) -> Answer {
    let body = body.0;
    let (id, user) = customer_body(&who, body.event_id, body.user_id)?;
    let ask = SeatAsk {
        quantity: body.quantity,
        seats: body.seats,
        category: body.category,
        together: body.together,
    };
    book(&state, id, user, ask).await
}

/// `PUT /api/events/{eventId}/bookings/{userId}`, optional `{"quantity": n}`.
pub async fn book_path(
    who: Customer,
    state: State,
    path: web::Path<(String, String)>,
    body: OptionalJson<QuantityRequest>,
) -> Answer {
    let (id, user) = customer_path(&who, &path)?;
    let ask = body.0.map(QuantityRequest::ask).unwrap_or_default();
    book(&state, id, user, ask).await
}

/// `POST /api/cancel`.
pub async fn cancel_body(
    who: Customer,
    state: State,
    body: ValidJson<BookingTargetRequest>,
) -> Answer {
    let (id, user) = customer_body(&who, body.0.event_id, body.0.user_id)?;
    cancel(&who, &state, id, user).await
}

/// `DELETE /api/events/{eventId}/bookings/{userId}`.
pub async fn cancel_path(who: Customer, state: State, path: web::Path<(String, String)>) -> Answer {
    let (id, user) = customer_path(&who, &path)?;
    cancel(&who, &state, id, user).await
}

/// `PATCH /api/events/{eventId}/bookings/{userId}` with `{"quantity": n}`.
pub async fn change_quantity(
    who: Customer,
    state: State,
    path: web::Path<(String, String)>,
    body: ValidJson<QuantityChangeRequest>,
) -> Answer {
    let (id, user) = customer_path(&who, &path)?;
    let quantity = body
        .0
        .quantity
        .ok_or_else(|| ApiError::field("quantity", "is required"))?;
    let changed = state.service.lower_quantity(id, user, quantity).await?;
    Ok(
        HttpResponse::Ok().json_line(BookingChangeResponse::for_caller(
            changed,
            who.sees_other_users(),
        )),
    )
}

/// `POST /api/confirm`.
pub async fn confirm_body(
    who: Customer,
    state: State,
    body: ValidJson<BookingTargetRequest>,
) -> Answer {
    let (id, user) = customer_body(&who, body.0.event_id, body.0.user_id)?;
    confirm(&state, id, user).await
}

/// `POST /api/events/{eventId}/bookings/{userId}/confirm`.
pub async fn confirm_path(
    who: Customer,
    state: State,
    path: web::Path<(String, String)>,
) -> Answer {
    let (id, user) = customer_path(&who, &path)?;
    confirm(&state, id, user).await
}

/// `GET /api/booking-status/{eventId}/{userId}`, `GET /api/events/{eventId}/bookings/{userId}`.
pub async fn booking_status(
    who: Customer,
    state: State,
    path: web::Path<(String, String)>,
) -> Answer {
    let (id, user) = customer_path(&who, &path)?;
    let booking = state.service.booking(id, user).await?;
    Ok(HttpResponse::Ok().json_line(BookingResponse {
        booking: booking.into(),
    }))
}

/// `PUT /api/events/{eventId}/room/{userId}`: join the waiting room (an
/// active entry is answered as it is).
pub async fn join_room(who: Customer, state: State, path: web::Path<(String, String)>) -> Answer {
    let (id, user) = customer_path(&who, &path)?;
    let entry = state.service.join_room(id, user).await?;
    Ok(HttpResponse::Ok().json_line(EntryResponse::from(entry)))
}

/// `GET /api/events/{eventId}/room/{userId}`: the active entry, else the
/// latest ended one.
pub async fn room_entry(who: Customer, state: State, path: web::Path<(String, String)>) -> Answer {
    let (id, user) = customer_path(&who, &path)?;
    let entry = state.service.room_entry(id, user).await?;
    Ok(HttpResponse::Ok().json_line(EntryResponse::from(entry)))
}

/// `DELETE /api/events/{eventId}/room/{userId}`: leave the waiting room.
pub async fn leave_room(who: Customer, state: State, path: web::Path<(String, String)>) -> Answer {
    let (id, user) = customer_path(&who, &path)?;
    let entry = state.service.leave_room(id, user).await?;
    Ok(HttpResponse::Ok().json_line(EntryResponse::from(entry)))
}

/// `GET /api/events/{eventId}/room/{userId}/live`: one room entry as
/// Server-Sent Events (customer).
pub async fn room_live(
    req: HttpRequest,
    who: Customer,
    state: State,
    path: web::Path<(String, String)>,
) -> Result<impl Responder, ApiError> {
    let (id, user) = customer_path(&who, &path)?;
    live_stream(&req, &state, Watched::Entry(id, user)).await
}

/// `HEAD /api/events/{eventId}/room/{userId}/live`: as [`event_live_head`],
/// for a room entry (customer).
pub async fn room_live_head(
    who: Customer,
    state: State,
    path: web::Path<(String, String)>,
) -> Answer {
    let (id, user) = customer_path(&who, &path)?;
    state.service.room_entry(id, user).await?;
    Ok(stream_headers())
}

/// `GET /api/events/{eventId}/waiting-list`.
pub async fn waiting_list(
    _: Organiser,
    state: State,
    path: web::Path<String>,
    page: PageQuery,
) -> Answer {
    let id = event_id(&path)?;
    let PageQuery { offset, limit } = page;
    let waiting = state.service.waiting_page(id, offset, limit).await?;
    Ok(HttpResponse::Ok().json_line(PageResponse {
        items: waiting
            .entries
            .into_iter()
            .map(WaitingItemJson::from)
            .collect::<Vec<_>>(),
        total: waiting.total,
        offset,
        limit,
    }))
}

/// The answer of `/health` and `/ready`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct HealthJson {
    /// `ok` (health), `ready` (ready) or `unavailable`.
    status: &'static str,
    /// `UNAVAILABLE` when not ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, required = false)]
    code: Option<&'static str>,
    /// Why not, when not ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, required = false)]
    error: Option<String>,
}

/// 200 `{"status": ok}` or 503 with the reason.
fn health_answer(ok: &'static str, problem: Option<String>) -> HttpResponse {
    match problem {
        None => HttpResponse::Ok().json_line(HealthJson {
            status: ok,
            code: None,
            error: None,
        }),
        Some(reason) => HttpResponse::ServiceUnavailable().json_line(HealthJson {
            status: "unavailable",
            code: Some("UNAVAILABLE"),
            error: Some(reason),
        }),
    }
}

/// `GET /health`: 200 while changes can be made durable, else 503 with why.
pub async fn health(state: State) -> HttpResponse {
    let clock = state.cluster.as_ref().and_then(|node| node.clock_fault());
    health_answer("ok", clock.or_else(|| state.service.fault()))
}

/// `GET /ready`: 200 once the service has restored its data and takes
/// changes; 503 while changes cannot be made durable or once it is
/// stopping, so an orchestrator sends no new traffic.
pub async fn ready(state: State) -> HttpResponse {
    let not_ready = if state.stopping.load(std::sync::atomic::Ordering::Relaxed) {
        Some(String::from("the service is stopping"))
    } else {
        state.service.fault()
    };
    health_answer("ready", not_ready)
}

/// The answer of `/leader`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct LeaderJson {
    /// Whether this node takes changes: always, for a single node.
    leader: bool,
    /// The leader's URL (null while none is known), when this node is not it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, required = false)]
    leader_url: Option<Option<String>>,
}

/// A cluster member, as `/api/cluster` lists it (none for a single node).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct MemberJson {
    id: u64,
    peer: String,
    http: String,
    voter: bool,
}

impl MemberJson {
    /// Member `id` at `member`.
    pub fn new(id: u64, member: crate::persistence::raft::Member, voter: bool) -> Self {
        Self {
            id,
            peer: member.peer,
            http: member.http,
            voter,
        }
    }
}

/// The answer of `/api/cluster`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ClusterJson {
    /// This node's id; 0 for a single node.
    node_id: u64,
    /// `leader`, `follower`, `candidate` or `learner`.
    role: &'static str,
    /// The election term; 0 for a single node.
    term: u64,
    /// The leader's id.
    leader_id: u64,
    /// The leader's client URL; null for a single node.
    #[schema(value_type = Option<String>)]
    leader_url: Option<String>,
    /// The newest change committed (a Raft index; a single node's journal
    /// position).
    commit_index: u64,
    /// The newest change applied here (as `commit_index`).
    applied_index: u64,
    /// Every member; empty for a single node.
    members: Vec<MemberJson>,
}

/// `GET /leader`: whether this node takes changes, for a proxy's health
/// check. A single node always does (public, never rate limited).
pub async fn leader(state: State) -> HttpResponse {
    match &state.cluster {
        Some(node) if !node.confirms_leadership().await => HttpResponse::ServiceUnavailable()
            .json_line(LeaderJson {
                leader: false,
                leader_url: Some(node.leader_url()),
            }),
        _ => HttpResponse::Ok().json_line(LeaderJson {
            leader: true,
            leader_url: None,
        }),
    }
}

/// `GET /api/cluster`: this node's place in the cluster (organiser). A
/// single node is its own leader with no members.
pub async fn cluster(_: Organiser, state: State) -> HttpResponse {
    let Some(node) = &state.cluster else {
        let (commit_index, applied_index) = state.service.log_position();
        return HttpResponse::Ok().json_line(ClusterJson {
            node_id: 0,
            role: "leader",
            term: 0,
            leader_id: 0,
            leader_url: None,
            commit_index,
            applied_index,
            members: Vec::new(),
        });
    };
    let metrics = node.raft.metrics().borrow().clone();
    let members = node.members();
    let me = node.log.node_id();
    let voter = members.iter().any(|(id, _, voter)| *id == me && *voter);
    let role = match metrics.state {
        openraft::ServerState::Leader => "leader",
        openraft::ServerState::Candidate => "candidate",
        _ if !voter => "learner",
        _ => "follower",
    };
    HttpResponse::Ok().json_line(ClusterJson {
        node_id: me,
        role,
        term: metrics.current_term,
        leader_id: metrics.current_leader.unwrap_or(0),
        leader_url: node.leader_url(),
        commit_index: node.store.committed().map_or(0, |c| c.index),
        applied_index: node.log.applied_index(),
        members: members
            .into_iter()
            .map(|(id, member, voter)| MemberJson::new(id, member, voter))
            .collect(),
    })
}

/// `GET /api/events/{eventId}/live`: the event's status as Server-Sent
/// Events (public).
pub async fn event_live(
    req: HttpRequest,
    state: State,
    path: web::Path<String>,
) -> Result<impl Responder, ApiError> {
    let id = event_id(&path)?;
    live_stream(&req, &state, Watched::Event(id)).await
}

/// A live stream of `watched` for `req`'s client, with keep-alives.
async fn live_stream(
    req: &HttpRequest,
    state: &State,
    watched: Watched,
) -> Result<impl Responder + use<>, ApiError> {
    let stream = state
        .live
        .open(
            Arc::clone(&state.service),
            watched,
            client_ip_of(req),
            req.conn_data::<Arc<ClientGone>>().cloned(),
        )
        .await?;
    Ok(Sse::from_infallible_stream(stream).with_keep_alive(state.live.keep_alive))
}

/// `GET /api/events/{eventId}/bookings/{userId}/live`: one booking as
/// Server-Sent Events (customer).
pub async fn booking_live(
    req: HttpRequest,
    who: Customer,
    state: State,
    path: web::Path<(String, String)>,
) -> Result<impl Responder, ApiError> {
    let (id, user) = customer_path(&who, &path)?;
    live_stream(&req, &state, Watched::Booking(id, user)).await
}

/// `GET /api/changes`: a page of the change feed (organiser).
pub async fn changes(_: Organiser, state: State, query: ChangesQuery) -> Answer {
    let ChangesQuery { after, limit } = query;
    let items = state.changes.page(after, limit).await?;
    let next = items.last().map_or(after, |e| e.index);
    Ok(HttpResponse::Ok().json_line(ChangesResponse {
        items: items.into_iter().map(ChangeJson::from).collect(),
        next,
    }))
}

/// `GET /api/changes/live`: the change feed as Server-Sent Events
/// (organiser), from `after` or, on a reconnection, `Last-Event-ID`.
pub async fn changes_live(
    _: Organiser,
    req: HttpRequest,
    state: State,
    query: ChangesQuery,
) -> Result<impl Responder, ApiError> {
    let after = resume_after(&req)?.unwrap_or(query.after);
    let slot = state.live.admit(client_ip_of(&req))?;
    let stream = crate::http::api::change_stream::open(
        Arc::clone(&state.changes),
        after,
        slot,
        state.live.stopping(),
        req.conn_data::<Arc<ClientGone>>().cloned(),
    )
    .await?;
    Ok(Sse::from_infallible_stream(stream).with_keep_alive(state.live.keep_alive))
}

/// `HEAD /api/changes/live`: the stream's headers (organiser).
pub async fn changes_live_head(_: Organiser, state: State, query: ChangesQuery) -> Answer {
    // The same 410 the stream would start with.
    state.changes.page(query.after, 1).await?;
    Ok(stream_headers())
}

/// A reconnecting client's `Last-Event-ID`: the index it saw last.
fn resume_after(req: &HttpRequest) -> Result<Option<u64>, ApiError> {
    let Some(value) = req.headers().get("last-event-id") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&v| v <= crate::domain::MAX_EVENT_ID)
        .map(Some)
        .ok_or_else(|| ApiError::field("Last-Event-ID", "must be a change index"))
}

/// `HEAD /api/events/{eventId}/live`: the stream's headers, no body and
/// no stream (a `HEAD` of the stream itself would hold the request open).
pub async fn event_live_head(state: State, path: web::Path<String>) -> Answer {
    let id = event_id(&path)?;
    state.service.status(id).await?;
    Ok(stream_headers())
}

/// `HEAD /api/events/{eventId}/bookings/{userId}/live`: as
/// [`event_live_head`], for a booking (customer).
pub async fn booking_live_head(
    who: Customer,
    state: State,
    path: web::Path<(String, String)>,
) -> Answer {
    let (id, user) = customer_path(&who, &path)?;
    state.service.booking(id, user).await?;
    Ok(stream_headers())
}

/// The headers a live stream starts with.
pub(crate) fn stream_headers() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .finish()
}

/// `GET /`: the page to watch an event live (no build step, no external
/// scripts or fonts).
pub async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(include_str!("../../../static/index.html"))
}

/// `GET /api/openapi.json`: the document, rendered once at start.
pub async fn openapi(state: State) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(state.openapi.clone())
}

/// `GET /metrics` (organiser): every family in the OpenMetrics text format.
pub async fn metrics(_: Organiser, state: State) -> Answer {
    let text = state
        .exporter
        .render()
        .map_err(|e| ApiError::Internal(format!("rendering metrics: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(text))
}

async fn book(state: &AppState, id: EventId, user: UserId, ask: SeatAsk) -> Answer {
    let booking = state.service.book_as(id, user, ask).await?;
    Ok(HttpResponse::Ok().json_line(BookedResponse::from(booking)))
}

async fn cancel(who: &Customer, state: &AppState, id: EventId, user: UserId) -> Answer {
    let cancelled = state.service.cancel(id, user).await?;
    Ok(HttpResponse::Ok().json_line(CancelResponse::for_caller(
        cancelled,
        who.sees_other_users(),
    )))
}

async fn confirm(state: &AppState, id: EventId, user: UserId) -> Answer {
    let booking = state.service.confirm(id, user).await?;
    Ok(HttpResponse::Ok().json_line(BookingResponse {
        booking: booking.into(),
    }))
}

/// A validated body's event and user, as domain values, once `who` may
/// act for that user (403 otherwise). Every customer route with the ids in
/// its body goes through here, so none can skip the check.
fn customer_body(
    who: &Customer,
    event_id: Option<u64>,
    user_id: Option<String>,
) -> Result<(EventId, UserId), ApiError> {
    let id = event_id.ok_or_else(|| ApiError::field("eventId", "is required"))?;
    let user = user_id.ok_or_else(|| ApiError::field("userId", "is required"))?;
    let target = (EventId::try_from(id)?, UserId::try_from(user.as_str())?);
    who.may_act_for(&target.1)?;
    Ok(target)
}

/// Both path ids, reporting every bad one at once, once `who` may act for
/// the user (403 otherwise): [`customer_body`] for routes with the ids in
/// the path.
fn customer_path(who: &Customer, path: &(String, String)) -> Result<(EventId, UserId), ApiError> {
    let target = match (event_id(&path.0), user_id(&path.1)) {
        (Ok(id), Ok(user)) => (id, user),
        (Err(ApiError::Validation(mut a)), Err(ApiError::Validation(b))) => {
            a.extend(b);
            return Err(ApiError::Validation(a));
        }
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    who.may_act_for(&target.1)?;
    Ok(target)
}
