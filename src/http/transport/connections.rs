//! Which connections are let in: a cap per client address, and a send
//! timeout so a client that stops reading is cut off by the kernel.
//!
//! actix-server caps connections per worker (`server.max_connections`), so
//! one address could still take them all. Here every accepted connection
//! takes a [`Slot`] under its peer address; past `server.max_connections_per_ip`
//! it is answered 429 and closed at once, so the flood fails that client,
//! not everyone. Trusted proxies carry many clients and are not capped.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use ipnet::IpNet;

/// Open connections per peer address, and what was refused.
pub struct Connections {
    /// Most connections one address may hold; 0 means no cap.
    per_ip: usize,
    /// `TCP_USER_TIMEOUT`: how long written data may sit unacknowledged
    /// (a peer that does not read) before the kernel drops the connection.
    send_timeout: Duration,
    /// Peers not capped (reverse proxies).
    trusted: Vec<IpNet>,
    /// Open connections by address; an address leaves with its last one.
    open: AddressShares,
    /// Connections refused over the cap, for `/metrics`.
    refused: AtomicU64,
    /// Connections being served, capped or not.
    served: AtomicUsize,
}

impl Connections {
    /// Caps each address not in `trusted` at `per_ip` (0: no cap).
    pub fn new(per_ip: usize, send_timeout: Duration, trusted: Vec<IpNet>) -> Arc<Self> {
        Arc::new(Self {
            per_ip,
            send_timeout,
            trusted,
            open: AddressShares::new(per_ip),
            refused: AtomicU64::new(0),
            served: AtomicUsize::new(0),
        })
    }

    /// A slot for a new connection from `peer`, or `None` when that address
    /// holds its cap already.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Option<Slot> {
        // A proxy is trusted by its own address; an IPv4 one that reaches a
        // dual-stack listener arrives IPv4-mapped.
        let canonical = peer.to_canonical();
        if self.per_ip == 0 || self.trusted.iter().any(|net| net.contains(&canonical)) {
            self.served.fetch_add(1, Ordering::Relaxed);
            return Some(Slot {
                owner: Arc::clone(self),
                ip: None,
            });
        }
        let Some(key) = self.open.take(peer) else {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        self.served.fetch_add(1, Ordering::Relaxed);
        Some(Slot {
            owner: Arc::clone(self),
            ip: Some(key),
        })
    }

    /// The cap per address (0: none).
    pub fn per_ip(&self) -> usize {
        self.per_ip
    }

    /// Connections refused over the per-address cap so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// The refusal counter itself, for the exporter.
    pub fn refused_counter(&self) -> &AtomicU64 {
        &self.refused
    }

    /// Connections being served now.
    pub fn served(&self) -> usize {
        self.served.load(Ordering::Relaxed)
    }

    /// Writes the connection families.
    pub fn encode(
        &self,
        encoder: &mut boxoffice_metrics::prometheus_client::encoding::DescriptorEncoder,
    ) -> std::fmt::Result {
        boxoffice_metrics::gauge(
            encoder,
            "boxoffice_connections",
            "TCP connections being served",
            self.served() as i64,
        )?;
        boxoffice_metrics::counter(
            encoder,
            "boxoffice_connections_refused",
            "Connections refused because their address held server.max_connections_per_ip",
            self.refused_counter(),
        )
    }

    /// Open connections counted under `ip` (trusted peers are not counted).
    pub fn open_from(&self, ip: IpAddr) -> usize {
        self.open.held(ip)
    }

    /// Sets the socket options every accepted connection gets.
    ///
    /// The send buffer is capped at `send_buffer` bytes: left to itself the
    /// kernel grows it to 4 MiB, so a client that does not read would take
    /// that many reply bytes (dozens of replies computed for nobody) before
    /// the unsent bound could hold its requests.
    pub fn prepare(&self, stream: &actix_web::rt::net::TcpStream, send_buffer: usize) {
        let socket = socket2::SockRef::from(stream);
        if let Err(e) = socket.set_send_buffer_size(send_buffer) {
            log::warn!("SO_SNDBUF not set: {e}");
        }
        #[cfg(target_os = "linux")]
        if let Err(e) = socket.set_tcp_user_timeout(Some(self.send_timeout)) {
            log::warn!("TCP_USER_TIMEOUT not set: {e}");
        }
        #[cfg(not(target_os = "linux"))]
        let _ = self.send_timeout;
    }

    fn release(&self, ip: Option<IpAddr>) {
        self.served.fetch_sub(1, Ordering::Relaxed);
        if let Some(key) = ip {
            self.open.give_back(key);
        }
    }
}

/// Places held by each client address (by [`address_key`]), at most `cap`
/// each: the connection cap and the live-stream cap count alike. An
/// address leaves the map with its last place, so it holds only the
/// addresses holding something now.
#[derive(Debug)]
pub struct AddressShares {
    held: DashMap<IpAddr, usize>,
    cap: usize,
}

impl AddressShares {
    /// At most `cap` places per address.
    pub fn new(cap: usize) -> Self {
        Self {
            held: DashMap::new(),
            cap,
        }
    }

    /// Takes one of `ip`'s places: the key to give it back under, or
    /// `None` when the address holds its cap already.
    pub fn take(&self, ip: IpAddr) -> Option<IpAddr> {
        let key = address_key(ip);
        let mut held = self.held.entry(key).or_insert(0);
        if *held >= self.cap {
            return None;
        }
        *held += 1;
        Some(key)
    }

    /// Gives back a place taken under `key`.
    pub fn give_back(&self, key: IpAddr) {
        // Removing under the entry lock keeps a concurrent take from
        // counting into an entry that is about to vanish.
        self.held.remove_if_mut(&key, |_, held| {
            *held = held.saturating_sub(1);
            *held == 0
        });
    }

    /// Places `ip`'s address holds now.
    pub fn held(&self, ip: IpAddr) -> usize {
        self.held.get(&address_key(ip)).map_or(0, |n| *n)
    }

    /// Addresses holding a place now.
    pub fn addresses(&self) -> usize {
        self.held.len()
    }
}

/// One admitted connection; gives its place back when dropped.
pub struct Slot {
    owner: Arc<Connections>,
    /// `None` for uncapped peers.
    ip: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.owner.release(self.ip);
    }
}

/// The address that a per-address quota counts a client under: an
/// IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, as a dual-stack listener
/// sees IPv4 clients) as its IPv4 address, and an IPv6 address by its /64,
/// the block one subscriber is usually given (counting single IPv6
/// addresses would let one client take a fresh quota per address). Used by
/// the connection cap, the rate limit and the live-stream cap alike.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(std::net::Ipv6Addr::from(prefix))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn an_address_is_capped_and_gets_its_place_back() {
        let connections = Connections::new(2, Duration::from_secs(10), vec![]);
        let a = connections.admit(ip("10.0.0.1")).expect("first");
        let _b = connections.admit(ip("10.0.0.1")).expect("second");
        assert!(connections.admit(ip("10.0.0.1")).is_none());
        assert_eq!(connections.refused(), 1);
        // Another address is not affected.
        let other = connections.admit(ip("10.0.0.2"));
        assert!(other.is_some());
        assert_eq!(connections.served(), 3);
        drop(a);
        assert_eq!(connections.open_from(ip("10.0.0.1")), 1);
        assert_eq!(connections.served(), 2);
        assert!(connections.admit(ip("10.0.0.1")).is_some());
    }

    #[test]
    fn the_last_connection_of_an_address_removes_its_entry() {
        let connections = Connections::new(5, Duration::from_secs(10), vec![]);
        let slots: Vec<_> = (0..5)
            .map(|_| connections.admit(ip("::1")).expect("admitted"))
            .collect();
        assert_eq!(connections.open_from(ip("::1")), 5);
        drop(slots);
        assert_eq!(connections.open.addresses(), 0);
    }

    #[test]
    fn trusted_proxies_and_a_zero_cap_are_not_counted() {
        let trusted = vec!["10.1.0.0/16".parse().expect("net")];
        let connections = Connections::new(1, Duration::from_secs(10), trusted);
        let _held: Vec<_> = (0..3)
            .map(|_| connections.admit(ip("10.1.2.3")).expect("proxy"))
            .collect();
        assert_eq!(connections.open_from(ip("10.1.2.3")), 0);
        let uncapped = Connections::new(0, Duration::from_secs(10), vec![]);
        let _held: Vec<_> = (0..3)
            .map(|_| uncapped.admit(ip("10.0.0.9")).expect("no cap"))
            .collect();
        assert_eq!(uncapped.refused(), 0);
    }

    #[test]
    fn mapped_ipv4_counts_as_ipv4_and_ipv6_by_its_64() {
        assert_eq!(address_key(ip("::ffff:10.0.0.7")), ip("10.0.0.7"));
        assert_eq!(address_key(ip("10.0.0.7")), ip("10.0.0.7"));
        assert_eq!(
            address_key(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(
            address_key(ip("2001:db8:1:2::1")),
            address_key(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            address_key(ip("2001:db8:1:2::1")),
            address_key(ip("2001:db8:1:3::1"))
        );
    }

    #[test]
    fn one_ipv6_block_shares_one_connection_cap() {
        let connections = Connections::new(1, std::time::Duration::from_secs(1), Vec::new());
        let first = connections.admit(ip("2001:db8::1"));
        assert!(first.is_some());
        assert!(connections.admit(ip("2001:db8::2")).is_none(), "same /64");
        assert!(
            connections.admit(ip("2001:db8:0:1::1")).is_some(),
            "another /64"
        );
        let v4 = connections.admit(ip("192.0.2.1"));
        assert!(v4.is_some());
        assert!(
            connections.admit(ip("::ffff:192.0.2.1")).is_none(),
            "the same IPv4 client"
        );
    }
}
