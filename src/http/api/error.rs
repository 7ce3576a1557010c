//! Every failure a client can see, as JSON with a stable `code`.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::changes::PageError;
use crate::domain::DomainError;
use crate::http::transport::refusal::Refusal;
use crate::service::ServiceError;

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field as the client named it (`totalTickets`, `eventId`, ...).
    pub field: String,
    /// What is wrong with it, for people.
    pub message: String,
}

impl FieldError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The errors of the HTTP API, one per row of the contract's error table.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A field is missing, of the wrong type or out of range.
    #[error("Validation failed")]
    Validation(Vec<FieldError>),
    /// The body is not JSON.
    #[error("Request body is not valid JSON: {0}")]
    InvalidJson(String),
    /// No credentials, or credentials that do not check out; the reason is
    /// for people and never quotes the token.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Valid credentials that do not allow this request.
    #[error("{0}")]
    Forbidden(&'static str),
    /// No such event.
    #[error("Event not found")]
    EventNotFound,
    /// No (active) booking for that user at that event.
    #[error("Booking not found")]
    BookingNotFound,
    /// No (active) waiting-room entry for that user at that event.
    #[error("Waiting-room entry not found")]
    EntryNotFound,
    /// Booking at an event with a waiting room without an admission.
    #[error("Booking at this event needs an admission from its waiting room: join it and wait for your turn")]
    NotAdmitted,
    /// No such route.
    #[error("Route not found")]
    NotFound,
    /// Known route, wrong method.
    #[error("Method not allowed")]
    MethodNotAllowed,
    /// The requested event id is taken.
    #[error("Event {0} already exists")]
    EventExists(u64),
    /// The request conflicts with the state: `code` says how.
    #[error("{message}")]
    Conflict {
        /// The stable code (`BOOKING_EXISTS`, `SALES_CLOSED`, ...).
        code: &'static str,
        /// For people.
        message: String,
    },
    /// The request (head or body) did not arrive within
    /// `server.client_request_timeout_ms`.
    #[error("{}", Refusal::RequestTimeout.message())]
    RequestTimeout,
    /// Not HTTP/1.x that can be parsed (request line, headers, framing).
    #[error("{}", Refusal::MalformedRequest.message())]
    MalformedRequest,
    /// The request head is larger than the parser takes.
    #[error("{}", Refusal::HeadersTooLarge.message())]
    HeadersTooLarge,
    /// The client's address holds `server.max_connections_per_ip` connections.
    #[error("{}", Refusal::TooManyConnections(*.0).message())]
    TooManyConnections(usize),
    /// Seats asked for (or to block) are held, booked or blocked.
    #[error("Some of these seats are taken: {}", .0.join(", "))]
    SeatsUnavailable(Vec<String>),
    /// The body is larger than `limits.max_body_bytes`.
    #[error("Request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The body is not `application/json`.
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    /// Over the per-IP quota; retry after this many seconds.
    #[error("Too many requests, retry in {0} s")]
    RateLimited(u64),
    /// The change cannot be taken right now; nothing was changed.
    #[error("Service unavailable, nothing was changed; retry shortly")]
    Unavailable,
    /// A change was passed on and its answer did not come back: it may or
    /// may not have been made.
    #[error("The change got no answer in time and may or may not have been made; retry it (a booking is safe to repeat)")]
    Uncertain,
    /// A change sent to a cluster node that is not the leader; nothing was
    /// changed. The leader's URL, when one is known.
    #[error("This node is not the cluster's leader; send changes to the leader")]
    NotLeader(Option<String>),
    /// `live.max_streams` streams are open already.
    #[error("{0} live streams are open, the most allowed; retry later")]
    StreamsFull(usize),
    /// The change feed no longer keeps the changes asked for.
    #[error("Changes after {after} are no longer kept; the earliest `after` served is {earliest}")]
    Gone {
        /// What was asked for.
        after: u64,
        /// The smallest `after` still served.
        earliest: u64,
    },
    /// A bug. The cause is logged, never sent.
    #[error("Internal server error")]
    Internal(String),
}

impl ApiError {
    /// The stable code programs match on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation(_) => "VALIDATION_FAILED",
            Self::InvalidJson(_) => "INVALID_JSON",
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::EventNotFound => "EVENT_NOT_FOUND",
            Self::BookingNotFound => "BOOKING_NOT_FOUND",
            Self::EntryNotFound => "ENTRY_NOT_FOUND",
            Self::NotAdmitted => "NOT_ADMITTED",
            Self::NotFound => "NOT_FOUND",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::EventExists(_) => "EVENT_EXISTS",
            Self::Conflict { code, .. } => code,
            Self::SeatsUnavailable(_) => "SEATS_UNAVAILABLE",
            Self::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            Self::RequestTimeout => Refusal::RequestTimeout.code(),
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::RateLimited(_) | Self::TooManyConnections(_) => "RATE_LIMITED",
            Self::MalformedRequest => Refusal::MalformedRequest.code(),
            Self::HeadersTooLarge => Refusal::HeadersTooLarge.code(),
            Self::Unavailable | Self::Uncertain | Self::StreamsFull(_) => "UNAVAILABLE",
            Self::NotLeader(_) => "NOT_LEADER",
            Self::Gone { .. } => "GONE",
            Self::Internal(_) => "INTERNAL",
        }
    }

    /// A validation error about a single field.
    pub fn field(field: &str, message: &str) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }
}

/// Every error answer.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"error": "Event not found", "code": "EVENT_NOT_FOUND"}))]
pub struct ErrorBody<'a> {
    /// For people.
    error: String,
    /// Stable, for programs: `VALIDATION_FAILED`, `EVENT_NOT_FOUND`,
    /// `BOOKING_EXISTS`, `UNAUTHENTICATED`, ...
    code: &'a str,
    /// The invalid fields, with `VALIDATION_FAILED` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<FieldError>>, required = false)]
    details: Option<&'a [FieldError]>,
    /// The smallest `after` the change feed still serves, with `GONE` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    earliest: Option<u64>,
    /// The leader's URL (null while none is known), with `NOT_LEADER` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, required = false)]
    leader_url: Option<Option<&'a str>>,
    /// The seats that are taken, with `SEATS_UNAVAILABLE` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<String>>, required = false)]
    seats: Option<&'a [String]>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Validation(_) | Self::InvalidJson(_) => StatusCode::BAD_REQUEST,
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::NotAdmitted => StatusCode::FORBIDDEN,
            Self::EventNotFound | Self::BookingNotFound | Self::EntryNotFound | Self::NotFound => {
                StatusCode::NOT_FOUND
            }
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::EventExists(_) | Self::Conflict { .. } | Self::SeatsUnavailable(_) => {
                StatusCode::CONFLICT
            }
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited(_) | Self::TooManyConnections(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::MalformedRequest => StatusCode::BAD_REQUEST,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::Unavailable | Self::Uncertain | Self::StreamsFull(_) | Self::NotLeader(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Gone { .. } => StatusCode::GONE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        match self {
            Self::RateLimited(secs) => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from(*secs)));
            }
            Self::TooManyConnections(_) | Self::NotLeader(_) | Self::Uncertain => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from(1)));
            }
            Self::Unauthenticated(_) => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"boxoffice\""),
                ));
            }
            _ => {}
        }
        json_line(&mut response, &self.body())
    }
}

impl ApiError {
    /// The JSON body of this error. An internal cause is logged here, not sent.
    fn body(&self) -> ErrorBody<'_> {
        let error = match self {
            Self::Internal(cause) => {
                log::error!("internal error: {cause}");
                self.to_string()
            }
            _ => self.to_string(),
        };
        let details = match self {
            Self::Validation(details) => Some(details.as_slice()),
            _ => None,
        };
        let earliest = match self {
            Self::Gone { earliest, .. } => Some(*earliest),
            _ => None,
        };
        let leader_url = match self {
            Self::NotLeader(url) => Some(url.as_deref()),
            _ => None,
        };
        let seats = match self {
            Self::SeatsUnavailable(seats) => Some(seats.as_slice()),
            _ => None,
        };
        ErrorBody {
            error,
            code: self.code(),
            details,
            earliest,
            leader_url,
            seats,
        }
    }

    /// This error's body as bytes, newline included, for replies written
    /// outside actix-web (see `http::stream`).
    pub fn body_bytes(&self) -> Vec<u8> {
        crate::http::transport::refusal::error_line(&self.body())
    }
}

/// JSON replies that end in a newline, so replies printed one after
/// another (curl in a shell) do not run together.
pub trait JsonLine {
    /// `value` as the JSON body, then `\n`.
    fn json_line(&mut self, value: impl Serialize) -> HttpResponse;
}

impl JsonLine for actix_web::HttpResponseBuilder {
    fn json_line(&mut self, value: impl Serialize) -> HttpResponse {
        json_line(self, &value)
    }
}

/// `value` as a reply body: its JSON and a newline.
pub fn json_line_bytes(value: &impl Serialize) -> Result<actix_web::web::Bytes, String> {
    match serde_json::to_vec(value) {
        Ok(mut bytes) => {
            bytes.push(b'\n');
            Ok(bytes.into())
        }
        Err(e) => Err(format!("reply not serialisable: {e}")),
    }
}

fn json_line(
    response: &mut actix_web::HttpResponseBuilder,
    value: &impl Serialize,
) -> HttpResponse {
    match json_line_bytes(value) {
        Ok(bytes) => response.content_type(mime_json()).body(bytes),
        Err(e) => {
            log::error!("internal error: {e}");
            HttpResponse::InternalServerError()
                .content_type(mime_json())
                .body("{\"error\":\"Internal server error\",\"code\":\"INTERNAL\"}\n")
        }
    }
}

fn mime_json() -> HeaderValue {
    HeaderValue::from_static("application/json")
}

impl ApiError {
    fn conflict(code: &'static str, e: &DomainError) -> Self {
        let mut message = e.to_string();
        if let Some(first) = message.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        Self::Conflict { code, message }
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::InvalidEventId => Self::field("eventId", &e.to_string()),
            DomainError::InvalidUserId => Self::field("userId", &e.to_string()),
            DomainError::InvalidTicketCount => Self::field("totalTickets", &e.to_string()),
            DomainError::InvalidSettings { field, ref message } => Self::field(field, message),
            DomainError::QuantityOutOfRange { max } => Self::field(
                "quantity",
                &format!("must be an integer from 1 to {max} at this event"),
            ),
            DomainError::BookingNotFound => Self::BookingNotFound,
            DomainError::BookingExists => Self::conflict("BOOKING_EXISTS", &e),
            DomainError::QuantityIncrease => Self::conflict("QUANTITY_INCREASE", &e),
            DomainError::NotHeld => Self::conflict("NOT_HELD", &e),
            DomainError::HoldExpired => Self::conflict("HOLD_EXPIRED", &e),
            DomainError::SalesNotOpen => Self::conflict("SALES_NOT_OPEN", &e),
            DomainError::SalesClosed => Self::conflict("SALES_CLOSED", &e),
            DomainError::CapacityConflict(_) => Self::conflict("CAPACITY_CONFLICT", &e),
            // The event's booking slots are exhausted: a capacity limit, not
            // a bug, and nothing was changed.
            DomainError::EventFull => Self::Unavailable,
            DomainError::LimitReached { .. } => Self::conflict("LIMIT_REACHED", &e),
            DomainError::NoRoom => Self::conflict("NO_ROOM", &e),
            DomainError::EntryNotFound => Self::EntryNotFound,
            DomainError::InvalidSeats { field, message } => Self::field(&field, &message),
            DomainError::SeatsUnavailable(seats) => Self::SeatsUnavailable(seats),
            DomainError::NotSeated => Self::conflict("NOT_SEATED", &e),
            DomainError::NotAdmitted => Self::NotAdmitted,
            DomainError::Inconsistent(why) => Self::Internal(why),
        }
    }
}

impl From<crate::actors::Unavailable> for ApiError {
    fn from(_: crate::actors::Unavailable) -> Self {
        Self::Unavailable
    }
}

impl From<PageError> for ApiError {
    fn from(e: PageError) -> Self {
        match e {
            PageError::Gone { after, earliest } => Self::Gone { after, earliest },
            PageError::Unreadable => Self::Unavailable,
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Domain(d) => d.into(),
            ServiceError::Invalid { field, message } => Self::field(field, &message),
            ServiceError::EventNotFound => Self::EventNotFound,
            ServiceError::EventExists(id) => Self::EventExists(id.get()),
            ServiceError::IdsExhausted => Self::Conflict {
                code: "LIMIT_REACHED",
                message: "No event id is free; nothing was changed".into(),
            },
            ServiceError::IdempotencyConflict => Self::Conflict {
                code: "IDEMPOTENCY_CONFLICT",
                message: "This Idempotency-Key was used within the last 24 hours for another request; nothing was changed".into(),
            },
            ServiceError::Unavailable(_) => Self::Unavailable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;

    /// The connection layer answers four of the API's errors itself: a
    /// client gets the same bytes, status and code from either layer.
    #[actix_web::test]
    async fn the_connection_layer_s_errors_are_the_api_s() {
        for (refusal, error) in [
            (Refusal::RequestTimeout, ApiError::RequestTimeout),
            (Refusal::MalformedRequest, ApiError::MalformedRequest),
            (Refusal::HeadersTooLarge, ApiError::HeadersTooLarge),
            (
                Refusal::TooManyConnections(7),
                ApiError::TooManyConnections(7),
            ),
        ] {
            assert_eq!(refusal.body_bytes(), error.body_bytes(), "{error:?}");
            let reply = to_bytes(error.error_response().into_body())
                .await
                .expect("body");
            assert_eq!(reply.as_ref(), refusal.body_bytes().as_slice());
            assert_eq!(refusal.code(), error.code());
        }
    }

    async fn body_of(e: ApiError) -> serde_json::Value {
        let bytes = to_bytes(e.error_response().into_body())
            .await
            .expect("body");
        serde_json::from_slice(&bytes).expect("json")
    }

    #[actix_web::test]
    async fn internal_errors_never_show_their_cause() {
        let body = body_of(ApiError::Internal("secret path /var/x".into())).await;
        assert_eq!(body["code"], "INTERNAL");
        assert!(!body.to_string().contains("secret"));
    }

    #[actix_web::test]
    async fn validation_errors_list_their_fields_and_others_have_no_details() {
        let body = body_of(ApiError::field("userId", "is required")).await;
        assert_eq!(body["details"][0]["field"], "userId");
        let body = body_of(ApiError::EventNotFound).await;
        assert_eq!(
            body,
            serde_json::json!({"error": "Event not found", "code": "EVENT_NOT_FOUND"})
        );
    }

    #[test]
    fn rate_limited_answers_carry_retry_after() {
        let response = ApiError::RateLimited(7).error_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
            Some("7")
        );
    }
}
