//! Every peer's clock, read over the peer connection four times a second,
//! and what the readings decide for this node: whether its clock is too
//! far from the cluster's to lead (`clock_offset.rs`), and whether it
//! reaches a majority of the voters, without which it does not campaign
//! (openraft 0.9 has no Pre-Vote: a follower cut off would raise its term
//! with each election and depose a healthy leader on its return).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::Raft;
use tokio::sync::futures::Notified;
use tokio::sync::Notify;

use super::clock_offset::{Offsets, Verdict};
use super::network;
use crate::persistence::raft::{NodeId, TypeConfig};

/// How often each peer's clock is read (which also tells whether it is
/// reached).
const READ_INTERVAL: Duration = Duration::from_millis(250);
/// How long a reading may take (a slower peer is skipped this time).
const READ_TIMEOUT: Duration = Duration::from_millis(400);
/// A peer counts as reached while its last reading is this recent. With
/// the interval and timeout above, a node cut off knows it within about
/// 1.45 s, before the earliest election it could start (1.5 x the
/// election timeout after the last heartbeat at the default 1,000 ms).
const REACH_WINDOW: Duration = Duration::from_millis(800);

/// What the readings say about this node.
pub struct PeerWatch {
    /// The peers' clocks as last read.
    offsets: Mutex<Offsets>,
    /// This node's clock minus the cluster's, in ms (for `/metrics`).
    offset_ms: AtomicI64,
    /// Whether that is over `cluster.max_clock_offset_ms`: no leadership.
    too_far: AtomicBool,
    /// Wakes the leadership watcher when `too_far` changes.
    changed: Notify,
    /// Whether this node reaches a majority of the voters (itself
    /// included): it campaigns only then.
    reaches_majority: AtomicBool,
}

impl Default for PeerWatch {
    fn default() -> Self {
        Self {
            offsets: Mutex::new(Offsets::default()),
            offset_ms: AtomicI64::new(0),
            too_far: AtomicBool::new(false),
            changed: Notify::new(),
            // Until the first readings: openraft's default, elections on.
            reaches_majority: AtomicBool::new(true),
        }
    }
}

impl PeerWatch {
    /// This node's clock minus the cluster's, in ms.
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    /// Whether this node's clock is too far from the cluster's to lead.
    pub fn too_far(&self) -> bool {
        self.too_far.load(Ordering::Relaxed)
    }

    /// Resolves at the next change of [`Self::too_far`] (made before the
    /// state it guards is read, so no change is missed).
    pub fn changed(&self) -> Notified<'_> {
        self.changed.notified()
    }

    /// Why this node must not lead now, for `GET /health`.
    pub fn clock_fault(&self, max_ms: u64) -> Option<String> {
        self.too_far().then(|| {
            format!(
                "this node's clock is {} ms from the cluster's, over cluster.max_clock_offset_ms ({max_ms}): it does not lead until its clock is set right",
                self.offset_ms()
            )
        })
    }

    /// Takes a new reading of this node's clock against the cluster's: over
    /// the limit it stops campaigning and sending heartbeats (so that the
    /// others elect a leader if it led) and the leadership watcher ends its
    /// leadership; back within, it may lead again.
    fn judge_clock(&self, verdict: Verdict, raft: &Raft<TypeConfig>, me: NodeId, max_ms: u64) {
        self.offset_ms.store(verdict.offset_ms, Ordering::Relaxed);
        let was = self.too_far.swap(verdict.too_far, Ordering::Relaxed);
        if was == verdict.too_far {
            return;
        }
        if verdict.too_far {
            log::error!(
                "node {me}: this node's clock is {} ms from the cluster's, over cluster.max_clock_offset_ms ({max_ms} ms): it neither leads nor campaigns until its clock is set right",
                verdict.offset_ms
            );
        } else {
            log::info!(
                "node {me}: this node's clock is back within {max_ms} ms of the cluster's ({} ms); it may lead again",
                verdict.offset_ms
            );
        }
        let runtime = raft.runtime_config();
        runtime.elect(!verdict.too_far && self.reaches_majority.load(Ordering::Relaxed));
        runtime.heartbeat(!verdict.too_far);
        self.changed.notify_waiters();
    }

    /// Takes a new count of the voters this node reaches (itself included)
    /// out of `voters`: with fewer than a majority it could not win an
    /// election, and each one it started would only raise its term (issue
    /// 35, finding 4). It campaigns again once it reaches a majority.
    fn judge_reach(&self, reached: usize, voters: usize, raft: &Raft<TypeConfig>, me: NodeId) {
        let majority = reached > voters / 2;
        let was = self.reaches_majority.swap(majority, Ordering::Relaxed);
        if was == majority {
            return;
        }
        if majority {
            log::info!("node {me}: reaches {reached} of {voters} voters; it may campaign again");
        } else {
            log::warn!(
                "node {me}: reaches {reached} of {voters} voters, no majority: it does not campaign (an election it cannot win would only raise its term)"
            );
        }
        raft.runtime_config().elect(majority && !self.too_far());
    }
}

/// Reads every peer's clock each [`READ_INTERVAL`] and judges node `me`
/// (its openraft node `raft`, peer messages signed with `secret`) by the
/// readings into `watch`, for as long as the node runs.
pub async fn watch(
    watch: Arc<PeerWatch>,
    raft: Raft<TypeConfig>,
    me: NodeId,
    secret: network::SecretDigest,
    max_ms: u64,
) {
    let mut streams: BTreeMap<NodeId, Option<tokio::net::TcpStream>> = BTreeMap::new();
    let mut tick = tokio::time::interval(READ_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (peers, voters): (Vec<(NodeId, String)>, BTreeSet<NodeId>) = {
            let metrics = raft.metrics().borrow().clone();
            let membership = metrics.membership_config.membership();
            let peers = membership
                .nodes()
                .filter(|(id, _)| **id != me)
                .map(|(id, member)| (*id, member.peer.clone()))
                .collect();
            (peers, membership.voter_ids().collect())
        };
        streams.retain(|id, _| peers.iter().any(|(peer, _)| peer == id));
        // Every peer at once: one that does not answer delays no other.
        let readings = peers.iter().map(|(id, address)| {
            let mut stream = streams.remove(id).flatten();
            async move {
                let read =
                    network::read_peer_clock(&mut stream, address, &secret, READ_TIMEOUT).await;
                (*id, stream, read)
            }
        });
        for (id, stream, read) in futures_util::future::join_all(readings).await {
            streams.insert(id, stream);
            match read {
                Ok((sent, theirs, round_trip)) => watch
                    .offsets
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .record(id, sent, theirs, round_trip, Instant::now()),
                Err(e) => log::debug!("node {me}: reading node {id}'s clock: {e}"),
            }
        }
        let now = Instant::now();
        let (verdict, reached_voters) = {
            let mut offsets = watch.offsets.lock().unwrap_or_else(|p| p.into_inner());
            offsets.retain(|id| peers.iter().any(|(peer, _)| *peer == id));
            (
                offsets.verdict(now, max_ms),
                offsets.reached(now, REACH_WINDOW, |id| voters.contains(&id)),
            )
        };
        watch.judge_clock(verdict, &raft, me, max_ms);
        if voters.contains(&me) {
            watch.judge_reach(1 + reached_voters, voters.len(), &raft, me);
        }
    }
}
