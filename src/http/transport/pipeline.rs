//! How many requests a connection has in flight, counted on the bytes.
//!
//! actix-http's dispatcher decodes every whole request in its read buffer
//! (up to 128 KiB) at once, and each decoded request costs about 6 KiB of
//! header map. A client pipelining 18-byte requests would so hold some
//! 40 MB per connection. [`Pipeline`] lets the stream hand the dispatcher
//! new bytes only while fewer than [`MAX_IN_FLIGHT`] requests are
//! unanswered, [`READ_CHUNK`] bytes at a time, so a connection holds at
//! most `MAX_IN_FLIGHT + READ_CHUNK / 18` decoded requests.
//!
//! Requests are counted by the blank line that ends a head (`\r\n\r\n`),
//! replies by the same in what the socket took. A reply body never holds
//! one (JSON and event streams carry no raw CR). A request body can; a
//! client whose bodies are full of blank lines is thought to have more in
//! flight than it has and is read more slowly, never wrongly.

/// Unanswered requests past which no more bytes are read.
pub const MAX_IN_FLIGHT: usize = 16;

/// The most bytes handed to the dispatcher per read.
pub const READ_CHUNK: usize = 1024;

const END: &[u8; 4] = b"\r\n\r\n";

/// Finds head ends in a stream that arrives in pieces.
#[derive(Debug, Default)]
struct HeadEnds {
    /// How much of `END` the bytes seen so far end with.
    matched: usize,
}

impl HeadEnds {
    /// The offset just past the first head end in `bytes`, continuing a
    /// match that earlier bytes left open.
    fn find(&mut self, bytes: &[u8]) -> Option<usize> {
        if self.matched > 0 {
            let need = &END[self.matched..];
            let k = need.len().min(bytes.len());
            if bytes[..k] == need[..k] {
                if k == need.len() {
                    self.matched = 0;
                    return Some(k);
                }
                self.matched += k;
                return None;
            }
            // No overlap of END with itself survives a mismatch except a
            // new start at bytes[0], which the search below finds.
            self.matched = 0;
        }
        if let Some(at) = memchr::memmem::find(bytes, END) {
            return Some(at + END.len());
        }
        self.matched = (1..END.len())
            .rev()
            .find(|&n| bytes.ends_with(&END[..n]))
            .unwrap_or(0);
        None
    }

    /// How many head ends `bytes` completes.
    fn count(&mut self, mut bytes: &[u8]) -> usize {
        let mut found = 0;
        while let Some(end) = self.find(bytes) {
            found += 1;
            bytes = &bytes[end..];
        }
        found
    }
}

/// Requests read and replies sent on one connection.
#[derive(Debug, Default)]
pub struct Pipeline {
    requests: HeadEnds,
    replies: HeadEnds,
    in_flight: usize,
    /// A read was refused; the next reply must wake the reader.
    paused: bool,
}

impl Pipeline {
    /// Whether more request bytes may be read now. A refusal is
    /// remembered, so the reply that makes room can say to wake up.
    pub fn may_read(&mut self) -> bool {
        let may = self.in_flight < MAX_IN_FLIGHT;
        self.paused |= !may;
        may
    }

    /// Counts the request heads in bytes just read.
    pub fn read(&mut self, bytes: &[u8]) {
        self.in_flight += self.requests.count(bytes);
    }

    /// Counts the reply heads in bytes the socket took; true when that
    /// makes room for a refused read (whoever polls must be woken).
    pub fn sent(&mut self, bytes: &[u8]) -> bool {
        let replies = self.replies.count(bytes);
        if replies == 0 {
            return false;
        }
        // Interim replies (100 Continue) answer nothing; saturating keeps
        // them from building credit.
        self.in_flight = self.in_flight.saturating_sub(replies);
        if self.paused && self.in_flight < MAX_IN_FLIGHT {
            self.paused = false;
            return true;
        }
        false
    }

    /// Requests read and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn head_ends_are_found_across_any_split() {
        let stream = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /a HTTP/1.1\r\n\r\n\r\nx\r\n\r";
        for split in 0..=stream.len() {
            let mut ends = HeadEnds::default();
            let found = ends.count(&stream[..split]) + ends.count(&stream[split..]);
            assert_eq!(found, 2, "split at {split}");
        }
    }

    proptest! {
        /// Counting in pieces finds what counting the whole finds.
        #[test]
        fn counting_in_pieces_matches_counting_whole(
            bytes in proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'a')], 0..200),
            cuts in proptest::collection::vec(0usize..200, 0..6),
        ) {
            let whole = HeadEnds::default().count(&bytes);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            let mut ends = HeadEnds::default();
            let mut from = 0;
            let mut pieces = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                pieces += ends.count(&bytes[from..cut]);
                from = cut;
            }
            prop_assert_eq!(pieces, whole);
        }
    }

    #[test]
    fn reading_pauses_at_the_limit_and_a_reply_resumes_it() {
        let mut pipeline = Pipeline::default();
        let request = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
        for _ in 0..MAX_IN_FLIGHT {
            assert!(pipeline.may_read());
            pipeline.read(request);
        }
        assert!(!pipeline.may_read());
        // Part of a reply's head is not a reply.
        assert!(!pipeline.sent(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n"));
        assert!(pipeline.sent(b"\r\n{}"));
        assert_eq!(pipeline.in_flight(), MAX_IN_FLIGHT - 1);
        assert!(pipeline.may_read());
        // Without a refused read, room needs no wake-up.
        assert!(!pipeline.sent(b"HTTP/1.1 200 OK\r\n\r\n"));
    }

    #[test]
    fn interim_replies_build_no_credit() {
        let mut pipeline = Pipeline::default();
        for _ in 0..10 {
            pipeline.sent(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        assert_eq!(pipeline.in_flight(), 0);
        pipeline.read(b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(pipeline.in_flight(), 1);
    }
}
