//! A change log for tests that is not the journal: a change is durable only
//! when the test says so, and the log can start a new epoch (as a leader
//! that lost its leadership would), abandoning what it had taken. With it
//! a test holds a change pending as long as it likes, as a cluster leader
//! cut off from its majority does.

use std::sync::Mutex;

use tokio::sync::watch;

use crate::persistence::change_log::ChangeLog;
use crate::persistence::durable_waiters::DurableWaiters;
use crate::persistence::journal::{JournalState, Lsn, Record, Refused};

/// See the module's doc.
pub struct ScriptedLog {
    /// The LSN handed out last.
    last: Mutex<u64>,
    state: watch::Sender<JournalState>,
    waiters: DurableWaiters,
}

impl ScriptedLog {
    /// A log whose changes up to `lsn` are durable, and that hands out the
    /// LSNs after it.
    pub fn durable_through(lsn: Lsn) -> Self {
        Self {
            last: Mutex::new(lsn.get()),
            state: watch::Sender::new(JournalState {
                durable: lsn,
                ..JournalState::default()
            }),
            waiters: DurableWaiters::default(),
        }
    }

    /// Makes everything up to `lsn` durable.
    pub fn make_durable(&self, lsn: Lsn) {
        self.state.send_modify(|s| s.durable = s.durable.max(lsn));
        self.waiters.wake_all();
    }

    /// Starts a new epoch in which `lost` will never be durable.
    pub fn lose(&self, lost: Lsn) {
        self.state.send_modify(|s| {
            s.epoch += 1;
            s.failed.push(lost..=lost);
        });
        self.waiters.wake_all();
    }
}

impl ChangeLog for ScriptedLog {
    fn submit(&self, _: Record, epoch: u64) -> Result<Lsn, Refused> {
        if epoch != self.state.borrow().epoch {
            return Err(Refused);
        }
        let mut last = self.last.lock().map_err(|_| Refused)?;
        *last += 1;
        Ok(Lsn::new(*last))
    }

    fn next_lsn(&self) -> Lsn {
        Lsn::new(self.last.lock().map_or(0, |last| *last) + 1)
    }

    fn state(&self) -> watch::Ref<'_, JournalState> {
        self.state.borrow()
    }

    fn watch(&self) -> watch::Receiver<JournalState> {
        self.state.subscribe()
    }

    fn waiters(&self) -> &DurableWaiters {
        &self.waiters
    }
}
