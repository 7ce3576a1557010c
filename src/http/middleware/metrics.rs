//! Request counts and latencies by route pattern, method and status.
//!
//! A cell for every route of the route table, method and status the
//! service answers with exists from the start (a dense table of atomics), so
//! counting a request is a few atomic adds: no map, no lock, nothing shared
//! by the workers but the counters themselves. A status outside
//! [`STATUSES`] (none is expected) is counted exactly too, in a small map
//! behind a lock. Labels are route patterns, never raw paths, so no user id
//! reaches a label.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{ConnectionType, Method};
use actix_web::middleware::Next;
use actix_web::{web, Error};
use boxoffice_metrics::prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use boxoffice_metrics::prometheus_client::metrics::counter::ConstCounter;
use boxoffice_metrics::prometheus_client::metrics::MetricType;

use crate::http::api::route_table::{self, ROUTES};
use crate::http::AppState;
use boxoffice_metrics::AtomicHistogram;

/// The route label of requests no route matched.
pub const UNMATCHED: &str = "unmatched";

const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "other"];

/// Every status the service answers with: the successes of the API, the
/// codes of `ApiError` and the connection layer's own. Each has its cells.
pub const STATUSES: &[u16] = &[
    200, 201, 202, 204, 304, 400, 401, 403, 404, 405, 408, 409, 410, 413, 415, 429, 431, 500, 503,
];

/// `STATUS_SLOT[status]` is the status's index in [`STATUSES`], or
/// `u8::MAX` when it has no cell.
const STATUS_SLOT: [u8; 600] = {
    let mut slots = [u8::MAX; 600];
    let mut i = 0;
    while i < STATUSES.len() {
        slots[STATUSES[i] as usize] = i as u8;
        i += 1;
    }
    slots
};

/// The table.
pub struct HttpStats {
    /// Requests by (route, method, status slot), row-major.
    requests: Box<[AtomicU64]>,
    /// Requests answered with a status outside [`STATUSES`], exactly.
    unusual: std::sync::Mutex<std::collections::BTreeMap<(usize, usize, u16), u64>>,
    /// Latency by route.
    durations: Box<[AtomicHistogram]>,
    /// Requests refused with 429.
    pub rate_limited: AtomicU64,
}

impl Default for HttpStats {
    fn default() -> Self {
        let routes = ROUTES.len() + 1;
        Self {
            requests: (0..routes * METHODS.len() * STATUSES.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
            unusual: std::sync::Mutex::default(),
            durations: (0..routes).map(|_| AtomicHistogram::seconds()).collect(),
            rate_limited: AtomicU64::new(0),
        }
    }
}

impl std::fmt::Debug for HttpStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpStats").finish_non_exhaustive()
    }
}

impl HttpStats {
    fn route_index(pattern: Option<&str>) -> usize {
        pattern
            .and_then(route_table::index_of)
            .unwrap_or(ROUTES.len())
    }

    fn method_index(method: &Method) -> usize {
        METHODS
            .iter()
            .position(|m| *m == method.as_str())
            .unwrap_or(METHODS.len() - 1)
    }

    /// Counts one answered request.
    fn record(&self, route: usize, method: usize, status: u16, took: Duration) {
        match STATUS_SLOT.get(usize::from(status)).copied() {
            Some(slot) if slot != u8::MAX => {
                let cell = (route * METHODS.len() + method) * STATUSES.len() + usize::from(slot);
                if let Some(counter) = self.requests.get(cell) {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ => {
                let mut unusual = self.unusual.lock().unwrap_or_else(|p| p.into_inner());
                *unusual.entry((route, method, status)).or_default() += 1;
            }
        }
        if let Some(histogram) = self.durations.get(route) {
            histogram.observe_duration(took);
        }
    }

    fn route_name(route: usize) -> &'static str {
        ROUTES.get(route).map_or(UNMATCHED, |r| r.path)
    }

    /// Writes the request families.
    pub fn encode(&self, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
        {
            let mut family = encoder.encode_descriptor(
                "boxoffice_http_requests",
                "HTTP requests answered, by route pattern, method and status",
                None,
                MetricType::Counter,
            )?;
            for (cell, counter) in self.requests.iter().enumerate() {
                let n = counter.load(Ordering::Relaxed);
                if n == 0 {
                    continue;
                }
                let status = STATUSES[cell % STATUSES.len()].to_string();
                let method = METHODS[(cell / STATUSES.len()) % METHODS.len()];
                let route = Self::route_name(cell / STATUSES.len() / METHODS.len());
                let labels = [("route", route), ("method", method), ("status", &status)];
                ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
            }
            let unusual = self.unusual.lock().unwrap_or_else(|p| p.into_inner());
            for (&(route, method, status), &n) in unusual.iter() {
                let status = status.to_string();
                let labels = [
                    ("route", Self::route_name(route)),
                    ("method", METHODS[method]),
                    ("status", &status),
                ];
                ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "boxoffice_http_request_duration_seconds",
                "Time from a request's head to its answer, by route pattern",
                None,
                MetricType::Histogram,
            )?;
            // Routes never called are left out, as the request counts are.
            for (route, histogram) in self.durations.iter().enumerate() {
                if histogram.is_empty() {
                    continue;
                }
                let labels = [("route", Self::route_name(route))];
                histogram.encode(&mut family.encode_family(&labels)?)?;
            }
        }
        let rate_limited = ConstCounter::new(self.rate_limited.load(Ordering::Relaxed));
        rate_limited.encode(encoder.encode_descriptor(
            "boxoffice_rate_limited",
            "Requests refused with 429 by the per-IP quota",
            None,
            MetricType::Counter,
        )?)
    }
}

/// Counts a request in flight while it lives, dropped or answered.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Release);
    }
}

/// The middleware: counts every request by the pattern of the route it
/// matched (known before any handler runs) and the status of its answer,
/// and the requests in flight. Once the service is stopping, every answer
/// closes its connection, so keep-alive clients let the stop drain.
pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(req).await;
    };
    let started = Instant::now();
    // The table's own matcher first: the router's `match_pattern` runs
    // every route's regex again and allocates the pattern it returns.
    let route = route_table::index_of_path(req.path())
        .unwrap_or_else(|| HttpStats::route_index(req.match_pattern().as_deref()));
    let method = HttpStats::method_index(req.method());
    let in_flight = InFlight::enter(&state.in_flight);
    let mut answer = next.call(req).await;
    drop(in_flight);
    if state.stopping.load(Ordering::Relaxed) {
        if let Ok(response) = &mut answer {
            response
                .response_mut()
                .head_mut()
                .set_connection_type(ConnectionType::Close);
        }
    }
    let status = match &answer {
        Ok(response) => response.status().as_u16(),
        Err(e) => e.as_response_error().status_code().as_u16(),
    };
    state
        .http_stats
        .record(route, method, status, started.elapsed());
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_lands_in_its_own_cell_and_unknown_routes_in_unmatched() {
        let stats = HttpStats::default();
        let route = HttpStats::route_index(Some("/api/events/{eventId}/bookings/{userId}"));
        let method = HttpStats::method_index(&Method::PUT);
        stats.record(route, method, 200, Duration::from_millis(2));
        stats.record(route, method, 200, Duration::from_millis(3));
        let unmatched = HttpStats::route_index(Some("/api/nope"));
        assert_eq!(HttpStats::route_name(unmatched), UNMATCHED);
        stats.record(unmatched, 0, 404, Duration::ZERO);
        // A status with no cell is still counted, exactly.
        stats.record(route, method, 418, Duration::ZERO);
        let mut text = String::new();
        let mut registry = boxoffice_metrics::prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(Wrapper(stats)));
        boxoffice_metrics::prometheus_client::encoding::text::encode(&mut text, &registry)
            .expect("encodes");
        assert!(
            text.contains(
                r#"boxoffice_http_requests_total{route="/api/events/{eventId}/bookings/{userId}",method="PUT",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"route="unmatched",method="GET",status="404"} 1"#));
        assert!(text.contains(r#"method="PUT",status="418"} 1"#), "{text}");
    }

    #[derive(Debug)]
    struct Wrapper(HttpStats);

    impl boxoffice_metrics::prometheus_client::collector::Collector for Wrapper {
        fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
            self.0.encode(&mut encoder)
        }
    }
}
