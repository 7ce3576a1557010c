//! `[cluster]`: which nodes hold the state together, and how they find and
//! trust each other. Without the section (`node_id = 0`) the service is one
//! node, as it always was.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::persistence::raft::{Member, NodeId};

/// Raft entries kept before the newest snapshot at most: a follower that
/// far behind catches up from entries, one further from the snapshot.
const SNAPSHOT_TAIL_ENTRIES: u64 = 1_000;

/// Shortest `cluster.secret`: a guessable secret would let anyone on the
/// peer network vote or append.
pub const MIN_SECRET_BYTES: usize = 32;

/// `[cluster]`. `Debug` leaves the secret out.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSettings {
    /// This node's id (1 or more); 0: no cluster.
    pub node_id: u64,
    /// Every member, the same list on every node.
    pub nodes: Vec<NodeAddress>,
    /// What every peer message must carry.
    pub secret: String,
    /// `false`: the listed nodes form a new cluster by themselves; `true`:
    /// this node waits to be added to a running one.
    pub join: bool,
    /// How often the leader tells followers it is there.
    pub heartbeat_ms: u64,
    /// A follower that hears no leader for this long (randomised up to
    /// twice that) starts an election.
    pub election_timeout_ms: u64,
    /// Raft entries between two snapshots of the state; the log before a
    /// snapshot is dropped.
    pub snapshot_entries: u64,
    /// The furthest this node's wall clock may be from the cluster's
    /// median clock while it leads or campaigns (`clock_offset.rs`).
    pub max_clock_offset_ms: u64,
}

/// One member: where peers reach it and where clients do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeAddress {
    /// Its id.
    pub id: u64,
    /// host:port of its peer listener.
    pub peer: String,
    /// The URL clients use to reach it.
    pub http: String,
}

impl NodeAddress {
    /// Whether `peer` and `http` are usable addresses; why not.
    pub fn check(&self) -> Result<(), &'static str> {
        check_addresses(&self.peer, &self.http)
    }
}

/// Whether `peer` is host:port and `http` an http(s) URL, neither with
/// spaces or control characters; why not.
pub fn check_addresses(peer: &str, http: &str) -> Result<(), &'static str> {
    let clean = |s: &str| {
        !s.is_empty()
            && s.chars().count() <= 255
            && !s.chars().any(|c| c.is_whitespace() || c.is_control())
    };
    let port = peer
        .rsplit_once(':')
        .map(|(host, port)| (host, port.parse::<u16>()));
    if !clean(peer) || !matches!(port, Some((host, Ok(p))) if !host.is_empty() && p > 0) {
        return Err("peer must be host:port");
    }
    if !clean(http) || !(http.starts_with("http://") || http.starts_with("https://")) {
        return Err("http must be an http:// or https:// URL");
    }
    Ok(())
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            node_id: 0,
            nodes: Vec::new(),
            secret: String::new(),
            join: false,
            heartbeat_ms: 100,
            election_timeout_ms: 1_000,
            snapshot_entries: 10_000,
            max_clock_offset_ms: 500,
        }
    }
}

impl std::fmt::Debug for ClusterSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = if self.secret.is_empty() {
            "(empty)"
        } else {
            "(set)"
        };
        f.debug_struct("ClusterSettings")
            .field("node_id", &self.node_id)
            .field("nodes", &self.nodes)
            .field("secret", &secret)
            .field("join", &self.join)
            .field("heartbeat_ms", &self.heartbeat_ms)
            .field("election_timeout_ms", &self.election_timeout_ms)
            .field("snapshot_entries", &self.snapshot_entries)
            .field("max_clock_offset_ms", &self.max_clock_offset_ms)
            .finish()
    }
}

impl ClusterSettings {
    /// openraft's configuration for these settings.
    pub fn raft_config(&self) -> std::io::Result<openraft::Config> {
        openraft::Config {
            cluster_name: "boxoffice".into(),
            heartbeat_interval: self.heartbeat_ms,
            // openraft waits out a leader lease (election_timeout_max) before
            // its randomised election timeout once a leader was known, so a
            // follower elects between 1.5 and 2 times the setting after it last
            // heard the leader: inside the contract's "randomised up to twice
            // that". (With min = the setting and max = twice it, elections came
            // 3 to 4 times the setting after the last heartbeat: 3.4 to 4.0 s
            // measured at 1,000 ms; bench/README.md.)
            election_timeout_min: self.election_timeout_ms / 2,
            election_timeout_max: self.election_timeout_ms,
            // A snapshot every `snapshot_entries` entries; the log before it
            // goes, but for a tail that lets a follower a little behind catch
            // up from entries rather than a whole snapshot.
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_entries),
            max_in_snapshot_log_to_keep: self.snapshot_entries.min(SNAPSHOT_TAIL_ENTRIES),
            ..openraft::Config::default()
        }
        .validate()
        .map_err(std::io::Error::other)
    }

    /// The members a new cluster is initialised with: every listed node.
    pub fn members(&self) -> std::collections::BTreeMap<NodeId, Member> {
        self.nodes
            .iter()
            .map(|n| {
                (
                    n.id,
                    Member {
                        peer: n.peer.clone(),
                        http: n.http.clone(),
                    },
                )
            })
            .collect()
    }

    /// Whether this process is a member of a cluster.
    pub fn enabled(&self) -> bool {
        self.node_id != 0
    }

    /// This node's own entry in `nodes`.
    pub fn me(&self) -> Option<&NodeAddress> {
        self.nodes.iter().find(|n| n.id == self.node_id)
    }

    /// The checks serde cannot express: the key at fault and why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(10..=60_000).contains(&self.heartbeat_ms) {
            return Err(("cluster.heartbeat_ms", "must be 10 to 60000".into()));
        }
        if !(50..=600_000).contains(&self.election_timeout_ms) {
            return Err(("cluster.election_timeout_ms", "must be 50 to 600000".into()));
        }
        if !(10..=100_000_000).contains(&self.snapshot_entries) {
            return Err(("cluster.snapshot_entries", "must be 10 to 100000000".into()));
        }
        if !(10..=3_600_000).contains(&self.max_clock_offset_ms) {
            return Err((
                "cluster.max_clock_offset_ms",
                "must be 10 to 3600000".into(),
            ));
        }
        if self.election_timeout_ms <= self.heartbeat_ms * 2 {
            return Err((
                "cluster.election_timeout_ms",
                "must be more than twice cluster.heartbeat_ms (else followers elect while the leader is well)".into(),
            ));
        }
        if !self.enabled() {
            return Ok(());
        }
        if self.secret.len() < MIN_SECRET_BYTES {
            return Err((
                "cluster.secret",
                format!("must be at least {MIN_SECRET_BYTES} bytes with a cluster"),
            ));
        }
        let mut ids = BTreeSet::new();
        // Two members at one address would have a leader send to itself
        // what it sends to a follower (openraft does not expect its own
        // vote back).
        let mut addresses = BTreeSet::new();
        for node in &self.nodes {
            if node.id == 0 {
                return Err(("cluster.nodes", "ids start at 1".into()));
            }
            if !ids.insert(node.id) {
                return Err(("cluster.nodes", format!("id {} is listed twice", node.id)));
            }
            for address in [&node.peer, &node.http] {
                if !addresses.insert(address.as_str()) {
                    return Err((
                        "cluster.nodes",
                        format!("node {}: {address} is another node's address too", node.id),
                    ));
                }
            }
            node.check()
                .map_err(|why| ("cluster.nodes", format!("node {}: {why}", node.id)))?;
        }
        if self.me().is_none() {
            return Err((
                "cluster.node_id",
                format!("{} is not among cluster.nodes", self.node_id),
            ));
        }
        if !self.join && !matches!(self.nodes.len(), 1 | 3 | 5 | 7) {
            return Err((
                "cluster.nodes",
                "a new cluster has 1, 3, 5 or 7 members (an even count tolerates no more failures than one fewer)".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> ClusterSettings {
        ClusterSettings {
            node_id: 2,
            nodes: (1..=3)
                .map(|id| NodeAddress {
                    id,
                    peer: format!("127.0.0.1:{}", 7100 + id),
                    http: format!("http://127.0.0.1:{}", 8100 + id),
                })
                .collect(),
            secret: "s".repeat(32),
            ..ClusterSettings::default()
        }
    }

    #[test]
    fn no_cluster_is_valid_and_off() {
        let settings = ClusterSettings::default();
        assert!(!settings.enabled());
        assert_eq!(settings.validate(), Ok(()));
    }

    #[test]
    fn a_three_node_cluster_is_valid_and_finds_itself() {
        let settings = three();
        assert_eq!(settings.validate(), Ok(()));
        assert_eq!(settings.me().map(|n| n.id), Some(2));
    }

    #[test]
    fn each_mistake_names_its_key() {
        type Spoil = Box<dyn Fn(&mut ClusterSettings)>;
        let cases: Vec<(Spoil, &str)> = vec![
            (Box::new(|s| s.secret = "short".into()), "cluster.secret"),
            (Box::new(|s| s.node_id = 9), "cluster.node_id"),
            (Box::new(|s| s.nodes[1].id = 1), "cluster.nodes"),
            (
                Box::new(|s| s.nodes[2].peer = s.nodes[0].peer.clone()),
                "cluster.nodes",
            ),
            (
                Box::new(|s| s.nodes[2].http = s.nodes[1].http.clone()),
                "cluster.nodes",
            ),
            (Box::new(|s| s.nodes[0].id = 0), "cluster.nodes"),
            (
                Box::new(|s| s.nodes[0].peer = "nowhere".into()),
                "cluster.nodes",
            ),
            (
                Box::new(|s| s.nodes[0].http = "ftp://x".into()),
                "cluster.nodes",
            ),
            (
                Box::new(|s| {
                    s.nodes.pop();
                }),
                "cluster.nodes",
            ),
            (Box::new(|s| s.heartbeat_ms = 1), "cluster.heartbeat_ms"),
            (
                Box::new(|s| s.election_timeout_ms = 150),
                "cluster.election_timeout_ms",
            ),
            (
                Box::new(|s| s.snapshot_entries = 9),
                "cluster.snapshot_entries",
            ),
        ];
        for (spoil, key) in cases {
            let mut settings = three();
            spoil(&mut settings);
            assert_eq!(
                settings.validate().map_err(|(k, _)| k),
                Err(key),
                "{settings:?}"
            );
        }
        let mut joining = three();
        joining.join = true;
        joining.nodes.pop();
        joining.node_id = 1;
        assert_eq!(
            joining.validate(),
            Ok(()),
            "a joining node may list any count"
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let shown = format!("{:?}", three());
        assert!(!shown.contains(&"s".repeat(32)));
        assert!(shown.contains("(set)"));
    }
}
