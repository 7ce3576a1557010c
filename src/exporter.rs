//! What `GET /metrics` shows: each layer's own counters, asked in turn at
//! scrape time. Only the start-up wiring builds one; no layer imports it,
//! so it may know them all without a circle.

use std::sync::Arc;

use boxoffice_metrics::prometheus_client::collector::Collector;
use boxoffice_metrics::prometheus_client::encoding::DescriptorEncoder;
use boxoffice_metrics::{counter, gauge, gauge_f64, resident_bytes, Exporter};

use crate::actors::EventCounters;
use crate::cluster::node::ClusterGauges;
use crate::http::api::live::Live;
use crate::http::middleware::metrics::HttpStats;
use crate::http::transport::connections::Connections;
use crate::persistence::stats::{JournalStats, SnapshotStats};
use crate::webhooks::WebhookStats;

/// Where the exporter reads each family from at scrape time.
pub struct Sources {
    /// HTTP requests and refusals.
    pub http: Arc<HttpStats>,
    /// The actors' decisions.
    pub events: Arc<EventCounters>,
    /// How many events exist right now.
    pub event_count: Box<dyn Fn() -> usize + Send + Sync>,
    /// How many waiting-room entries wait right now, over every event.
    pub room_waiting: Box<dyn Fn() -> u64 + Send + Sync>,
    /// The journal.
    pub journal: Arc<JournalStats>,
    /// Snapshots.
    pub snapshots: Arc<SnapshotStats>,
    /// Live streams.
    pub live: Arc<Live>,
    /// Connections served and refused.
    pub connections: Arc<Connections>,
    /// Webhook deliveries.
    pub webhooks: Arc<WebhookStats>,
    /// This node's place in the cluster (a single node's too).
    pub cluster: Box<dyn Fn() -> ClusterGauges + Send + Sync>,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources").finish_non_exhaustive()
    }
}

impl Sources {
    /// The exporter of these sources.
    pub fn into_exporter(self) -> Exporter {
        Exporter::new(Box::new(self))
    }
}

impl Collector for Sources {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        self.http.encode(&mut encoder)?;
        self.events
            .encode(&mut encoder, (self.event_count)(), (self.room_waiting)())?;
        self.journal.encode(&mut encoder)?;
        self.snapshots.encode(&mut encoder)?;
        self.live.encode(&mut encoder)?;
        self.connections.encode(&mut encoder)?;
        self.webhooks.encode(&mut encoder)?;
        encode_cluster(&mut encoder, (self.cluster)())?;
        if let Some(bytes) = resident_bytes() {
            gauge(
                &mut encoder,
                "boxoffice_resident_memory_bytes",
                "Resident memory of the process (VmRSS); the events and bookings are most of it",
                bytes as i64,
            )?;
        }
        Ok(())
    }
}

fn encode_cluster(encoder: &mut DescriptorEncoder, now: ClusterGauges) -> std::fmt::Result {
    let as_gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    gauge(
        encoder,
        "boxoffice_cluster_is_leader",
        "1 while this node takes changes (a single node always does)",
        i64::from(now.is_leader),
    )?;
    gauge(
        encoder,
        "boxoffice_cluster_term",
        "The Raft term this node is in (0 on a single node)",
        as_gauge(now.term),
    )?;
    gauge(
        encoder,
        "boxoffice_cluster_commit_index",
        "The newest change index this node knows committed (a single node: durable in its journal)",
        as_gauge(now.commit_index),
    )?;
    gauge(
        encoder,
        "boxoffice_cluster_applied_index",
        "The newest change index this node has applied",
        as_gauge(now.applied_index),
    )?;
    gauge(
        encoder,
        "boxoffice_cluster_snapshot_index",
        "The index this node's newest Raft snapshot holds the state as of (0: none; a single node: 0)",
        as_gauge(now.snapshot_index),
    )?;
    gauge(
        encoder,
        "boxoffice_cluster_purged_index",
        "The newest index dropped from this node's Raft log, which a snapshot holds (0: none)",
        as_gauge(now.purged_index),
    )?;
    gauge_f64(
        encoder,
        "boxoffice_cluster_clock_offset_seconds",
        "This node's wall clock minus the cluster's (the median of every member's, read over the peer connection; 0 on a single node); beyond cluster.max_clock_offset_ms the node does not lead",
        now.clock_offset_ms as f64 / 1000.0,
    )?;
    let changes = std::sync::atomic::AtomicU64::new(now.leader_changes);
    counter(
        encoder,
        "boxoffice_cluster_leader_changes",
        "Times this node saw the leader change since it started",
        &changes,
    )
}
