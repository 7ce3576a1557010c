//! Builds the running service from [`Settings`] and runs it until told to stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr};
use actix_web::dev::Server;
use actix_web::middleware::{from_fn, Condition, Logger};
use actix_web::{web, App};

use crate::actors::{
    take_snapshot, Registry, RestoredFrom, SnapshotFailed, SnapshotPolicy, Snapshotter,
    StopSnapshots,
};
use crate::changes::ChangeFeed;
use crate::clock::Clock;
use crate::cluster::log::Applier;
use crate::cluster::node::ClusterGauges;
use crate::cluster::{ClusterLog, ClusterNode};
use crate::config::{cores, Settings};
use crate::exporter::Sources;
use crate::http::api::auth::{Gate, KeyFileError};
use crate::http::api::live::Live;
use crate::http::api::{self, routes};
use crate::http::identity::{self, Identify};
use crate::http::middleware::cluster as cluster_headers;
use crate::http::middleware::metrics::{self as http_metrics, HttpStats};
use crate::http::middleware::rate_limit::{self, IpRateLimiter};
use crate::http::transport::connections::Connections;
use crate::http::transport::server::{self, ServeOptions};
use crate::http::transport::stream;
use crate::http::AppState;
use crate::persistence::change_log::ChangeLog;
use crate::persistence::data_dir::{DataDir, DataDirError};
use crate::persistence::journal::JournalError;
use crate::persistence::raft::LogStoreOptions;
use crate::persistence::recovery::RecoveryError;
use crate::persistence::{SnapshotError, SnapshotStore};
use crate::service::BoxOffice;
use crate::webhooks::{WebhookStats, Webhooks};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// How often idle per-IP quota cells are dropped.
const RATE_LIMIT_SWEEP_SECS: u64 = 60;

/// Why the service did not start. Each maps to its own exit code.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The snapshot directory is unusable or no snapshot in it can be read.
    #[error("snapshots: {0}")]
    Snapshot(#[from] SnapshotError),
    /// Stored data could not be read back whole.
    #[error("recovery: {0}")]
    Recovery(#[from] RecoveryError),
    /// The journal could not be opened for writing.
    #[error("journal: {0}")]
    Journal(std::io::Error),
    /// Another process holds the data directory, or it cannot be opened.
    #[error("{0}")]
    DataDir(#[from] DataDirError),
    /// `[auth]` names a key that cannot be used.
    #[error("{0}")]
    Auth(#[from] KeyFileError),
    /// The webhook client could not be built (TLS set-up).
    #[error("webhooks: {0}")]
    Webhooks(#[from] reqwest::Error),
    /// The cluster node could not start.
    #[error("cluster: {0}")]
    Cluster(String),
    /// The address could not be bound.
    #[error("binding {address}: {source}")]
    Bind {
        /// host:port.
        address: String,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// Why a stop was not clean: the process exits 1 and the next start
/// recovers from the last snapshot and the journal.
#[derive(Debug, thiserror::Error)]
pub enum StopError {
    /// The final snapshot could not be written.
    #[error("final snapshot failed: {0}")]
    FinalSnapshot(#[from] SnapshotFailed),
}

impl StartupError {
    /// 3 when stored data could not be read (starting would hide it), else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Snapshot(SnapshotError::Corrupt { .. } | SnapshotError::NoneReadable(..)) => 3,
            // The disk refused: an operating problem, not unreadable data.
            Self::Recovery(RecoveryError::Snapshot(SnapshotError::Io { .. }))
            | Self::Recovery(RecoveryError::Journal(JournalError::Io { .. })) => 1,
            Self::Recovery(_) => 3,
            // A settings problem, like every other one.
            Self::Auth(_) => 2,
            _ => 1,
        }
    }
}

/// The OpenAPI document as served, with a trailing newline like every JSON reply.
fn openapi_bytes(limits: &crate::config::LimitSettings) -> web::Bytes {
    let document = crate::http::api::openapi::document(limits);
    let mut bytes = serde_json::to_vec_pretty(&document).unwrap_or_else(|e| {
        log::error!("OpenAPI document not serialisable: {e}");
        b"{}".to_vec()
    });
    bytes.push(b'\n');
    web::Bytes::from(bytes)
}

/// One line per request: client (through trusted proxies), request line,
/// status, bytes, request id, latency in ms. Headers are not logged, so no
/// token is.
fn access_logger() -> Logger {
    Logger::new(r#"%{client}xi "%r" %s %b id=%{request_id}xi %Dms"#)
        // Probes, several a second from every proxy and supervisor: they
        // filled two thirds of a cluster node's log. Their answers are
        // counted on /metrics.
        .exclude("/leader")
        .exclude("/health")
        .exclude("/ready")
        .custom_request_replace("client", |req| {
            identity::client_ip_of(req.request()).map_or_else(|| "-".into(), |ip| ip.to_string())
        })
        .custom_request_replace("request_id", |req| {
            identity::request_id_of(req.request()).unwrap_or_else(|| "-".into())
        })
}

/// Organiser routes without a token are for a machine's own use: say so
/// when anyone else can reach them.
fn warn_if_open(settings: &Settings) {
    let host = settings.server.host.trim();
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if settings.auth.organiser_routes_open() && !loopback {
        log::warn!(
            "auth.admin_token is empty and the service listens on {host}: anyone who can reach it may create and change events; set BOXOFFICE__AUTH__ADMIN_TOKEN"
        );
    }
}

/// A built service: bound, restored, not yet serving.
pub struct Application {
    /// The address actually bound (the port differs from the setting when that was 0).
    address: SocketAddr,
    /// The HTTP server, started by `run_until_stopped`.
    server: Server,
    /// Every event's actor.
    registry: Arc<Registry>,
    /// The snapshot directory.
    store: Arc<SnapshotStore>,
    /// The periodic snapshot task; none on a cluster node.
    snapshotter: Option<Addr<Snapshotter>>,
    /// This node of a cluster.
    cluster: Option<Arc<ClusterNode>>,
    /// Held until the process is done with the directory.
    data_dir: DataDir,
    /// Drops idle rate-limit cells; stopped at shutdown.
    sweeper: Option<actix_web::rt::task::JoinHandle<()>>,
    /// What the handlers share; told when the service begins to stop.
    state: web::Data<AppState>,
    /// How long a stop waits for requests in flight.
    drain_timeout: Duration,
}

impl Application {
    /// Restores state, binds the listener and prepares the server. Must be
    /// called inside a running actix system.
    pub fn build(settings: Settings) -> Result<Self, StartupError> {
        let gate = Gate::from_settings(&settings.auth)?;
        warn_if_open(&settings);
        // Before anything in the directory is read, cut or deleted.
        let data_dir = DataDir::lock(&settings.snapshot.dir)?;
        log::info!(
            "data directory {} (snapshots and journal)",
            data_dir.path().display()
        );
        let restore_started = std::time::Instant::now();
        let (store, recovered) = data_dir.recover(settings.snapshot.keep)?;
        let store = Arc::new(store);
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
        let clustered = settings.cluster.enabled();
        if clustered && (!recovered.events.is_empty() || recovered.replayed > 0) {
            return Err(StartupError::Cluster(format!(
                "{} holds a single node's data; a cluster node starts from an empty data directory (docs/operations.md, \"A cluster\")",
                data_dir.path().display()
            )));
        }
        // A cluster node's changes are kept in its Raft log; the journal
        // stays off (its feed and statistics are then empty).
        let journal = if clustered {
            crate::persistence::journal::Journal::disabled(recovered.next_lsn)
        } else {
            data_dir
                .start_journal(&settings.journal, recovered.next_lsn)
                .map_err(StartupError::Journal)?
        };
        journal.resume_changes_at(recovered.next_change_index);
        store.retain_journal_bytes(settings.changes.retain_bytes);
        // A cluster node's feed is a journal of its own, of committed items.
        let cluster_feed = if clustered {
            let dir = crate::cluster::feed::dir(data_dir.path());
            let feed = crate::cluster::feed::open(&dir, &settings.journal)
                .map_err(|e| StartupError::Cluster(format!("change feed journal: {e}")))?;
            actix_web::rt::spawn(crate::cluster::feed::release_old(
                dir.clone(),
                Arc::clone(&feed),
                settings.changes.retain_bytes,
            ));
            Some((dir, feed))
        } else {
            None
        };
        let changes = Arc::new(match &cluster_feed {
            Some((dir, feed)) => ChangeFeed::of_committed_copy(dir, Arc::clone(feed)),
            None => ChangeFeed::new(data_dir.path(), Arc::clone(&journal)),
        });
        let restored_from = RestoredFrom {
            snapshot_bytes: recovered
                .snapshot
                .as_ref()
                .and_then(|path| std::fs::metadata(path).ok())
                .map(|meta| meta.len()),
            replayed_bytes: recovered.replayed_bytes,
        };
        let cluster_log =
            clustered.then(|| ClusterLog::new(settings.cluster.node_id, recovered.next_lsn));
        let log: Arc<dyn ChangeLog> = match &cluster_log {
            Some((log, _)) => Arc::clone(log) as Arc<dyn ChangeLog>,
            None => Arc::clone(&journal) as Arc<dyn ChangeLog>,
        };
        let registry = Arc::new(Registry::with_log(
            cores(),
            Arc::clone(&journal),
            Arc::clone(&log),
            Clock::system(),
        ));
        // Each actor starts on its HTTP worker's thread when that worker
        // comes up (addresses work at once: messages queue until then).
        registry.place_on_workers(settings.worker_count());
        registry.install(recovered);
        let cluster = match cluster_log {
            Some((cluster_log, queue)) => {
                cluster_log.set_applier(Arc::clone(&registry) as Arc<dyn Applier>);
                if let Some((dir, feed)) = &cluster_feed {
                    cluster_log.set_feed(Arc::clone(feed), dir);
                }
                let options = LogStoreOptions {
                    dir: data_dir.path().join("raft"),
                    sync_every_batch: settings.journal.fsync == crate::config::FsyncMode::Always,
                    sync_interval: Duration::from_millis(settings.journal.fsync_interval_ms),
                };
                let node = crate::cluster::node::start(
                    &settings.cluster,
                    options,
                    cluster_log,
                    queue,
                    Arc::clone(&registry) as Arc<dyn crate::cluster::node::Service>,
                )
                .map_err(|e| StartupError::Cluster(e.to_string()))?;
                log::info!(
                    "cluster node {} of {}: Raft log in {}",
                    settings.cluster.node_id,
                    settings.cluster.nodes.len(),
                    data_dir.path().join("raft").display()
                );
                Some(node)
            }
            None => None,
        };

        let address = format!("{}:{}", settings.server.host, settings.server.port);
        let bind_error = |source| StartupError::Bind {
            address: address.clone(),
            source,
        };
        let listener = server::bind(&address).map_err(bind_error)?;
        let bound = listener.local_addr().map_err(bind_error)?;

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
        let body_timeout = Duration::from_millis(settings.server.client_request_timeout_ms);
        let http_stats = Arc::new(HttpStats::default());
        // Validated with the settings, so this cannot fail here.
        let trusted = settings.server.trusted_networks().unwrap_or_default();
        let connections = Connections::new(
            settings.server.max_connections_per_ip,
            Duration::from_millis(settings.server.send_timeout_ms),
            trusted.clone(),
        );
        let live = Arc::new(Live::new(&settings.live));
        let webhook_stats = Arc::new(WebhookStats::default());
        if let Some(mut webhooks) = Webhooks::new(
            &settings.webhooks,
            Arc::clone(&changes),
            data_dir.path(),
            Arc::clone(&webhook_stats),
        )? {
            if let Some(node) = &cluster {
                let log = Arc::clone(&node.log);
                webhooks = webhooks.while_leading(Arc::new(move || log.leading().is_some()));
            }
            // Ends when the service begins to stop (with the live streams);
            // what it acknowledged is on disk after each delivery.
            actix_web::rt::spawn(webhooks.run(live.stopping()));
        }
        let service = Arc::new(BoxOffice::new(
            Arc::clone(&registry),
            Arc::clone(&log),
            settings.limits.clone(),
        ));
        let exporter = Sources {
            http: Arc::clone(&http_stats),
            events: Arc::clone(registry.counters()),
            event_count: {
                let registry = Arc::clone(&registry);
                Box::new(move || registry.event_count())
            },
            room_waiting: {
                let registry = Arc::clone(&registry);
                Box::new(move || registry.room_waiting())
            },
            journal: Arc::clone(journal.stats()),
            snapshots: Arc::clone(store.stats()),
            live: Arc::clone(&live),
            webhooks: webhook_stats,
            connections: Arc::clone(&connections),
            cluster: {
                let (cluster, service) = (cluster.clone(), Arc::clone(&service));
                Box::new(move || match &cluster {
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
                })
            },
        }
        .into_exporter();
        let state = web::Data::new(AppState {
            gate,
            http_stats,
            exporter,
            stopping: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            live,
            changes,
            openapi: openapi_bytes(&settings.limits),
            body_timeout,
            service,
            cluster: cluster.clone(),
        });
        let access_log = settings.log.access_log;
        let shared = state.clone();
        let mut identify = Identify::new(trusted);
        if let Some(node) = &cluster {
            // Changes that followers forward are run through this listener
            // (cluster/forward.rs).
            node.local_http().set_address(bound);
            identify = identify.with_forward_token(node.local_http().token());
        }
        let identify = web::Data::new(identify);
        let joining = Arc::clone(&registry);
        let app = move || {
            // Runs once on each worker's thread, as the worker starts.
            joining.join_worker();
            let mut app = App::new()
                .app_data(shared.clone())
                .app_data(identify.clone());
            if let Some(limiter) = &limiter {
                app = app.app_data(web::Data::new(Arc::clone(limiter)));
            }
            // Off (load tests) means out of the request path entirely.
            app.wrap(cluster_headers::ClusterHeaders)
                .wrap(Condition::new(
                    limiter.is_some(),
                    from_fn(rate_limit::enforce),
                ))
                .wrap(Condition::new(access_log, access_logger()))
                .wrap(from_fn(http_metrics::record))
                .wrap(from_fn(identity::identify))
                // Outermost: a connection over its unsent bound does no work.
                .wrap(from_fn(stream::wait_for_room))
                .configure(routes)
                .default_service(web::to(api::not_found))
        };
        let options = ServeOptions {
            workers: settings.worker_count(),
            max_connections: settings.server.max_connections,
            client_request_timeout: body_timeout,
            keep_alive: Duration::from_secs(settings.server.keep_alive_secs),
            shutdown_timeout_secs: settings.server.shutdown_timeout_secs,
            max_unsent_bytes: settings.server.max_unsent_bytes,
        };
        let server = server::serve(app, listener, &options, connections).map_err(bind_error)?;

        let interval = Duration::from_secs(settings.snapshot.interval_secs);
        let policy = SnapshotPolicy {
            journal_percent: settings.snapshot.journal_percent,
            journal_on: settings.journal.enabled,
        };
        // A cluster node rebuilds its state from its Raft log: no snapshots.
        let snapshotter = cluster.is_none().then(|| {
            Snapshotter::new(
                Arc::clone(&registry),
                Arc::clone(&store),
                interval,
                policy,
                restored_from,
            )
            .start()
        });
        Ok(Self {
            address: bound,
            server,
            registry,
            store,
            snapshotter,
            cluster,
            data_dir,
            sweeper,
            state,
            drain_timeout: Duration::from_secs(settings.server.shutdown_timeout_secs),
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// The bound address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Serves until `shutdown` completes, lets in-flight requests finish,
    /// then writes a final snapshot. An error means that snapshot failed.
    ///
    /// The event actors run on the HTTP workers' threads, which end with the
    /// server, so the final snapshot is taken before the server stops:
    /// accepting stops, answers close their connections, requests in flight
    /// finish (up to `server.shutdown_timeout_secs`), then every actor hands
    /// over its state and stops, and only then do the workers go.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), StopError> {
        let Self {
            server,
            registry,
            store,
            snapshotter,
            cluster,
            data_dir,
            sweeper,
            state,
            drain_timeout,
            ..
        } = self;
        let handle = server.handle();
        let serving = actix_web::rt::spawn(server);
        shutdown.await;
        state.stopping.store(true, Ordering::Relaxed);
        // Open streams would hold the drain for its whole timeout.
        state.live.stop_all();
        log::info!("stopping: finishing in-flight requests");
        handle.pause().await;
        drain(&state.in_flight, drain_timeout).await;
        if let Some(sweeper) = sweeper {
            sweeper.abort();
        }
        // No periodic snapshot may overlap the final one: stop the ticks and
        // wait out one in flight.
        let Some(snapshotter) = snapshotter else {
            // A cluster node: what it holds is in its Raft log already.
            registry.close();
            if let Some(node) = cluster {
                node.shutdown();
            }
            handle.stop(true).await;
            let _ = serving.await;
            registry.stop();
            drop(data_dir);
            return Ok(());
        };
        let (done, stopped) = tokio::sync::oneshot::channel();
        if snapshotter.send(StopSnapshots { done }).await.is_ok() {
            let _ = stopped.await;
        }
        // No event can be created after this, and every actor stops as it
        // hands over its state: nothing can change after this snapshot,
        // whatever a late request on a kept-alive connection asks (503).
        registry.close();
        let result = match take_snapshot(&registry, &store, true).await {
            Ok((_, written)) => {
                log::info!(
                    "final snapshot {} written: {} bytes",
                    written.path.display(),
                    written.bytes
                );
                Ok(())
            }
            Err(e) => Err(StopError::FinalSnapshot(e)),
        };
        handle.stop(true).await;
        if let Ok(Err(e)) = serving.await {
            log::error!("HTTP server ended with an error: {e}");
        }
        registry.journal().shutdown();
        registry.stop();
        drop(data_dir);
        result
    }
}

/// Waits until no request is in flight, or `timeout` has passed.
async fn drain(in_flight: &AtomicUsize, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let left = in_flight.load(Ordering::Acquire);
        if left == 0 {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            log::warn!("stopping with {left} request(s) still in flight after {timeout:?}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
