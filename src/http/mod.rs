//! Everything HTTP, by job:
//! - [`api`]: the routes of `docs/API.md`, their handlers, bodies, errors,
//!   access control, the Server-Sent Event streams ([`api::live`], the
//!   change feed's in `api/change_stream.rs`) and the OpenAPI document;
//! - [`identity`]: a request's client address (through trusted proxies)
//!   and request id, set by the first middleware and read by the API;
//! - [`middleware`]: what every request passes through: the per-IP rate
//!   limit, the cluster's leader-only changes, the metrics;
//! - [`transport`]: the connection layer under actix-web, which works
//!   against actix-http from underneath (its module doc lists every
//!   assumption it makes, and the version they were checked against).
//!
//! [`AppState`] is what every handler shares.

pub mod api;
pub mod identity;
pub mod middleware;
pub mod transport;

use std::sync::Arc;

pub use api::{routes, ApiError};

use crate::service::BoxOffice;

/// What every handler shares.
pub struct AppState {
    /// The booking service.
    pub service: Arc<BoxOffice>,
    /// Who may call which routes.
    pub gate: api::auth::Gate,
    /// Requests counted by route, method and status.
    pub http_stats: Arc<middleware::metrics::HttpStats>,
    /// Renders `/metrics`.
    pub exporter: boxoffice_metrics::Exporter,
    /// `/api/openapi.json`, rendered at start with the configured limits.
    pub openapi: actix_web::web::Bytes,
    /// Open live streams.
    pub live: Arc<api::live::Live>,
    /// The frames the seat maps' live streams share.
    pub seat_frames: Arc<api::seat_live::SeatFrameCache>,
    /// The change feed.
    pub changes: Arc<crate::changes::ChangeFeed>,
    /// Set once the service has begun to stop; `/ready` then says 503 and
    /// every answer closes its connection.
    pub stopping: std::sync::atomic::AtomicBool,
    /// Requests being handled now: a stop waits for them to finish before
    /// the final snapshot.
    pub in_flight: std::sync::atomic::AtomicUsize,
    /// A request body must arrive whole within this (actix's own timeout
    /// covers only the head).
    pub body_timeout: std::time::Duration,
    /// This node of a cluster; `None` for a single node.
    pub cluster: Option<Arc<crate::cluster::ClusterNode>>,
}

impl AppState {
    /// The index of the newest change this node's answers reflect: the
    /// Raft index applied, or a single node's newest durable journal
    /// position.
    pub fn change_index(&self) -> u64 {
        match &self.cluster {
            Some(node) => node.log.applied_index(),
            None => self.service.durable_position(),
        }
    }

    /// Waits until [`Self::change_index`] reaches `min`, up to `wait`;
    /// whether it did.
    pub async fn wait_for_index(&self, min: u64, wait: std::time::Duration) -> bool {
        if self.change_index() >= min {
            return true;
        }
        match &self.cluster {
            Some(node) => {
                let mut applied = node.log.watch_applied();
                tokio::time::timeout(wait, applied.wait_for(|i| *i >= min))
                    .await
                    .is_ok_and(|r| r.is_ok())
            }
            None => self.service.wait_for_position(min, wait).await,
        }
    }
}
