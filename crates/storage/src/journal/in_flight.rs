//! Batches written and not yet durable, while two syncs may run at once.
//!
//! With `fsync = "always"` the writer hands a written batch's sync to a
//! helper thread and goes on gathering and writing the next batch; when
//! the helper is still busy, the writer syncs that batch itself. So two
//! syncs can be in flight, and a change that arrives during a sync no
//! longer waits for it to end before its own starts (on this machine's
//! disk, two concurrent `fdatasync`s complete 1.25-1.6 times as many a
//! second as one).
//!
//! A batch counts as durable only once its own sync and every earlier
//! batch's have succeeded, and batches are published in write order: after
//! a failed sync, a later sync that succeeds proves nothing about the
//! pages the failed one lost.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::{Journal, Lsn, Record};

/// One written batch.
pub(super) struct Written {
    /// Tells the batch's sync outcome where to go.
    pub id: u64,
    /// The segment's good length before the batch: where a repair cuts back to.
    pub base: u64,
    /// The LSN written before the batch.
    pub prev_last: Lsn,
    /// The batch's last LSN.
    pub last: Lsn,
    /// The last change feed index in the batch, if it holds any.
    pub last_change: Option<u64>,
    /// Its records, for the feed's followers once durable.
    pub kept: Vec<Record>,
    /// Whether its own sync succeeded.
    pub synced: bool,
}

#[derive(Default)]
struct State {
    /// Written and not yet published, oldest first.
    batches: VecDeque<Written>,
    /// The first failed sync since the last repair.
    failed: Option<io::Error>,
    /// The helper thread is syncing a batch.
    helper_busy: bool,
}

/// What the writer and its sync helper share.
pub(super) struct InFlight {
    state: Mutex<State>,
    /// Signalled when the helper finishes a sync.
    helper_done: Condvar,
    journal: Arc<Journal>,
}

/// Where a repair starts after a failure: the first batch that is not
/// durable (its base and the LSN before it).
pub(super) struct FirstLost {
    pub base: u64,
    pub prev_last: Lsn,
}

impl InFlight {
    pub(super) fn new(journal: Arc<Journal>) -> Self {
        Self {
            state: Mutex::default(),
            helper_done: Condvar::new(),
            journal,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes a written batch, before its sync starts.
    pub(super) fn push(&self, written: Written) {
        self.state().batches.push_back(written);
    }

    /// Whether any batch waits for its sync or its predecessors'.
    pub(super) fn is_empty(&self) -> bool {
        self.state().batches.is_empty()
    }

    /// Claims the helper for one sync, if it is free.
    pub(super) fn claim_helper(&self) -> bool {
        let mut state = self.state();
        !std::mem::replace(&mut state.helper_busy, true)
    }

    /// Gives back a claim that started no sync.
    pub(super) fn release_helper(&self) {
        self.state().helper_busy = false;
        self.helper_done.notify_all();
    }

    /// Records batch `id`'s sync outcome, then publishes, in write order,
    /// every batch whose sync and predecessors' syncs succeeded.
    pub(super) fn settle(&self, id: u64, outcome: io::Result<()>, by_helper: bool) {
        let mut state = self.state();
        match outcome {
            Ok(()) => {
                if let Some(batch) = state.batches.iter_mut().find(|b| b.id == id) {
                    batch.synced = true;
                }
            }
            Err(e) => {
                state.failed.get_or_insert(e);
            }
        }
        if by_helper {
            state.helper_busy = false;
            self.helper_done.notify_all();
        }
        if state.failed.is_some() {
            return;
        }
        // Published under the lock, so the two threads publish in order.
        while state.batches.front().is_some_and(|b| b.synced) {
            let Some(batch) = state.batches.pop_front() else {
                break;
            };
            // Before the items count as durable: a follower told of them
            // finds them here.
            if batch.last_change.is_some() {
                self.journal.recent.extend(batch.kept);
            }
            self.journal.publish_durable(batch.last, batch.last_change);
        }
    }

    /// Whether a sync failed since the last repair.
    pub(super) fn has_failed(&self) -> bool {
        self.state().failed.is_some()
    }

    /// Waits until the helper is idle, then forgets every batch not yet
    /// durable: the first of them (if any) and the failure (if any).
    pub(super) fn drain(&self) -> (Option<FirstLost>, Option<io::Error>) {
        let mut state = self.state();
        while state.helper_busy {
            state = self
                .helper_done
                .wait(state)
                .unwrap_or_else(|p| p.into_inner());
        }
        let first = state.batches.front().map(|b| FirstLost {
            base: b.base,
            prev_last: b.prev_last,
        });
        state.batches.clear();
        (first, state.failed.take())
    }

    /// Waits until the helper is idle.
    pub(super) fn wait_helper(&self) {
        let mut state = self.state();
        while state.helper_busy {
            state = self
                .helper_done
                .wait(state)
                .unwrap_or_else(|p| p.into_inner());
        }
    }
}
