//! Answers waiting for their change to become durable, filed by LSN.
//!
//! The journal's state is also published on a `watch` channel, but every
//! publish there wakes every subscriber: with group commit, a batch's sync
//! woke the answers it covered and, for nothing, those already queued for
//! the next batch, on both workers. Filed by LSN, a batch wakes exactly the
//! answers it made durable; a fault or an abandoned range wakes all, and
//! each looks at the state again.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::task::{Poll, Waker};

use super::{JournalState, Lsn, Refused};

/// The waiting answers of one log.
#[derive(Debug, Default)]
pub struct DurableWaiters {
    list: Mutex<WaitList>,
}

#[derive(Debug, Default)]
struct WaitList {
    /// Tells apart waiters on one LSN (a change and reads that follow it).
    next_ticket: u64,
    by_lsn: BTreeMap<(Lsn, u64), Waker>,
}

impl DurableWaiters {
    fn list(&self) -> std::sync::MutexGuard<'_, WaitList> {
        self.list.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Files `waker` under `lsn`, or refreshes it if `ticket` is filed.
    fn file(&self, lsn: Lsn, ticket: &mut Option<u64>, waker: &Waker) {
        let mut list = self.list();
        if let Some(filed) = ticket.and_then(|t| list.by_lsn.get_mut(&(lsn, t))) {
            if !filed.will_wake(waker) {
                filed.clone_from(waker);
            }
            return;
        }
        let t = list.next_ticket;
        list.next_ticket += 1;
        list.by_lsn.insert((lsn, t), waker.clone());
        *ticket = Some(t);
    }

    fn withdraw(&self, lsn: Lsn, ticket: u64) {
        self.list().by_lsn.remove(&(lsn, ticket));
    }

    /// Wakes every answer at or below `durable`. Call after publishing it.
    pub fn wake_through(&self, durable: Lsn) {
        let Some(after) = durable.get().checked_add(1) else {
            return self.wake_all();
        };
        let woken = {
            let mut list = self.list();
            let later = list.by_lsn.split_off(&(Lsn::new(after), 0));
            std::mem::replace(&mut list.by_lsn, later)
        };
        // Outside the lock: a waker may run its task's bookkeeping.
        woken.into_values().for_each(Waker::wake);
    }

    /// Wakes every answer: the state changed in a way other than a higher
    /// durable mark (a fault, an abandoned range). Call after publishing it.
    pub fn wake_all(&self) {
        let woken = std::mem::take(&mut self.list().by_lsn);
        woken.into_values().for_each(Waker::wake);
    }

    /// How many answers wait now.
    pub fn len(&self) -> usize {
        self.list().by_lsn.len()
    }

    /// Whether no answer waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The answer for `lsn` once `state` settles it.
pub(crate) fn verdict(state: &JournalState, lsn: Lsn) -> Option<Result<(), Refused>> {
    if state.is_durable(lsn) {
        Some(Ok(()))
    } else if state.has_failed(lsn) {
        Some(Err(Refused))
    } else {
        None
    }
}

/// One answer's place in [`DurableWaiters`], withdrawn when the wait ends
/// or is dropped (its client went away).
pub(crate) struct Filed<'a> {
    waiters: &'a DurableWaiters,
    lsn: Lsn,
    ticket: Option<u64>,
}

impl<'a> Filed<'a> {
    pub(crate) fn new(waiters: &'a DurableWaiters, lsn: Lsn) -> Self {
        Self {
            waiters,
            lsn,
            ticket: None,
        }
    }

    /// One poll of the wait: settled by `settle` (which reads the
    /// published state), else filed with `waker` and asked once more, so a
    /// publish between the first look and the filing is not missed.
    pub(crate) fn poll(
        &mut self,
        waker: &Waker,
        settle: impl Fn() -> Option<Result<(), Refused>>,
    ) -> Poll<Result<(), Refused>> {
        if let Some(done) = settle() {
            return Poll::Ready(done);
        }
        self.waiters.file(self.lsn, &mut self.ticket, waker);
        match settle() {
            Some(done) => Poll::Ready(done),
            None => Poll::Pending,
        }
    }
}

impl Drop for Filed<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket {
            self.waiters.withdraw(self.lsn, ticket);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    /// Counts its wake-ups.
    #[derive(Default)]
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn pending(waiters: &DurableWaiters, lsn: u64) -> (Filed<'_>, Arc<Counter>) {
        let counter = Arc::new(Counter::default());
        let mut filed = Filed::new(waiters, Lsn::new(lsn));
        let waker = Waker::from(Arc::clone(&counter));
        assert!(filed.poll(&waker, || None).is_pending());
        (filed, counter)
    }

    #[test]
    fn a_batch_wakes_exactly_the_answers_it_made_durable() {
        let waiters = DurableWaiters::default();
        let filed: Vec<_> = (1..=6).map(|lsn| pending(&waiters, lsn)).collect();
        // A read that follows change 3 waits on the same LSN.
        let (_read, read_counter) = pending(&waiters, 3);
        waiters.wake_through(Lsn::new(3));
        let woken: Vec<usize> = filed
            .iter()
            .map(|(_, c)| c.0.load(Ordering::SeqCst))
            .collect();
        assert_eq!(woken, [1, 1, 1, 0, 0, 0]);
        assert_eq!(read_counter.0.load(Ordering::SeqCst), 1);
        assert_eq!(waiters.len(), 3);
        waiters.wake_through(Lsn::new(5));
        assert_eq!(waiters.len(), 1);
        waiters.wake_all();
        assert!(waiters.is_empty());
        let total: usize = filed.iter().map(|(_, c)| c.0.load(Ordering::SeqCst)).sum();
        assert_eq!(total, 6, "each answer woken once");
    }

    #[test]
    fn the_highest_mark_wakes_everyone() {
        let waiters = DurableWaiters::default();
        let (_a, a) = pending(&waiters, u64::MAX);
        let (_b, b) = pending(&waiters, 7);
        waiters.wake_through(Lsn::MAX);
        assert_eq!(a.0.load(Ordering::SeqCst) + b.0.load(Ordering::SeqCst), 2);
        assert!(waiters.is_empty());
    }

    #[test]
    fn a_dropped_wait_leaves_nothing_filed_and_a_repoll_files_once() {
        let waiters = DurableWaiters::default();
        let (mut filed, counter) = pending(&waiters, 4);
        let waker = Waker::from(Arc::clone(&counter));
        assert!(filed.poll(&waker, || None).is_pending());
        assert_eq!(waiters.len(), 1, "polled twice, filed once");
        drop(filed);
        assert!(waiters.is_empty());
        waiters.wake_through(Lsn::new(10));
        assert_eq!(counter.0.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_publish_between_the_look_and_the_filing_is_not_missed() {
        let waiters = DurableWaiters::default();
        let mut filed = Filed::new(&waiters, Lsn::new(2));
        let waker = Waker::from(Arc::new(Counter::default()));
        // The first look sees nothing; the state is published (and the
        // wake-up done, to nobody) before the filing; the second look sees it.
        let looks = AtomicUsize::new(0);
        let settle = || (looks.fetch_add(1, Ordering::SeqCst) > 0).then_some(Ok(()));
        assert_eq!(filed.poll(&waker, settle), Poll::Ready(Ok(())));
    }

    #[test]
    fn the_verdict_follows_the_state() {
        let mut state = JournalState {
            durable: Lsn::new(5),
            ..JournalState::default()
        };
        assert_eq!(verdict(&state, Lsn::new(5)), Some(Ok(())));
        assert_eq!(verdict(&state, Lsn::new(6)), None);
        state.failed.push(Lsn::new(6)..=Lsn::new(8));
        assert_eq!(verdict(&state, Lsn::new(7)), Some(Err(Refused)));
        state.fault = Some(crate::log::Fault::Failing("disk".into()));
        assert_eq!(verdict(&state, Lsn::new(9)), Some(Err(Refused)));
    }
}
