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

use std::future::Future;
use std::pin::Pin;

use tokio::sync::watch;

use super::durable_waiters::{verdict, DurableWaiters, Filed};
use super::record::Record;
use super::{JournalState, Lsn, Refused};

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

    /// Resolves once this log's authority over the state it holds is
    /// confirmed for this moment. An answer to a change that the state
    /// decided without a change of its own (a repeated booking, a 404, a
    /// 409) goes out only after this: it has no commit of its own to
    /// confirm it. A single node's journal is always its own authority;
    /// a cluster leader may have been deposed without knowing it yet, and
    /// confirms its leadership with a majority (Raft's read index). `Err`
    /// when it cannot: not the leader, or no majority within its bound.
    fn confirm(&self) -> Confirming<'_> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// How long an answer may wait for its change to become durable before
    /// it is given up as unavailable (the change may still become durable
    /// after; its actor keeps it until the log says). `None`: as long as it
    /// takes (a single node's journal either syncs or faults).
    fn wait_bound(&self) -> Option<std::time::Duration> {
        None
    }
}

/// What [`ChangeLog::confirm`] returns.
pub type Confirming<'a> = Pin<Box<dyn Future<Output = Result<(), Refused>> + Send + 'a>>;

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
