//! Request and response bodies, exactly as the contract spells them.
//!
//! Requests are camelCase with every field optional, so a missing field is
//! reported by `validator` with its name rather than by serde as a parse error.
//! Responses are snake_case objects, plus the flat camelCase keys of `status`.

use serde::{Deserialize, Serialize, Serializer};
use validator::{Validate, ValidationError};

use crate::domain::{
    BookingView, EventStatus, Timestamp, UserId, WaitingEntry, MAX_EVENT_ID, MAX_EVENT_NAME_CHARS,
};

/// `validator` compares string lengths as u64.
const NAME_MAX_CHARS: u64 = MAX_EVENT_NAME_CHARS as u64;

fn valid_user_id(raw: &str) -> Result<(), ValidationError> {
    if UserId::is_valid(raw) {
        Ok(())
    } else {
        Err(ValidationError::new("user_id")
            .with_message("must be 1 to 64 characters: letters, digits and ._-@: only".into()))
    }
}

/// `POST /api/initialize` and `POST /api/events`.
#[derive(Debug, Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
pub struct CreateEventRequest {
    /// Tickets for sale; the upper bound is `limits.max_tickets_per_event`,
    /// checked by the handler because it comes from configuration.
    #[validate(
        required(message = "is required"),
        range(min = 1, message = "must be an integer of at least 1")
    )]
    pub total_tickets: Option<u64>,
    /// Optional display name.
    #[validate(length(max = "NAME_MAX_CHARS", message = "must be at most 200 characters"))]
    pub name: Option<String>,
    /// Optional id to create the event under.
    #[validate(range(
        min = 1,
        max = "MAX_EVENT_ID",
        message = "must be an integer from 1 to 9007199254740991"
    ))]
    pub event_id: Option<u64>,
}

/// `POST /api/book` and `POST /api/cancel`.
#[derive(Debug, Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
pub struct BookingRequest {
    /// The event.
    #[validate(
        required(message = "is required"),
        range(
            min = 1,
            max = "MAX_EVENT_ID",
            message = "must be an integer from 1 to 9007199254740991"
        )
    )]
    pub event_id: Option<u64>,
    /// The user.
    #[validate(required(message = "is required"), custom(function = "valid_user_id"))]
    pub user_id: Option<String>,
}

fn rfc3339<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339())
}

/// The Event object.
#[derive(Debug, Serialize)]
pub struct EventJson {
    id: u64,
    name: Option<String>,
    total_tickets: u64,
    available_tickets: u64,
    #[serde(serialize_with = "rfc3339")]
    created_at: Timestamp,
    #[serde(serialize_with = "rfc3339")]
    updated_at: Timestamp,
}

impl From<EventStatus> for EventJson {
    fn from(s: EventStatus) -> Self {
        Self {
            id: s.id.get(),
            name: s.name,
            total_tickets: s.total_tickets,
            available_tickets: s.available_tickets,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// The Event object with its waiting-list count, inside `status`.
#[derive(Debug, Serialize)]
pub struct EventStatusJson {
    id: u64,
    name: Option<String>,
    total_tickets: u64,
    available_tickets: u64,
    waiting_list_count: u64,
    #[serde(serialize_with = "rfc3339")]
    created_at: Timestamp,
    #[serde(serialize_with = "rfc3339")]
    updated_at: Timestamp,
}

/// `GET /api/status/:eventId`: both original services' shapes in one body.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusResponse {
    event: EventStatusJson,
    event_id: u64,
    name: Option<String>,
    total_tickets: u64,
    available_tickets: u64,
    confirmed_count: u64,
    waiting_list_count: u64,
}

impl From<EventStatus> for StatusResponse {
    fn from(s: EventStatus) -> Self {
        Self {
            event_id: s.id.get(),
            name: s.name.clone(),
            total_tickets: s.total_tickets,
            available_tickets: s.available_tickets,
            confirmed_count: s.confirmed_count,
            waiting_list_count: s.waiting_count,
            event: EventStatusJson {
                id: s.id.get(),
                name: s.name,
                total_tickets: s.total_tickets,
                available_tickets: s.available_tickets,
                waiting_list_count: s.waiting_count,
                created_at: s.created_at,
                updated_at: s.updated_at,
            },
        }
    }
}

/// The Booking object.
#[derive(Debug, Serialize)]
pub struct BookingJson {
    id: u64,
    event_id: u64,
    user_id: String,
    status: &'static str,
    waiting_position: Option<u64>,
    #[serde(serialize_with = "rfc3339")]
    created_at: Timestamp,
    #[serde(serialize_with = "rfc3339")]
    updated_at: Timestamp,
}

impl From<BookingView> for BookingJson {
    fn from(b: BookingView) -> Self {
        Self {
            id: b.id.get(),
            event_id: b.event_id.get(),
            user_id: b.user_id.as_str().to_string(),
            status: b.status.as_str(),
            waiting_position: b.waiting_position,
            created_at: b.created_at,
            updated_at: b.updated_at,
        }
    }
}

/// Create answers.
#[derive(Debug, Serialize)]
pub struct CreatedResponse {
    /// The new event.
    pub event: EventJson,
    /// Always "Event initialized".
    pub message: &'static str,
}

/// Book and booking-status answers.
#[derive(Debug, Serialize)]
pub struct BookingResponse {
    /// The booking.
    pub booking: BookingJson,
}

/// Cancel answers.
#[derive(Debug, Serialize)]
pub struct CancelResponse {
    /// Always true.
    pub success: bool,
    /// Always "Booking cancelled successfully".
    pub message: &'static str,
    /// The booking as cancelled.
    pub booking: BookingJson,
    /// Whoever the freed ticket went to.
    pub promoted: Option<BookingJson>,
}

/// One waiting-list item.
#[derive(Debug, Serialize)]
pub struct WaitingItemJson {
    booking_id: u64,
    user_id: String,
    waiting_position: u64,
}

impl From<WaitingEntry> for WaitingItemJson {
    fn from(w: WaitingEntry) -> Self {
        Self {
            booking_id: w.booking_id.get(),
            user_id: w.user_id.as_str().to_string(),
            waiting_position: w.position,
        }
    }
}

/// A page of a list.
#[derive(Debug, Serialize)]
pub struct PageResponse<T> {
    /// This page's items.
    pub items: Vec<T>,
    /// Items in the whole list.
    pub total: u64,
    /// 0-based index of the first item.
    pub offset: usize,
    /// The page size asked for.
    pub limit: usize,
}
