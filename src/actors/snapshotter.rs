//! Writes a snapshot when something changed and the journal written since
//! the last one has grown enough to be worth folding in.
//!
//! A snapshot holds the whole state, so writing one every interval makes the
//! disk traffic follow the state's size: at 10,000,000 bookings, hundreds of
//! MB every few seconds whatever the load. Weighing it against the journal
//! instead (as Redis does before rewriting its append-only file) bounds the
//! snapshot bytes by the journal bytes, that is by the changes, and bounds
//! the replay after a crash by the same fraction of the snapshot.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use actix::{
    Actor, ActorFutureExt, AsyncContext, Context, Handler, Message, SpawnHandle, WrapFuture,
};
use tokio::sync::oneshot;

use super::messages::Unavailable;
use super::registry::Registry;
use crate::persistence::journal::Lsn;
use crate::persistence::{ServiceSnapshot, SnapshotError, SnapshotStore, WrittenSnapshot};

/// Why a snapshot was not written. The journal keeps every change either
/// way; the next snapshot tries again.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotFailed {
    /// An actor could not hand over its state.
    #[error("collecting state: {0}")]
    Collect(Unavailable),
    /// Changes in the collected state did not reach the journal.
    #[error("changes in it did not reach the journal")]
    NotDurable,
    /// Writing the file (or releasing journal segments) failed.
    #[error(transparent)]
    Write(#[from] SnapshotError),
    /// The blocking thread that writes it ended abnormally.
    #[error("snapshot thread: {0}")]
    Thread(String),
}

/// Takes one snapshot: collects state from the actors, waits until every
/// change in it is durable, then checkpoints it on a blocking thread (no
/// request thread waits on the disk): write, then release the journal
/// segments every retained snapshot covers. Returns the change count the
/// snapshot covers and what was written. `last` is the final snapshot before
/// the process exits: every actor stops as it hands over, so nothing can
/// change after it.
pub async fn take_snapshot(
    registry: &Registry,
    store: &Arc<SnapshotStore>,
    last: bool,
) -> Result<(u64, WrittenSnapshot), SnapshotFailed> {
    let started = std::time::Instant::now();
    let changes = registry.change_count();
    let journal = registry.journal();
    // Read before collecting: every record up to here was applied by its
    // actor before that actor hands over its state.
    let (next_lsn, next_change_index) = journal.next_positions();
    let journal_lsn = next_lsn.prev();
    let taken_at = registry.clock().now();
    let events = registry
        .collect(last)
        .await
        .map_err(SnapshotFailed::Collect)?;
    // After the journal position was noted: every key whose record lies
    // at or before it is remembered by now (see `Registry::create_keys`).
    let (create_keys, keys_lsn) = registry.create_keys();
    let newest = events
        .iter()
        .map(|e| e.applied_lsn)
        .max()
        .unwrap_or(Lsn::ZERO)
        .max(keys_lsn);
    journal
        .wait_durable(newest)
        .await
        .map_err(|_| SnapshotFailed::NotDurable)?;
    // Read after collecting, so both lie beyond every id in `events`.
    let snapshot = ServiceSnapshot {
        taken_at,
        journal_lsn,
        next_event_id: registry.next_event_id(),
        next_booking_id: registry.next_booking_id(),
        events,
        create_keys,
        next_change_index,
    };
    let writer = Arc::clone(store);
    let taken = tokio::task::spawn_blocking(move || {
        let written = writer.checkpoint(&snapshot)?;
        Ok((changes, written))
    })
    .await
    .map_err(|e| SnapshotFailed::Thread(e.to_string()))?;
    if let Ok((_, written)) = &taken {
        let stats = store.stats();
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        stats.last_micros.store(micros, Ordering::Relaxed);
        stats.last_bytes.store(written.bytes, Ordering::Relaxed);
        stats.written.fetch_add(1, Ordering::Relaxed);
    }
    taken
}

/// When the periodic task writes a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotPolicy {
    /// `snapshot.journal_percent`: the journal written since the last
    /// snapshot, as a percentage of that snapshot's size, that makes the
    /// next one due. 0: every interval with a change.
    pub journal_percent: u32,
    /// Whether changes are journalled. Without a journal the snapshot is the
    /// only durable copy, so every change makes one due.
    pub journal_on: bool,
}

impl SnapshotPolicy {
    /// Whether a snapshot is due, once something changed: `last_bytes` is
    /// the size of the newest snapshot (`None` if there is none) and
    /// `journal_since` the journal bytes written since it was taken.
    pub fn due(&self, last_bytes: Option<u64>, journal_since: u64) -> bool {
        let Some(last_bytes) = last_bytes else {
            return true;
        };
        !self.journal_on
            || u128::from(journal_since) * 100
                >= u128::from(last_bytes) * u128::from(self.journal_percent)
    }
}

/// What start-up found on disk, for weighing the first snapshot.
#[derive(Debug, Clone, Copy, Default)]
pub struct RestoredFrom {
    /// Size of the snapshot the state was restored from, if any.
    pub snapshot_bytes: Option<u64>,
    /// Journal bytes replayed on top of it: they count as written since.
    pub replayed_bytes: u64,
}

/// The periodic snapshot task.
pub struct Snapshotter {
    /// Where the state comes from.
    registry: Arc<Registry>,
    /// Where it goes.
    store: Arc<SnapshotStore>,
    /// Time between attempts.
    interval: Duration,
    /// When an attempt writes.
    policy: SnapshotPolicy,
    /// The change count the newest snapshot covers.
    written_changes: u64,
    /// Size of the newest snapshot, written or restored from.
    last_bytes: Option<u64>,
    /// Journal bytes that count as written since the newest snapshot but
    /// are not in the journal's counter (replayed at start).
    carried_journal_bytes: u64,
    /// The journal's byte counter when the newest snapshot was begun.
    journal_bytes_at_last: u64,
    /// Whether a snapshot is being taken (they never overlap).
    busy: bool,
    /// The periodic tick, cancelled at shutdown.
    ticks: Option<SpawnHandle>,
    /// Told when the snapshot in flight has finished (shutdown waits).
    idle_waiters: Vec<oneshot::Sender<()>>,
}

/// Stop taking snapshots; the reply comes once none is in flight, so the
/// final snapshot never overlaps a periodic one.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopSnapshots {
    /// Told when no snapshot is in flight any more.
    pub done: oneshot::Sender<()>,
}

impl Snapshotter {
    /// A snapshotter that considers writing every `interval`.
    pub fn new(
        registry: Arc<Registry>,
        store: Arc<SnapshotStore>,
        interval: Duration,
        policy: SnapshotPolicy,
        restored: RestoredFrom,
    ) -> Self {
        let written_changes = registry.change_count();
        let journal_bytes_at_last = registry.journal().stats().written_bytes();
        Self {
            registry,
            store,
            interval,
            policy,
            written_changes,
            last_bytes: restored.snapshot_bytes,
            carried_journal_bytes: restored.replayed_bytes,
            journal_bytes_at_last,
            busy: false,
            ticks: None,
            idle_waiters: Vec::new(),
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.busy || self.registry.change_count() == self.written_changes {
            return;
        }
        let journal_bytes = self.registry.journal().stats().written_bytes();
        let journal_since =
            (self.carried_journal_bytes + journal_bytes).saturating_sub(self.journal_bytes_at_last);
        if !self.policy.due(self.last_bytes, journal_since) {
            return;
        }
        self.busy = true;
        let (registry, store) = (Arc::clone(&self.registry), Arc::clone(&self.store));
        let started = std::time::Instant::now();
        let work = async move { take_snapshot(&registry, &store, false).await };
        ctx.spawn(work.into_actor(self).map(move |result, act, _| {
            act.busy = false;
            for waiter in act.idle_waiters.drain(..) {
                let _ = waiter.send(());
            }
            act.registry
                .journal()
                .snapshot_outcome(result.as_ref().err().map(|e| e.to_string()).as_deref());
            match result {
                Ok((covered, written)) => {
                    act.written_changes = covered;
                    act.last_bytes = Some(written.bytes);
                    act.carried_journal_bytes = 0;
                    act.journal_bytes_at_last = journal_bytes;
                    // The whole snapshot, not only its write: collecting from
                    // many actors can take longer than the disk.
                    log::info!(
                        "snapshot {} written: {} bytes in {} ms (of which encode + write {} ms)",
                        written.path.display(),
                        written.bytes,
                        started.elapsed().as_millis(),
                        written.duration.as_millis()
                    );
                }
                // Logged and retried next interval. With the journal on,
                // bookings go on meanwhile; without it they are refused.
                Err(e) => log::error!("snapshot failed, will retry: {e}"),
            }
        }));
    }
}

impl Actor for Snapshotter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.ticks = Some(ctx.run_interval(self.interval, Self::tick));
    }
}

impl Handler<StopSnapshots> for Snapshotter {
    type Result = ();

    fn handle(&mut self, msg: StopSnapshots, ctx: &mut Self::Context) {
        if let Some(ticks) = self.ticks.take() {
            ctx.cancel_future(ticks);
        }
        if self.busy {
            self.idle_waiters.push(msg.done);
        } else {
            let _ = msg.done.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SnapshotPolicy;

    const JOURNALLED: SnapshotPolicy = SnapshotPolicy {
        journal_percent: 100,
        journal_on: true,
    };

    #[test]
    fn the_first_snapshot_is_due_at_once() {
        assert!(JOURNALLED.due(None, 0));
    }

    #[test]
    fn a_journalled_snapshot_waits_for_the_journal_to_reach_the_percentage() {
        assert!(!JOURNALLED.due(Some(1_000), 999));
        assert!(JOURNALLED.due(Some(1_000), 1_000));
        let half = SnapshotPolicy {
            journal_percent: 50,
            ..JOURNALLED
        };
        assert!(!half.due(Some(1_000), 499));
        assert!(half.due(Some(1_000), 500));
        // No overflow at the extremes of both sizes.
        let most = SnapshotPolicy {
            journal_percent: 10_000,
            ..JOURNALLED
        };
        assert!(!most.due(Some(u64::MAX), u64::MAX));
        assert!(most.due(Some(1), u64::MAX));
    }

    #[test]
    fn zero_percent_or_no_journal_makes_every_change_due() {
        let every = SnapshotPolicy {
            journal_percent: 0,
            ..JOURNALLED
        };
        assert!(every.due(Some(u64::MAX), 0));
        let snapshot_only = SnapshotPolicy {
            journal_on: false,
            ..JOURNALLED
        };
        assert!(snapshot_only.due(Some(u64::MAX), 0));
    }
}
