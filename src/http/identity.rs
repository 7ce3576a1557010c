//! Who sent a request: its client address (through trusted proxies only)
//! and its request id. Both are settled once, at the front of the
//! middleware chain, for the rate limit, the access log and the reply.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage};
use ipnet::IpNet;

/// The header a request id travels in, both ways.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request id taken from a client; a longer one is replaced.
const MAX_REQUEST_ID: usize = 128;

/// What [`identify`] settled for a request, in its extensions: one entry
/// for both, as each entry is an allocation of its own.
#[derive(Debug)]
struct Identified {
    /// The address the request is counted and logged under.
    client: Option<IpAddr>,
    /// The request's id, as echoed in `X-Request-Id`.
    request_id: HeaderValue,
    /// Whether a follower forwarded it (this process's token with it).
    forwarded: bool,
}

/// Settles the request's client address and id, then echoes the id on the reply.
pub struct Identify {
    /// Proxies whose `X-Forwarded-For` is believed.
    trusted: Vec<IpNet>,
    /// Makes generated ids unique across restarts of the process.
    prefix: u32,
    /// Requests given an id so far.
    counter: AtomicU64,
    /// On a cluster node: the token that marks a change a follower
    /// forwarded (`cluster/forward.rs`), whose client address the
    /// forwarding header then names.
    forward_token: Option<String>,
}

impl Identify {
    /// Believes `X-Forwarded-For` only from `trusted` peers.
    pub fn new(trusted: Vec<IpNet>) -> Self {
        let prefix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| {
                d.as_nanos() as u32 ^ std::process::id().rotate_left(16)
            });
        Self {
            trusted,
            prefix,
            counter: AtomicU64::new(0),
            forward_token: None,
        }
    }

    /// Also believes the forwarding header of a request that carries
    /// `token` (only this process knows it).
    pub fn with_forward_token(mut self, token: &str) -> Self {
        self.forward_token = Some(token.to_string());
        self
    }

    /// The client a follower forwarded this request for, when it carries
    /// this process's token; `None` for every other request, whatever
    /// headers it has.
    fn forwarded_client(
        &self,
        headers: &actix_web::http::header::HeaderMap,
    ) -> Option<Option<IpAddr>> {
        use crate::cluster::forward::{CLIENT_HEADER, TOKEN_HEADER};
        use subtle::ConstantTimeEq;
        let token = self.forward_token.as_ref()?;
        let carried = headers.get(TOKEN_HEADER)?;
        if !bool::from(carried.as_bytes().ct_eq(token.as_bytes())) {
            return None;
        }
        let client = headers
            .get(CLIENT_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        Some(client)
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// The client behind `peer`: `peer` itself unless it is a trusted proxy;
    /// then the right-most `X-Forwarded-For` hop that is not a trusted proxy
    /// (hops left of it could be written by the client). A hop that does not
    /// parse ends the walk at the last good one.
    pub fn client_ip<'a>(&self, peer: IpAddr, forwarded: impl Iterator<Item = &'a str>) -> IpAddr {
        if !self.is_trusted(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded.flat_map(|h| h.split(',')).collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            match parse_hop(hop) {
                Some(ip) => {
                    client = ip;
                    if !self.is_trusted(ip) {
                        break;
                    }
                }
                None => break,
            }
        }
        client
    }

    /// The client's id if it is short and plain, else a fresh one.
    fn request_id(&self, given: Option<&HeaderValue>) -> HeaderValue {
        let plain = |v: &&HeaderValue| {
            let bytes = v.as_bytes();
            !bytes.is_empty()
                && bytes.len() <= MAX_REQUEST_ID
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
        };
        if let Some(given) = given.filter(plain) {
            return given.clone();
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        // Formatted on the stack: the header value's own copy is the only
        // allocation (8 + 1 + at most 16 hex digits).
        let mut buf = [0u8; 32];
        let mut cursor = std::io::Cursor::new(&mut buf[..]);
        let written =
            std::io::Write::write_fmt(&mut cursor, format_args!("{:08x}-{n:x}", self.prefix));
        let len = usize::try_from(cursor.position()).unwrap_or(0);
        written
            .ok()
            .and_then(|()| HeaderValue::from_bytes(&buf[..len]).ok())
            .unwrap_or_else(|| HeaderValue::from_static("unknown"))
    }
}

/// An `X-Forwarded-For` hop: an address, perhaps with a port or brackets.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
}

/// The middleware: settles the request's client address and id (read by
/// [`client_ip_of`] and [`request_id_of`]) and puts `X-Request-Id` on the
/// reply.
pub async fn identify(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let Some(identify) = req.app_data::<web::Data<Identify>>() else {
        return next.call(req).await;
    };
    let forwarded_for = identify.forwarded_client(req.headers());
    let forwarded = forwarded_for.is_some();
    let client = forwarded_for.unwrap_or_else(|| {
        req.peer_addr().map(|peer| {
            let forwarded = req
                .headers()
                .get_all("x-forwarded-for")
                .filter_map(|v| v.to_str().ok());
            identify.client_ip(peer.ip(), forwarded)
        })
    });
    let request_id = identify.request_id(req.headers().get(REQUEST_ID));
    req.extensions_mut().insert(Identified {
        client,
        request_id,
        forwarded,
    });
    let mut response = next.call(req).await?;
    // Everything inside has read it by now: the id moves to the reply
    // rather than being copied.
    let identified = response.request().extensions_mut().remove::<Identified>();
    if let Some(Identified { request_id, .. }) = identified {
        response.headers_mut().insert(REQUEST_ID, request_id);
    }
    Ok(response)
}

/// The client address of a request: the one settled by [`identify`], else
/// the TCP peer.
pub fn client_ip_of(req: &actix_web::HttpRequest) -> Option<IpAddr> {
    req.extensions()
        .get::<Identified>()
        .and_then(|i| i.client)
        .or_else(|| req.peer_addr().map(|p| p.ip()))
}

/// Whether a follower forwarded this request to this node.
pub fn was_forwarded(req: &actix_web::HttpRequest) -> bool {
    req.extensions()
        .get::<Identified>()
        .is_some_and(|i| i.forwarded)
}

/// The request's id as [`identify`] settled it, while the request is
/// served.
pub fn request_id_of(req: &actix_web::HttpRequest) -> Option<String> {
    req.extensions()
        .get::<Identified>()
        .and_then(|i| i.request_id.to_str().ok().map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn proxies(list: &[&str]) -> Identify {
        Identify::new(list.iter().map(|s| s.parse().expect("net")).collect())
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let id = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            id.client_ip(ip("192.0.2.7"), ["1.2.3.4"].into_iter()),
            ip("192.0.2.7")
        );
        assert_eq!(
            proxies(&[]).client_ip(ip("10.0.0.1"), ["1.2.3.4"].into_iter()),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let id = proxies(&["10.0.0.0/8"]);
        // The client wrote "6.6.6.6" itself; the proxies appended the rest.
        let hops = ["6.6.6.6, 198.51.100.9", "10.0.0.2"];
        assert_eq!(
            id.client_ip(ip("10.0.0.1"), hops.into_iter()),
            ip("198.51.100.9")
        );
        assert_eq!(
            id.client_ip(ip("10.0.0.1"), std::iter::empty()),
            ip("10.0.0.1"),
            "no header: the proxy itself"
        );
        assert_eq!(
            id.client_ip(ip("10.0.0.1"), ["garbage, 10.0.0.3"].into_iter()),
            ip("10.0.0.3"),
            "an unparsable hop stops the walk"
        );
        assert_eq!(
            id.client_ip(ip("10.0.0.1"), ["[2001:db8::1]:443"].into_iter()),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn a_plain_request_id_is_kept_and_anything_else_replaced() {
        let id = proxies(&[]);
        let given = HeaderValue::from_static("abc-123_x.y:z");
        assert_eq!(id.request_id(Some(&given)), given);
        let odd = HeaderValue::from_static("has space");
        assert_ne!(id.request_id(Some(&odd)), odd);
        let long = HeaderValue::from_str(&"a".repeat(129)).expect("header");
        assert_ne!(id.request_id(Some(&long)), long);
        assert_ne!(id.request_id(None), id.request_id(None), "fresh ids differ");
    }
}
