//! actix-http's own error replies, recognised on their way out.
//!
//! actix-http answers a request it cannot parse (400), a head that does not
//! arrive in time (408) and a head too large (431) itself, below any
//! middleware, with an empty body and no hook to change it. Every error of
//! this service is JSON with a code, so [`ServedStream`](crate::http::transport::stream::ServedStream)
//! writes those replies with the JSON body of the matching [`Refusal`]
//! (the API's error of the same name) instead. They are recognisable exactly: `content-length: 0` as the
//! first header of a 400, 408 or 431, which no reply of the application
//! has (its errors always carry a body).

use super::refusal::Refusal;

/// The header that marks actix-http's bodiless replies: it is the first
/// header there, and the application never sends an empty error.
const MARK: &[u8] = b"\r\ncontent-length: 0\r\n";

/// Which bare error a status line starts, if any.
fn bare_error(status_line: &[u8]) -> Option<Refusal> {
    // "HTTP/1.1 400 " is 13 bytes; the reason phrase follows.
    if status_line.len() < 13 || !status_line.starts_with(b"HTTP/1.") {
        return None;
    }
    match &status_line[9..13] {
        b"400 " => Some(Refusal::MalformedRequest),
        b"408 " => Some(Refusal::RequestTimeout),
        b"431 " => Some(Refusal::HeadersTooLarge),
        _ => None,
    }
}

/// Where in `out` a bare error reply begins. JSON bodies cannot hold a raw
/// CR or LF, so a CRLF-framed match is always a head.
pub fn bare_error_start(out: &[u8]) -> Option<usize> {
    let mark = memchr::memmem::find(out, MARK)?;
    let start = memchr::memrchr(b'\n', &out[..mark]).map_or(0, |nl| nl + 1);
    bare_error(&out[start..mark]).map(|_| start)
}

/// If `out` begins with one of actix-http's bodiless error replies, the
/// length of its head and the same reply with a JSON body.
pub fn json_reply_for_bare_error(out: &[u8]) -> Option<(usize, Vec<u8>)> {
    let error = bare_error(out)?;
    let status_line_end = memchr::memmem::find(out, b"\r\n")?;
    if !out[status_line_end..].starts_with(MARK) {
        return None;
    }
    let head_end = memchr::memmem::find(out, b"\r\n\r\n")? + 4;
    let body = error.body_bytes();
    // Status line, then our two headers, then actix's others (connection,
    // date) as they were.
    let others = &out[status_line_end + MARK.len()..head_end];
    let mut reply = Vec::with_capacity(head_end + 64 + body.len());
    reply.extend_from_slice(&out[..status_line_end]);
    reply.extend_from_slice(b"\r\ncontent-type: application/json\r\ncontent-length: ");
    reply.extend_from_slice(body.len().to_string().as_bytes());
    reply.extend_from_slice(b"\r\n");
    reply.extend_from_slice(others);
    reply.extend_from_slice(&body);
    Some((head_end, reply))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(out: &str) -> Option<(usize, String)> {
        json_reply_for_bare_error(out.as_bytes())
            .map(|(n, reply)| (n, String::from_utf8(reply).expect("utf-8")))
    }

    #[test]
    fn actix_bare_errors_get_json_bodies_and_keep_their_other_headers() {
        let head = "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\ndate: Sun, 22 Nov 2026 08:26:28 GMT\r\n\r\n";
        let (consumed, reply) = rewrite(head).expect("rewritten");
        assert_eq!(consumed, head.len());
        let (reply_head, body) = reply.split_once("\r\n\r\n").expect("head");
        assert_eq!(
            body,
            "{\"error\":\"Malformed HTTP request\",\"code\":\"BAD_REQUEST\"}\n"
        );
        assert_eq!(
            reply_head,
            format!(
                "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\ndate: Sun, 22 Nov 2026 08:26:28 GMT",
                body.len()
            )
        );
        let (_, timeout) =
            rewrite("HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n\r\n").expect("408");
        assert!(timeout.ends_with("\"code\":\"REQUEST_TIMEOUT\"}\n"));
        let (_, large) = rewrite(
            "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n",
        )
        .expect("431");
        assert!(large.ends_with("\"code\":\"HEADERS_TOO_LARGE\"}\n"));
    }

    #[test]
    fn a_rewritten_head_leaves_what_follows_it_for_the_next_write() {
        let out = "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\nHTTP/1.1 200 OK\r\n";
        let (consumed, _) = rewrite(out).expect("rewritten");
        assert_eq!(&out[consumed..], "HTTP/1.1 200 OK\r\n");
    }

    #[test]
    fn a_bare_error_after_pipelined_replies_is_found_where_it_starts() {
        let ok = "HTTP/1.1 200 OK\r\ncontent-length: 16\r\n\r\n{\"status\":\"ok\"}\n";
        let out = format!("{ok}HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
        assert_eq!(bare_error_start(out.as_bytes()), Some(ok.len()));
        assert_eq!(bare_error_start(ok.as_bytes()), None);
        let own = "HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(bare_error_start(own.as_bytes()), None);
    }

    #[test]
    fn replies_of_the_application_are_left_alone() {
        // Our own errors have bodies; other statuses are never touched.
        assert!(rewrite("HTTP/1.1 400 Bad Request\r\ncontent-length: 71\r\n\r\n{}").is_none());
        assert!(rewrite("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(rewrite("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n").is_none());
        // A body chunk that is not a head, and a head not yet whole.
        assert!(rewrite("{\"status\":\"ok\"}\n").is_none());
        assert!(rewrite("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n").is_none());
    }
}
