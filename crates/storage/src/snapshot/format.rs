//! What a snapshot holds, in the current format: the whole service's state
//! at one moment. Older formats (`legacy`) convert into it.

use serde::{Deserialize, Serialize};

use crate::log::Lsn;
use boxoffice_domain::{CreateKey, EventSnapshot, Timestamp};

/// One event as snapshots store it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// The LSN of the last journal record reflected in `event`; replay skips
    /// this event's records up to it.
    pub applied_lsn: Lsn,
    /// The event's state.
    pub event: EventSnapshot,
}

/// The whole service's state at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSnapshot {
    /// When the snapshot was taken.
    pub taken_at: Timestamp,
    /// Every journal record up to this LSN is reflected here, so replay
    /// starts after it and older segments may be deleted.
    pub journal_lsn: Lsn,
    /// The id the next auto-numbered event gets.
    pub next_event_id: u64,
    /// The id the next booking gets.
    pub next_booking_id: u64,
    /// Every event, in id order.
    pub events: Vec<StoredEvent>,
    /// The idempotency keys of creates still remembered, oldest first
    /// (format 4 on).
    pub create_keys: Vec<CreateKey>,
    /// The change feed index the next item gets (format 5 on): with every
    /// journal segment released, the feed still goes on from it.
    pub next_change_index: u64,
}
