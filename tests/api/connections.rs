//! Connection-level behaviour: errors raised below the app are JSON, an
//! address over its connection cap is refused alone, a client that stops
//! reading is cut off.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{spawn_app_with, TestApp};

fn address(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_string()
}

/// Sends `bytes` on a new connection and reads until the server closes it.
async fn exchange(app: &TestApp, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(address(app)).await.expect("connect");
    stream.write_all(bytes).await.expect("write");
    let mut answer = Vec::new();
    // A reset after the reply (unread request bytes) still leaves the reply read.
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server did not close the connection");
    String::from_utf8_lossy(&answer).into_owned()
}

/// The status line and the JSON body of a raw reply.
fn status_and_body(reply: &str) -> (&str, serde_json::Value) {
    let (head, body) = reply
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("a whole reply: {reply:?}"));
    let status = head.lines().next().expect("status line");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let body = serde_json::from_str(body).unwrap_or_else(|_| panic!("JSON body: {reply:?}"));
    (status, body)
}

/// actix-http answers these itself, below every middleware; they are JSON
/// with a code like every other error.
#[actix_web::test]
async fn errors_raised_by_the_http_parser_are_json() {
    let app = spawn_app_with(|s| s.server.client_request_timeout_ms = 1_000).await;

    let reply = exchange(&app, b"GARBAGE\r\n\r\n").await;
    let (status, body) = status_and_body(&reply);
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    assert_eq!(body["code"], "BAD_REQUEST");

    let mut huge = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 200_000));
    huge.extend_from_slice(b"\r\n\r\n");
    let reply = exchange(&app, &huge).await;
    let (status, body) = status_and_body(&reply);
    assert_eq!(status, "HTTP/1.1 431 Request Header Fields Too Large");
    assert_eq!(body["code"], "HEADERS_TOO_LARGE");

    // The head itself never completes.
    let started = Instant::now();
    let reply = exchange(&app, b"GET /health HTTP/1.1\r\nHost: x\r\n").await;
    let (status, body) = status_and_body(&reply);
    assert_eq!(status, "HTTP/1.1 408 Request Timeout");
    assert_eq!(body["code"], "REQUEST_TIMEOUT");
    assert!(started.elapsed() < Duration::from_secs(3));

    // After a good reply on the same connection, the bad one is still JSON.
    let reply = exchange(
        &app,
        b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\r\n\r\n",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    let second = reply.find("HTTP/1.1 400").expect("a second reply");
    let (status, body) = status_and_body(&reply[second..]);
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    assert_eq!(body["code"], "BAD_REQUEST");
}

/// Past `max_connections_per_ip`, a new connection from that address gets
/// 429 RATE_LIMITED and is closed; once one closes, the next is served.
#[actix_web::test]
async fn an_address_over_its_connection_cap_is_refused_alone() {
    let app = spawn_app_with(|s| s.server.max_connections_per_ip = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(address(&app)).await.expect("connect"));
    }
    // Accepting is asynchronous: give the server a moment to count them.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let reply = exchange(&app, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let (status, body) = status_and_body(&reply);
    assert_eq!(status, "HTTP/1.1 429 Too Many Requests");
    assert_eq!(body["code"], "RATE_LIMITED");
    assert!(reply.to_ascii_lowercase().contains("retry-after: 1"));

    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, _) = app.get("/health").await;
    assert_eq!(status, 200);
    let metrics = app.text("/metrics").await;
    assert!(
        metrics.contains("boxoffice_connections_refused_total 1\n"),
        "{metrics}"
    );
}

/// A client that pipelines requests and never reads its replies is cut off
/// after `send_timeout_ms`; the server does not keep its replies forever.
#[actix_web::test]
async fn a_client_that_does_not_read_is_cut_off() {
    let app = spawn_app_with(|s| s.server.send_timeout_ms = 1_000).await;
    for n in 0..50 {
        let (status, _) = app
            .post(
                "/api/events",
                serde_json::json!({"totalTickets": 5, "name": format!("{n:0>190}")}),
            )
            .await;
        assert_eq!(status, 201);
    }
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    // A small receive window fills quickly, as a stalled client's would.
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let target: std::net::SocketAddr = address(&app).parse().expect("address");
    socket.connect(&target.into()).expect("connect");
    let mut stream = std::net::TcpStream::from(socket);
    stream
        .set_write_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let request = b"GET /api/events?limit=1000 HTTP/1.1\r\nHost: x\r\n\r\n";
    let started = Instant::now();
    let cut_off = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        // Keep the pipeline full; the write fails once the server has reset.
        while started.elapsed() < Duration::from_secs(15) {
            if let Err(e) = stream.write_all(request) {
                if e.kind() != std::io::ErrorKind::WouldBlock
                    && e.kind() != std::io::ErrorKind::TimedOut
                {
                    return Some(started.elapsed());
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    })
    .await
    .expect("writer");
    let after = cut_off.expect("the server never closed the non-reading connection");
    assert!(after < Duration::from_secs(10), "{after:?}");
    // Everyone else is still served.
    let (status, _) = app.get("/health").await;
    assert_eq!(status, 200);
}
