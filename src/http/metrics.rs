//! Request counts and latencies by route pattern, method and status.
//!
//! Every cell exists from the start (a dense table of atomics), so counting
//! a request is a few atomic adds: no map, no lock, nothing shared by the
//! workers but the counters themselves. Labels are route patterns, never
//! raw paths, so no user id reaches a label.

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

use super::AppState;
use boxoffice_metrics::AtomicHistogram;

/// Every route pattern the service serves; requests that match none are
/// counted under [`UNMATCHED`].
pub const ROUTE_PATTERNS: &[&str] = &[
    "/",
    "/health",
    "/ready",
    "/metrics",
    "/api/openapi.json",
    "/api/initialize",
    "/api/book",
    "/api/cancel",
    "/api/confirm",
    "/api/booking-status/{eventId}/{userId}",
    "/api/status/{eventId}",
    "/api/events",
    "/api/events/{eventId}",
    "/api/events/{eventId}/bookings/{userId}",
    "/api/events/{eventId}/bookings/{userId}/confirm",
    "/api/events/{eventId}/waiting-list",
    "/api/events/{eventId}/live",
    "/api/events/{eventId}/bookings/{userId}/live",
];

/// The route label of requests no route matched.
pub const UNMATCHED: &str = "unmatched";

const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "other"];
/// Status codes 100 to 599, one cell each.
const FIRST_STATUS: u16 = 100;
const STATUSES: usize = 500;

/// The table.
pub struct HttpStats {
    /// Requests by (route, method, status), row-major.
    requests: Box<[AtomicU64]>,
    /// Latency by route.
    durations: Box<[AtomicHistogram]>,
    /// Requests refused with 429.
    pub rate_limited: AtomicU64,
}

impl Default for HttpStats {
    fn default() -> Self {
        let routes = ROUTE_PATTERNS.len() + 1;
        Self {
            requests: (0..routes * METHODS.len() * STATUSES)
                .map(|_| AtomicU64::new(0))
                .collect(),
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
            .and_then(|p| ROUTE_PATTERNS.iter().position(|r| *r == p))
            .unwrap_or(ROUTE_PATTERNS.len())
    }

    fn method_index(method: &Method) -> usize {
        METHODS
            .iter()
            .position(|m| *m == method.as_str())
            .unwrap_or(METHODS.len() - 1)
    }

    /// Counts one answered request.
    fn record(&self, route: usize, method: usize, status: u16, took: Duration) {
        let status = usize::from(status.clamp(FIRST_STATUS, 599) - FIRST_STATUS);
        let cell = (route * METHODS.len() + method) * STATUSES + status;
        if let Some(counter) = self.requests.get(cell) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(histogram) = self.durations.get(route) {
            histogram.observe_duration(took);
        }
    }

    fn route_name(route: usize) -> &'static str {
        ROUTE_PATTERNS.get(route).copied().unwrap_or(UNMATCHED)
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
                let status = (FIRST_STATUS as usize + cell % STATUSES).to_string();
                let method = METHODS[(cell / STATUSES) % METHODS.len()];
                let route = Self::route_name(cell / STATUSES / METHODS.len());
                let labels = [("route", route), ("method", method), ("status", &status)];
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
    let route = HttpStats::route_index(req.match_pattern().as_deref());
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
        let mut text = String::new();
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(Wrapper(stats)));
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        assert!(
            text.contains(
                r#"boxoffice_http_requests_total{route="/api/events/{eventId}/bookings/{userId}",method="PUT",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"route="unmatched",method="GET",status="404"} 1"#));
    }

    #[derive(Debug)]
    struct Wrapper(HttpStats);

    impl prometheus_client::collector::Collector for Wrapper {
        fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
            self.0.encode(&mut encoder)
        }
    }
}
