//! The seam between deciding a change and making it durable.
//!
//! An event's actor decides a change, applies it, and hands it to a
//! [`ChangeLog`]; the answer goes out once the log says the change is
//! durable. Until then the actor keeps the change's undo, and when the log
//! starts a new epoch (it lost changes it had taken: a disk fault today, a
//! lost leadership in a cluster) the actor undoes every change not yet
//! durable, newest first. The local [`Journal`] is the one implementation
//! today; a replicated log, where "durable" means "committed by a
//! majority", is meant to be the second. Changes an actor did not decide
//! (replay at start today, a follower's tomorrow) go through the same
//! `Event::apply` that the live operations use.

use tokio::sync::watch;

use crate::durable_waiters::{verdict, DurableWaiters, Filed};
use crate::journal::{Journal, JournalState, Lsn, Record, Refused};

/// Where changes become durable, in the order they were handed over.
pub trait ChangeLog: Send + Sync {
    /// Hands `record` over and returns its LSN, unless the log refuses
    /// changes now or has started a new epoch since `epoch` (the caller
    /// must undo first). Never blocks.
    fn submit(&self, record: Record, epoch: u64) -> Result<Lsn, Refused>;

    /// The LSN the next record will get.
    fn next_lsn(&self) -> Lsn;

    /// What is durable, the epoch, and whether changes are refused now.
    fn state(&self) -> watch::Ref<'_, JournalState>;

    /// Every change of [`Self::state`] from now on.
    fn watch(&self) -> watch::Receiver<JournalState>;

    /// The id a live stream gives event `event`'s state as of this log's
    /// `lsn` (durable). A single node's LSN; a cluster node's change
    /// index, the same on every node for the same state.
    fn live_id(&self, event: boxoffice_domain::EventId, lsn: Lsn) -> u64 {
        let _ = event;
        lsn.get()
    }

    /// The answers waiting for their LSN. Whoever changes [`Self::state`]
    /// wakes them after (see [`DurableWaiters`]).
    fn waiters(&self) -> &DurableWaiters;
}

impl ChangeLog for Journal {
    fn submit(&self, record: Record, epoch: u64) -> Result<Lsn, Refused> {
        Journal::submit(self, record, epoch)
    }

    fn next_lsn(&self) -> Lsn {
        Journal::next_lsn(self)
    }

    fn state(&self) -> watch::Ref<'_, JournalState> {
        Journal::state(self)
    }

    fn watch(&self) -> watch::Receiver<JournalState> {
        Journal::watch(self)
    }

    fn waiters(&self) -> &DurableWaiters {
        Journal::waiters(self)
    }
}

/// Waits until `lsn` is durable in `log`; `Err` if it never will be.
/// [`Lsn::ZERO`] (a read that follows no change) returns at once.
pub async fn wait_durable(log: &(impl ChangeLog + ?Sized), lsn: Lsn) -> Result<(), Refused> {
    if lsn == Lsn::ZERO {
        return Ok(());
    }
    // Most answers are already durable when asked (reads, and every change
    // once its batch is synced): nothing to file or subscribe.
    if let Some(done) = verdict(&log.state(), lsn) {
        return done;
    }
    let mut filed = Filed::new(log.waiters(), lsn);
    std::future::poll_fn(|cx| filed.poll(cx.waker(), || verdict(&log.state(), lsn))).await
}
