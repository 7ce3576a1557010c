//! Confirming a leadership with a majority, many askers per round.
//!
//! An answer decided on a leader's state without a commit of its own (a
//! repeated booking, a 404, a 409, `GET /leader`) may go out only once a
//! majority has acknowledged the leadership after the decision: Raft's
//! read index (openraft's `get_read_log_id`, a heartbeat round). Each
//! round opens a connection to every peer, so askers share rounds: an
//! asker joins the next round to start, never one already under way (its
//! heartbeats were sent before the asker's decision and prove nothing
//! about it). One round runs at a time; a round serves everyone who asked
//! before it started.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// One confirmation round: true when a majority acknowledged.
pub type Round = Box<dyn Fn() -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

/// Rounds shared by the askers that arrive while one runs.
pub struct Rounds {
    round: Round,
    runtime: tokio::runtime::Handle,
    state: Mutex<Waiting>,
}

#[derive(Default)]
struct Waiting {
    /// Whether a round is running (its task then starts the next).
    running: bool,
    /// Askers for the next round.
    next: Vec<oneshot::Sender<bool>>,
}

impl Rounds {
    /// Rounds of `round`, run on `runtime`.
    pub fn new(round: Round, runtime: tokio::runtime::Handle) -> Arc<Self> {
        Arc::new(Self {
            round,
            runtime,
            state: Mutex::new(Waiting::default()),
        })
    }

    /// Resolves to whether a round that started after this call confirmed
    /// the leadership.
    pub fn confirm(self: &Arc<Self>) -> impl Future<Output = bool> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.next.push(tx);
            !std::mem::replace(&mut state.running, true)
        };
        if start {
            self.runtime.spawn(Arc::clone(self).run());
        }
        async move { rx.await.unwrap_or(false) }
    }

    async fn run(self: Arc<Self>) {
        loop {
            let askers = {
                let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                if state.next.is_empty() {
                    state.running = false;
                    return;
                }
                std::mem::take(&mut state.next)
            };
            let confirmed = (self.round)().await;
            for asker in askers {
                let _ = asker.send(confirmed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    /// Rounds that count themselves and take `delay`, answering `verdict`.
    fn counted(delay: Duration, verdict: bool) -> (Arc<Rounds>, Arc<AtomicU64>) {
        let count = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&count);
        let round: Round = Box::new(move || {
            seen.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                verdict
            })
        });
        (Rounds::new(round, tokio::runtime::Handle::current()), count)
    }

    #[tokio::test(start_paused = true)]
    async fn askers_during_a_round_share_the_next_one() {
        let (rounds, count) = counted(Duration::from_millis(10), true);
        let first = tokio::spawn(rounds.confirm());
        tokio::task::yield_now().await;
        // These ask while the first round runs: they must not be answered
        // by it, and they share one round after it.
        let later: Vec<_> = (0..50).map(|_| tokio::spawn(rounds.confirm())).collect();
        assert!(first.await.expect("first"));
        for asker in later {
            assert!(asker.await.expect("later"));
        }
        assert_eq!(
            count.load(Ordering::SeqCst),
            2,
            "one round each for the two groups"
        );
        // Idle again: a new asker starts a round of its own.
        assert!(rounds.confirm().await);
        assert_eq!(count.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_round_answers_its_askers_false() {
        let (rounds, _) = counted(Duration::from_millis(10), false);
        let askers: Vec<_> = (0..3).map(|_| tokio::spawn(rounds.confirm())).collect();
        for asker in askers {
            assert!(!asker.await.expect("asker"));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_asker_that_goes_away_does_not_stop_the_rounds() {
        let (rounds, count) = counted(Duration::from_millis(10), true);
        drop(rounds.confirm());
        let kept = rounds.confirm();
        assert!(kept.await);
        assert!(count.load(Ordering::SeqCst) >= 1);
    }
}
