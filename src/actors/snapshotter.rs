//! Writes a snapshot every interval in which something changed.

use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, ActorFutureExt, AsyncContext, Context, WrapFuture};

use super::registry::Registry;
use crate::persistence::{SnapshotStore, WrittenSnapshot};

/// Takes one snapshot: collects state from the actors, then encodes and
/// writes it on a blocking thread so no request thread waits on the disk.
/// Returns the change count the snapshot covers and what was written.
pub async fn take_snapshot(
    registry: &Registry,
    store: &Arc<SnapshotStore>,
) -> Result<(u64, WrittenSnapshot), String> {
    let covered = registry.change_count();
    let snapshot = registry
        .snapshot()
        .await
        .map_err(|e| format!("collecting state: {e}"))?;
    let store = Arc::clone(store);
    let written = tokio::task::spawn_blocking(move || store.write(&snapshot))
        .await
        .map_err(|e| format!("snapshot thread: {e}"))?
        .map_err(|e| e.to_string())?;
    Ok((covered, written))
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
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.busy || self.registry.change_count() == self.written_changes {
            return;
        }
        self.busy = true;
        let (registry, store) = (Arc::clone(&self.registry), Arc::clone(&self.store));
        let work = async move { take_snapshot(&registry, &store).await };
        ctx.spawn(work.into_actor(self).map(|result, act, _| {
            act.busy = false;
            match result {
                Ok((covered, written)) => {
                    act.written_changes = covered;
                    log::info!(
                        "snapshot {} written: {} bytes in {} ms",
                        written.path.display(),
                        written.bytes,
                        written.duration.as_millis()
                    );
                }
                // Logged and retried next interval; bookings go on meanwhile.
                Err(e) => log::error!("snapshot failed, will retry: {e}"),
            }
        }));
    }
}

impl Actor for Snapshotter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.interval, Self::tick);
    }
}
