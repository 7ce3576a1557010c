//! Rebuilding the state at start-up: the newest usable snapshot, then every
//! journal record after it.
//!
//! Data that cannot be read is never skipped silently: a damaged journal, or
//! a damaged newest snapshot that no older snapshot plus the journal covers,
//! stops start-up (exit code 3) with the file and offset.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::journal::{self, JournalError, Lsn, Record};
use super::snapshot::{read_file, ServiceSnapshot, SnapshotError, SnapshotStore};
use boxoffice_domain::{BookingId, CreateKey, DomainError, Event, EventId};

/// Why the state could not be rebuilt.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// The snapshot directory is unusable, or no snapshot can be read.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The journal is damaged or has a gap.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A snapshot decoded but its content breaks an invariant.
    #[error("{path}: {source}")]
    Content {
        /// The snapshot file.
        path: PathBuf,
        /// What is wrong.
        source: DomainError,
    },
    /// The newest snapshot is damaged and the journal does not reach back
    /// to an older one.
    #[error("{newest} is unreadable ({why}) and no older snapshot plus the journal covers it: {journal}")]
    Uncovered {
        /// The damaged newest snapshot.
        newest: PathBuf,
        /// What is wrong with it.
        why: String,
        /// Why the journal does not cover it.
        journal: JournalError,
    },
}

/// The state rebuilt at start-up, before any actor runs.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Every event with the LSN of the last record reflected in it.
    pub events: BTreeMap<EventId, (Event, Lsn)>,
    /// The id the next auto-numbered event gets.
    pub next_event_id: u64,
    /// The id the next booking gets.
    pub next_booking_id: u64,
    /// The LSN the next journal record gets.
    pub next_lsn: Lsn,
    /// The snapshot it started from, if any.
    pub snapshot: Option<PathBuf>,
    /// Journal records replayed on top.
    pub replayed: u64,
    /// Their bytes in the journal.
    pub replayed_bytes: u64,
    /// Booking records in all events.
    pub bookings: usize,
    /// The idempotency keys of creates, oldest first: the snapshot's, then
    /// those journalled after it.
    pub create_keys: Vec<CreateKey>,
    /// The change feed index the next item gets.
    pub next_change_index: u64,
}

/// Rebuilds the state from `store` and the journal segments in `journal_dir`.
pub fn recover(store: &SnapshotStore, journal_dir: &Path) -> Result<Recovered, RecoveryError> {
    let candidates = store.candidates()?;
    let mut newest_failure: Option<(PathBuf, String)> = None;
    for path in &candidates {
        let snapshot = match read_file(path) {
            Ok(snapshot) => snapshot,
            Err(e) => {
                log::warn!("snapshot {} is unreadable: {e}", path.display());
                newest_failure.get_or_insert_with(|| (path.clone(), e.to_string()));
                continue;
            }
        };
        let covered = snapshot.journal_lsn;
        let mut recovered = from_snapshot(path, snapshot)?;
        match replay_into(&mut recovered, journal_dir, covered) {
            Ok(()) => {
                if let Some((newest, why)) = &newest_failure {
                    log::warn!(
                        "started from older snapshot {} plus the journal, because {} is unreadable: {why}",
                        path.display(),
                        newest.display()
                    );
                }
                return Ok(recovered);
            }
            Err(RecoveryError::Journal(e @ JournalError::Gap { .. }))
                if newest_failure.is_some() =>
            {
                let (newest, why) = newest_failure.unwrap_or_default();
                return Err(RecoveryError::Uncovered {
                    newest,
                    why,
                    journal: e,
                });
            }
            Err(e) => return Err(e),
        }
    }
    if !candidates.is_empty() {
        return Err(
            SnapshotError::NoneReadable(candidates.len(), store.dir().to_path_buf()).into(),
        );
    }
    let mut recovered = Recovered {
        next_event_id: 1,
        next_booking_id: 1,
        next_lsn: Lsn::FIRST,
        next_change_index: 1,
        ..Recovered::default()
    };
    replay_into(&mut recovered, journal_dir, Lsn::ZERO)?;
    Ok(recovered)
}

/// Rebuilds the events of a snapshot, consuming it: at millions of bookings
/// a copy would cost as much as the rebuild.
fn from_snapshot(path: &Path, snapshot: ServiceSnapshot) -> Result<Recovered, RecoveryError> {
    let content = |source| RecoveryError::Content {
        path: path.to_path_buf(),
        source,
    };
    let mut events = BTreeMap::new();
    for stored in snapshot.events {
        let id = stored.event.id;
        let event = Event::from_snapshot(stored.event).map_err(content)?;
        if events.insert(id, (event, stored.applied_lsn)).is_some() {
            return Err(content(DomainError::Inconsistent(format!(
                "event {id} stored twice"
            ))));
        }
    }
    Ok(Recovered {
        events,
        next_event_id: snapshot.next_event_id,
        next_booking_id: snapshot.next_booking_id,
        next_lsn: snapshot.journal_lsn.next(),
        snapshot: Some(path.to_path_buf()),
        replayed: 0,
        replayed_bytes: 0,
        bookings: 0,
        create_keys: snapshot.create_keys,
        next_change_index: snapshot.next_change_index,
    })
}

/// Applies every journal record after `covered`, then checks what the
/// snapshot and the journal hold together.
fn replay_into(
    recovered: &mut Recovered,
    journal_dir: &Path,
    covered: Lsn,
) -> Result<(), RecoveryError> {
    let Recovered {
        events,
        next_event_id,
        next_booking_id,
        create_keys,
        ..
    } = recovered;
    let end = journal::replay(journal_dir, covered, |lsn, record| {
        match record {
            Record::CreateKey(key) => {
                create_keys.push(key.into());
                return Ok(());
            }
            Record::KeyedCreate(key) => {
                create_keys.push(key);
                return Ok(());
            }
            _ => {}
        }
        apply(events, next_event_id, next_booking_id, lsn, record)
    })?;
    // A key whose event's creation was lost to a disk fault (while the key
    // record, handed over after the repair, was kept) names nothing.
    let events = &recovered.events;
    recovered
        .create_keys
        .retain(|k| events.contains_key(&k.event));
    recovered.next_lsn = end.next_lsn.max(recovered.next_lsn);
    recovered.next_change_index = end.next_change_index.max(recovered.next_change_index);
    recovered.replayed = end.applied;
    recovered.replayed_bytes = end.applied_bytes;
    // Booking ids are unique across the service; sorting them once is far
    // cheaper than a set at millions of bookings.
    let mut ids: Vec<BookingId> = recovered
        .events
        .values()
        .flat_map(|(e, _)| e.booking_ids())
        .collect();
    ids.sort_unstable();
    if let Some(pair) = ids.windows(2).find(|w| w[0] == w[1]) {
        return Err(RecoveryError::Content {
            path: recovered
                .snapshot
                .clone()
                .unwrap_or_else(|| journal_dir.to_path_buf()),
            source: DomainError::Inconsistent(format!("booking id {} used twice", pair[0].get())),
        });
    }
    if let Some(max) = ids.last() {
        recovered.next_booking_id = recovered.next_booking_id.max(max.get() + 1);
    }
    recovered.bookings = ids.len();
    Ok(())
}

fn apply(
    events: &mut BTreeMap<EventId, (Event, Lsn)>,
    next_event_id: &mut u64,
    next_booking_id: &mut u64,
    lsn: Lsn,
    record: Record,
) -> Result<(), String> {
    // The reader consumes skips itself.
    let Some((id, change)) = record.into_change() else {
        return Ok(());
    };
    if let Some(booking) = change.new_booking() {
        *next_booking_id = (*next_booking_id).max(booking.get() + 1);
    }
    match (events.get_mut(&id), Event::from_creation(id, &change)) {
        (Some((_, applied)), _) if *applied >= lsn => Ok(()),
        (Some(_), Some(_)) => Err(format!("event {id} created twice")),
        (None, Some(created)) => {
            let created = created.map_err(|e| e.to_string())?;
            events.insert(id, (created, lsn));
            *next_event_id = (*next_event_id).max(id.get() + 1);
            Ok(())
        }
        (None, _) => Err(format!("event {id} does not exist")),
        (Some((event, applied)), _) => {
            *applied = lsn;
            event.apply(&change).map(|_| ()).map_err(|e| e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Journal;
    use boxoffice_domain::{Change, EventSettings, Timestamp};

    fn key(key: &str, event: u64) -> CreateKey {
        CreateKey {
            key: key.into(),
            requested: None,
            settings: EventSettings::new(None, 3, 1),
            event: EventId::try_from(event).expect("id"),
            at: Timestamp::from_millis(5),
            room: Default::default(),
        }
    }

    /// Keys journalled after their event come back; a key whose event's
    /// creation is not in the journal (lost to a fault) is dropped.
    #[test]
    fn journalled_keys_come_back_with_their_events_only() {
        let dir = tempfile::tempdir().expect("dir");
        let journal = Journal::start(journal::tests::options(dir.path(), 1 << 20), Lsn::FIRST)
            .expect("journal");
        let event = EventId::try_from(1).expect("id");
        let created = Record::Change {
            event,
            change: Change::Created {
                settings: EventSettings::new(None, 3, 1),
                at: Timestamp::from_millis(5),
            },
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let old = key("before-rooms", 1);
        let old_form = journal::CreateKeyV5 {
            key: old.key.clone(),
            requested: old.requested,
            settings: old.settings.clone(),
            event: old.event,
            at: old.at,
        };
        for record in [
            created,
            Record::KeyedCreate(key("kept", 1)),
            Record::CreateKey(old_form),
            Record::KeyedCreate(key("orphan", 2)),
        ] {
            let lsn = journal.submit(record, 0).expect("accepted");
            runtime
                .block_on(journal.wait_durable(lsn))
                .expect("durable");
        }
        journal.shutdown();
        let store = SnapshotStore::open(dir.path(), 3).expect("store");
        let recovered = recover(&store, dir.path()).expect("recovers");
        assert_eq!(recovered.events.len(), 1);
        assert_eq!(recovered.create_keys, vec![key("kept", 1), old]);
    }
}
