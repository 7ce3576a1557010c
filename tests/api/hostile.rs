//! Hostile clients against the real binary, on loopback, bounded in time:
//! 2,000 connections that send a head and then trickle the body, and 200
//! that pipeline large reads and never read a reply, both reconnecting as
//! soon as the server drops them, for 10 s. Meanwhile one normal client
//! books. The normal client must be served throughout, the server's memory
//! must stay bounded, and the server must close every hostile connection
//! on its own.
//!
//! The hostile clients come from 127.0.0.2 to 127.0.0.6 (all of 127/8 is
//! loopback on Linux), the normal client from 127.0.0.1, so the per-address
//! cap sees them apart as it would real clients.
//!
//! It measures latency, so it runs against an optimised server:
//! `BOXOFFICE_TEST_BINARY=target/release/boxoffice cargo test --test api
//! hostile -- --ignored` (as `.ci/run` does), or `cargo test --release ...`.
//! The debug server spends 10 to 30 times longer on each reply, and 2,200
//! clients on two cores then say nothing about the server's design.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::process::{command, Server};

const SLOW_BODIES: usize = 2_000;
const PIPELINERS: usize = 200;
const HOLD: Duration = Duration::from_secs(10);
/// The server's timeouts in this test: 2 s for a request to arrive, 2 s
/// for written data to be read.
const TIMEOUT_MS: &str = "2000";
/// After the hold, by when every hostile connection must be closed: the
/// timeouts plus the kernel's probe back-off (0.2, 0.4, ... 3.2 s).
const CLOSE_DEADLINE: Duration = Duration::from_secs(15);
/// Resident memory the server may reach during the test: measured at
/// 158 MB (19 MB before), most of it the 200 pipeliners' unsent replies,
/// each connection's bounded by `server.max_unsent_bytes` (256 KiB). Before
/// the bounds, 200 pipeliners took 2.4 GB.
const MEMORY_BOUND_BYTES: u64 = 256 * 1024 * 1024;

fn resident_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// A non-blocking connection from `source` to `target`.
fn connect_from(source: Ipv4Addr, target: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::from((source, 0)).into())?;
    socket.connect(&target.into())?;
    let stream = TcpStream::from(socket);
    stream.set_nonblocking(true)?;
    Ok(stream)
}

/// Whether the server has closed `stream`: end of stream or an error on
/// read, or an error on `write` (when given bytes). Reads what is there.
fn closed_by_server(stream: &mut TcpStream, write: Option<&[u8]>) -> bool {
    let mut buf = [0u8; 16 * 1024];
    if write.is_none() {
        loop {
            match stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => return true,
            }
        }
    }
    if let Some(bytes) = write {
        match stream.write(bytes) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => return true,
        }
    }
    false
}

/// What the hostile side saw.
#[derive(Debug, Default)]
struct Hostile {
    opened: usize,
    closed_by_server: usize,
    still_open: usize,
    connect_errors: usize,
}

/// The hostile clients: hold both groups for `HOLD`, reconnecting, then
/// stop reconnecting and wait for the server to close what is left.
fn run_hostile(target: SocketAddr, peak_rss: impl Fn()) -> Hostile {
    let slow_head = b"PUT /api/events/1/bookings/slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{";
    let pipelined = b"GET /api/events?limit=1000 HTTP/1.1\r\nHost: x\r\n\r\n".repeat(64);
    let mut slow: Vec<Option<TcpStream>> = (0..SLOW_BODIES).map(|_| None).collect();
    let mut pipes: Vec<Option<TcpStream>> = (0..PIPELINERS).map(|_| None).collect();
    let mut seen = Hostile::default();
    let started = Instant::now();
    let mut tick = 0u64;
    loop {
        let holding = started.elapsed() < HOLD;
        if !holding && slow.iter().chain(&pipes).all(Option::is_none) {
            break;
        }
        if started.elapsed() > HOLD + CLOSE_DEADLINE {
            seen.still_open = slow.iter().chain(&pipes).filter(|s| s.is_some()).count();
            break;
        }
        for (i, slot) in slow.iter_mut().enumerate() {
            match slot {
                None if holding => {
                    let source = Ipv4Addr::new(127, 0, 0, 2 + (i % 4) as u8);
                    match connect_from(source, target).and_then(|mut s| {
                        s.write_all(slow_head)?;
                        Ok(s)
                    }) {
                        Ok(s) => {
                            seen.opened += 1;
                            *slot = Some(s);
                        }
                        Err(_) => seen.connect_errors += 1,
                    }
                }
                None => {}
                Some(stream) => {
                    // A look and one byte a second each, staggered.
                    let due = (tick + i as u64).is_multiple_of(10);
                    if due
                        && (closed_by_server(stream, None) || closed_by_server(stream, Some(b" ")))
                    {
                        seen.closed_by_server += 1;
                        *slot = None;
                    }
                }
            }
        }
        for slot in pipes.iter_mut() {
            match slot {
                None if holding => match connect_from(Ipv4Addr::new(127, 0, 0, 6), target) {
                    Ok(s) => {
                        seen.opened += 1;
                        *slot = Some(s);
                    }
                    Err(_) => seen.connect_errors += 1,
                },
                None => {}
                Some(_) => {
                    // Never read: only keep the pipeline full.
                    let closed = slot
                        .as_mut()
                        .is_some_and(|stream| closed_by_server(stream, Some(&pipelined)));
                    if closed {
                        seen.closed_by_server += 1;
                        *slot = None;
                    }
                }
            }
        }
        peak_rss();
        tick += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    seen
}

fn raise_file_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    let wanted = hard.min(65_536);
    if soft < wanted {
        setrlimit(Resource::RLIMIT_NOFILE, wanted, hard).expect("setrlimit");
    }
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    assert!(
        soft >= 2 * (SLOW_BODIES + PIPELINERS) as u64 + 500,
        "this test needs about 5,000 file descriptors; RLIMIT_NOFILE is {soft}"
    );
}

#[actix_web::test]
#[ignore = "measures latency: run against the release binary, as .ci/run does"]
async fn hostile_clients_do_not_starve_a_normal_one() {
    assert!(
        !cfg!(debug_assertions) || std::env::var_os("BOXOFFICE_TEST_BINARY").is_some(),
        "run this test with --release (or BOXOFFICE_TEST_BINARY naming an optimised build)"
    );
    raise_file_limit();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = command(dir.path());
    cmd.env("BOXOFFICE__SERVER__CLIENT_REQUEST_TIMEOUT_MS", TIMEOUT_MS)
        .env("BOXOFFICE__SERVER__SEND_TIMEOUT_MS", TIMEOUT_MS);
    let server = Server::start_with(cmd);
    let pid = server.child.id();
    let http = reqwest::Client::new();
    // Pages of 100 events with long names: about 40 KB per reply.
    for n in 0..100 {
        let (status, body) = crate::process::request(
            &http,
            reqwest::Method::POST,
            format!("{}/api/events", server.base),
            Some(serde_json::json!({"totalTickets": 1_000_000, "name": format!("{n:0>190}")})),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let target: SocketAddr = server
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("address");
    let baseline = resident_bytes(pid);

    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(baseline));
    let hostile = {
        let peak = std::sync::Arc::clone(&peak);
        std::thread::spawn(move || {
            run_hostile(target, || {
                peak.fetch_max(resident_bytes(pid), std::sync::atomic::Ordering::Relaxed);
            })
        })
    };

    // The normal client: one booking after another for the hold.
    let mut latencies = Vec::new();
    let mut failures = Vec::new();
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < HOLD {
        let sent = Instant::now();
        let res = http
            .put(format!("{}/api/events/1/bookings/normal{n}", server.base))
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        latencies.push(sent.elapsed());
        match res {
            Ok(res) if res.status().is_success() => {}
            Ok(res) => failures.push(format!("{}", res.status())),
            Err(e) => failures.push(e.to_string()),
        }
        n += 1;
    }
    let seen = tokio::task::spawn_blocking(move || hostile.join().expect("hostile thread"))
        .await
        .expect("join");
    latencies.sort();
    let p50 = boxoffice_testkit::percentile(&latencies, 0.50);
    let p99 = boxoffice_testkit::percentile(&latencies, 0.99);
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "normal client: {} bookings, p50 {p50:?}, p99 {p99:?}; hostile: {seen:?}; resident memory {} MB before, {} MB at most",
        latencies.len(),
        baseline / (1024 * 1024),
        peak / (1024 * 1024)
    );

    assert!(failures.is_empty(), "normal client failed: {failures:?}");
    assert!(latencies.len() > 100, "only {} bookings", latencies.len());
    assert!(p99 < Duration::from_millis(100), "p99 {p99:?}");
    assert!(
        seen.opened >= SLOW_BODIES + PIPELINERS,
        "hostile connections were not all opened: {seen:?}"
    );
    assert_eq!(seen.still_open, 0, "not closed by the server: {seen:?}");
    assert!(
        peak < MEMORY_BOUND_BYTES,
        "resident memory reached {} MB",
        peak / (1024 * 1024)
    );
    // The server still answers and holds no hostile connection.
    let metrics = reqwest::get(format!("{}/metrics", server.base))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    let open: usize = metrics
        .lines()
        .find_map(|l| l.strip_prefix("boxoffice_connections "))
        .and_then(|v| v.trim().parse().ok())
        .expect("boxoffice_connections");
    assert!(open <= 2, "{open} connections still open");
}
