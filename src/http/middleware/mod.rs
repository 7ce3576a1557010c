//! What every request passes through before its handler, outermost first:
//! [`identity`](crate::http::identity) (the client's address, trusted proxies resolved, and a
//! request id), [`metrics`] (counted by route, method and status) and
//! [`rate_limit`] (the per-IP quota over `governor`), then [`cluster`]
//! (changes only on a cluster's leader; the change index headers).

pub mod cluster;
pub mod metrics;
pub mod rate_limit;
