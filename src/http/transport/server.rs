//! The HTTP server: actix-server accepting connections, each admitted by
//! [`Connections`] and served over a [`ServedStream`] by actix-http's HTTP/1
//! dispatcher running the actix-web app.
//!
//! This is what `actix_web::HttpServer` assembles, less TLS and HTTP/2
//! (not served), plus the two things it has no hook for: refusing a
//! connection before it is served, and the stream that turns actix-http's
//! own bodiless errors into JSON.

use std::fmt;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_http::body::MessageBody;
use actix_http::error::DispatchError;
use actix_http::{HttpService, Request, Response};
use actix_server::Server;
use actix_service::{
    fn_service, map_config, IntoServiceFactory, Service, ServiceFactory, ServiceFactoryExt,
};
use actix_web::dev::{AppConfig, Extensions};
use actix_web::rt::net::TcpStream;

use super::refusal::Refusal;
use crate::http::transport::connections::Connections;
use crate::http::transport::stream::ServedStream;

/// What the server is told besides the app.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// HTTP worker threads.
    pub workers: usize,
    /// Connections each worker holds at once.
    pub max_connections: usize,
    /// A request's head must arrive within this (the body's limit is the
    /// extractor's).
    pub client_request_timeout: Duration,
    /// Idle keep-alive connections are closed after this; zero disables keep-alive.
    pub keep_alive: Duration,
    /// In-flight requests get this long after a stop.
    pub shutdown_timeout_secs: u64,
    /// A connection's next request waits while more reply bytes than this
    /// are not taken by its client.
    pub max_unsent_bytes: usize,
}

/// Listen on `address` with a backlog that rides out a burst of connects.
pub fn bind(address: &str) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let mut last = None;
    for addr in std::net::ToSocketAddrs::to_socket_addrs(address)? {
        let attempt = (|| {
            let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
            socket.set_reuse_address(true)?;
            socket.bind(&addr.into())?;
            socket.listen(1024)?;
            Ok::<_, io::Error>(TcpListener::from(socket))
        })();
        match attempt {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("the address resolved to nothing")))
}

/// Starts serving `app` on `listener`; the returned server runs once polled.
pub fn serve<F, I, S, B>(
    app: F,
    listener: TcpListener,
    options: &ServeOptions,
    connections: Arc<Connections>,
) -> io::Result<Server>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as Service<Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    let local: SocketAddr = listener.local_addr()?;
    let builder = Server::build()
        .workers(options.workers)
        .max_concurrent_connections(options.max_connections)
        .shutdown_timeout(options.shutdown_timeout_secs)
        .disable_signals();
    // Tells idle keep-alive connections to close when a stop begins.
    let stopping = builder.graceful_shutdown_signal();
    let options = options.clone();
    let builder = builder.listen("boxoffice", listener, move || {
        let stopping = stopping.clone();
        let http = HttpService::build()
            .keep_alive(options.keep_alive)
            .client_request_timeout(options.client_request_timeout)
            .client_disconnect_timeout(Duration::from_secs(1))
            .local_addr(local)
            .graceful_shutdown_signal(move || {
                let stopping = stopping.clone();
                async move { stopping.notified().await }
            })
            .on_connect_ext(|io: &ServedStream, data: &mut Extensions| {
                data.insert(io.unsent());
                data.insert(io.client_gone());
            })
            .h1(map_config(
                app().into_factory().map_err(|e| e.into().error_response()),
                move |_| AppConfig::default(),
            ));
        let connections = Arc::clone(&connections);
        let max_unsent = options.max_unsent_bytes;
        fn_service(move |io: TcpStream| {
            let admitted = admit(&connections, io, max_unsent);
            async move { admitted }
        })
        .and_then(http)
    })?;
    Ok(builder.run())
}

/// The stream to serve, or `Err` (the connection is dropped) when its
/// address is over the cap; that client gets a 429 first, best effort.
fn admit(
    connections: &Arc<Connections>,
    io: TcpStream,
    max_unsent: usize,
) -> Result<(ServedStream, Option<SocketAddr>), DispatchError> {
    let peer_addr = io.peer_addr().map_err(DispatchError::Io)?;
    let peer = Some(peer_addr);
    match connections.admit(peer_addr.ip()) {
        Some(slot) => {
            connections.prepare(&io, max_unsent);
            Ok((ServedStream::new(io, slot, max_unsent), peer))
        }
        None => {
            refuse(&io, connections.per_ip());
            Err(DispatchError::Io(io::Error::other(
                "over the per-address cap",
            )))
        }
    }
}

/// A 429 written straight to a new socket, whose send buffer is empty, so
/// one non-blocking write takes it whole; then the socket is closed.
fn refuse(io: &TcpStream, per_ip: usize) {
    let error = Refusal::TooManyConnections(per_ip);
    let body = error.body_bytes();
    let mut reply = Vec::with_capacity(160 + body.len());
    // Writing into a Vec cannot fail.
    let _ = write!(
        reply,
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n",
        body.len()
    );
    reply.extend_from_slice(&body);
    // A plain send(2): tokio's `try_write` declines until the reactor has
    // seen the socket writable, which a new one has not yet.
    let socket = socket2::SockRef::from(io);
    let _ = socket.send(&reply);
    let _ = socket.shutdown(std::net::Shutdown::Write);
}
