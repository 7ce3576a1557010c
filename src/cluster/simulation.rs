//! A simulation of the replicated path: several nodes in one process, each
//! the real pieces (openraft, the Raft log store on disk, the state machine,
//! the change log, the proposer and the leadership watcher, assembled by
//! [`node::assemble`]), over a network this module controls. The event
//! actors are stood in for by [`Model`]: it decides with the domain exactly
//! as an actor does (apply ahead on the leader, undo what fails) and keeps
//! every record by LSN.
//!
//! A seeded schedule drives bookings, cancellations and event creates at
//! the leader, and faults: dropped, delayed and duplicated messages (a
//! duplicate arrives later, so out of order), partitions, pauses of the
//! leader (its messages, both ways, held until it wakes and then delivered
//! late), and crashes and restarts of nodes with what their disks held.
//! Repeated bookings and cancellations that change nothing are sent to
//! every node that believes it leads, a paused one as it wakes included:
//! such an answer is decided on the node's state and given only once its
//! leadership is confirmed, as the service does (issue 35). After every
//! schedule the faults are healed and it checks that every change
//! acknowledged to a client is in every node's state exactly once, that no
//! two nodes acknowledged in one term, that no event is oversold, that
//! every node holds the same records in the same order, and that every
//! answer without a change stood on a state that was the cluster's: one
//! that held every change acknowledged before it was asked, and a prefix of
//! the agreed records.
//!
//! The schedule (which operation or fault, when, to whom) is a function of
//! the seed alone, so a failing seed replays its faults. Message timings
//! are not: openraft draws its election timeouts from its own random
//! source and the log store syncs on its own thread, so a replay may
//! interleave differently.
//!
//! `BOXOFFICE_SIM_SEEDS` (default 4) seeds run from `BOXOFFICE_SIM_SEED`
//! (default: drawn from the clock), none started after
//! `BOXOFFICE_SIM_SECONDS` (default 600); every seed is printed.
//! `tests/cluster_soak.sh` runs many more.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::Raft;

use super::log::{Applier, ClusterLog};
use super::node::{self, ClusterNode, Service};
use super::settings::{ClusterSettings, NodeAddress};
use crate::domain::{
    BookingIdSequence, BookingStatus, Change, EventId, EventSettings, Timestamp, UserId,
};
use crate::persistence::change_log::ChangeLog;
use crate::persistence::codec;
use crate::persistence::journal::{Lsn, Record};
use crate::persistence::raft::{LogStoreOptions, Member, NodeId, RaftLogStore, TypeConfig};

/// Steps of one schedule.
const STEPS: usize = 100;
/// How long a client waits for its change to be acknowledged.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the healed cluster may take to agree.
const SETTLE_DEADLINE: Duration = Duration::from_secs(30);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// SplitMix64: small, seedable, and the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// What the network does to messages now.
#[derive(Debug, Clone, Copy, Default)]
struct LinkFaults {
    drop_percent: u64,
    duplicate_percent: u64,
    max_delay_ms: u64,
}

/// The simulated network: who is up, which links are cut, what happens to
/// messages.
struct Net {
    rng: Mutex<Rng>,
    up: Mutex<BTreeMap<NodeId, Raft<TypeConfig>>>,
    /// Directed links that carry nothing.
    cut: Mutex<BTreeSet<(NodeId, NodeId)>>,
    faults: Mutex<LinkFaults>,
    /// Paused nodes and when they wake: what they send or are sent waits
    /// until then.
    paused: Mutex<BTreeMap<NodeId, tokio::time::Instant>>,
}

/// What happens to one request.
enum Fate {
    Lost,
    Delivered {
        delay: Duration,
        duplicate_after: Option<Duration>,
        answer_lost: bool,
    },
}

impl Net {
    fn fate(&self, from: NodeId, to: NodeId) -> Fate {
        if lock(&self.cut).contains(&(from, to)) {
            return Fate::Lost;
        }
        let faults = *lock(&self.faults);
        let mut rng = lock(&self.rng);
        if rng.chance(faults.drop_percent) {
            return Fate::Lost;
        }
        let delay = Duration::from_millis(rng.below(faults.max_delay_ms + 1));
        let duplicate_after = rng
            .chance(faults.duplicate_percent)
            .then(|| delay + Duration::from_millis(rng.below(2 * faults.max_delay_ms + 1)));
        let answer_lost = rng.chance(faults.drop_percent);
        Fate::Delivered {
            delay,
            duplicate_after,
            answer_lost,
        }
    }

    fn raft(&self, id: NodeId) -> Option<Raft<TypeConfig>> {
        lock(&self.up).get(&id).cloned()
    }

    /// Waits until neither `a` nor `b` is paused.
    async fn awake(&self, a: NodeId, b: NodeId) {
        loop {
            let until = {
                let paused = lock(&self.paused);
                [a, b].iter().filter_map(|n| paused.get(n)).max().copied()
            };
            match until {
                Some(until) if until > tokio::time::Instant::now() => {
                    tokio::time::sleep_until(until).await
                }
                _ => return,
            }
        }
    }
}

fn unreachable<E: std::error::Error>(why: &str) -> RPCError<NodeId, Member, RaftError<NodeId, E>> {
    RPCError::Unreachable(Unreachable::new(&io::Error::other(why.to_string())))
}

/// Node `me`'s side of the simulated network.
struct SimNetwork {
    me: NodeId,
    net: Arc<Net>,
}

impl RaftNetworkFactory<TypeConfig> for SimNetwork {
    type Network = SimLink;

    async fn new_client(&mut self, target: NodeId, _node: &Member) -> SimLink {
        SimLink {
            from: self.me,
            to: target,
            net: Arc::clone(&self.net),
        }
    }
}

/// Messages from one node to another.
struct SimLink {
    from: NodeId,
    to: NodeId,
    net: Arc<Net>,
}

impl SimLink {
    /// Delivers `request` to the target's Raft by `call`, as the network's
    /// fate for it says; the target's errors (only "shut down" for these
    /// calls) look like an unreachable node, as over TCP.
    async fn send<Req, Resp, Fut, E>(
        &self,
        request: Req,
        call: fn(Raft<TypeConfig>, Req) -> Fut,
    ) -> Result<Resp, RPCError<NodeId, Member, RaftError<NodeId, E>>>
    where
        Req: Clone + Send + 'static,
        Fut: Future<Output = Result<Resp, RaftError<NodeId, E>>> + Send + 'static,
        E: std::error::Error,
    {
        let Fate::Delivered {
            delay,
            duplicate_after,
            answer_lost,
        } = self.net.fate(self.from, self.to)
        else {
            tokio::time::sleep(Duration::from_millis(5)).await;
            return Err(unreachable("dropped"));
        };
        if let Some(after) = duplicate_after {
            let (net, to, copy) = (Arc::clone(&self.net), self.to, request.clone());
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                if let Some(raft) = net.raft(to) {
                    let _ = call(raft, copy).await;
                }
            });
        }
        tokio::time::sleep(delay).await;
        self.net.awake(self.from, self.to).await;
        let raft = self.net.raft(self.to).ok_or_else(|| unreachable("down"))?;
        let answer = call(raft, request)
            .await
            .map_err(|_| unreachable("shut down"))?;
        self.net.awake(self.from, self.to).await;
        if answer_lost || lock(&self.net.cut).contains(&(self.to, self.from)) {
            return Err(unreachable("answer dropped"));
        }
        Ok(answer)
    }
}

impl RaftNetwork<TypeConfig> for SimLink {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        self.send(
            rpc,
            |raft, rpc| async move { raft.append_entries(rpc).await },
        )
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        self.send(rpc, |raft, rpc| async move { raft.vote(rpc).await })
            .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, Member, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.send(
            rpc,
            |raft, rpc| async move { raft.install_snapshot(rpc).await },
        )
        .await
    }
}

/// The event actors of one node, stood in for: the records of the last
/// snapshot installed, then records by this node's LSN, as the actors'
/// state holds them.
pub(super) struct Model {
    log: Arc<ClusterLog>,
    /// Committed records the change log applied, not yet taken in.
    inbox: Mutex<Vec<(Lsn, Record)>>,
    records: Mutex<BTreeMap<Lsn, Record>>,
    /// What the last snapshot installed held, in order.
    base: Mutex<Vec<Record>>,
    /// A snapshot installed and not taken in yet (taken in, under the
    /// `inbox` lock, before the inbox).
    installed: Mutex<Option<Vec<Record>>>,
    /// Snapshots installed, counted over every node of a run.
    installs: Arc<AtomicU64>,
}

/// A snapshot's image in the simulation: every committed record, in order.
#[derive(serde::Serialize, serde::Deserialize)]
struct ModelImage {
    records: Vec<Record>,
    next_change_index: u64,
}

impl Applier for Model {
    fn apply(&self, lsn: Lsn, record: Record) {
        // Only queued: the change log calls this under its own lock, and
        // deciding takes `records` before the change log's lock.
        lock(&self.inbox).push((lsn, record));
    }

    fn image(&self, through: Lsn, next_change_index: u64) -> crate::cluster::log::ImageFuture {
        let (records, _) = self.settle();
        let image = ModelImage {
            records: lock(&self.base)
                .iter()
                .chain(records.range(..=through).map(|(_, r)| r))
                .cloned()
                .collect(),
            next_change_index,
        };
        let encoded = codec::encode(&image).map_err(io::Error::other);
        Box::pin(std::future::ready(encoded))
    }

    fn install(&self, image: &[u8], _lsn: Lsn) -> io::Result<crate::cluster::log::Installed> {
        let image: ModelImage = codec::decode(image).map_err(io::Error::other)?;
        // Called under the change log's lock: `records` may be held by a
        // decision waiting for that lock, so it is replaced by the next
        // `settle` (`installed`), not here.
        self.installs.fetch_add(1, Ordering::Relaxed);
        let mut inbox = lock(&self.inbox);
        inbox.clear();
        *lock(&self.installed) = Some(image.records);
        drop(inbox);
        Ok(crate::cluster::log::Installed {
            next_change_index: image.next_change_index,
            change_indexes: Vec::new(),
        })
    }
}

impl Service for Model {
    fn barrier(self: Arc<Self>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        drop(self.settle());
        Box::pin(std::future::ready(()))
    }
}

/// What a node decided for a client.
enum Decision {
    /// A change, handed to the change log at this LSN.
    Made(Lsn, Record),
    /// Nothing to change: the answer is whether the user's booking is
    /// active, decided on `view` (every record the node held, in order;
    /// the newest at `through`).
    Unchanged {
        view: Vec<Record>,
        through: Lsn,
        active: bool,
    },
}

/// One client's change, decided at the leader.
#[derive(Debug, Clone)]
enum Op {
    Create { tickets: u64 },
    Book { event: u64, user: String },
    Cancel { event: u64, user: String },
}

impl Model {
    /// An empty model, set as `log`'s applier.
    pub(super) fn applying(log: &Arc<ClusterLog>, installs: Arc<AtomicU64>) -> Arc<Self> {
        let model = Arc::new(Self {
            installs,
            log: Arc::clone(log),
            inbox: Mutex::new(Vec::new()),
            records: Mutex::new(BTreeMap::new()),
            base: Mutex::new(Vec::new()),
            installed: Mutex::new(None),
        });
        log.set_applier(Arc::clone(&model) as Arc<dyn Applier>);
        model
    }

    /// Takes in what was applied and undoes what failed (as the actors
    /// do before their next message); the records and the epoch they
    /// reflect.
    fn settle(&self) -> (MutexGuard<'_, BTreeMap<Lsn, Record>>, u64) {
        let mut records = lock(&self.records);
        let mut inbox = lock(&self.inbox);
        if let Some(base) = lock(&self.installed).take() {
            records.clear();
            *lock(&self.base) = base;
        }
        for (lsn, record) in inbox.drain(..) {
            records.insert(lsn, record);
        }
        drop(inbox);
        let (failed, epoch) = {
            let state = self.log.state();
            (state.failed.clone(), state.epoch)
        };
        records.retain(|lsn, _| !failed.iter().any(|range| range.contains(lsn)));
        (records, epoch)
    }

    /// The LSN of the newest record this node's state holds.
    fn newest(&self) -> Lsn {
        let (records, _) = self.settle();
        records.keys().next_back().copied().unwrap_or(Lsn::ZERO)
    }

    /// Decides `op` on this node's state; a change is applied ahead and
    /// handed to the change log; else the answer and what it stood on; or
    /// why neither.
    fn decide(&self, op: &Op, now: Timestamp) -> Result<Decision, String> {
        let (mut records, epoch) = self.settle();
        let mut state = fold(lock(&self.base).iter().chain(records.values()))?;
        let (event, change) = match op {
            Op::Create { tickets } => {
                let id = state.events.keys().max().map_or(1, |id| id.get() + 1);
                let id = EventId::try_from(id).map_err(|e| format!("{e:?}"))?;
                let settings = EventSettings::new(None, *tickets, 1);
                let (_, change) = crate::domain::Event::create(id, settings, now)
                    .map_err(|e| format!("create: {e:?}"))?;
                (id, change)
            }
            Op::Book { event, user } | Op::Cancel { event, user } => {
                let id = EventId::try_from(*event).map_err(|e| format!("{e:?}"))?;
                let target = state.events.get_mut(&id).ok_or("no such event")?;
                let user = UserId::try_from(user.as_str()).map_err(|e| format!("{e:?}"))?;
                let outcome = match op {
                    Op::Book { .. } => target
                        .book(
                            &user,
                            1,
                            &BookingIdSequence::starting_at(state.next_booking),
                            now,
                        )
                        .map(|o| o.made),
                    _ => target.cancel(&user, now).map(|o| o.made),
                };
                let unchanged = |active| {
                    let view = lock(&self.base)
                        .iter()
                        .chain(records.values())
                        .cloned()
                        .collect();
                    let through = records.keys().next_back().copied().unwrap_or(Lsn::ZERO);
                    Ok(Decision::Unchanged {
                        view,
                        through,
                        active,
                    })
                };
                match outcome {
                    Ok(Some(made)) => (id, made.change),
                    // A repeated booking: the active one, unchanged.
                    Ok(None) => return unchanged(true),
                    Err(crate::domain::DomainError::BookingNotFound) => return unchanged(false),
                    Err(e) => return Err(format!("refused: {e:?}")),
                }
            }
        };
        let record = Record::Change { event, change };
        let lsn = self
            .log
            .submit(record.clone(), epoch)
            .map_err(|_| "not leading".to_string())?;
        records.insert(lsn, record.clone());
        Ok(Decision::Made(lsn, record))
    }
}

/// The domain state a run of records makes.
struct Folded {
    events: BTreeMap<EventId, crate::domain::Event>,
    next_booking: u64,
    /// Users who booked, by event.
    users: BTreeMap<EventId, Vec<UserId>>,
}

fn fold<'a>(records: impl Iterator<Item = &'a Record>) -> Result<Folded, String> {
    let mut folded = Folded {
        events: BTreeMap::new(),
        next_booking: 1,
        users: BTreeMap::new(),
    };
    for record in records {
        let Record::Change { event, change } = record else {
            return Err(format!("a record the simulation does not make: {record:?}"));
        };
        match change {
            Change::Created { settings, at } => {
                let made = crate::domain::Event::created(*event, settings, *at)
                    .map_err(|e| format!("replaying a create: {e:?}"))?;
                if folded.events.insert(*event, made).is_some() {
                    return Err(format!("event {event} created twice"));
                }
            }
            other => {
                let target = folded
                    .events
                    .get_mut(event)
                    .ok_or_else(|| format!("a change to unknown event {event}"))?;
                target
                    .apply(other)
                    .map_err(|e| format!("replaying {other:?}: {e:?}"))?;
                if let Change::Booked { booking, user, .. } = other {
                    folded.next_booking = folded.next_booking.max(booking.get() + 1);
                    folded.users.entry(*event).or_default().push(user.clone());
                }
            }
        }
    }
    Ok(folded)
}

/// No event confirms more tickets than it has, counted booking by booking.
fn check_not_oversold(folded: &Folded) -> Result<(), String> {
    for (id, event) in &folded.events {
        let total = event.settings().total_tickets;
        let mut confirmed = 0u64;
        for user in folded.users.get(id).into_iter().flatten() {
            let booking = event.booking(user).map_err(|e| format!("{e:?}"))?;
            if booking.status == BookingStatus::Confirmed {
                confirmed += u64::from(booking.quantity);
            }
        }
        let status = event.status();
        if confirmed > total || status.confirmed_tickets != confirmed {
            return Err(format!(
                "event {id}: {confirmed} confirmed of {total} (status says {})",
                status.confirmed_tickets
            ));
        }
    }
    Ok(())
}

/// Every answer without a change stood on a state that was the cluster's
/// when it was asked: a prefix of the agreed `records` that holds every
/// change acknowledged before (`acks`, held at `positions`). A deposed or
/// paused leader answering from its old state breaks the second.
fn check_unchanged_answers(
    answers: &[Unchanged],
    acks: &[Ack],
    positions: &[usize],
    records: &[Record],
) -> Result<(), String> {
    for answer in answers {
        let seen = answer.view.len();
        if records.get(..seen) != Some(&answer.view[..]) {
            return Err(format!(
                "node {} answered {:?} ({}) from records that are not the cluster's",
                answer.node, answer.op, answer.active
            ));
        }
        let missed = acks
            .iter()
            .zip(positions)
            .find(|(ack, at)| ack.answered < answer.asked && **at >= seen);
        if let Some((ack, _)) = missed {
            return Err(format!(
                "node {} answered {:?} (active: {}) from a state without {:?}, \
                 acknowledged by node {} in term {} before it was asked",
                answer.node, answer.op, answer.active, ack.record, ack.node, ack.term
            ));
        }
    }
    Ok(())
}

/// A node of the simulation, up or down; its directory outlives it.
struct SimNode {
    id: NodeId,
    dir: PathBuf,
    up: Option<(Arc<ClusterNode>, Arc<Model>)>,
}

/// A change acknowledged to its client.
#[derive(Debug, Clone)]
struct Ack {
    node: NodeId,
    term: u64,
    record: Record,
    answered: Instant,
}

/// An answer that changed nothing, given to its client.
#[derive(Debug, Clone)]
struct Unchanged {
    node: NodeId,
    /// When the client asked (the node decided at once).
    asked: Instant,
    view: Vec<Record>,
    op: Op,
    active: bool,
}

struct Simulation {
    seed: u64,
    settings: ClusterSettings,
    net: Arc<Net>,
    nodes: Vec<SimNode>,
    acks: Arc<Mutex<Vec<Ack>>>,
    unchanged: Arc<Mutex<Vec<Unchanged>>>,
    /// Changes handed to a leader's change log.
    submitted: usize,
    /// Snapshots installed by any node (a restart's own included).
    installs: Arc<AtomicU64>,
    clients: Vec<tokio::task::JoinHandle<()>>,
    _root: tempfile::TempDir,
}

impl Simulation {
    fn new(seed: u64, size: u64) -> io::Result<Self> {
        let root = tempfile::tempdir()?;
        let nodes: Vec<NodeAddress> = (1..=size)
            .map(|id| NodeAddress {
                id,
                peer: format!("sim-{id}:1"),
                http: format!("http://sim-{id}"),
            })
            .collect();
        let settings = ClusterSettings {
            node_id: 0,
            nodes,
            secret: "simulation-secret-of-32-bytes-or-more".into(),
            join: false,
            heartbeat_ms: 50,
            election_timeout_ms: 300,
            // As often as allowed: snapshots, purges and catching up from
            // a snapshot happen many times in every schedule.
            snapshot_entries: 10,
            ..ClusterSettings::default()
        };
        let mut sim_nodes = Vec::new();
        for id in 1..=size {
            let dir = root.path().join(format!("node{id}"));
            std::fs::create_dir_all(&dir)?;
            sim_nodes.push(SimNode { id, dir, up: None });
        }
        Ok(Self {
            seed,
            settings,
            net: Arc::new(Net {
                rng: Mutex::new(Rng(seed ^ 0x6E65_7477_6F72_6B21)),
                up: Mutex::new(BTreeMap::new()),
                cut: Mutex::new(BTreeSet::new()),
                faults: Mutex::new(LinkFaults::default()),
                paused: Mutex::new(BTreeMap::new()),
            }),
            nodes: sim_nodes,
            acks: Arc::new(Mutex::new(Vec::new())),
            unchanged: Arc::new(Mutex::new(Vec::new())),
            submitted: 0,
            installs: Arc::default(),
            clients: Vec::new(),
            _root: root,
        })
    }

    /// Starts node `i` from what its directory holds.
    async fn boot(&mut self, i: usize) -> io::Result<()> {
        let id = self.nodes[i].id;
        let store = RaftLogStore::open(&LogStoreOptions {
            dir: self.nodes[i].dir.clone(),
            sync_every_batch: true,
            sync_interval: Duration::from_millis(10),
        })?;
        let (log, queue) = ClusterLog::new(id, Lsn::FIRST);
        let model = Model::applying(&log, Arc::clone(&self.installs));
        let settings = ClusterSettings {
            node_id: id,
            ..self.settings.clone()
        };
        let network = SimNetwork {
            me: id,
            net: Arc::clone(&self.net),
        };
        let node = node::assemble(
            settings,
            network,
            store,
            log,
            queue,
            Arc::clone(&model) as Arc<dyn Service>,
            tokio::runtime::Handle::current(),
        )
        .await?;
        lock(&self.net.up).insert(id, node.raft.clone());
        self.nodes[i].up = Some((node, model));
        Ok(())
    }

    /// Stops node `i` at once: no more messages in or out; its disk keeps
    /// what the log store had written.
    async fn crash(&mut self, i: usize) {
        let Some((node, _)) = self.nodes[i].up.take() else {
            return;
        };
        lock(&self.net.up).remove(&self.nodes[i].id);
        let _ = node.raft.shutdown().await;
        node.store.close();
    }

    /// Each node's view, for a failure message.
    fn describe(&self) -> String {
        let views: Vec<String> = self
            .nodes
            .iter()
            .map(|n| match &n.up {
                None => format!("node {}: down", n.id),
                Some((node, _)) => {
                    let m = node.raft.metrics().borrow().clone();
                    format!(
                        "node {}: {:?} term {} leader {:?} last log {:?} applied {:?} committed {:?}; leading {:?}, durable {:?}, epoch {}",
                        n.id,
                        m.state,
                        m.current_term,
                        m.current_leader,
                        m.last_log_index,
                        m.last_applied.map(|l| l.index),
                        node.store.committed().map(|c| c.index),
                        node.log.leading(),
                        node.log.state().durable,
                        node.log.state().epoch,
                    )
                }
            })
            .collect();
        views.join("; ")
    }

    /// Whether node `i` is paused now.
    fn paused(&self, i: usize) -> bool {
        lock(&self.net.paused)
            .get(&self.nodes[i].id)
            .is_some_and(|until| *until > tokio::time::Instant::now())
    }

    /// The node that takes changes now, if any (a paused one takes none).
    fn leader(&self) -> Option<usize> {
        (0..self.nodes.len()).find(|&i| {
            !self.paused(i)
                && self.nodes[i]
                    .up
                    .as_ref()
                    .is_some_and(|(node, _)| node.log.leading().is_some())
        })
    }

    /// Sends `op` to node `i` as a client would; an acknowledgement is
    /// recorded with the node and its term; an answer without a change
    /// (after what it stood on is durable and the node's leadership is
    /// confirmed, as the service answers) with what it stood on.
    fn client(&mut self, i: usize, op: Op, now: Timestamp) {
        let Some((node, model)) = self.nodes[i].up.clone() else {
            return;
        };
        let Some(term) = node.log.leading() else {
            return;
        };
        let epoch = node.log.state().epoch;
        let asked = Instant::now();
        let id = self.nodes[i].id;
        let log = Arc::clone(&node.log);
        match model.decide(&op, now) {
            Ok(Decision::Made(lsn, record)) => {
                self.submitted += 1;
                let acks = Arc::clone(&self.acks);
                self.clients.push(tokio::spawn(async move {
                    let acked = tokio::time::timeout(CLIENT_TIMEOUT, acknowledged(&log, lsn)).await;
                    if matches!(acked, Ok(true)) {
                        lock(&acks).push(Ack {
                            node: id,
                            term,
                            record,
                            answered: Instant::now(),
                        });
                    }
                }));
            }
            Ok(Decision::Unchanged {
                view,
                through,
                active,
            }) => {
                let answers = Arc::clone(&self.unchanged);
                self.clients.push(tokio::spawn(async move {
                    let confirmed = tokio::time::timeout(CLIENT_TIMEOUT, async {
                        acknowledged(&log, through).await
                            && log.confirm().await.is_ok()
                            && log.state().epoch == epoch
                    })
                    .await;
                    if matches!(confirmed, Ok(true)) {
                        lock(&answers).push(Unchanged {
                            node: id,
                            asked,
                            view,
                            op,
                            active,
                        });
                    }
                }));
            }
            Err(_) => {}
        }
    }

    /// Sends `op` to every node that believes it leads, but a paused one
    /// (which is sent its own requests as it wakes).
    fn client_at_every_leader(&mut self, op: &Op, now: Timestamp) {
        for i in 0..self.nodes.len() {
            if !self.paused(i) {
                self.client(i, op.clone(), now);
            }
        }
    }

    /// Runs the seed's schedule, heals everything and checks the result.
    async fn run(&mut self) -> Result<String, String> {
        for i in 0..self.nodes.len() {
            self.boot(i).await.map_err(|e| format!("boot: {e}"))?;
        }
        let mut schedule = Rng(self.seed);
        let size = self.nodes.len();
        let mut users = 0u64;
        let mut events = 0u64;
        let mut booked: Vec<(u64, String)> = Vec::new();
        let mut cancelled: Vec<(u64, String)> = Vec::new();
        // A paused node, when it wakes, and how many changes had been
        // acknowledged when it paused: it is sent requests (that wait for
        // its wake) once another node has acknowledged one since.
        let mut waking: Option<(usize, tokio::time::Instant, usize)> = None;
        let mut faults = 0;
        let clock = 1_800_000_000_000_i64;
        for step in 0..STEPS {
            let now = Timestamp::from_millis(clock + step as i64 * 1_000);
            let roll = schedule.below(100);
            let target = schedule.below(size as u64) as usize;
            if let Some((paused, until, acked_before)) = waking {
                let paused_id = self.nodes[paused].id;
                let acked_since = lock(&self.acks)
                    .iter()
                    .skip(acked_before)
                    .any(|ack| ack.node != paused_id);
                if tokio::time::Instant::now() >= until {
                    waking = None;
                } else if acked_since {
                    waking = None;
                    // Requests that reach it in its pause once a new
                    // leader has acknowledged a change: a real
                    // process decides them as it wakes, before it reads
                    // the messages that depose it, on its old state; the
                    // answer must wait for its leadership to be confirmed
                    // (the round's messages wait for the wake too).
                    // Users from before the pause, which it knows: the
                    // same booking, or "not found", so nothing to change.
                    let rebooks = booked.iter().take(2).map(|(event, user)| Op::Book {
                        event: *event,
                        user: user.clone(),
                    });
                    let recancels = cancelled.iter().take(2).map(|(event, user)| Op::Cancel {
                        event: *event,
                        user: user.clone(),
                    });
                    // The cancellations first: a rebook of a user whose
                    // booking never committed is a change, and answers
                    // decided after it wait on it.
                    let again: Vec<Op> = recancels.chain(rebooks).collect();
                    for op in again {
                        self.client(paused, op, now);
                    }
                }
            }
            match roll {
                0..=71 => {
                    // No node leads: sent to any, as a client would, but
                    // a paused node (sent its requests as it wakes).
                    let leader = self.leader().unwrap_or(target);
                    let leader_paused = self.paused(leader);
                    for _ in 0..=schedule.below(3) {
                        let op = match schedule.below(10) {
                            _ if events == 0 => Op::Create {
                                tickets: 3 + schedule.below(4),
                            },
                            0 => Op::Create {
                                tickets: 3 + schedule.below(4),
                            },
                            1..=2 if !booked.is_empty() => {
                                let (event, user) = booked
                                    .swap_remove(schedule.below(booked.len() as u64) as usize);
                                cancelled.push((event, user.clone()));
                                Op::Cancel { event, user }
                            }
                            // Asked again, at every node that believes it
                            // leads: the same booking, or "not found".
                            3 if !booked.is_empty() => {
                                let (event, user) =
                                    booked[schedule.below(booked.len() as u64) as usize].clone();
                                self.client_at_every_leader(&Op::Book { event, user }, now);
                                continue;
                            }
                            4 if !cancelled.is_empty() => {
                                let (event, user) = cancelled
                                    [schedule.below(cancelled.len() as u64) as usize]
                                    .clone();
                                self.client_at_every_leader(&Op::Cancel { event, user }, now);
                                continue;
                            }
                            _ => {
                                users += 1;
                                let event = 1 + schedule.below(events);
                                booked.push((event, format!("u{users}")));
                                Op::Book {
                                    event,
                                    user: format!("u{users}"),
                                }
                            }
                        };
                        if matches!(op, Op::Create { .. }) {
                            events += 1;
                        }
                        if !leader_paused {
                            self.client(leader, op, now);
                        }
                    }
                }
                72..=76 => {
                    faults += 1;
                    if self.nodes[target].up.is_some() {
                        self.crash(target).await;
                    } else {
                        self.boot(target)
                            .await
                            .map_err(|e| format!("restart: {e}"))?;
                    }
                }
                77..=80 => {
                    faults += 1;
                    let mut cut = lock(&self.net.cut);
                    let id = self.nodes[target].id;
                    for other in self.nodes.iter().map(|n| n.id).filter(|o| *o != id) {
                        cut.insert((id, other));
                        cut.insert((other, id));
                    }
                }
                81..=83 => {
                    faults += 1;
                    // One direction only: the node hears but is not heard.
                    let id = self.nodes[target].id;
                    let other = self.nodes[(target + 1) % size].id;
                    lock(&self.net.cut).insert((id, other));
                }
                84..=89 => lock(&self.net.cut).clear(),
                90..=93 => {
                    faults += 1;
                    *lock(&self.net.faults) = LinkFaults {
                        drop_percent: schedule.below(30),
                        duplicate_percent: schedule.below(30),
                        max_delay_ms: schedule.below(80),
                    };
                }
                94..=96 if waking.is_none() => {
                    if let Some(leader) = self.leader() {
                        faults += 1;
                        // A pause of a healthy cluster's leader, with all
                        // it took committed, so that what it knows was
                        // true when it paused (finding 1 of issue 35) and
                        // another node takes over and acknowledges.
                        lock(&self.net.cut).clear();
                        *lock(&self.net.faults) = LinkFaults::default();
                        for i in 0..size {
                            if self.nodes[i].up.is_none() {
                                self.boot(i).await.map_err(|e| format!("restart: {e}"))?;
                            }
                        }
                        if let Some((node, model)) = self.nodes[leader].up.clone() {
                            let through = model.newest();
                            let _ = tokio::time::timeout(
                                Duration::from_secs(1),
                                acknowledged(&node.log, through),
                            )
                            .await;
                        }
                        // Long enough for another node to be elected
                        // (election timeout 300 ms) and acknowledge.
                        let paused = tokio::time::Instant::now();
                        let until = paused + Duration::from_millis(2_000 + schedule.below(1_000));
                        lock(&self.net.paused).insert(self.nodes[leader].id, until);
                        waking = Some((leader, until, lock(&self.acks).len()));
                    }
                }
                _ => *lock(&self.net.faults) = LinkFaults::default(),
            }
            tokio::time::sleep(Duration::from_millis(20 + schedule.below(100))).await;
        }
        self.heal(Timestamp::from_millis(clock + STEPS as i64 * 1_000))
            .await?;
        self.check().await.map(|agreed| {
            let acks = lock(&self.acks).len();
            format!(
                "{size} nodes, {faults} faults, {} changes submitted, {acks} acknowledged, \
                 {} answered without a change, {agreed} records agreed, {} snapshots installed",
                self.submitted,
                lock(&self.unchanged).len(),
                self.installs.load(Ordering::Relaxed)
            )
        })
    }

    /// Ends every fault, starts every node, and commits one more change
    /// through the leader, so everything before it is committed.
    async fn heal(&mut self, now: Timestamp) -> Result<(), String> {
        lock(&self.net.cut).clear();
        lock(&self.net.paused).clear();
        *lock(&self.net.faults) = LinkFaults::default();
        for i in 0..self.nodes.len() {
            if self.nodes[i].up.is_none() {
                self.boot(i).await.map_err(|e| format!("restart: {e}"))?;
            }
        }
        let deadline = Instant::now() + SETTLE_DEADLINE;
        loop {
            if let Some(leader) = self.leader() {
                let before = lock(&self.acks).len();
                self.client(leader, Op::Create { tickets: 1 }, now);
                if let Some(client) = self.clients.pop() {
                    let _ = client.await;
                }
                if lock(&self.acks).len() > before {
                    break;
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no leader committed a change after healing: {}",
                    self.describe()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for client in self.clients.drain(..) {
            let _ = client.await;
        }
        Ok(())
    }

    /// The checks of the module doc, once every node has applied as far as
    /// the leader; the number of records every node holds.
    async fn check(&self) -> Result<usize, String> {
        let acks = lock(&self.acks).clone();
        let mut terms: BTreeMap<u64, NodeId> = BTreeMap::new();
        for ack in &acks {
            if let Some(other) = terms.insert(ack.term, ack.node) {
                if other != ack.node {
                    return Err(format!(
                        "nodes {other} and {} both acknowledged in term {}",
                        ack.node, ack.term
                    ));
                }
            }
        }
        let deadline = Instant::now() + SETTLE_DEADLINE;
        let states = loop {
            let states: Vec<(NodeId, u64, Vec<Record>)> = self
                .nodes
                .iter()
                .filter_map(|n| n.up.as_ref().map(|(node, model)| (n.id, node, model)))
                .map(|(id, node, model)| {
                    let (records, _) = model.settle();
                    let history = lock(&model.base)
                        .iter()
                        .chain(records.values())
                        .cloned()
                        .collect();
                    (id, node.log.applied_index(), history)
                })
                .collect();
            let same_index = states.windows(2).all(|w| w[0].1 == w[1].1);
            let same_records = states.windows(2).all(|w| w[0].2 == w[1].2);
            if same_index && same_records {
                break states;
            }
            if Instant::now() > deadline {
                let summary: Vec<_> = states
                    .iter()
                    .map(|(id, index, records)| (id, index, records.len()))
                    .collect();
                return Err(format!(
                    "nodes did not agree (node, applied index, records): {summary:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let (_, _, records) = &states[0];
        let mut positions = Vec::with_capacity(acks.len());
        for ack in &acks {
            let mut held = records
                .iter()
                .enumerate()
                .filter(|(_, r)| **r == ack.record);
            match (held.next(), held.next()) {
                (Some((at, _)), None) => positions.push(at),
                _ => {
                    return Err(format!(
                        "an acknowledged change is not held exactly once: {:?}",
                        ack.record
                    ))
                }
            }
        }
        check_unchanged_answers(&lock(&self.unchanged), &acks, &positions, records)?;
        let folded = fold(records.iter())?;
        check_not_oversold(&folded)?;
        Ok(records.len())
    }

    async fn stop(&mut self) {
        for i in 0..self.nodes.len() {
            self.crash(i).await;
        }
    }
}

/// Resolves to whether `lsn` became durable (committed) rather than failed.
async fn acknowledged(log: &ClusterLog, lsn: Lsn) -> bool {
    let mut watch = log.watch();
    loop {
        {
            let state = watch.borrow_and_update();
            if state.has_failed(lsn) {
                return false;
            }
            if state.durable >= lsn {
                return true;
            }
        }
        if watch.changed().await.is_err() {
            return false;
        }
    }
}

/// Runs one seed: 3 nodes, or 5 for every fourth seed.
fn run_seed(seed: u64) -> Result<String, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let size = if seed % 4 == 3 { 5 } else { 3 };
        let mut sim = Simulation::new(seed, size).map_err(|e| e.to_string())?;
        let result = sim.run().await;
        sim.stop().await;
        result
    })
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn seeded_schedules_lose_no_acknowledged_change() {
    let count = env_number("BOXOFFICE_SIM_SEEDS").unwrap_or(4);
    // No new seed starts after this many seconds (the soak script's bound).
    let budget = Duration::from_secs(env_number("BOXOFFICE_SIM_SECONDS").unwrap_or(600));
    let first = env_number("BOXOFFICE_SIM_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs() % 1_000_000)
    });
    let began = Instant::now();
    let mut ran = 0;
    for seed in first..first + count {
        if began.elapsed() > budget {
            break;
        }
        let started = Instant::now();
        match run_seed(seed) {
            Ok(summary) => println!(
                "simulation seed {seed}: {summary} in {:.1} s",
                started.elapsed().as_secs_f64()
            ),
            Err(why) => panic!(
                "simulation seed {seed} failed: {why}\nreplay: BOXOFFICE_SIM_SEED={seed} \
                 BOXOFFICE_SIM_SEEDS=1 cargo test --lib seeded_schedules -- --nocapture"
            ),
        }
        ran += 1;
    }
    println!(
        "simulation: {ran} seeds from {first} passed in {:.0} s",
        began.elapsed().as_secs_f64()
    );
}
