//! Writes a snapshot every interval in which something changed.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use actix::{
    Actor, ActorFutureExt, AsyncContext, Context, Handler, Message, SpawnHandle, WrapFuture,
};
use tokio::sync::oneshot;

use super::registry::Registry;
use crate::domain::Timestamp;
use crate::persistence::journal::Lsn;
use crate::persistence::{ServiceSnapshot, SnapshotStore, WrittenSnapshot};

/// Takes one snapshot: collects state from the actors, waits until every
/// change in it is durable, then checkpoints it on a blocking thread (no
/// request thread waits on the disk): write, then release the journal
/// segments every retained snapshot covers. Returns the change count the
/// snapshot covers and what was written.
pub async fn take_snapshot(
    registry: &Registry,
    store: &Arc<SnapshotStore>,
) -> Result<(u64, WrittenSnapshot), String> {
    let started = std::time::Instant::now();
    let changes = registry.change_count();
    let journal = registry.journal();
    // Read before collecting: every record up to here was applied by its
    // actor before that actor hands over its state.
    let journal_lsn = journal.next_lsn().prev();
    let taken_at = Timestamp::now();
    let events = registry
        .collect()
        .await
        .map_err(|e| format!("collecting state: {e}"))?;
    let newest = events
        .iter()
        .map(|e| e.applied_lsn)
        .max()
        .unwrap_or(Lsn::ZERO);
    journal
        .wait_durable(newest)
        .await
        .map_err(|_| String::from("changes in it did not reach the journal"))?;
    // Read after collecting, so both lie beyond every id in `events`.
    let snapshot = ServiceSnapshot {
        taken_at,
        journal_lsn,
        next_event_id: registry.next_event_id(),
        next_booking_id: registry.next_booking_id(),
        events,
    };
    let writer = Arc::clone(store);
    let taken = tokio::task::spawn_blocking(move || {
        let written = writer.checkpoint(&snapshot).map_err(|e| e.to_string())?;
        Ok((changes, written))
    })
    .await
    .map_err(|e| format!("snapshot thread: {e}"))?;
    if let Ok((_, written)) = &taken {
        let stats = store.stats();
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        stats.last_micros.store(micros, Ordering::Relaxed);
        stats.last_bytes.store(written.bytes, Ordering::Relaxed);
        stats.written.fetch_add(1, Ordering::Relaxed);
    }
    taken
}

/// The periodic snapshot task.
pub struct Snapshotter {
    /// Where the state comes from.
    registry: Arc<Registry>,
    /// Where it goes.
    store: Arc<SnapshotStore>,
    /// Time between attempts.
    interval: Duration,
    /// The change count the newest snapshot covers.
    written_changes: u64,
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
    pub fn new(registry: Arc<Registry>, store: Arc<SnapshotStore>, interval: Duration) -> Self {
        let written_changes = registry.change_count();
        Self {
            registry,
            store,
            interval,
            written_changes,
            busy: false,
            ticks: None,
            idle_waiters: Vec::new(),
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.busy || self.registry.change_count() == self.written_changes {
            return;
        }
        self.busy = true;
        let (registry, store) = (Arc::clone(&self.registry), Arc::clone(&self.store));
        let started = std::time::Instant::now();
        let work = async move { take_snapshot(&registry, &store).await };
        ctx.spawn(work.into_actor(self).map(move |result, act, _| {
            act.busy = false;
            for waiter in act.idle_waiters.drain(..) {
                let _ = waiter.send(());
            }
            act.registry
                .journal()
                .snapshot_outcome(result.as_ref().err().map(String::as_str));
            match result {
                Ok((covered, written)) => {
                    act.written_changes = covered;
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
