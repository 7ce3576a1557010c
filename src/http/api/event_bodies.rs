//! The answer of the routes that change an event as a whole (its
//! settings, its seats): the event as it now stands and who was promoted.
//! One shape, made in one place, for each such route.

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::EventChange;
use crate::http::api::dto::{BookingJson, EventJson};

/// Event-change answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventChangeResponse {
    /// The event as it now stands.
    pub event: EventJson,
    /// Bookings promoted by the change, in queue order.
    pub promotions: Vec<BookingJson>,
}

impl From<EventChange> for EventChangeResponse {
    fn from(c: EventChange) -> Self {
        Self {
            event: c.status.into(),
            promotions: c.promotions.into_iter().map(BookingJson::from).collect(),
        }
    }
}
