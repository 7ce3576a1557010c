//! Starts this process's Raft node: the log store, the state machine, the
//! peer listener, and the two tasks that connect openraft to the change
//! log (the proposer, and the watcher that starts and ends leaderships).
//!
//! openraft runs on a tokio runtime of its own, on its own thread, so the
//! HTTP workers (where the event actors run) never run consensus work.

use std::collections::BTreeSet;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::network::RaftNetworkFactory;
use openraft::{ChangeMembers, Raft, ServerState};
use tokio::sync::mpsc;

use super::confirm::read_index_rounds;
use super::forward::{ForwardAnswer, Forwarded, LocalHttp};
use super::log::{ClusterLog, Queued};
use super::network::{self, ForwardFailed, Network};
use super::peer_watch::PeerWatch;
use super::settings::ClusterSettings;
use super::state_machine::StateMachine;
use crate::persistence::change_log::ChangeLog;
use crate::persistence::journal::Lsn;
use crate::persistence::raft::{
    LogStoreOptions, Member, NodeId, Proposal, RaftLogStore, TypeConfig,
};

/// Records one Raft entry carries at most.
const MAX_PROPOSAL_RECORDS: usize = 4_096;
/// Proposals handed to openraft and not yet committed, at most. openraft
/// appends and flushes each entry in turn, so handing it every record as
/// it comes made an entry (and a log flush) per booking: 2,559 bookings/s
/// on a one-node cluster against 26,168/s with the flush off. Holding
/// records while this many are in flight lets the queue fill, so one entry
/// carries what arrived during a commit.
const PROPOSALS_IN_FLIGHT: usize = 2;
/// How long a new leader waits to have applied what was committed before
/// it, before trying again.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(10);
/// A learner this close to the leader's last entry becomes a voter.
const CAUGHT_UP_ENTRIES: u64 = 64;
/// How long a learner may take to catch up before the leader stops waiting
/// to make it a voter (`PUT` the member again to wait again).
const PROMOTE_DEADLINE: Duration = Duration::from_secs(3_600);

/// Why a membership change was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipRefused {
    /// This node does not lead; the leader's client URL if known.
    NotLeader(Option<String>),
    /// It conflicts with the membership as it is (or with a change still
    /// in progress).
    Conflict(String),
    /// No such member.
    NotMember,
    /// The cluster cannot commit it now.
    Unavailable(String),
}

/// What the node needs of the service: applying committed changes and
/// waiting until every actor has.
pub trait Service: super::log::Applier {
    /// Resolves once every actor has handled every message sent to it
    /// before the call.
    fn barrier(self: Arc<Self>) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// The cluster families of `/metrics`; a single node is its own leader in
/// term 0, its positions those of its journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterGauges {
    /// Whether this node takes changes now.
    pub is_leader: bool,
    /// The Raft term it is in.
    pub term: u64,
    /// The newest index it knows committed.
    pub commit_index: u64,
    /// The newest index it applied.
    pub applied_index: u64,
    /// Leaders it has seen change since it started.
    pub leader_changes: u64,
    /// The index its newest Raft snapshot holds the state as of (0: none).
    pub snapshot_index: u64,
    /// The newest index dropped from its Raft log (0: none).
    pub purged_index: u64,
    /// Its wall clock minus the cluster's median clock, in milliseconds.
    pub clock_offset_ms: i64,
}

/// How often a change waiting for a leader looks again (besides each
/// change of openraft's metrics).
const ROUTE_POLL: Duration = Duration::from_millis(20);

/// Where a change sent to this node goes ([`ClusterNode::route_change`]).
#[derive(Debug, PartialEq, Eq)]
pub enum ChangeRoute {
    /// This node leads: it decides.
    Here,
    /// Another node leads: forward it to this peer listener.
    Leader(String),
    /// No leader known within the election timeout.
    Nobody,
}

/// A running cluster node.
pub struct ClusterNode {
    /// openraft's handle.
    pub raft: Raft<TypeConfig>,
    /// The change log the actors write to.
    pub log: Arc<ClusterLog>,
    /// The Raft log on disk.
    pub store: RaftLogStore,
    /// `[cluster]` as started.
    pub settings: ClusterSettings,
    /// Leaderships seen to change, for `/metrics`.
    pub leader_changes: AtomicU64,
    /// Answers changes that followers forward to this node while it leads.
    local_http: Arc<LocalHttp>,
    /// Its peers' clocks and whether it reaches them (`peer_watch.rs`).
    peers: Arc<PeerWatch>,
    runtime: tokio::runtime::Handle,
    /// The runtime a process's node runs on (see [`start`]), to end.
    own_runtime: std::sync::Mutex<Option<OwnRuntime>>,
}

/// The runtime of a process's node: ending it closes the peer listener and
/// every connection, so a stopped node neither holds its port nor answers
/// a peer; `shutdown` waits for its thread, so that they are closed when
/// it returns.
struct OwnRuntime {
    end: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl ClusterNode {
    /// The members as the cluster's configuration says, or as the
    /// settings list them before it is known.
    pub fn members(&self) -> Vec<(NodeId, Member, bool)> {
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        membership
            .nodes()
            .map(|(id, node)| (*id, node.clone(), voters.contains(id)))
            .collect()
    }

    /// The client URL of node `id`, if it is a member.
    pub fn http_of(&self, id: NodeId) -> Option<String> {
        self.member(id).map(|m| m.http)
    }

    /// Member `id`'s addresses: from the membership, else from
    /// `cluster.nodes` (before the cluster has formed).
    fn member(&self, id: NodeId) -> Option<Member> {
        let metrics = self.raft.metrics().borrow().clone();
        metrics
            .membership_config
            .membership()
            .get_node(&id)
            .cloned()
            .or_else(|| {
                self.settings
                    .nodes
                    .iter()
                    .find(|n| n.id == id)
                    .map(|n| Member {
                        peer: n.peer.clone(),
                        http: n.http.clone(),
                    })
            })
    }

    /// The leader's client URL, if a leader is known.
    pub fn leader_url(&self) -> Option<String> {
        let leader = self.raft.metrics().borrow().current_leader?;
        self.http_of(leader)
    }

    /// Where a change sent to this node goes: here while it leads; to the
    /// leader's peer listener when another node leads (unless it was
    /// forwarded here already: one hop at most); waiting up to the election
    /// timeout for either, then nowhere (`NOT_LEADER`).
    pub async fn route_change(&self, forwarded: bool) -> ChangeRoute {
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(self.settings.election_timeout_ms);
        let mut metrics = self.raft.metrics();
        loop {
            if self.log.leading().is_some() {
                return ChangeRoute::Here;
            }
            let leader = metrics.borrow_and_update().current_leader;
            if let Some(id) = leader.filter(|id| !forwarded && *id != self.log.node_id()) {
                if let Some(peer) = self.peer_of(id) {
                    return ChangeRoute::Leader(peer);
                }
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return ChangeRoute::Nobody;
            }
            // A leader becomes known through openraft's metrics, this
            // node's own leadership once it has caught up (not a metric):
            // look again at the next change or soon.
            let wait = (deadline - now).min(ROUTE_POLL);
            if let Ok(Err(_)) = tokio::time::timeout(wait, metrics.changed()).await {
                tokio::time::sleep(wait).await;
            }
        }
    }

    /// Sends a change to the leader whose peer listener is `peer`; its
    /// answer, within the bound of a commit plus a second.
    pub async fn forward(
        &self,
        peer: &str,
        request: Forwarded,
    ) -> Result<ForwardAnswer, ForwardFailed> {
        // The leader answers within its own bound on a commit; a second
        // more for the way there and back.
        let ttl = self.log.wait_bound().unwrap_or_default() + Duration::from_secs(1);
        network::forward(peer, &network::digest(&self.settings.secret), request, ttl).await
    }

    /// What answers forwarded changes here (its listener's address and
    /// token are set at start).
    pub fn local_http(&self) -> &LocalHttp {
        &self.local_http
    }

    /// The peer listener of member `id`.
    fn peer_of(&self, id: NodeId) -> Option<String> {
        self.member(id).map(|m| m.peer)
    }

    /// Why this node must not lead now, for `GET /health`: its clock is
    /// too far from the cluster's.
    pub fn clock_fault(&self) -> Option<String> {
        self.peers.clock_fault(self.settings.max_clock_offset_ms)
    }

    /// Whether this node takes changes and a majority acknowledges it now
    /// (a proxy's health check): a heartbeat round sent after the call and
    /// answered by a majority within half the election timeout. Not openraft's
    /// last acknowledgement time, which a paused or starved process still
    /// holds from before its pause: a leader that wakes after the cluster
    /// moved on answers false until a majority answers it again (it will
    /// not: they follow a newer term, and it steps down).
    pub async fn confirms_leadership(&self) -> bool {
        // The change log's own confirmation (leading, a round, still the
        // same term), bounded here by half the election timeout: time for
        // a few heartbeat attempts of a leader slowed by load, and a 503
        // (rather than no answer) for a proxy whose check times out at the
        // election timeout (deploy/cluster/haproxy.cfg: 1 s, the default).
        let bound = Duration::from_millis(self.settings.election_timeout_ms / 2);
        matches!(
            tokio::time::timeout(bound, self.log.confirm()).await,
            Ok(Ok(()))
        )
    }

    /// What `/metrics` shows of this node's place in the cluster.
    pub fn gauges(&self) -> ClusterGauges {
        let metrics = self.raft.metrics().borrow().clone();
        ClusterGauges {
            is_leader: self.log.leading().is_some(),
            term: metrics.current_term,
            snapshot_index: metrics.snapshot.map_or(0, |id| id.index),
            purged_index: metrics.purged.map_or(0, |id| id.index),
            clock_offset_ms: self.peers.offset_ms(),
            commit_index: self.store.committed().map_or(0, |c| c.index),
            applied_index: self.log.applied_index(),
            leader_changes: self.leader_changes.load(Ordering::Relaxed),
        }
    }

    /// Adds node `id` at `member` as a learner (once its membership is
    /// committed) and makes it a voter when it has caught up, in the
    /// background; whether it votes already. Adding a member again with
    /// the same addresses only waits for it again.
    pub async fn add_member(
        self: &Arc<Self>,
        id: NodeId,
        member: Member,
    ) -> Result<bool, MembershipRefused> {
        let members = self.members();
        if let Some((other, _, _)) = members.iter().find(|(m, existing, _)| {
            *m != id && (existing.peer == member.peer || existing.http == member.http)
        }) {
            return Err(MembershipRefused::Conflict(format!(
                "node {other} already has {} or {}: one address, one member",
                member.peer, member.http
            )));
        }
        let known = members.into_iter().find(|(m, _, _)| *m == id);
        match known {
            Some((_, existing, _)) if existing != member => {
                return Err(MembershipRefused::Conflict(format!(
                    "node {id} is a member at {} / {}; remove it first",
                    existing.peer, existing.http
                )))
            }
            Some((_, _, true)) => return Ok(true),
            Some(_) => {}
            None => {
                self.raft
                    .add_learner(id, member, false)
                    .await
                    .map_err(|e| self.refusal(e))?;
                log::info!("cluster: node {id} added as a learner");
            }
        }
        self.promote_when_caught_up(id);
        Ok(false)
    }

    /// Makes learner `id` a voter once its log is within
    /// [`CAUGHT_UP_ENTRIES`] of this leader's.
    fn promote_when_caught_up(self: &Arc<Self>, id: NodeId) {
        let node = Arc::clone(self);
        self.runtime.spawn(async move {
            let deadline = tokio::time::Instant::now() + PROMOTE_DEADLINE;
            let mut metrics = node.raft.metrics();
            loop {
                let (leads, caught_up) = {
                    let m = metrics.borrow_and_update();
                    let last = m.last_log_index.unwrap_or(0);
                    // None until the learner has acknowledged anything.
                    let matched = m
                        .replication
                        .as_ref()
                        .and_then(|r| r.get(&id).copied().flatten())
                        .map(|log_id| log_id.index);
                    (
                        m.state == ServerState::Leader,
                        matched.is_some_and(|index| index + CAUGHT_UP_ENTRIES >= last),
                    )
                };
                if !leads {
                    // The next leader takes the learner over when it starts.
                    log::info!("cluster: no longer leading; node {id} is left to the next leader");
                    return;
                }
                if tokio::time::Instant::now() > deadline {
                    log::warn!("cluster: node {id} did not catch up within {PROMOTE_DEADLINE:?} and was not made a voter; PUT it again");
                    return;
                }
                if caught_up {
                    break;
                }
                let _ = tokio::time::timeout(Duration::from_secs(1), metrics.changed()).await;
            }
            let voters: BTreeSet<NodeId> = [id].into();
            match node
                .raft
                .change_membership(ChangeMembers::AddVoterIds(voters), false)
                .await
            {
                Ok(_) => log::info!("cluster: node {id} caught up and votes"),
                Err(e) => log::warn!("cluster: node {id} was not made a voter: {e}"),
            }
        });
    }

    /// Removes member `id` (voter or learner); returns once the new
    /// membership is committed.
    pub async fn remove_member(&self, id: NodeId) -> Result<(), MembershipRefused> {
        let members = self.members();
        let Some(&(_, _, voter)) = members.iter().find(|(m, _, _)| *m == id) else {
            return Err(MembershipRefused::NotMember);
        };
        let change = if voter {
            if members.iter().filter(|(_, _, votes)| *votes).count() == 1 {
                return Err(MembershipRefused::Conflict(
                    "the last voter cannot be removed".into(),
                ));
            }
            ChangeMembers::RemoveVoters([id].into())
        } else {
            ChangeMembers::RemoveNodes([id].into())
        };
        self.raft
            .change_membership(change, false)
            .await
            .map_err(|e| self.refusal(e))?;
        log::info!("cluster: node {id} removed");
        Ok(())
    }

    fn refusal(&self, e: RaftError<NodeId, ClientWriteError<NodeId, Member>>) -> MembershipRefused {
        match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => {
                MembershipRefused::NotLeader(
                    forward
                        .leader_node
                        .map(|m| m.http)
                        .or_else(|| forward.leader_id.and_then(|l| self.http_of(l))),
                )
            }
            RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
                MembershipRefused::Conflict(e.to_string())
            }
            RaftError::Fatal(e) => MembershipRefused::Unavailable(e.to_string()),
        }
    }

    /// Stops openraft, the log's writer and, on a process's node, the
    /// runtime with the peer listener.
    pub fn shutdown(&self) {
        let raft = self.raft.clone();
        let (done, finished) = std::sync::mpsc::channel();
        self.runtime.spawn(async move {
            let _ = raft.shutdown().await;
            let _ = done.send(());
        });
        let _ = finished.recv_timeout(Duration::from_secs(5));
        self.store.close();
        self.log.close_feed();
        let own = self
            .own_runtime
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(OwnRuntime { end, thread }) = own {
            let _ = end.send(());
            // Its tasks, the peer listener among them, are dropped as the
            // runtime shuts down (bounded there by 5 s); a caller that
            // stops a node and binds its peer port at once must find it
            // free (a coverage run's slow build lost that race).
            if thread.join().is_err() {
                log::error!("the Raft node's runtime thread panicked while stopping");
            }
        }
    }
}

/// Starts the node of `settings` with its Raft log in `dir`.
pub fn start(
    settings: &ClusterSettings,
    options: LogStoreOptions,
    log: Arc<ClusterLog>,
    queue: mpsc::Receiver<Queued>,
    service: Arc<dyn Service>,
) -> io::Result<Arc<ClusterNode>> {
    let me = settings
        .me()
        .ok_or_else(|| io::Error::other("cluster.node_id is not among cluster.nodes"))?
        .clone();
    // Bound here, so a taken address fails the start, not a task later.
    let listener = std::net::TcpListener::bind(&me.peer)
        .map_err(|e| io::Error::new(e.kind(), format!("binding peer address {}: {e}", me.peer)))?;
    listener.set_nonblocking(true)?;
    let store = RaftLogStore::open(&options)?;
    let settings = settings.clone();
    let (started, result) = std::sync::mpsc::channel();
    let (end, ended) = tokio::sync::oneshot::channel::<()>();
    // The runtime is built and run on its own thread: the caller may be
    // inside another runtime (actix's), where blocking on one is refused.
    let thread = std::thread::Builder::new()
        .name("raft-runtime".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("raft")
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = started.send(Err(e));
                    return;
                }
            };
            let handle = runtime.handle().clone();
            let node = runtime.block_on(run_node(
                settings, listener, store, log, queue, service, handle,
            ));
            let ok = node.is_ok();
            let _ = started.send(node);
            if ok {
                // Until `shutdown`. The sender cannot drop before: the
                // node that holds it is held by this runtime's own tasks.
                runtime.block_on(async {
                    let _ = ended.await;
                });
            }
            // Tasks are dropped at once; only a blocking one is waited
            // for, and not past this.
            runtime.shutdown_timeout(Duration::from_secs(5));
        })?;
    let node = result
        .recv()
        .map_err(|_| io::Error::other("the Raft node's thread ended while starting"))??;
    *node
        .own_runtime
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(OwnRuntime { end, thread });
    Ok(node)
}

/// Builds openraft's node over TCP and starts its tasks and its peer
/// listener, on the node's runtime.
async fn run_node(
    settings: ClusterSettings,
    listener: std::net::TcpListener,
    store: RaftLogStore,
    log: Arc<ClusterLog>,
    queue: mpsc::Receiver<Queued>,
    service: Arc<dyn Service>,
    runtime: tokio::runtime::Handle,
) -> io::Result<Arc<ClusterNode>> {
    let secret = network::digest(&settings.secret);
    let node = assemble(
        settings,
        Network { secret },
        store,
        log,
        queue,
        service,
        runtime,
    )
    .await?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    tokio::spawn(network::serve(
        listener,
        node.raft.clone(),
        secret,
        Arc::clone(&node.local_http),
    ));
    tokio::spawn(super::peer_watch::watch(
        Arc::clone(&node.peers),
        node.raft.clone(),
        node.log.node_id(),
        network::digest(&node.settings.secret),
        node.settings.max_clock_offset_ms,
    ));
    Ok(node)
}

/// Builds openraft's node of `settings.node_id` over `network`, forms the
/// cluster if this is a new member of a new one, and starts the proposer
/// and the leadership watcher; on the current runtime. The process's node
/// and the simulation's (over a network it controls) are both built here.
pub(crate) async fn assemble<N: RaftNetworkFactory<TypeConfig>>(
    settings: ClusterSettings,
    network: N,
    store: RaftLogStore,
    log: Arc<ClusterLog>,
    queue: mpsc::Receiver<Queued>,
    service: Arc<dyn Service>,
    runtime: tokio::runtime::Handle,
) -> io::Result<Arc<ClusterNode>> {
    let config = settings.raft_config()?;
    let state_machine = StateMachine::open(Arc::clone(&log), store.dir())?;
    let raft = Raft::new(
        settings.node_id,
        Arc::new(config),
        network,
        store.clone(),
        state_machine,
    )
    .await
    .map_err(io::Error::other)?;
    if !settings.join {
        // Every listed node initialises with the same membership, so they
        // agree whatever order they start in; a node that already holds a
        // log (a restart) is initialised and skips this.
        if let Ok(false) = raft.is_initialized().await {
            if let Err(e) = raft.initialize(settings.members()).await {
                log::info!("cluster: initialise: {e}");
            }
        }
    }
    // An answer decided on this leader's state without a commit of its own
    // confirms the leadership first (ChangeLog::confirm): openraft's read
    // index, a heartbeat round a majority must acknowledge, attempted again
    // while its heartbeats miss openraft's per-message deadline, bounded
    // like every wait for a commit; askers share rounds (confirm.rs).
    let bound = Duration::from_millis(settings.election_timeout_ms.saturating_mul(2));
    let rounds = read_index_rounds(raft.clone(), bound, runtime.clone());
    // A change not committed within the same bound is answered 503 (the
    // contract's "within 2 x election_timeout_ms"): an isolated leader's
    // clients are not held until the partition heals.
    log.set_leadership(Box::new(move || Box::pin(rounds.confirm())), bound);
    let local_http = Arc::new(LocalHttp::new(bound + Duration::from_secs(1))?);
    let node = Arc::new(ClusterNode {
        raft: raft.clone(),
        log: Arc::clone(&log),
        store,
        settings,
        leader_changes: AtomicU64::new(0),
        local_http,
        peers: Arc::default(),
        runtime,
        own_runtime: std::sync::Mutex::new(None),
    });
    tokio::spawn(propose(raft, Arc::clone(&log), queue));
    tokio::spawn(watch_leadership(Arc::clone(&node), service));
    Ok(node)
}

/// Hands queued records to openraft in order, as few entries as possible,
/// without waiting for commits.
async fn propose(raft: Raft<TypeConfig>, log: Arc<ClusterLog>, mut queue: mpsc::Receiver<Queued>) {
    let me = log.node_id();
    let mut progress = log.watch();
    // Proposals handed over and not yet durable: (epoch, last LSN). Counted
    // from the change log's own marks, not from openraft's answers, which
    // may never come for an entry a later leader overwrote.
    let mut in_flight: std::collections::VecDeque<(u64, Lsn)> = Default::default();
    let mut next: Option<Queued> = None;
    loop {
        let first = match next.take() {
            Some(queued) => queued,
            None => match queue.recv().await {
                Some(queued) => queued,
                None => return,
            },
        };
        // Waiting here (not before taking the first record) lets the
        // records behind it gather into the same entry.
        loop {
            {
                let state = progress.borrow_and_update();
                in_flight.retain(|(epoch, through)| {
                    *epoch == state.epoch && *through > state.durable && !state.has_failed(*through)
                });
            }
            if in_flight.len() < PROPOSALS_IN_FLIGHT {
                break;
            }
            if progress.changed().await.is_err() {
                return;
            }
        }
        let term = first.0;
        let mut records = vec![(first.1, first.2)];
        while records.len() < MAX_PROPOSAL_RECORDS {
            match queue.try_recv() {
                Ok(queued) if queued.0 == term => records.push((queued.1, queued.2)),
                Ok(queued) => {
                    next = Some(queued);
                    break;
                }
                Err(_) => break,
            }
        }
        // Records of a leadership that has ended fail with it (their LSNs
        // are marked failed); proposing them could only be skipped later.
        if log.leading() != Some(term) {
            continue;
        }
        let epoch = log.state().epoch;
        let through = records.last().map_or(Lsn::ZERO, |(lsn, _)| *lsn);
        let proposal = Proposal {
            origin: me,
            leadership: term,
            records,
        };
        match raft.client_write_ff(proposal).await {
            Ok(answer) => {
                in_flight.push_back((epoch, through));
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    // Committed proposals are seen by the state machine;
                    // a refusal means that leadership is gone.
                    if let Ok(Err(e)) = answer.await {
                        log::info!("proposal refused: {e}");
                        log.stop_leading_term(term);
                    }
                });
            }
            Err(e) => {
                log::error!("openraft stopped: {e}");
                log.stop_leading();
                return;
            }
        }
    }
}

/// Whether this leader has applied every entry its log holds: what was
/// committed before it, and what it appended itself in this term before a
/// restart (openraft restores a leader whose vote it had committed without
/// a new election, so entries a previous run proposed in this very term
/// can still be committed now; its actors must have them before they
/// decide anything, or they would decide on a state that lacks them).
async fn applied_whole_log(node: &ClusterNode) -> bool {
    if node.raft.ensure_linearizable().await.is_err() {
        return false;
    }
    let last = node.raft.metrics().borrow().last_log_index.unwrap_or(0);
    let mut applied = node.log.watch_applied();
    let reached = applied.wait_for(|index| *index >= last).await.is_ok();
    reached
}

/// Starts this node's leadership once it leads and has applied everything
/// committed before (so its actors decide on the whole state), and ends it
/// as soon as openraft says it no longer leads.
async fn watch_leadership(node: Arc<ClusterNode>, service: Arc<dyn Service>) {
    let me = node.log.node_id();
    let mut metrics = node.raft.metrics();
    let mut last_leader = None;
    loop {
        // Made before the clock is looked at, so no change is missed.
        let clock_changed = node.peers.changed();
        let (state, term, leader) = {
            let m = metrics.borrow_and_update();
            (m.state, m.current_term, m.current_leader)
        };
        if leader != last_leader {
            last_leader = leader;
            node.leader_changes.fetch_add(1, Ordering::Relaxed);
        }
        // A node whose clock is too far from the cluster's does not lead
        // (it stopped its heartbeats, so the others elect another).
        let leads = state == ServerState::Leader && leader == Some(me) && !node.peers.too_far();
        match (leads, node.log.leading()) {
            (true, Some(t)) if t == term => {}
            (true, current) => {
                if current.is_some() {
                    node.log.stop_leading();
                }
                let caught_up =
                    tokio::time::timeout(CATCH_UP_TIMEOUT, applied_whole_log(&node)).await;
                if matches!(caught_up, Ok(true)) {
                    Arc::clone(&service).barrier().await;
                    let now = node.raft.metrics().borrow().clone();
                    if now.state == ServerState::Leader && now.current_term == term {
                        node.log.start_leading(term);
                        // Learners are members on their way to voting (a
                        // predecessor may have added them): finish that.
                        for (id, _, voter) in node.members() {
                            if !voter {
                                node.promote_when_caught_up(id);
                            }
                        }
                    }
                }
                continue;
            }
            (false, Some(_)) => node.log.stop_leading(),
            (false, None) => {}
        }
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() {
                node.log.stop_leading();
                return;
            },
            () = clock_changed => {}
        }
    }
}
