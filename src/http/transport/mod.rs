//! The connection layer: how accepted sockets reach actix-web's app.
//!
//! actix-web's `HttpServer` has no hook per connection, so this module
//! assembles actix-server, actix-http's HTTP/1 service and the app itself
//! ([`server`]), with an admission step per accepted connection
//! ([`connections`]: the per-address cap) and a stream type between the
//! socket and actix-http's dispatcher ([`stream`]: bounded pipelining through
//! [`pipeline`], bounded unsent replies, lingering close, and the rewrite of
//! actix-http's own bodiless errors as JSON through [`bare_errors`]).
//!
//! It works against actix-http from underneath, so it rests on assumptions
//! about actix-http's behaviour that no API promises. They were checked
//! against **actix-http 3.20.0**, the version `Cargo.toml` pins exactly
//! (`=3.20.0`): upgrading it means checking each one again. Each has a test
//! that fails when it breaks:
//!
//! 1. actix-http answers a request it cannot parse with 400, a head that
//!    does not arrive within the client request timeout with 408, and a head
//!    over its limit with 431, itself, with `content-length: 0` as the first
//!    header and no body; no reply of the app has that first header
//!    ([`bare_errors`]). Test: the black-box
//!    `connections::errors_raised_by_the_http_parser_are_json` sends garbage,
//!    a 200 KB header and a head that never ends, also after a good reply on
//!    the same connection, and expects the JSON errors.
//! 2. Its dispatcher decodes every request already in its read buffer at
//!    once, so bytes are handed to it 1 KiB at a time and only while fewer
//!    than 16 requests are unanswered ([`pipeline`]). Test: the hostile test
//!    (`tests/api/hostile.rs`, run by CI against the release build: 200
//!    pipelining clients that never read, with a bound on resident memory).
//! 3. Each `poll_write` of the dispatcher offers everything it has not sent
//!    yet, so the size of one write is the connection's unsent bytes
//!    ([`stream`]: `server.max_unsent_bytes`). Test:
//!    `connections::a_client_that_does_not_read_is_cut_off`.
//! 4. After its own error reply it drops the connection without flushing,
//!    so a rewritten reply still pending is sent from `Drop` ([`stream`]).
//!    Test: the 431 of `connections::errors_raised_by_the_http_parser_are_json`
//!    is read whole before the close.
//! 5. It goes on reading a connection while it streams a reply, so a
//!    client's close reaches [`stream::ServedStream`] at once and ends a
//!    live stream through [`stream::ClientGone`] (actix-http alone would
//!    notice only when a write fails). Test:
//!    `live::one_address_holds_its_share_of_streams_and_gets_it_back_on_close`.
//! 6. It logs a request it cannot parse at ERROR under the target
//!    `actix_http::h1::dispatcher`; `crate::logging` demotes exactly that
//!    target to WARN. `logging::tests` checks the demotion; no test notices
//!    actix-http logging under another target (the demotion would then
//!    simply not apply: such requests would log at ERROR again).

pub mod bare_errors;
pub mod connections;
pub mod pipeline;
pub mod refusal;
pub mod server;
pub mod stream;
