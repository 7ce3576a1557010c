//! A change sent to a follower is forwarded to the leader (contract v4,
//! Corrections): the follower sends the request over the peers'
//! authenticated connection (`network.rs`), the leader answers it through
//! its own HTTP stack, and the client gets the leader's answer as it was,
//! `X-Boxoffice-Index` included.
//!
//! The leader runs a forwarded request through its own listener on
//! loopback, so every route, check and reply shape is the one a direct
//! request gets, with two headers added: a token that only this process
//! knows (random at start, never sent off the machine) and the client's
//! address, which the leader's identity layer takes for the rate limit
//! and the log only when the token matches. A forwarded request is never
//! forwarded again: a leader that lost its leadership meanwhile answers
//! `NOT_LEADER`, so a request crosses at most one peer hop.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Carries this process's token on a forwarded request.
pub const TOKEN_HEADER: &str = "x-boxoffice-forward-token";
/// Carries the client's address on a forwarded request.
pub const CLIENT_HEADER: &str = "x-boxoffice-forwarded-client";

/// The largest body a follower forwards: above every route's own limit
/// (the leader answers those), so a body the leader would refuse with
/// 413 is refused the same way without crossing the network.
pub const MAX_FORWARDED_BODY: usize = 8 << 20;

/// A change request, as the follower received it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Forwarded {
    /// `PUT`, `POST`, ...
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// The end-to-end headers (see [`end_to_end`]).
    pub headers: Vec<(String, Vec<u8>)>,
    /// The whole body.
    pub body: Vec<u8>,
    /// The client's address as the follower settled it (trusted proxies
    /// included): the leader counts the request under it.
    pub client: Option<IpAddr>,
}

/// The leader's answer, as its HTTP stack gave it.
#[derive(Debug, Serialize, Deserialize)]
pub struct ForwardAnswer {
    /// The status code.
    pub status: u16,
    /// The end-to-end headers.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The whole body.
    pub body: Vec<u8>,
}

/// Whether a header describes the request or answer rather than one
/// connection (RFC 9110 7.6.1), and is not one of the forwarding headers,
/// which only the leader's own call sets.
pub fn end_to_end(name: &str) -> bool {
    !matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "expect"
            | "host"
            | "content-length"
            | TOKEN_HEADER
            | CLIENT_HEADER
    )
}

/// The leader's side: answers forwarded requests through this process's
/// own HTTP listener.
pub struct LocalHttp {
    /// Where this process's HTTP listener is bound (set once bound).
    address: OnceLock<SocketAddr>,
    /// Proves a request on loopback came from this process.
    token: String,
    client: reqwest::Client,
}

impl LocalHttp {
    /// A fresh token; calls give up after `timeout` (the leader's own
    /// bound on a change's commit, plus a margin).
    pub fn new(timeout: Duration) -> std::io::Result<Self> {
        let mut random = [0u8; 32];
        getrandom::fill(&mut random).map_err(std::io::Error::other)?;
        let token = random.iter().map(|b| format!("{b:02x}")).collect();
        // A connection per forwarded change: a pooled one that sat idle
        // may be closed by the listener's keep-alive just as a request is
        // written on it, and that request's fate is then unknown. Loopback
        // connections are cheap, and forwarding is the uncommon path.
        let client = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Self {
            address: OnceLock::new(),
            token,
            client,
        })
    }

    /// The token the identity layer checks.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// This process's HTTP listener is bound at `bound` (an unspecified
    /// address is reached on loopback).
    pub fn set_address(&self, bound: SocketAddr) {
        let ip = match bound.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let _ = self.address.set(SocketAddr::new(ip, bound.port()));
    }

    /// Runs `request` through this process's HTTP stack; an error when
    /// it could not be run or its answer was not read.
    pub async fn answer(&self, request: Forwarded) -> Result<ForwardAnswer, String> {
        let address = self
            .address
            .get()
            .ok_or("this node's HTTP listener is not bound yet")?;
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| format!("a forwarded request's method {:?}", request.method))?;
        if !request.uri.starts_with('/') {
            return Err(format!("a forwarded request's path {:?}", request.uri));
        }
        let mut call = self
            .client
            .request(method, format!("http://{address}{}", request.uri))
            .header(TOKEN_HEADER, &self.token)
            .body(request.body);
        if let Some(client) = request.client {
            call = call.header(CLIENT_HEADER, client.to_string());
        }
        for (name, value) in &request.headers {
            if end_to_end(name) {
                call = call.header(name.as_str(), value.as_slice());
            }
        }
        let response = call.send().await.map_err(|e| e.without_url().to_string())?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter(|(name, _)| end_to_end(name.as_str()))
            .map(|(name, value)| (name.as_str().to_string(), value.as_bytes().to_vec()))
            .collect();
        let body = response
            .bytes()
            .await
            .map_err(|e| e.without_url().to_string())?;
        Ok(ForwardAnswer {
            status,
            headers,
            body: body.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_headers_and_the_forwarding_ones_are_not_passed_on() {
        // `expect`: the follower has read the whole body already.
        for name in [
            "connection",
            "transfer-encoding",
            "host",
            "expect",
            TOKEN_HEADER,
            CLIENT_HEADER,
        ] {
            assert!(!end_to_end(name), "{name}");
        }
        for name in [
            "authorization",
            "content-type",
            "idempotency-key",
            "x-request-id",
        ] {
            assert!(end_to_end(name), "{name}");
        }
    }

    #[test]
    fn an_unspecified_listener_is_reached_on_loopback() {
        let local = LocalHttp::new(Duration::from_secs(1)).expect("client");
        local.set_address("0.0.0.0:8101".parse().expect("address"));
        assert_eq!(
            local.address.get().copied(),
            Some("127.0.0.1:8101".parse().expect("address"))
        );
        assert_eq!(local.token().len(), 64);
        let other = LocalHttp::new(Duration::from_secs(1)).expect("client");
        assert_ne!(local.token(), other.token(), "a token per process");
    }
}
