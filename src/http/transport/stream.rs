//! The byte stream of one served connection: the TCP socket, the
//! connection's [`Slot`], and the bounds actix-http's HTTP/1 dispatcher
//! lacks.
//!
//! - **Requests in flight.** Request bytes are handed over only while the
//!   [`Pipeline`] has room, a [`READ_CHUNK`] at a time.
//! - **Reply bytes not taken.** The dispatcher answers into a write buffer
//!   with no bound, and each write hands this stream the whole unsent rest
//!   of it, so its length is known here; [`wait_for_room`] holds the
//!   connection's next request while it is over `server.max_unsent_bytes`.
//!   The kernel's send timeout (`server.send_timeout_ms`) ends a
//!   connection that never drains.
//! - **actix-http's own errors** are written as JSON ([`crate::http::transport::bare_errors`]).
//! - **A lingering close.** Closing a socket with request bytes unread
//!   sends a reset, which can destroy the reply (a 431, a 413) before the
//!   client reads it; actix-http closes so after its own errors. When the
//!   stream is dropped it sends its FIN, and a background task reads and
//!   drops what the client still sends, for at most [`LINGER`] and
//!   [`LINGER_BYTES`], as nginx's lingering close does.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::rt::net::TcpStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

use crate::http::transport::bare_errors::{bare_error_start, json_reply_for_bare_error};
use crate::http::transport::connections::Slot;
use crate::http::transport::pipeline::{Pipeline, READ_CHUNK};

/// The longest a closing connection waits for its client to stop sending.
pub const LINGER: std::time::Duration = std::time::Duration::from_secs(1);

/// The most request bytes read and dropped while closing.
pub const LINGER_BYTES: usize = 1024 * 1024;

/// Reply bytes handed to a connection that its socket has not taken yet.
pub struct Unsent {
    /// Past this, the connection's next request waits.
    limit: usize,
    bytes: AtomicUsize,
    /// Woken when `bytes` falls to the limit or below.
    drained: Notify,
}

impl Unsent {
    fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            bytes: AtomicUsize::new(0),
            drained: Notify::new(),
        })
    }

    fn set(&self, bytes: usize) {
        let before = self.bytes.swap(bytes, Ordering::AcqRel);
        if before > self.limit && bytes <= self.limit {
            self.drained.notify_waiters();
        }
    }

    /// Resolves once the connection's unsent bytes are within the limit.
    pub async fn room(&self) {
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            // Registered before the check, so a drain between the two is not missed.
            drained.as_mut().enable();
            if self.bytes.load(Ordering::Acquire) <= self.limit {
                return;
            }
            drained.await;
        }
    }
}

/// Set once a connection's client has closed its end (or the connection
/// is gone): a long reply, a live stream above all, ends at once and frees
/// its place, instead of when its next write fails.
///
/// actix-http goes on reading a connection while it streams a reply, so
/// the end of the client's bytes reaches [`ServedStream::poll_read`] as
/// soon as it arrives; actix-http itself only gives up on the reply when a
/// write fails, which for an idle stream is its next keep-alive.
#[derive(Debug, Default)]
pub struct ClientGone {
    gone: std::sync::atomic::AtomicBool,
    notify: Notify,
}

impl ClientGone {
    fn mark(&self) {
        if !self.gone.swap(true, Ordering::AcqRel) {
            self.notify.notify_waiters();
        }
    }

    /// Whether the client has gone.
    pub fn is_gone(&self) -> bool {
        self.gone.load(Ordering::Acquire)
    }

    /// Resolves once the client has gone.
    pub async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Registered before the check, so a mark between the two is not missed.
            notified.as_mut().enable();
            if self.is_gone() {
                return;
            }
            notified.await;
        }
    }
}

/// Middleware: a request waits while its connection holds more unsent
/// reply bytes than `server.max_unsent_bytes`.
pub async fn wait_for_room(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let unsent = req.conn_data::<Arc<Unsent>>().cloned();
    if let Some(unsent) = unsent {
        unsent.room().await;
    }
    next.call(req).await
}

/// A served connection's socket.
pub struct ServedStream {
    io: TcpStream,
    /// Held for the connection's life; frees the address's place on drop.
    _slot: Slot,
    /// Shared with the connection's requests.
    unsent: Arc<Unsent>,
    /// A rewritten reply still being written, and how much of it is out.
    rewritten: Option<(Vec<u8>, usize)>,
    /// Requests read and not yet answered.
    pipeline: Pipeline,
    /// Marked when the client closes its end.
    gone: Arc<ClientGone>,
}

impl ServedStream {
    /// Serves `io`, which holds `slot`; requests wait while more than
    /// `max_unsent` reply bytes are not taken.
    pub fn new(io: TcpStream, slot: Slot, max_unsent: usize) -> Self {
        Self {
            io,
            _slot: slot,
            unsent: Unsent::new(max_unsent),
            rewritten: None,
            pipeline: Pipeline::default(),
            gone: Arc::default(),
        }
    }

    /// The client-gone signal, for the connection's requests.
    pub fn client_gone(&self) -> Arc<ClientGone> {
        Arc::clone(&self.gone)
    }

    /// The unsent-bytes count, for the connection's requests.
    pub fn unsent(&self) -> Arc<Unsent> {
        Arc::clone(&self.unsent)
    }

    /// Writes out what is left of a rewritten reply before anything else.
    fn poll_rewritten(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.rewritten {
            if *written == bytes.len() {
                self.rewritten = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for ServedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.pipeline.may_read() {
            // A reply going out wakes this task again (see `poll_write`).
            return Poll::Pending;
        }
        // Through a small buffer of our own: one copy of at most 1 KiB, no
        // unsafe code to fill the caller's uninitialised memory.
        let mut bytes = [0u8; READ_CHUNK];
        let room = buf.remaining().min(READ_CHUNK);
        let mut chunk = ReadBuf::new(&mut bytes[..room]);
        if let Err(e) = ready!(Pin::new(&mut this.io).poll_read(cx, &mut chunk)) {
            this.gone.mark();
            return Poll::Ready(Err(e));
        }
        if room > 0 && chunk.filled().is_empty() {
            // The client closed its end: nothing more will come.
            this.gone.mark();
        }
        this.pipeline.read(chunk.filled());
        buf.put_slice(chunk.filled());
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ServedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_rewritten(cx))?;
        // The dispatcher always hands over all it has not sent.
        let handed = buf.len();
        // A bare error can follow pipelined replies in one buffer: write up
        // to it, so that it starts the next write.
        let buf = match bare_error_start(buf) {
            Some(start) if start > 0 => &buf[..start],
            _ => buf,
        };
        let written = if let Some((consumed, reply)) = json_reply_for_bare_error(buf) {
            // Taken in place of the original head, which is reported written.
            this.rewritten = Some((reply, 0));
            // What does not go out now goes out at the next write or flush.
            if let Poll::Ready(Err(e)) = this.poll_rewritten(cx) {
                return Poll::Ready(Err(e));
            }
            Poll::Ready(Ok(consumed))
        } else {
            Pin::new(&mut this.io).poll_write(cx, buf)
        };
        let taken = match &written {
            Poll::Ready(Ok(n)) => *n,
            _ => 0,
        };
        this.unsent.set(handed - taken);
        if this.pipeline.sent(&buf[..taken]) {
            // A read was refused for want of room; there is room now.
            cx.waker().wake_by_ref();
        }
        written
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_rewritten(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_rewritten(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

impl Drop for ServedStream {
    fn drop(&mut self) {
        self.gone.mark();
        // Our end is closed by dropping `io`; a duplicate descriptor keeps
        // the socket itself open while the client's last bytes are drained.
        let socket = socket2::SockRef::from(&self.io);
        // actix-http gives up on a connection after its own error without
        // waiting for the reply to go out; a plain send(2) takes what tokio
        // had not yet seen the socket ready for.
        if let Some((bytes, written)) = &self.rewritten {
            let _ = socket.send(&bytes[*written..]);
        }
        let _ = socket.shutdown(std::net::Shutdown::Write);
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Ok(duplicate) = socket.try_clone() else {
            return;
        };
        let std_stream = std::net::TcpStream::from(duplicate);
        handle.spawn(async move {
            if let Ok(stream) = TcpStream::from_std(std_stream) {
                drain(stream).await;
            }
        });
    }
}

/// Reads and drops what a closing connection's client still sends, until
/// it closes too, for at most [`LINGER`] and [`LINGER_BYTES`].
async fn drain(stream: TcpStream) {
    let deadline = tokio::time::Instant::now() + LINGER;
    let mut budget = LINGER_BYTES;
    let mut bytes = [0u8; 4096];
    while budget > 0 {
        if tokio::time::timeout_at(deadline, stream.readable())
            .await
            .is_err()
        {
            return;
        }
        match stream.try_read(&mut bytes) {
            Ok(0) => return,
            Ok(n) => budget = budget.saturating_sub(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}
