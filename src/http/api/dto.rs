//! Request and response bodies, exactly as the contract spells them.
//!
//! Requests are camelCase with every field optional, so a missing field is
//! reported by `validator` with its name rather than by serde as a parse error.
//! Responses are snake_case objects, plus the flat camelCase keys of `status`
//! and the top-level `status`/`userId` of the second seed service.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;
use validator::{Validate, ValidationError};

use crate::domain::{
    BookingChange, BookingStatus, BookingView, EntryView, EventStatus, Timestamp, UserId,
    WaitingEntry, MAX_ADMIT_PER_MINUTE, MAX_ADMIT_SECS, MAX_EVENT_ID, MAX_EVENT_NAME_CHARS,
};
use crate::http::api::error::ApiError;
use crate::http::api::seat_bodies::SeatingRequest;

/// `validator` compares string lengths as u64.
const NAME_MAX_CHARS: u64 = MAX_EVENT_NAME_CHARS as u64;
/// Longest hold or offer, in seconds: 7 days.
pub const MAX_HOLD_SECS: u32 = 604_800;

fn valid_user_id(raw: &str) -> Result<(), ValidationError> {
    if is_new_user_id(raw) {
        Ok(())
    } else {
        Err(ValidationError::new("user_id")
            .with_message("must be 1 to 64 characters: letters, digits and ._-@: only".into()))
    }
}

/// A user id a request may use: the domain's rule, minus `.` and `..`,
/// which clients that normalise paths can never reach again. (Stored ids
/// keep the domain's rule, so v1 data with them still restores.)
pub fn is_new_user_id(raw: &str) -> bool {
    UserId::is_valid(raw) && raw != "." && raw != ".."
}

/// A display name: no control characters (NUL, escapes, CR/LF), which
/// would be stored and echoed into logs and pages.
fn valid_display_name(name: &str) -> Result<(), ValidationError> {
    if name.chars().any(char::is_control) {
        Err(ValidationError::new("control")
            .with_message("must not contain control characters".into()))
    } else {
        Ok(())
    }
}

fn valid_timestamp(raw: &str) -> Result<(), ValidationError> {
    match Timestamp::parse_rfc3339(raw) {
        Some(_) => Ok(()),
        None => Err(ValidationError::new("timestamp")
            .with_message("must be an RFC 3339 timestamp, e.g. 2024-02-04T10:00:00.000Z".into())),
    }
}

/// Tells a field that is absent (`None`) from one set to `null`
/// (`Some(None)`), for settings a PATCH may clear.
fn nullable<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

/// An integer field that may be absent: `None` then. JSON Schema counts
/// `3.0` as an integer, so a whole float is taken; `null`, a fraction, a
/// negative or an out-of-range number is an error (named after the field by
/// `serde_path_to_error`). Use with `#[serde(default)]`.
fn whole<'de, D, T>(de: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    struct Whole<T>(std::marker::PhantomData<T>);
    impl<T: TryFrom<u64>> serde::de::Visitor<'_> for Whole<T> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a whole number")
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<T, E> {
            T::try_from(v).map_err(|_| E::custom(format!("{v} is out of range")))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<T, E> {
            match u64::try_from(v) {
                Ok(v) => self.visit_u64(v),
                Err(_) => Err(E::custom(format!("{v} is negative"))),
            }
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<T, E> {
            // Above 2^53 a float no longer names one integer.
            if v.fract() == 0.0 && (0.0..=9_007_199_254_740_992.0).contains(&v) {
                self.visit_u64(v as u64)
            } else {
                Err(E::invalid_type(serde::de::Unexpected::Float(v), &self))
            }
        }
    }
    de.deserialize_any(Whole(std::marker::PhantomData))
        .map(Some)
}

/// A field that may be absent but not `null` (for fields that cannot be
/// cleared). Use with `#[serde(default)]`.
fn present<'de, D, T>(de: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(de).map(Some)
}

/// [`whole`] for a field where `null` means "clear" (`Some(None)`).
fn nullable_whole<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    let value = Option::<serde_json::Value>::deserialize(de)?;
    match value {
        None => Ok(Some(None)),
        Some(v) => whole(v).map(Some).map_err(serde::de::Error::custom),
    }
}

/// A validated timestamp field as a domain value.
pub fn timestamp(raw: Option<&str>) -> Option<Timestamp> {
    raw.and_then(Timestamp::parse_rfc3339)
}

/// `salesStart < salesEnd` when both are given in one request.
pub fn check_window(start: Option<Timestamp>, end: Option<Timestamp>) -> Result<(), ApiError> {
    match (start, end) {
        (Some(s), Some(e)) if s >= e => {
            Err(ApiError::field("salesEnd", "must be later than salesStart"))
        }
        _ => Ok(()),
    }
}

/// `POST /api/initialize` and `POST /api/events`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[schema(example = json!({"totalTickets": 100, "name": "Spring concert", "maxPerUser": 4}))]
#[serde(rename_all = "camelCase")]
pub struct CreateEventRequest {
    /// Tickets for sale; the upper bound is `limits.max_tickets_per_event`,
    /// checked by the service because it comes from configuration.
    /// Required unless `seating` is given (then, if given, the seat count).
    #[validate(range(min = 1, message = "must be an integer of at least 1"))]
    #[schema(value_type = u64, required = false, minimum = 1, maximum = 10_000_000)]
    #[serde(default, deserialize_with = "whole")]
    pub total_tickets: Option<u64>,
    /// Optional display name.
    #[validate(
        length(max = "NAME_MAX_CHARS", message = "must be at most 200 characters"),
        custom(function = "valid_display_name")
    )]
    #[schema(value_type = Option<String>, required = false, max_length = 200, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub name: Option<String>,
    /// Optional id to create the event under; `null` is not "absent" but a
    /// value of the wrong type, so it is kept apart (checked by the handler).
    #[serde(default, deserialize_with = "nullable_whole")]
    #[schema(value_type = u64, required = false, minimum = 1, maximum = 9_007_199_254_740_991_u64)]
    pub event_id: Option<Option<u64>>,
    /// Per-user limit; its upper bound comes from configuration.
    #[validate(range(min = 1, message = "must be an integer of at least 1"))]
    #[schema(value_type = u32, required = false, minimum = 1, maximum = 10)]
    #[serde(default, deserialize_with = "whole")]
    pub max_per_user: Option<u32>,
    /// Hold time in seconds.
    #[validate(range(max = "MAX_HOLD_SECS", message = "must be an integer from 0 to 604800"))]
    #[schema(value_type = u32, required = false, maximum = 604_800)]
    #[serde(default, deserialize_with = "whole")]
    pub hold_secs: Option<u32>,
    /// Offer time in seconds.
    #[validate(range(max = "MAX_HOLD_SECS", message = "must be an integer from 0 to 604800"))]
    #[schema(value_type = u32, required = false, maximum = 604_800)]
    #[serde(default, deserialize_with = "whole")]
    pub offer_secs: Option<u32>,
    /// Whether sales are open (default true).
    #[schema(value_type = bool, required = false)]
    #[serde(default, deserialize_with = "present")]
    pub sales_open: Option<bool>,
    /// Start of sales, RFC 3339, or null.
    #[validate(custom(function = "valid_timestamp"))]
    #[schema(format = DateTime, required = false)]
    pub sales_start: Option<String>,
    /// End of sales, RFC 3339, or null (later than `salesStart`).
    #[validate(custom(function = "valid_timestamp"))]
    #[schema(format = DateTime, required = false)]
    pub sales_end: Option<String>,
    /// The waiting room's pace, a minute; 0 (default): no room.
    #[validate(range(
        max = "MAX_ADMIT_PER_MINUTE",
        message = "must be an integer from 0 to 1000000"
    ))]
    #[schema(value_type = u32, required = false, maximum = 1_000_000)]
    #[serde(default, deserialize_with = "whole")]
    pub room_admit_per_minute: Option<u32>,
    /// How long an admission lasts, in seconds (default 600).
    #[validate(range(
        min = 1,
        max = "MAX_ADMIT_SECS",
        message = "must be an integer from 1 to 86400"
    ))]
    #[schema(value_type = u32, required = false, minimum = 1, maximum = 86_400)]
    #[serde(default, deserialize_with = "whole")]
    pub room_admit_secs: Option<u32>,
    /// A seat map: the event is seated, its tickets are the map's seats.
    #[schema(required = false)]
    pub seating: Option<SeatingRequest>,
}

/// `PATCH /api/events/{eventId}`: absent fields stay as they are.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[schema(example = json!({"totalTickets": 120, "salesOpen": true}))]
#[serde(rename_all = "camelCase")]
pub struct UpdateEventRequest {
    /// New name; `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[validate(custom(function = "valid_name"))]
    #[schema(value_type = Option<String>, required = false, max_length = 200, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub name: Option<Option<String>>,
    /// New ticket count.
    #[validate(range(min = 1, message = "must be an integer of at least 1"))]
    #[schema(value_type = u64, required = false, minimum = 1, maximum = 10_000_000)]
    #[serde(default, deserialize_with = "whole")]
    pub total_tickets: Option<u64>,
    /// New per-user limit.
    #[validate(range(min = 1, message = "must be an integer of at least 1"))]
    #[schema(value_type = u32, required = false, minimum = 1, maximum = 10)]
    #[serde(default, deserialize_with = "whole")]
    pub max_per_user: Option<u32>,
    /// New hold time in seconds.
    #[validate(range(max = "MAX_HOLD_SECS", message = "must be an integer from 0 to 604800"))]
    #[schema(value_type = u32, required = false, maximum = 604_800)]
    #[serde(default, deserialize_with = "whole")]
    pub hold_secs: Option<u32>,
    /// New offer time in seconds.
    #[validate(range(max = "MAX_HOLD_SECS", message = "must be an integer from 0 to 604800"))]
    #[schema(value_type = u32, required = false, maximum = 604_800)]
    #[serde(default, deserialize_with = "whole")]
    pub offer_secs: Option<u32>,
    /// Open or close sales.
    #[schema(value_type = bool, required = false)]
    #[serde(default, deserialize_with = "present")]
    pub sales_open: Option<bool>,
    /// New start of sales; `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[validate(custom(function = "valid_timestamp"))]
    #[schema(value_type = Option<String>, format = DateTime, required = false)]
    pub sales_start: Option<Option<String>>,
    /// New end of sales; `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[validate(custom(function = "valid_timestamp"))]
    #[schema(value_type = Option<String>, format = DateTime, required = false)]
    pub sales_end: Option<Option<String>>,
    /// New waiting-room pace, a minute; 0 turns the room off.
    #[validate(range(
        max = "MAX_ADMIT_PER_MINUTE",
        message = "must be an integer from 0 to 1000000"
    ))]
    #[schema(value_type = u32, required = false, maximum = 1_000_000)]
    #[serde(default, deserialize_with = "whole")]
    pub room_admit_per_minute: Option<u32>,
    /// New admission length in seconds, for admissions from now on.
    #[validate(range(
        min = 1,
        max = "MAX_ADMIT_SECS",
        message = "must be an integer from 1 to 86400"
    ))]
    #[schema(value_type = u32, required = false, minimum = 1, maximum = 86_400)]
    #[serde(default, deserialize_with = "whole")]
    pub room_admit_secs: Option<u32>,
}

fn valid_name(name: &str) -> Result<(), ValidationError> {
    if name.chars().count() > MAX_EVENT_NAME_CHARS {
        Err(ValidationError::new("length").with_message("must be at most 200 characters".into()))
    } else {
        valid_display_name(name)
    }
}

/// `POST /api/book`, `POST /api/cancel` and `POST /api/confirm`.
/// A request body that names an event and a user (the seed routes), with
/// whatever else the route takes; one definition of the two shared fields.
macro_rules! booking_target_body {
    ($(#[$meta:meta])* $name:ident { $($extra:tt)* }) => {
        #[derive(Debug, Deserialize, Validate, ToSchema)]
        $(#[$meta])*
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            /// The event.
            #[validate(
                required(message = "is required"),
                range(
                    min = 1,
                    max = "MAX_EVENT_ID",
                    message = "must be an integer from 1 to 9007199254740991"
                )
            )]
            #[schema(value_type = u64, required = true, minimum = 1, maximum = 9_007_199_254_740_991_u64)]
            #[serde(default, deserialize_with = "whole")]
            pub event_id: Option<u64>,
            /// The user: 1 to 64 letters, digits and `._-@:`, not `.` or `..`.
            #[validate(required(message = "is required"), custom(function = "valid_user_id"))]
            #[schema(value_type = String, required = true, pattern = r"^[A-Za-z0-9_@:-][A-Za-z0-9._@:-]{0,63}$|^\.[A-Za-z0-9._@:-]{2,63}$|^\.[A-Za-z0-9_@:-]$")]
            #[serde(default, deserialize_with = "present")]
            pub user_id: Option<String>,
            $($extra)*
        }
    };
}

booking_target_body! {
    /// `POST /api/book`.
    #[schema(example = json!({"eventId": 1, "userId": "alice", "quantity": 2}))]
    BookingRequest {
        /// Tickets asked for (default 1), at most the event's `max_per_user`.
        #[validate(range(min = 1, message = "must be an integer of at least 1"))]
        #[schema(value_type = u32, required = false, minimum = 1, maximum = 10)]
        #[serde(default, deserialize_with = "whole")]
        pub quantity: Option<u32>,
        /// At a seated event: exactly these seats, all or nothing.
        #[schema(required = false)]
        pub seats: Option<Vec<String>>,
        /// At a seated event: best available in this category only.
        #[schema(required = false)]
        pub category: Option<String>,
        /// At a seated event: adjacent seats (default) or the best one by one.
        #[schema(required = false)]
        pub together: Option<bool>,
    }
}

booking_target_body! {
    /// `POST /api/cancel` and `POST /api/confirm`.
    #[schema(example = json!({"eventId": 1, "userId": "alice"}))]
    BookingTargetRequest {}
}

/// `PATCH .../bookings/{userId}`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[schema(example = json!({"quantity": 1}))]
pub struct QuantityChangeRequest {
    /// The new, lower number of tickets.
    #[validate(
        required(message = "is required"),
        range(min = 1, message = "must be an integer of at least 1")
    )]
    #[schema(value_type = u32, required = true, minimum = 1, maximum = 10)]
    #[serde(default, deserialize_with = "whole")]
    pub quantity: Option<u32>,
}

/// The optional body of `PUT .../bookings/{userId}`.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[schema(example = json!({"quantity": 2}))]
pub struct QuantityRequest {
    /// Tickets asked for (default 1), at most the event's `max_per_user`.
    #[validate(range(min = 1, message = "must be an integer of at least 1"))]
    #[schema(value_type = u32, required = false, minimum = 1, maximum = 10)]
    #[serde(default, deserialize_with = "whole")]
    pub quantity: Option<u32>,
    /// At a seated event: exactly these seats, all or nothing.
    #[schema(required = false)]
    pub seats: Option<Vec<String>>,
    /// At a seated event: best available in this category only.
    #[schema(required = false)]
    pub category: Option<String>,
    /// At a seated event: adjacent seats (default) or the best one by one.
    #[schema(required = false)]
    pub together: Option<bool>,
}

impl QuantityRequest {
    /// What the body asks for.
    pub fn ask(self) -> crate::service::SeatAsk {
        crate::service::SeatAsk {
            quantity: self.quantity,
            seats: self.seats,
            category: self.category,
            together: self.together,
        }
    }
}

// `collect_str`: serde_json writes the formatted time into the body
// directly; `to_rfc3339` would allocate a String for each.
pub(crate) fn rfc3339<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&t.rfc3339())
}

fn rfc3339_or_null<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.collect_str(&t.rfc3339()),
        None => s.serialize_none(),
    }
}

/// The Event object, with the counters of `status` (v1 clients read
/// `waiting_list_count` from it; the others are v2 additions).
#[derive(Debug, Serialize, ToSchema)]
pub struct EventJson {
    id: u64,
    name: Option<String>,
    total_tickets: u64,
    available_tickets: u64,
    held_tickets: u64,
    waiting_list_count: u64,
    waiting_tickets: u64,
    max_per_user: u32,
    hold_secs: u32,
    offer_secs: u32,
    sales_open: bool,
    #[serde(serialize_with = "rfc3339_or_null")]
    #[schema(value_type = Option<String>, format = DateTime)]
    sales_start: Option<Timestamp>,
    #[serde(serialize_with = "rfc3339_or_null")]
    #[schema(value_type = Option<String>, format = DateTime)]
    sales_end: Option<Timestamp>,
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    updated_at: Timestamp,
    /// The waiting room's pace, a minute; 0: no room.
    room_admit_per_minute: u32,
    /// How long an admission lasts, in seconds.
    room_admit_secs: u32,
    /// Room entries waiting.
    room_waiting: u64,
    /// Room entries admitted now, not yet used or lapsed.
    room_admitted: u64,
    /// Whether the event's tickets are the seats of a seat map.
    seated: bool,
    /// Seats the organiser blocked (always 0 at an unseated event).
    blocked_seats: u64,
}

impl From<EventStatus> for EventJson {
    fn from(s: EventStatus) -> Self {
        let settings = s.settings;
        Self {
            id: s.id.get(),
            name: settings.name,
            total_tickets: settings.total_tickets,
            available_tickets: s.available_tickets,
            held_tickets: s.held_tickets,
            waiting_list_count: s.waiting_count,
            waiting_tickets: s.waiting_tickets,
            max_per_user: settings.max_per_user,
            hold_secs: settings.hold_secs,
            offer_secs: settings.offer_secs,
            sales_open: settings.sales_open,
            sales_start: settings.sales_start,
            sales_end: settings.sales_end,
            created_at: s.created_at,
            updated_at: s.updated_at,
            room_admit_per_minute: s.room.settings.admit_per_minute,
            room_admit_secs: s.room.settings.admit_secs,
            room_waiting: s.room.waiting,
            room_admitted: s.room.admitted,
            seated: s.blocked_seats.is_some(),
            blocked_seats: s.blocked_seats.unwrap_or(0),
        }
    }
}

/// `GET /api/status/:eventId`: both original services' shapes in one body.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusResponse {
    event: EventJson,
    event_id: u64,
    name: Option<String>,
    total_tickets: u64,
    available_tickets: u64,
    confirmed_count: u64,
    held_tickets: u64,
    waiting_list_count: u64,
    waiting_tickets: u64,
    room_waiting: u64,
    room_admitted: u64,
}

impl From<EventStatus> for StatusResponse {
    fn from(s: EventStatus) -> Self {
        Self {
            room_waiting: s.room.waiting,
            room_admitted: s.room.admitted,
            event_id: s.id.get(),
            name: s.settings.name.clone(),
            total_tickets: s.settings.total_tickets,
            available_tickets: s.available_tickets,
            confirmed_count: s.confirmed_tickets,
            held_tickets: s.held_tickets,
            waiting_list_count: s.waiting_count,
            waiting_tickets: s.waiting_tickets,
            event: s.into(),
        }
    }
}

/// The Booking object.
#[derive(Debug, Serialize, ToSchema)]
pub struct BookingJson {
    id: u64,
    event_id: u64,
    user_id: String,
    #[schema(value_type = BookingState)]
    status: &'static str,
    #[schema(minimum = 1)]
    quantity: u32,
    /// 1-based place in the queue while waiting, else null.
    #[schema(minimum = 1)]
    waiting_position: Option<u64>,
    /// Tickets asked for by the bookings ahead in the queue, while waiting.
    tickets_ahead: Option<u64>,
    #[serde(serialize_with = "rfc3339_or_null")]
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<Timestamp>,
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    updated_at: Timestamp,
    /// Its seat ids in map order at a seated event (`[]` while waiting; an
    /// ended booking keeps its last); null at an unseated event.
    seats: Option<Vec<String>>,
}

impl From<BookingView> for BookingJson {
    fn from(b: BookingView) -> Self {
        Self {
            id: b.id.get(),
            event_id: b.event_id.get(),
            user_id: b.user_id.as_str().to_string(),
            status: b.status.as_str(),
            quantity: b.quantity,
            waiting_position: b.waiting_position,
            tickets_ahead: b.tickets_ahead,
            expires_at: b.expires_at,
            created_at: b.created_at,
            updated_at: b.updated_at,
            seats: b.seats,
        }
    }
}

/// Create answers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedResponse {
    /// The new event.
    event: EventJson,
    /// Always "Event initialized".
    message: &'static str,
    /// The status reply's flat keys, which the second original service's
    /// clients read from the create reply.
    event_id: u64,
    name: Option<String>,
    total_tickets: u64,
    available_tickets: u64,
    confirmed_count: u64,
    held_tickets: u64,
    waiting_list_count: u64,
    waiting_tickets: u64,
    room_waiting: u64,
    room_admitted: u64,
}

impl From<EventStatus> for CreatedResponse {
    fn from(s: EventStatus) -> Self {
        let flat = StatusResponse::from(s);
        Self {
            event: flat.event,
            message: "Event initialized",
            event_id: flat.event_id,
            name: flat.name,
            total_tickets: flat.total_tickets,
            available_tickets: flat.available_tickets,
            confirmed_count: flat.confirmed_count,
            held_tickets: flat.held_tickets,
            waiting_list_count: flat.waiting_list_count,
            waiting_tickets: flat.waiting_tickets,
            room_waiting: flat.room_waiting,
            room_admitted: flat.room_admitted,
        }
    }
}

/// The RoomEntry object.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntryJson {
    event_id: u64,
    user_id: String,
    #[schema(value_type = EntryState)]
    status: &'static str,
    /// 1-based place among the waiting entries once drawn, else null.
    #[schema(minimum = 1)]
    position: Option<u64>,
    /// `position - 1`, or null likewise.
    people_ahead: Option<u64>,
    /// While waiting with a position: when the current pace reaches it.
    #[serde(serialize_with = "rfc3339_or_null")]
    #[schema(value_type = Option<String>, format = DateTime)]
    estimated_admission_at: Option<Timestamp>,
    #[serde(serialize_with = "rfc3339_or_null")]
    #[schema(value_type = Option<String>, format = DateTime)]
    admitted_at: Option<Timestamp>,
    /// While admitted: when the admission lapses.
    #[serde(serialize_with = "rfc3339_or_null")]
    #[schema(value_type = Option<String>, format = DateTime)]
    admitted_until: Option<Timestamp>,
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    joined_at: Timestamp,
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    updated_at: Timestamp,
}

impl From<EntryView> for EntryJson {
    fn from(e: EntryView) -> Self {
        Self {
            event_id: e.event_id.get(),
            user_id: e.user_id.as_str().to_string(),
            status: e.status.as_str(),
            position: e.position,
            people_ahead: e.people_ahead,
            estimated_admission_at: e.estimated_admission_at,
            admitted_at: e.admitted_at,
            admitted_until: e.admitted_until,
            joined_at: e.joined_at,
            updated_at: e.updated_at,
        }
    }
}

/// The room routes' answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntryResponse {
    /// The entry.
    pub entry: EntryJson,
}

impl From<EntryView> for EntryResponse {
    fn from(e: EntryView) -> Self {
        Self { entry: e.into() }
    }
}

/// Where a room entry stands.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // Only its schema is used: `EntryJson` writes the name.
pub enum EntryState {
    /// Waiting for its turn (or for the draw).
    Waiting,
    /// Its turn came: the person may book until `admitted_until`.
    Admitted,
    /// The person booked during the admission.
    Used,
    /// The admission lapsed unused.
    Expired,
    /// The person left the room.
    Left,
}

/// Booking-status and confirm answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct BookingResponse {
    /// The booking.
    pub booking: BookingJson,
}

/// Book answers: the booking plus the second seed service's top-level keys.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BookedResponse {
    booking: BookingJson,
    /// `booked`, `held` or `waiting`.
    #[schema(value_type = BookedState)]
    status: &'static str,
    user_id: String,
}

impl From<BookingView> for BookedResponse {
    fn from(b: BookingView) -> Self {
        let status = match b.status {
            BookingStatus::Waiting => "waiting",
            BookingStatus::Held => "held",
            _ => "booked",
        };
        Self {
            user_id: b.user_id.as_str().to_string(),
            status,
            booking: b.into(),
        }
    }
}

/// Cancel answers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CancelResponse {
    success: bool,
    message: &'static str,
    booking: BookingJson,
    promoted: Option<BookingJson>,
    promotions: Vec<BookingJson>,
    /// `reassigned` (with the first promoted user) or `cancelled` (with
    /// the canceller).
    #[schema(value_type = CancelState)]
    status: &'static str,
    user_id: String,
}

impl CancelResponse {
    /// The answer as `caller` may see it: a customer's own token sees no
    /// other user (no promotions; the top-level keys are its own
    /// cancellation), everyone else sees the promotions.
    pub fn for_caller(c: BookingChange, sees_others: bool) -> Self {
        if sees_others {
            return c.into();
        }
        Self {
            success: true,
            message: "Booking cancelled successfully",
            user_id: c.booking.user_id.as_str().to_string(),
            booking: c.booking.into(),
            promoted: None,
            promotions: Vec::new(),
            status: "cancelled",
        }
    }
}

impl From<BookingChange> for CancelResponse {
    fn from(c: BookingChange) -> Self {
        let (status, user_id) = match c.promotions.first() {
            Some(first) => ("reassigned", first.user_id.as_str().to_string()),
            None => ("cancelled", c.booking.user_id.as_str().to_string()),
        };
        Self {
            success: true,
            message: "Booking cancelled successfully",
            booking: c.booking.into(),
            promoted: c.promotions.first().cloned().map(BookingJson::from),
            promotions: c.promotions.into_iter().map(BookingJson::from).collect(),
            status,
            user_id,
        }
    }
}

/// Quantity-change answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct BookingChangeResponse {
    booking: BookingJson,
    promotions: Vec<BookingJson>,
}

impl BookingChangeResponse {
    /// The answer as `caller` may see it: no promotions (other users) for
    /// a customer's own token.
    pub fn for_caller(c: BookingChange, sees_others: bool) -> Self {
        let mut answer = Self::from(c);
        if !sees_others {
            answer.promotions.clear();
        }
        answer
    }
}

impl From<BookingChange> for BookingChangeResponse {
    fn from(c: BookingChange) -> Self {
        Self {
            booking: c.booking.into(),
            promotions: c.promotions.into_iter().map(BookingJson::from).collect(),
        }
    }
}

/// One waiting-list item.
#[derive(Debug, Serialize, ToSchema)]
pub struct WaitingItemJson {
    booking_id: u64,
    user_id: String,
    quantity: u32,
    waiting_position: u64,
}

impl From<WaitingEntry> for WaitingItemJson {
    fn from(w: WaitingEntry) -> Self {
        Self {
            booking_id: w.booking_id.get(),
            user_id: w.user_id.as_str().to_string(),
            quantity: w.quantity,
            waiting_position: w.position,
        }
    }
}

/// A booking's status, as the Booking object shows it.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // Describes the strings `BookingStatus::as_str` gives.
pub enum BookingState {
    /// Has its tickets.
    Confirmed,
    /// In the queue.
    Waiting,
    /// Cancelled by its user.
    Cancelled,
    /// Has tickets set aside until `expires_at`.
    Held,
    /// Its hold lapsed.
    Expired,
}

/// The top-level `status` of a book answer.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // Describes the strings `BookedResponse` gives.
pub enum BookedState {
    /// Confirmed at once.
    Booked,
    /// Held, to be confirmed before `expires_at`.
    Held,
    /// In the queue.
    Waiting,
}

/// The top-level `status` of a cancel answer.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // Describes the strings `CancelResponse` gives.
pub enum CancelState {
    /// The freed tickets went to someone waiting.
    Reassigned,
    /// Nobody waiting got them.
    Cancelled,
}

/// A page of a list.
#[derive(Debug, Serialize, ToSchema)]
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
