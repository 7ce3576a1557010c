//! The one record of what happened to an event.
//!
//! A live operation decides, then builds a [`Change`] and applies it; the
//! journal stores that same value, and replay applies it again. Applying
//! never reads a clock or a policy setting that could have moved since: every
//! decision that depends on time or configuration is made before the change
//! is built, so a replay reaches exactly the state the live run reached.

use serde::{Deserialize, Serialize};

use super::ids::{BookingId, Timestamp, UserId};
use super::room::{RoomPatch, RoomSettings};
use super::seating::{SeatIx, SeatRequest, SeatShape};
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
    /// The event was created with a waiting room (an event without one is
    /// [`Change::Created`], as before rooms).
    CreatedWithRoom {
        /// Its settings.
        settings: EventSettings,
        /// Its room's.
        room: RoomSettings,
        /// When.
        at: Timestamp,
    },
    /// The organiser changed settings, the room's among them.
    UpdatedWithRoom {
        /// What changed of the event's.
        patch: EventPatch,
        /// What changed of the room's.
        room: RoomPatch,
        /// When.
        at: Timestamp,
    },
    /// A person joined the waiting room, at the end.
    RoomJoined {
        /// Who.
        user: UserId,
        /// When.
        at: Timestamp,
    },
    /// A person left the waiting room.
    RoomLeft {
        /// Who.
        user: UserId,
        /// When.
        at: Timestamp,
    },
    /// The draw: everyone waiting put in the order `seed` gives.
    RoomDrawn {
        /// Drawn from the operating system's randomness at the draw.
        seed: [u8; 32],
        /// When.
        at: Timestamp,
    },
    /// The first `count` waiting entries were admitted.
    RoomAdmitted {
        /// How many.
        count: u32,
        /// Whether the schedule started again at `at` first (a late turn).
        restart: bool,
        /// When.
        at: Timestamp,
    },
    /// Every admission whose deadline is at or before `at` lapsed.
    RoomLapsed {
        /// When.
        at: Timestamp,
    },
    /// A user's hold lapsed while the service was down (or more than
    /// [`LATE_LAPSE_MILLIS`] before it got to it): the lapse is dated at
    /// the deadline, as [`Change::Expired`], but the offers it makes are
    /// made when the service got to it and last their whole `offer_secs`
    /// from then (contract v4, Corrections).
    ExpiredLate {
        /// Whose.
        user: UserId,
        /// The hold's deadline.
        at: Timestamp,
        /// When the lapse was handled: the promotions' moment.
        handled_at: Timestamp,
    },
    /// A seated event was created: its settings (`total_tickets` is the
    /// map's seat count), its room's and its map's shape.
    CreatedSeated {
        /// Its settings.
        settings: EventSettings,
        /// Its room's (the default when it has none).
        room: RoomSettings,
        /// The map.
        shape: SeatShape,
        /// When.
        at: Timestamp,
    },
    /// A user booked at a seated event; the seats (or the wait) follow
    /// from the request and the state.
    BookedSeats {
        /// The new booking's id.
        booking: BookingId,
        /// Who.
        user: UserId,
        /// Which seats, or how many and how.
        request: SeatRequest,
        /// When.
        at: Timestamp,
    },
    /// The organiser blocked and unblocked seats.
    SeatsBlocked {
        /// Now blocked (each was free).
        block: Vec<SeatIx>,
        /// Now free again (each was blocked).
        unblock: Vec<SeatIx>,
        /// When.
        at: Timestamp,
    },
}

/// A lapse handled more than this after its deadline is late (the service
/// handles lapses within a second of their deadline while it runs).
pub const LATE_LAPSE_MILLIS: i64 = 1_000;

impl Change {
    /// Whether the change is the room's alone (it moves no booking).
    pub fn is_room_work(&self) -> bool {
        matches!(
            self,
            Self::RoomJoined { .. }
                | Self::RoomLeft { .. }
                | Self::RoomDrawn { .. }
                | Self::RoomAdmitted { .. }
                | Self::RoomLapsed { .. }
        )
    }

    /// The id of the booking the change makes, if it makes one.
    pub fn new_booking(&self) -> Option<BookingId> {
        match self {
            Self::Booked { booking, .. } | Self::BookedSeats { booking, .. } => Some(*booking),
            _ => None,
        }
    }

    /// The settings of a creation, with its room's.
    pub fn creation(&self) -> Option<(&EventSettings, RoomSettings, Timestamp)> {
        match self {
            Self::Created { settings, at } => Some((settings, RoomSettings::default(), *at)),
            Self::CreatedWithRoom { settings, room, at }
            | Self::CreatedSeated {
                settings, room, at, ..
            } => Some((settings, *room, *at)),
            _ => None,
        }
    }

    /// The moment of the promotions the change makes: when it happened,
    /// but for a late lapse, when it was handled.
    pub fn promotions_at(&self) -> Timestamp {
        match self {
            Self::ExpiredLate { handled_at, .. } => *handled_at,
            other => other.at(),
        }
    }

    /// When the change happened.
    pub fn at(&self) -> Timestamp {
        match self {
            Self::Created { at, .. }
            | Self::Booked { at, .. }
            | Self::Cancelled { at, .. }
            | Self::QuantityLowered { at, .. }
            | Self::Updated { at, .. }
            | Self::Confirmed { at, .. }
            | Self::Expired { at, .. }
            | Self::ExpiredLate { at, .. }
            | Self::CreatedWithRoom { at, .. }
            | Self::UpdatedWithRoom { at, .. }
            | Self::RoomJoined { at, .. }
            | Self::RoomLeft { at, .. }
            | Self::RoomDrawn { at, .. }
            | Self::RoomAdmitted { at, .. }
            | Self::RoomLapsed { at }
            | Self::CreatedSeated { at, .. }
            | Self::BookedSeats { at, .. }
            | Self::SeatsBlocked { at, .. } => *at,
        }
    }
}
