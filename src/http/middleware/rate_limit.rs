//! Per-client-IP request quota, enforced with `governor`.
//!
//! Written here rather than taken from `actix-governor`, which is GPL-3.0.
//! The key is the client address settled by [`crate::http::identity`]: the TCP peer,
//! unless that is one of `server.trusted_proxies` (a client's own
//! `X-Forwarded-For` would let it pick a fresh quota per request).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, Error, ResponseError};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::RateLimitSettings;
use crate::http::api::error::ApiError;
use crate::http::identity::client_ip_of;
use crate::http::transport::connections::address_key;

/// Paths never counted against the quota: monitoring must always get through.
const EXEMPT_PATHS: &[&str] = &["/health", "/ready", "/leader"];

/// The quota of every client IP.
pub struct IpRateLimiter {
    /// One GCRA cell per IP.
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// The limiter's clock, to turn "not until" into seconds.
    clock: DefaultClock,
}

impl IpRateLimiter {
    /// `settings.requests` per `settings.period_secs`, allowed as one burst and
    /// refilled evenly over the period; `None` when disabled.
    pub fn from_settings(settings: &RateLimitSettings) -> Option<Arc<Self>> {
        if !settings.enabled {
            return None;
        }
        let burst = NonZeroU32::new(settings.requests)?;
        let period = Duration::from_secs(settings.period_secs) / settings.requests;
        let quota = Quota::with_period(period.max(Duration::from_nanos(1)))?.allow_burst(burst);
        Some(Arc::new(Self {
            limiter: DefaultKeyedRateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        }))
    }

    /// `Ok` if `ip` may go on, else how many whole seconds it must wait.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        let key = address_key(ip);
        self.limiter.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }

    /// Forgets IPs whose quota has fully refilled, so memory stays bounded
    /// by the clients of one period.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// The middleware: answers 429 `RATE_LIMITED` with `Retry-After` once an IP
/// is over its quota.
pub async fn enforce(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let limiter = req.app_data::<web::Data<Arc<IpRateLimiter>>>().cloned();
    if let (Some(limiter), Some(ip)) = (limiter, client_ip_of(req.request())) {
        if !EXEMPT_PATHS.contains(&req.path()) {
            if let Err(secs) = limiter.check(ip) {
                if let Some(state) = req.app_data::<web::Data<crate::http::AppState>>() {
                    state
                        .http_stats
                        .rate_limited
                        .fetch_add(1, Ordering::Relaxed);
                }
                let response = ApiError::RateLimited(secs.max(1)).error_response();
                return Ok(req.into_response(response).map_into_right_body());
            }
        }
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_ip_gets_its_own_burst_then_a_wait_in_whole_seconds() {
        let settings = RateLimitSettings {
            enabled: true,
            requests: 3,
            period_secs: 60,
        };
        let limiter = IpRateLimiter::from_settings(&settings).expect("enabled");
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        for _ in 0..3 {
            assert_eq!(limiter.check(a), Ok(()));
        }
        let wait = limiter.check(a).expect_err("over quota");
        assert!(
            (1..=20).contains(&wait),
            "one request refills every 20 s, got {wait}"
        );
        assert_eq!(limiter.check(b), Ok(()), "another IP is unaffected");
    }

    #[test]
    fn a_disabled_limit_builds_no_limiter() {
        let settings = RateLimitSettings {
            enabled: false,
            requests: 3,
            period_secs: 60,
        };
        assert!(IpRateLimiter::from_settings(&settings).is_none());
    }
}
