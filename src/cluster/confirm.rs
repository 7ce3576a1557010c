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
//!
//! A round is given until its bound to confirm, attempt after attempt
//! ([`confirm_within`]): openraft 0.9 gives each heartbeat of a read-index
//! attempt `heartbeat_interval` to be answered (its replication deadline)
//! and fails the attempt at the first miss. A leader whose followers
//! answer in 150 ms (a busy disk's fsync, a starved debug build) has a
//! majority within the election timeout the contract measures all the
//! same; a single attempt called it deposed, `/leader` said 503 and
//! HAProxy took a working leader out (stress run 9, round 5).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{CheckIsLeaderError, RaftError};
use openraft::Raft;
use tokio::sync::oneshot;

use crate::persistence::raft::TypeConfig;

/// One confirmation round: true when a majority acknowledged.
pub type Round = Box<dyn Fn() -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

/// What one attempt at confirming a leadership found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// A majority acknowledged it.
    Confirmed,
    /// This node does not lead (any more): no later attempt can confirm.
    NotLeader,
    /// Not enough acknowledgements in time: another attempt may do better.
    Missed,
}

/// The pause between two attempts, so that one failing at once (no
/// connection to a peer) is not repeated in a spin.
const RETRY_PAUSE: Duration = Duration::from_millis(10);

/// Attempts until one confirms, one finds this node not leading, or
/// `bound` has passed since the call (then false). Every attempt starts
/// after the call, so a confirmation proves a majority after it.
pub async fn confirm_within<A, F>(bound: Duration, mut attempt: A) -> bool
where
    A: FnMut() -> F,
    F: Future<Output = Attempt>,
{
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        match tokio::time::timeout_at(deadline, attempt()).await {
            Ok(Attempt::Confirmed) => return true,
            Ok(Attempt::NotLeader) | Err(_) => return false,
            Ok(Attempt::Missed) => {}
        }
        if tokio::time::Instant::now() + RETRY_PAUSE >= deadline {
            return false;
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// Rounds of openraft's read index on `raft`, each attempted until
/// `bound` ([`confirm_within`]).
pub fn read_index_rounds(
    raft: Raft<TypeConfig>,
    bound: Duration,
    runtime: tokio::runtime::Handle,
) -> Arc<Rounds> {
    let round: Round = Box::new(move || {
        let raft = raft.clone();
        Box::pin(async move {
            confirm_within(bound, || {
                let raft = raft.clone();
                async move {
                    match raft.get_read_log_id().await {
                        Ok(_) => Attempt::Confirmed,
                        Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_))) => {
                            Attempt::Missed
                        }
                        Err(_) => Attempt::NotLeader,
                    }
                }
            })
            .await
        })
    });
    Rounds::new(round, runtime)
}

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

    /// Attempts that answer `outcomes` in turn, each after `delay`.
    async fn attempts(outcomes: Vec<Attempt>, delay: Duration, bound: Duration) -> (bool, usize) {
        let made = std::sync::atomic::AtomicUsize::new(0);
        let confirmed = confirm_within(bound, || {
            let n = made.fetch_add(1, Ordering::SeqCst);
            let outcome = outcomes.get(n).copied().unwrap_or(Attempt::Missed);
            async move {
                tokio::time::sleep(delay).await;
                outcome
            }
        })
        .await;
        (confirmed, made.load(Ordering::SeqCst))
    }

    #[tokio::test(start_paused = true)]
    async fn missed_attempts_are_made_again_until_the_bound() {
        use Attempt::*;
        let ms = Duration::from_millis;
        // Two slow heartbeat rounds, then a majority: the leader it is.
        assert_eq!(
            attempts(vec![Missed, Missed, Confirmed], ms(100), ms(1_000)).await,
            (true, 3)
        );
        // A node that does not lead is told so at once.
        assert_eq!(
            attempts(vec![Missed, NotLeader, Confirmed], ms(100), ms(1_000)).await,
            (false, 2)
        );
        // Never a majority: false once the bound has passed, not before.
        let started = tokio::time::Instant::now();
        let (confirmed, made) = attempts(vec![], ms(100), ms(1_000)).await;
        assert!(!confirmed);
        assert_eq!(started.elapsed(), ms(1_000));
        assert!((8..=10).contains(&made), "{made} attempts of 110 ms in 1 s");
        // An attempt still running at the bound is not waited for.
        let started = tokio::time::Instant::now();
        assert_eq!(
            attempts(vec![Confirmed], ms(5_000), ms(1_000)).await,
            (false, 1)
        );
        assert_eq!(started.elapsed(), ms(1_000));
    }
}
