//! Builds the running service from [`Settings`] and runs it until told to stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use actix_web::dev::Server;
use actix_web::middleware::{from_fn, Condition, Logger};
use actix_web::{web, App};

use crate::actors::{take_snapshot, Registry, SnapshotFailed, Snapshotter, StopSnapshots};
use crate::cluster::ClusterNode;
use crate::config::Settings;
use crate::http::api::auth::{Gate, KeyFileError};
use crate::http::api::live::Live;
use crate::http::api::{self, routes};
use crate::http::identity::{self, Identify};
use crate::http::middleware::cluster as cluster_headers;
use crate::http::middleware::metrics::{self as http_metrics, HttpStats};
use crate::http::middleware::rate_limit::{self, IpRateLimiter};
use crate::http::transport::server;
use crate::http::transport::stream;
use crate::http::AppState;
use crate::persistence::data_dir::{DataDir, DataDirError};
use crate::persistence::journal::JournalError;
use crate::persistence::recovery::RecoveryError;
use crate::persistence::{SnapshotError, SnapshotStore};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

mod steps;

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
        let steps::Restored {
            store,
            recovered,
            restored_from: from,
        } = steps::restore(&data_dir, &settings)?;
        let logs = steps::open_logs(&settings, &data_dir, &store, &recovered)?;
        let registry = steps::registry(&settings, &logs, recovered);
        let cluster = steps::start_cluster(&settings, &data_dir, logs.cluster, &registry)?;
        let (listener, bound) = steps::listen(&settings)?;
        let (limiter, sweeper) = steps::rate_limiter(&settings);
        let trusted = steps::trusted_networks(&settings);
        let connections = steps::connections(&settings, trusted.clone());
        let live = Arc::new(Live::new(&settings.live));
        let webhooks =
            steps::start_webhooks(&settings, &logs.changes, &data_dir, cluster.as_ref(), &live)?;
        let service = steps::service(&settings, &registry, &logs.log);
        let http_stats = Arc::new(HttpStats::default());
        let exporter = steps::exporter(steps::Measured {
            http: Arc::clone(&http_stats),
            registry: Arc::clone(&registry),
            journal: Arc::clone(&logs.journal),
            store: Arc::clone(&store),
            live: Arc::clone(&live),
            webhooks,
            connections: Arc::clone(&connections),
            cluster: cluster.clone(),
            service: Arc::clone(&service),
        });
        let state = web::Data::new(AppState {
            gate,
            http_stats,
            exporter,
            stopping: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            live,
            seat_frames: Default::default(),
            changes: logs.changes,
            openapi: openapi_bytes(&settings.limits),
            body_timeout: Duration::from_millis(settings.server.client_request_timeout_ms),
            service,
            cluster: cluster.clone(),
        });
        let identify = steps::identify(trusted, cluster.as_ref(), bound);
        let (shared, identify) = (state.clone(), web::Data::new(identify));
        let (joining, access_log) = (Arc::clone(&registry), settings.log.access_log);
        let app = move || {
            // Runs once on each worker's thread, as the worker starts.
            joining.join_worker();
            app(
                shared.clone(),
                identify.clone(),
                limiter.clone(),
                access_log,
            )
        };
        let options = steps::serve_options(&settings);
        let server = server::serve(app, listener, &options, connections)
            .map_err(steps::bind_error(&settings))?;
        let snapshotter = steps::snapshotter(&settings, &registry, &store, from, cluster.is_some());
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

/// The app each HTTP worker runs: its middleware, outermost last, over
/// the routes.
fn app(
    shared: web::Data<AppState>,
    identify: web::Data<Identify>,
    limiter: Option<Arc<IpRateLimiter>>,
    access_log: bool,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let mut app = App::new().app_data(shared).app_data(identify);
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
