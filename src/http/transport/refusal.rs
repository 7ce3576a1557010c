//! What the connection layer answers by itself, below the application:
//! a request it cannot parse, a head that does not arrive in time or is
//! too large (actix-http's bare replies, rewritten by [`super::bare_errors`]),
//! and a connection over the per-address cap ([`super::server`]). Each is
//! one of the API's errors (`ApiError` has a variant for each and takes its
//! text and code from here), with the same JSON body, so a client cannot
//! tell which layer answered; but this layer names nothing of the API
//! above it.

use serde::Serialize;

/// An error answered by the connection layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The request head did not arrive within
    /// `server.client_request_timeout_ms` (408).
    RequestTimeout,
    /// Not HTTP/1.x that can be parsed (400).
    MalformedRequest,
    /// The request head is larger than the parser takes (431).
    HeadersTooLarge,
    /// The client's address holds this many connections, the most allowed
    /// (429).
    TooManyConnections(usize),
}

/// The API's error body, as far as these errors fill it.
#[derive(Serialize)]
struct Body<'a> {
    error: String,
    code: &'a str,
}

impl Refusal {
    /// The stable code programs match on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::RequestTimeout => "REQUEST_TIMEOUT",
            Self::MalformedRequest => "BAD_REQUEST",
            Self::HeadersTooLarge => "HEADERS_TOO_LARGE",
            Self::TooManyConnections(_) => "RATE_LIMITED",
        }
    }

    /// For people.
    pub fn message(&self) -> String {
        match self {
            Self::RequestTimeout => "The request did not arrive in time".into(),
            Self::MalformedRequest => "Malformed HTTP request".into(),
            Self::HeadersTooLarge => "Request headers are too large".into(),
            Self::TooManyConnections(most) => {
                format!(
                    "{most} connections from this address are open, the most allowed; retry later"
                )
            }
        }
    }

    /// The JSON body, newline included, as the API writes its errors.
    pub fn body_bytes(&self) -> Vec<u8> {
        let body = Body {
            error: self.message(),
            code: self.code(),
        };
        error_line(&body)
    }
}

/// An error body as bytes, newline included, as every JSON reply ends;
/// the internal error's if `body` cannot be serialised. Shared with the
/// API's errors (`ApiError::body_bytes`), so both layers write the same.
pub fn error_line(body: &impl Serialize) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(body).unwrap_or_else(|_| {
        b"{\"error\":\"Internal server error\",\"code\":\"INTERNAL\"}".to_vec()
    });
    bytes.push(b'\n');
    bytes
}
