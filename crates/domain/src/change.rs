//! The one record of what happened to an event.
//!
//! A live operation decides, then builds a [`Change`] and applies it; the
//! journal stores that same value, and replay applies it again. Applying
//! never reads a clock or a policy setting that could have moved since: every
//! decision that depends on time or configuration is made before the change
//! is built, so a replay reaches exactly the state the live run reached.

use serde::{Deserialize, Serialize};

use super::ids::{BookingId, Timestamp, UserId};
use super::settings::{EventPatch, EventSettings};

/// One change to one event. Stored by variant index: variants are only ever
/// appended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    /// The event was created with these settings.
    Created {
        /// Its settings.
        settings: EventSettings,
        /// When.
        at: Timestamp,
    },
    /// A user booked; confirmed or waiting follows from the state.
    Booked {
        /// The new booking's id.
        booking: BookingId,
        /// Who.
        user: UserId,
        /// Tickets asked for.
        quantity: u32,
        /// When.
        at: Timestamp,
    },
    /// A user cancelled their active booking; promotions follow from the state.
    Cancelled {
        /// Who.
        user: UserId,
        /// When.
        at: Timestamp,
    },
    /// A user's active booking now asks for fewer tickets.
    QuantityLowered {
        /// Who.
        user: UserId,
        /// The new, smaller quantity.
        quantity: u32,
        /// When.
        at: Timestamp,
    },
    /// The organiser changed some settings.
    Updated {
        /// What changed.
        patch: EventPatch,
        /// When.
        at: Timestamp,
    },
    /// A user confirmed their held booking.
    Confirmed {
        /// Who.
        user: UserId,
        /// When.
        at: Timestamp,
    },
    /// A user's hold lapsed; promotions follow from the state.
    Expired {
        /// Whose.
        user: UserId,
        /// The hold's deadline: the moment it lapsed, whenever the service
        /// got to it, so a replay reaches the same state.
        at: Timestamp,
    },
}

impl Change {
    /// When the change happened.
    pub fn at(&self) -> Timestamp {
        match self {
            Self::Created { at, .. }
            | Self::Booked { at, .. }
            | Self::Cancelled { at, .. }
            | Self::QuantityLowered { at, .. }
            | Self::Updated { at, .. }
            | Self::Confirmed { at, .. }
            | Self::Expired { at, .. } => *at,
        }
    }
}
