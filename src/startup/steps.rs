//! The steps of [`Application::build`](super::Application::build), each a
//! function of what the steps before it made: the state read back from the
//! data directory, the logs changes become durable in (the journal, or a
//! cluster node's Raft log, each with its change feed), the cluster node,
//! the rate limiter, the webhooks, the metrics and the snapshotter.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr};
use tokio::sync::mpsc;

use super::{StartupError, RATE_LIMIT_SWEEP_SECS};
use crate::actors::{Registry, RestoredFrom, SnapshotPolicy, Snapshotter};
use crate::changes::ChangeFeed;
use crate::clock::Clock;
use crate::cluster::log::{Applier, Queued};
use crate::cluster::node::ClusterGauges;
use crate::cluster::{ClusterLog, ClusterNode};
use crate::config::{cores, Settings};
use crate::exporter::Sources;
use crate::http::api::live::Live;
use crate::http::identity::Identify;
use crate::http::middleware::metrics::HttpStats;
use crate::http::middleware::rate_limit::IpRateLimiter;
use crate::http::transport::connections::Connections;
use crate::http::transport::server::ServeOptions;
use crate::persistence::change_log::ChangeLog;
use crate::persistence::data_dir::DataDir;
use crate::persistence::journal::Journal;
use crate::persistence::raft::LogStoreOptions;
use crate::persistence::recovery::Recovered;
use crate::persistence::SnapshotStore;
use crate::service::BoxOffice;
use crate::webhooks::{WebhookStats, Webhooks};

/// What the data directory gave back.
pub(super) struct Restored {
    /// The snapshot directory.
    pub store: Arc<SnapshotStore>,
    /// The state: the newest readable snapshot and the journal after it.
    pub recovered: Recovered,
    /// What it was read from, for the snapshot policy.
    pub restored_from: RestoredFrom,
}

/// Reads the state back from `data_dir`; a cluster node's must be empty.
pub(super) fn restore(data_dir: &DataDir, settings: &Settings) -> Result<Restored, StartupError> {
    log::info!(
        "data directory {} (snapshots and journal)",
        data_dir.path().display()
    );
    let restore_started = std::time::Instant::now();
    let (store, recovered) = data_dir.recover(settings.snapshot.keep)?;
    log::info!(
        "restored {} events and {} bookings from {} plus {} journal record(s) in {} ms; next LSN {}",
        recovered.events.len(),
        recovered.bookings,
        recovered
            .snapshot
            .as_ref()
            .map_or_else(|| String::from("no snapshot"), |p| p.display().to_string()),
        recovered.replayed,
        restore_started.elapsed().as_millis(),
        recovered.next_lsn,
    );
    if !settings.journal.enabled {
        log::warn!(
            "journal disabled: changes since the last snapshot are lost if the process dies"
        );
    }
    if settings.cluster.enabled() && (!recovered.events.is_empty() || recovered.replayed > 0) {
        return Err(StartupError::Cluster(format!(
            "{} holds a single node's data; a cluster node starts from an empty data directory (docs/operations.md, \"A cluster\")",
            data_dir.path().display()
        )));
    }
    let restored_from = RestoredFrom {
        snapshot_bytes: recovered
            .snapshot
            .as_ref()
            .and_then(|path| std::fs::metadata(path).ok())
            .map(|meta| meta.len()),
        replayed_bytes: recovered.replayed_bytes,
    };
    Ok(Restored {
        store: Arc::new(store),
        recovered,
        restored_from,
    })
}

/// Where changes become durable, and the change feed that shows them.
pub(super) struct Logs {
    /// The journal: a single node's log; off on a cluster node.
    pub journal: Arc<Journal>,
    /// The change feed.
    pub changes: Arc<ChangeFeed>,
    /// What the actors submit to: the journal or the cluster's log.
    pub log: Arc<dyn ChangeLog>,
    /// A cluster node's log, its proposal queue and its feed journal.
    pub cluster: Option<ClusterLogs>,
}

/// A cluster node's logs, before its Raft node starts.
pub(super) struct ClusterLogs {
    log: Arc<ClusterLog>,
    queue: mpsc::Receiver<Queued>,
    feed_dir: PathBuf,
    feed: Arc<Journal>,
}

/// Opens the logs for a single node (its journal) or a cluster node (a
/// log over Raft, and a journal of its own for the committed feed).
pub(super) fn open_logs(
    settings: &Settings,
    data_dir: &DataDir,
    store: &SnapshotStore,
    recovered: &Recovered,
) -> Result<Logs, StartupError> {
    let clustered = settings.cluster.enabled();
    // A cluster node's changes are kept in its Raft log; the journal
    // stays off (its feed and statistics are then empty).
    let journal = if clustered {
        Journal::disabled(recovered.next_lsn)
    } else {
        data_dir
            .start_journal(&settings.journal, recovered.next_lsn)
            .map_err(StartupError::Journal)?
    };
    journal.resume_changes_at(recovered.next_change_index);
    store.retain_journal_bytes(settings.changes.retain_bytes);
    if !clustered {
        return Ok(Logs {
            changes: Arc::new(ChangeFeed::new(data_dir.path(), Arc::clone(&journal))),
            log: Arc::clone(&journal) as Arc<dyn ChangeLog>,
            journal,
            cluster: None,
        });
    }
    // A cluster node's feed is a journal of its own, of committed items.
    let feed_dir = crate::cluster::feed::dir(data_dir.path());
    let feed = crate::cluster::feed::open(&feed_dir, &settings.journal)
        .map_err(|e| StartupError::Cluster(format!("change feed journal: {e}")))?;
    actix_web::rt::spawn(crate::cluster::feed::release_old(
        feed_dir.clone(),
        Arc::clone(&feed),
        settings.changes.retain_bytes,
    ));
    let (log, queue) = ClusterLog::new(settings.cluster.node_id, recovered.next_lsn);
    Ok(Logs {
        changes: Arc::new(ChangeFeed::of_committed_copy(&feed_dir, Arc::clone(&feed))),
        log: Arc::clone(&log) as Arc<dyn ChangeLog>,
        journal,
        cluster: Some(ClusterLogs {
            log,
            queue,
            feed_dir,
            feed,
        }),
    })
}

/// Starts this node's Raft node over `registry`, if it is a cluster node.
pub(super) fn start_cluster(
    settings: &Settings,
    data_dir: &DataDir,
    logs: Option<ClusterLogs>,
    registry: &Arc<Registry>,
) -> Result<Option<Arc<ClusterNode>>, StartupError> {
    let Some(logs) = logs else {
        return Ok(None);
    };
    logs.log
        .set_applier(Arc::clone(registry) as Arc<dyn Applier>);
    logs.log.set_feed(logs.feed, &logs.feed_dir);
    let options = LogStoreOptions {
        dir: data_dir.path().join("raft"),
        sync_every_batch: settings.journal.fsync == crate::config::FsyncMode::Always,
        sync_interval: Duration::from_millis(settings.journal.fsync_interval_ms),
    };
    let node = crate::cluster::node::start(
        &settings.cluster,
        options,
        logs.log,
        logs.queue,
        Arc::clone(registry) as Arc<dyn crate::cluster::node::Service>,
    )
    .map_err(|e| StartupError::Cluster(e.to_string()))?;
    log::info!(
        "cluster node {} of {}: Raft log in {}",
        settings.cluster.node_id,
        settings.cluster.nodes.len(),
        data_dir.path().join("raft").display()
    );
    Ok(Some(node))
}

/// The per-IP rate limiter (`None`: off), and the task that drops its idle
/// cells.
pub(super) fn rate_limiter(
    settings: &Settings,
) -> (
    Option<Arc<IpRateLimiter>>,
    Option<actix_web::rt::task::JoinHandle<()>>,
) {
    let limiter = IpRateLimiter::from_settings(&settings.rate_limit);
    let sweeper = limiter.as_ref().map(|limiter| {
        let limiter = Arc::clone(limiter);
        actix_web::rt::spawn(async move {
            let mut tick =
                actix_web::rt::time::interval(Duration::from_secs(RATE_LIMIT_SWEEP_SECS));
            loop {
                tick.tick().await;
                limiter.forget_idle();
            }
        })
    });
    (limiter, sweeper)
}

/// Starts the webhook deliveries, if a URL is set (on a cluster, only
/// while this node leads); their statistics either way.
pub(super) fn start_webhooks(
    settings: &Settings,
    changes: &Arc<ChangeFeed>,
    data_dir: &DataDir,
    cluster: Option<&Arc<ClusterNode>>,
    live: &Live,
) -> Result<Arc<WebhookStats>, StartupError> {
    let stats = Arc::new(WebhookStats::default());
    if let Some(mut webhooks) = Webhooks::new(
        &settings.webhooks,
        Arc::clone(changes),
        data_dir.path(),
        Arc::clone(&stats),
    )? {
        if let Some(node) = cluster {
            let log = Arc::clone(&node.log);
            webhooks = webhooks.while_leading(Arc::new(move || log.leading().is_some()));
        }
        // Ends when the service begins to stop (with the live streams);
        // what it acknowledged is on disk after each delivery.
        actix_web::rt::spawn(webhooks.run(live.stopping()));
    }
    Ok(stats)
}

/// What `/metrics` reads.
pub(super) struct Measured {
    pub http: Arc<HttpStats>,
    pub registry: Arc<Registry>,
    pub journal: Arc<Journal>,
    pub store: Arc<SnapshotStore>,
    pub live: Arc<Live>,
    pub webhooks: Arc<WebhookStats>,
    pub connections: Arc<Connections>,
    pub cluster: Option<Arc<ClusterNode>>,
    pub service: Arc<BoxOffice>,
}

/// The `/metrics` exporter over `measured`.
pub(super) fn exporter(measured: Measured) -> boxoffice_metrics::Exporter {
    let Measured {
        http,
        registry,
        journal,
        store,
        live,
        webhooks,
        connections,
        cluster,
        service,
    } = measured;
    Sources {
        http,
        events: Arc::clone(registry.counters()),
        event_count: {
            let registry = Arc::clone(&registry);
            Box::new(move || registry.event_count())
        },
        room_waiting: Box::new(move || registry.room_waiting()),
        journal: Arc::clone(journal.stats()),
        snapshots: Arc::clone(store.stats()),
        live,
        webhooks,
        connections,
        cluster: Box::new(move || match &cluster {
            Some(node) => node.gauges(),
            None => {
                let (durable, applied) = service.log_position();
                ClusterGauges {
                    is_leader: true,
                    term: 0,
                    commit_index: durable,
                    applied_index: applied,
                    leader_changes: 0,
                    snapshot_index: 0,
                    purged_index: 0,
                    clock_offset_ms: 0,
                }
            }
        }),
    }
    .into_exporter()
}

/// The periodic snapshots of a single node (a cluster node rebuilds its
/// state from its Raft log: none).
pub(super) fn snapshotter(
    settings: &Settings,
    registry: &Arc<Registry>,
    store: &Arc<SnapshotStore>,
    restored_from: RestoredFrom,
    clustered: bool,
) -> Option<Addr<Snapshotter>> {
    let policy = SnapshotPolicy {
        journal_percent: settings.snapshot.journal_percent,
        journal_on: settings.journal.enabled,
    };
    (!clustered).then(|| {
        Snapshotter::new(
            Arc::clone(registry),
            Arc::clone(store),
            Duration::from_secs(settings.snapshot.interval_secs),
            policy,
            restored_from,
        )
        .start()
    })
}

/// The registry of every event's actor over `logs`, with the state
/// `recovered` installed.
pub(super) fn registry(settings: &Settings, logs: &Logs, recovered: Recovered) -> Arc<Registry> {
    let registry = Arc::new(Registry::with_log(
        cores(),
        Arc::clone(&logs.journal),
        Arc::clone(&logs.log),
        Clock::system(),
    ));
    // Each actor starts on its HTTP worker's thread when that worker
    // comes up (addresses work at once: messages queue until then).
    registry.place_on_workers(settings.worker_count());
    registry.install(recovered);
    registry
}

/// The address to listen on, as configured.
pub(super) fn address(settings: &Settings) -> String {
    format!("{}:{}", settings.server.host, settings.server.port)
}

/// The listener on the configured address, and the address it got (the
/// port differs when the setting is 0).
pub(super) fn listen(
    settings: &Settings,
) -> Result<(std::net::TcpListener, std::net::SocketAddr), StartupError> {
    let listener =
        crate::http::transport::server::bind(&address(settings)).map_err(bind_error(settings))?;
    let bound = listener.local_addr().map_err(bind_error(settings))?;
    Ok((listener, bound))
}

/// What a failure to bind or serve the configured address is.
pub(super) fn bind_error(settings: &Settings) -> impl Fn(std::io::Error) -> StartupError + '_ {
    move |source| StartupError::Bind {
        address: address(settings),
        source,
    }
}

/// The proxies whose forwarded client addresses are believed.
pub(super) fn trusted_networks(settings: &Settings) -> Vec<ipnet::IpNet> {
    // Validated with the settings, so this cannot fail here.
    settings.server.trusted_networks().unwrap_or_default()
}

/// The per-address connection cap and send timeout.
pub(super) fn connections(settings: &Settings, trusted: Vec<ipnet::IpNet>) -> Arc<Connections> {
    Connections::new(
        settings.server.max_connections_per_ip,
        Duration::from_millis(settings.server.send_timeout_ms),
        trusted,
    )
}

/// Who a request is from: the client address through `trusted` proxies,
/// and on a cluster node the token that marks a change a follower
/// forwarded (run through this node's own listener at `bound`).
pub(super) fn identify(
    trusted: Vec<ipnet::IpNet>,
    cluster: Option<&Arc<ClusterNode>>,
    bound: std::net::SocketAddr,
) -> Identify {
    let identify = Identify::new(trusted);
    match cluster {
        Some(node) => {
            // (cluster/forward.rs)
            node.local_http().set_address(bound);
            identify.with_forward_token(node.local_http().token())
        }
        None => identify,
    }
}

/// How the HTTP server runs.
pub(super) fn serve_options(settings: &Settings) -> ServeOptions {
    ServeOptions {
        workers: settings.worker_count(),
        max_connections: settings.server.max_connections,
        client_request_timeout: Duration::from_millis(settings.server.client_request_timeout_ms),
        keep_alive: Duration::from_secs(settings.server.keep_alive_secs),
        shutdown_timeout_secs: settings.server.shutdown_timeout_secs,
        max_unsent_bytes: settings.server.max_unsent_bytes,
    }
}

/// The booking service over the registry and the change log.
pub(super) fn service(
    settings: &Settings,
    registry: &Arc<Registry>,
    log: &Arc<dyn ChangeLog>,
) -> Arc<BoxOffice> {
    let limits = settings.limits.clone();
    Arc::new(BoxOffice::new(
        Arc::clone(registry),
        Arc::clone(log),
        limits,
    ))
}
