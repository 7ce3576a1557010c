//! How far this node's wall clock is from its peers' (contract v4,
//! Corrections; CockroachDB's maximum clock offset is the model).
//!
//! Holds, hold lapses, offers, sales windows and the waiting room's pace
//! are all dated by the leader's wall clock: a leader whose clock is 30 s
//! ahead lapses a 60 s hold after 30 s. Each node measures every peer's
//! clock over the peer connection (`network.rs`, a `Clock` request: the
//! peer's time against the middle of the round trip, which bounds the error
//! by half the round trip) and takes its own offset from the cluster as the
//! median of the offsets of all members, itself counted as 0. A node
//! further than `cluster.max_clock_offset_ms` from that median neither
//! campaigns for nor keeps the leadership, logs an ERROR, and its
//! `GET /health` says why; the others, close to the median, are unaffected
//! by one wrong clock among three or two among five.
//!
//! The same readings tell which peers this node reaches ([`Offsets::reached`]):
//! a node that reaches no majority of the voters does not campaign
//! (`node.rs`, `judge_reach`), the effect of Raft's Pre-Vote, which
//! openraft 0.9 lacks.
//!
//! Plain logic with time passed in, so it is tested without clocks.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::persistence::raft::NodeId;

/// A measurement older than this is not used (the peer stopped answering).
pub const FRESH_FOR: Duration = Duration::from_secs(10);

/// One peer's clock as last measured.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Measured {
    /// The peer's clock minus this node's, in milliseconds.
    offset_ms: i64,
    /// When it was measured (this node's monotonic clock).
    at: Instant,
}

/// The peers' clocks as measured, and what they say about this node's.
#[derive(Debug, Default)]
pub struct Offsets {
    peers: BTreeMap<NodeId, Measured>,
}

/// What the measurements say about this node's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// This node's clock minus the cluster's median clock, in
    /// milliseconds (0 with no fresh measurement).
    pub offset_ms: i64,
    /// Whether that is over the limit: this node must not lead.
    pub too_far: bool,
}

impl Offsets {
    /// Records that `peer`'s clock read `peer_ms` when this node's wall
    /// clock read `sent_ms` as it sent the request and the answer came
    /// back `round_trip` later, at `now`.
    pub fn record(
        &mut self,
        peer: NodeId,
        sent_ms: i64,
        peer_ms: i64,
        round_trip: Duration,
        now: Instant,
    ) {
        let half = i64::try_from(round_trip.as_millis() / 2).unwrap_or(i64::MAX);
        let middle = sent_ms.saturating_add(half);
        self.peers.insert(
            peer,
            Measured {
                offset_ms: peer_ms.saturating_sub(middle),
                at: now,
            },
        );
    }

    /// Forgets peers that are no longer members.
    pub fn retain(&mut self, members: impl Fn(NodeId) -> bool) {
        self.peers.retain(|peer, _| members(*peer));
    }

    /// How many of the peers that `counted` answered a clock reading
    /// within `within` before `now`: the peers this node reaches.
    pub fn reached(
        &self,
        now: Instant,
        within: Duration,
        counted: impl Fn(NodeId) -> bool,
    ) -> usize {
        self.peers
            .iter()
            .filter(|(id, m)| counted(**id) && now.saturating_duration_since(m.at) <= within)
            .count()
    }

    /// This node's offset from the median of every member's clock, from
    /// the measurements fresh at `now`, against `max_ms`.
    pub fn verdict(&self, now: Instant, max_ms: u64) -> Verdict {
        let mut clocks: Vec<i64> = self
            .peers
            .values()
            .filter(|m| now.saturating_duration_since(m.at) <= FRESH_FOR)
            .map(|m| m.offset_ms)
            .collect();
        if clocks.is_empty() {
            return Verdict {
                offset_ms: 0,
                too_far: false,
            };
        }
        // This node's own clock, against itself.
        clocks.push(0);
        clocks.sort_unstable();
        // With an even count (a member unmeasured), the one nearer this
        // node's own: a lone measurement never condemns it by itself.
        let upper = clocks[clocks.len() / 2];
        let lower = clocks[(clocks.len() - 1) / 2];
        let median = if upper.unsigned_abs() <= lower.unsigned_abs() {
            upper
        } else {
            lower
        };
        let offset_ms = median.saturating_neg();
        Verdict {
            offset_ms,
            too_far: offset_ms.unsigned_abs() > max_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: u64 = 500;

    /// Offsets with each peer's clock this far from this node's.
    fn measured(peers: &[(NodeId, i64)], now: Instant) -> Offsets {
        let mut offsets = Offsets::default();
        for &(peer, offset) in peers {
            offsets.record(peer, 1_000_000, 1_000_000 + offset, Duration::ZERO, now);
        }
        offsets
    }

    #[test]
    fn a_node_thirty_seconds_ahead_of_two_peers_is_too_far() {
        let now = Instant::now();
        let ahead = measured(&[(2, -30_000), (3, -30_000)], now).verdict(now, MAX);
        assert_eq!(ahead.offset_ms, 30_000);
        assert!(ahead.too_far);
        // Its peers each see one wrong clock and one right one: fine.
        let peer = measured(&[(1, 30_000), (3, 0)], now).verdict(now, MAX);
        assert_eq!(peer.offset_ms, 0);
        assert!(!peer.too_far);
    }

    #[test]
    fn two_wrong_clocks_among_five_do_not_move_the_others() {
        let now = Instant::now();
        let right = measured(&[(1, 30_000), (2, -20_000), (4, 10), (5, -10)], now);
        assert!(!right.verdict(now, MAX).too_far);
        let wrong = measured(
            &[(2, -50_000), (3, -30_000), (4, -30_010), (5, -29_990)],
            now,
        );
        assert!(wrong.verdict(now, MAX).too_far);
    }

    #[test]
    fn within_the_limit_is_fine_and_the_limit_is_exclusive() {
        let now = Instant::now();
        let at = measured(&[(2, -500), (3, -500)], now).verdict(now, MAX);
        assert_eq!(at.offset_ms, 500);
        assert!(!at.too_far);
        assert!(
            measured(&[(2, -501), (3, -501)], now)
                .verdict(now, MAX)
                .too_far
        );
    }

    #[test]
    fn one_measured_peer_alone_never_condemns_a_node() {
        // The other peer unreachable: its own clock and the one peer's
        // disagree, and nothing says which is wrong.
        let now = Instant::now();
        let verdict = measured(&[(2, -30_000)], now).verdict(now, MAX);
        assert_eq!(verdict.offset_ms, 0);
        assert!(!verdict.too_far);
    }

    #[test]
    fn stale_measurements_and_former_members_are_not_counted() {
        let then = Instant::now();
        let mut offsets = measured(&[(2, -30_000), (3, -30_000)], then);
        let later = then + FRESH_FOR + Duration::from_secs(1);
        assert_eq!(
            offsets.verdict(later, MAX),
            Verdict {
                offset_ms: 0,
                too_far: false
            }
        );
        offsets.record(2, 0, -30_000, Duration::ZERO, later);
        offsets.record(3, 0, -30_000, Duration::ZERO, later);
        offsets.retain(|peer| peer == 2);
        assert!(!offsets.verdict(later, MAX).too_far, "one peer left");
    }

    #[test]
    fn a_peer_counts_as_reached_while_its_last_reading_is_recent() {
        let then = Instant::now();
        let offsets = measured(&[(2, 0), (3, 0)], then);
        let within = Duration::from_millis(800);
        let all = |_| true;
        assert_eq!(
            offsets.reached(then + Duration::from_millis(800), within, all),
            2
        );
        assert_eq!(
            offsets.reached(then + Duration::from_millis(801), within, all),
            0
        );
        assert_eq!(
            offsets.reached(then, within, |id| id == 3),
            1,
            "voters only"
        );
    }

    #[test]
    fn the_round_trip_s_middle_is_the_moment_compared() {
        let now = Instant::now();
        let mut offsets = Offsets::default();
        // Sent at 1,000, answered 200 ms later; the peer read 1,100: the
        // same clock as this node's at the middle of the trip.
        offsets.record(2, 1_000, 1_100, Duration::from_millis(200), now);
        offsets.record(3, 1_000, 1_100, Duration::from_millis(200), now);
        assert_eq!(offsets.verdict(now, MAX).offset_ms, 0);
    }
}
