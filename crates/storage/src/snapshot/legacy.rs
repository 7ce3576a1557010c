//! Snapshot payloads of older format versions, read so an upgrade keeps
//! every operator's data: a newer build reads them and writes its own
//! version from the next snapshot on.
//!
//! - Version 2 (v1 of the service): events had a name and a ticket count
//!   only, and every booking was for one ticket.
//! - Version 3: as version 4, without the idempotency keys of creates.
//! - Version 4: as version 5, without the change feed's next index.
//! - Version 5: as version 6, without waiting rooms.
//! - Version 6: as version 7, without seat maps.

use serde::{Deserialize, Serialize};

use super::format::{ServiceSnapshot, StoredEvent};
use crate::log::record::{CreateKeyV5, V1_MAX_PER_USER};
use crate::log::Lsn;
use boxoffice_domain::{
    BookingId, BookingRecord, BookingStatus, ChunkedVec, EventId, EventSettings, EventSnapshot,
    RoomSnapshot, Timestamp, UserId,
};

/// A version 2 booking record.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RecordV2 {
    id: BookingId,
    user: UserId,
    status: BookingStatus,
    created_at: Timestamp,
    updated_at: Timestamp,
}

/// A version 2 event.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct EventV2 {
    id: EventId,
    name: Option<String>,
    total_tickets: u64,
    created_at: Timestamp,
    updated_at: Timestamp,
    records: ChunkedVec<RecordV2>,
    waiting: Vec<u32>,
}

/// A version 2 stored event.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredEventV2 {
    applied_lsn: Lsn,
    event: EventV2,
}

/// A version 2 snapshot payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ServiceSnapshotV2 {
    taken_at: Timestamp,
    journal_lsn: Lsn,
    next_event_id: u64,
    next_booking_id: u64,
    events: Vec<StoredEventV2>,
}

impl From<ServiceSnapshotV2> for ServiceSnapshot {
    fn from(old: ServiceSnapshotV2) -> Self {
        let events = old
            .events
            .into_iter()
            .map(|stored| {
                let e = stored.event;
                let records = e
                    .records
                    .iter()
                    .map(|r| {
                        BookingRecord::new(
                            r.id,
                            r.user.clone(),
                            r.status,
                            1,
                            r.created_at,
                            r.updated_at,
                            None,
                        )
                    })
                    .collect();
                StoredEvent {
                    applied_lsn: stored.applied_lsn,
                    event: EventSnapshot {
                        id: e.id,
                        settings: EventSettings::new(e.name, e.total_tickets, V1_MAX_PER_USER),
                        created_at: e.created_at,
                        updated_at: e.updated_at,
                        records,
                        waiting: e.waiting,
                        room: None,
                        seating: None,
                    },
                }
            })
            .collect();
        Self {
            taken_at: old.taken_at,
            journal_lsn: old.journal_lsn,
            next_event_id: old.next_event_id,
            next_booking_id: old.next_booking_id,
            events,
            create_keys: Vec::new(),
            next_change_index: 1,
        }
    }
}

/// An event as formats 3 to 5 store it: before waiting rooms.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct EventSnapshotV5 {
    id: EventId,
    settings: EventSettings,
    created_at: Timestamp,
    updated_at: Timestamp,
    records: ChunkedVec<BookingRecord>,
    waiting: Vec<u32>,
}

/// A stored event of formats 3 to 5.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct StoredEventV5 {
    applied_lsn: Lsn,
    event: EventSnapshotV5,
}

impl From<StoredEventV5> for StoredEvent {
    fn from(old: StoredEventV5) -> Self {
        let e = old.event;
        Self {
            applied_lsn: old.applied_lsn,
            event: EventSnapshot {
                id: e.id,
                settings: e.settings,
                created_at: e.created_at,
                updated_at: e.updated_at,
                records: e.records,
                waiting: e.waiting,
                room: None,
                seating: None,
            },
        }
    }
}

/// Events of formats 3 to 5 in today's form.
fn upgraded(events: Vec<StoredEventV5>) -> Vec<StoredEvent> {
    events.into_iter().map(StoredEvent::from).collect()
}

/// A format 3 snapshot: format 4 before creates had idempotency keys.
#[derive(Debug, Deserialize)]
pub(super) struct ServiceSnapshotV3 {
    taken_at: Timestamp,
    journal_lsn: Lsn,
    next_event_id: u64,
    next_booking_id: u64,
    events: Vec<StoredEventV5>,
}

impl From<ServiceSnapshotV3> for ServiceSnapshot {
    fn from(old: ServiceSnapshotV3) -> Self {
        Self {
            taken_at: old.taken_at,
            journal_lsn: old.journal_lsn,
            next_event_id: old.next_event_id,
            next_booking_id: old.next_booking_id,
            events: upgraded(old.events),
            create_keys: Vec::new(),
            next_change_index: 1,
        }
    }
}

/// A format 4 snapshot: format 5 before the change feed.
#[derive(Debug, Deserialize)]
pub(super) struct ServiceSnapshotV4 {
    taken_at: Timestamp,
    journal_lsn: Lsn,
    next_event_id: u64,
    next_booking_id: u64,
    events: Vec<StoredEventV5>,
    create_keys: Vec<CreateKeyV5>,
}

impl From<ServiceSnapshotV4> for ServiceSnapshot {
    fn from(old: ServiceSnapshotV4) -> Self {
        Self {
            taken_at: old.taken_at,
            journal_lsn: old.journal_lsn,
            next_event_id: old.next_event_id,
            next_booking_id: old.next_booking_id,
            events: upgraded(old.events),
            create_keys: old.create_keys.into_iter().map(Into::into).collect(),
            next_change_index: 1,
        }
    }
}

/// A format 5 snapshot: format 6 before waiting rooms.
#[derive(Debug, Deserialize)]
pub(super) struct ServiceSnapshotV5 {
    taken_at: Timestamp,
    journal_lsn: Lsn,
    next_event_id: u64,
    next_booking_id: u64,
    events: Vec<StoredEventV5>,
    create_keys: Vec<CreateKeyV5>,
    next_change_index: u64,
}

impl From<ServiceSnapshotV5> for ServiceSnapshot {
    fn from(old: ServiceSnapshotV5) -> Self {
        Self {
            taken_at: old.taken_at,
            journal_lsn: old.journal_lsn,
            next_event_id: old.next_event_id,
            next_booking_id: old.next_booking_id,
            events: upgraded(old.events),
            create_keys: old.create_keys.into_iter().map(Into::into).collect(),
            next_change_index: old.next_change_index,
        }
    }
}

/// An event as format 6 stores it: before seat maps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct EventSnapshotV6 {
    id: EventId,
    settings: EventSettings,
    created_at: Timestamp,
    updated_at: Timestamp,
    records: ChunkedVec<BookingRecord>,
    waiting: Vec<u32>,
    room: Option<RoomSnapshot>,
}

/// A stored event of format 6.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct StoredEventV6 {
    applied_lsn: Lsn,
    event: EventSnapshotV6,
}

/// A format 6 snapshot: format 7 before seat maps.
#[derive(Debug, Deserialize)]
pub(super) struct ServiceSnapshotV6 {
    taken_at: Timestamp,
    journal_lsn: Lsn,
    next_event_id: u64,
    next_booking_id: u64,
    events: Vec<StoredEventV6>,
    create_keys: Vec<boxoffice_domain::CreateKey>,
    next_change_index: u64,
}

impl From<ServiceSnapshotV6> for ServiceSnapshot {
    fn from(old: ServiceSnapshotV6) -> Self {
        let events = old
            .events
            .into_iter()
            .map(|stored| {
                let e = stored.event;
                StoredEvent {
                    applied_lsn: stored.applied_lsn,
                    event: EventSnapshot {
                        id: e.id,
                        settings: e.settings,
                        created_at: e.created_at,
                        updated_at: e.updated_at,
                        records: e.records,
                        waiting: e.waiting,
                        room: e.room,
                        seating: None,
                    },
                }
            })
            .collect();
        Self {
            taken_at: old.taken_at,
            journal_lsn: old.journal_lsn,
            next_event_id: old.next_event_id,
            next_booking_id: old.next_booking_id,
            events,
            create_keys: old.create_keys,
            next_change_index: old.next_change_index,
        }
    }
}

/// `events` in the form format 6 stored them (for tests that write old
/// files); every event must be unseated.
#[cfg(test)]
pub(super) fn downgraded_v6(events: &[StoredEvent]) -> Vec<StoredEventV6> {
    events
        .iter()
        .map(|stored| {
            let e = stored.event.clone();
            assert!(e.seating.is_none(), "format 6 has no seat maps");
            StoredEventV6 {
                applied_lsn: stored.applied_lsn,
                event: EventSnapshotV6 {
                    id: e.id,
                    settings: e.settings,
                    created_at: e.created_at,
                    updated_at: e.updated_at,
                    records: e.records,
                    waiting: e.waiting,
                    room: e.room,
                },
            }
        })
        .collect()
}

/// `events` in the form formats 3 to 5 stored them (for tests that write
/// old files).
#[cfg(test)]
pub(super) fn downgraded(events: &[StoredEvent]) -> Vec<StoredEventV5> {
    events
        .iter()
        .map(|stored| {
            let e = stored.event.clone();
            StoredEventV5 {
                applied_lsn: stored.applied_lsn,
                event: EventSnapshotV5 {
                    id: e.id,
                    settings: e.settings,
                    created_at: e.created_at,
                    updated_at: e.updated_at,
                    records: e.records,
                    waiting: e.waiting,
                },
            }
        })
        .collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A version 2 payload with one event: two confirmed of two tickets and
    /// one waiting, as v1 wrote it.
    pub fn v2_sample() -> ServiceSnapshotV2 {
        let at = Timestamp::from_millis(1_000);
        let record = |id: u64, user: &str, status| RecordV2 {
            id: BookingId::from_raw(id),
            user: UserId::try_from(user).expect("user"),
            status,
            created_at: at,
            updated_at: at,
        };
        ServiceSnapshotV2 {
            taken_at: at,
            journal_lsn: Lsn::new(4),
            next_event_id: 2,
            next_booking_id: 4,
            events: vec![StoredEventV2 {
                applied_lsn: Lsn::new(4),
                event: EventV2 {
                    id: EventId::try_from(1).expect("id"),
                    name: Some("Old gig".into()),
                    total_tickets: 2,
                    created_at: at,
                    updated_at: at,
                    records: [
                        record(1, "a", BookingStatus::Confirmed),
                        record(2, "b", BookingStatus::Confirmed),
                        record(3, "c", BookingStatus::Waiting),
                    ]
                    .into_iter()
                    .collect(),
                    waiting: vec![2],
                },
            }],
        }
    }

    #[test]
    fn a_version_2_snapshot_becomes_one_ticket_bookings_with_default_settings() {
        let snapshot = ServiceSnapshot::from(v2_sample());
        let event = boxoffice_domain::Event::from_snapshot(snapshot.events[0].event.clone())
            .expect("restores");
        let status = event.status();
        assert_eq!(status.settings.name.as_deref(), Some("Old gig"));
        assert_eq!(status.settings.max_per_user, V1_MAX_PER_USER);
        assert!(status.settings.sales_open);
        assert_eq!((status.confirmed_tickets, status.waiting_tickets), (2, 1));
    }
}
