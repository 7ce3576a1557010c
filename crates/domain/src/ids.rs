//! Identifiers and values the domain accepts only in their valid form.
//!
//! The HTTP layer turns raw input into these types at the boundary, so code
//! past it never re-validates.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use super::DomainError;

/// Largest id a JSON client can hold exactly (2^53 - 1, JavaScript's safe integer).
pub const MAX_EVENT_ID: u64 = (1 << 53) - 1;
/// Longest user id, in characters.
pub const MAX_USER_ID_CHARS: usize = 64;
/// Longest event name, in characters.
pub const MAX_EVENT_NAME_CHARS: usize = 200;

/// An event's id: 1 to 2^53 - 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct EventId(u64);

impl EventId {
    /// The raw number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl TryFrom<u64> for EventId {
    type Error = DomainError;

    fn try_from(raw: u64) -> Result<Self, Self::Error> {
        if (1..=MAX_EVENT_ID).contains(&raw) {
            Ok(Self(raw))
        } else {
            Err(DomainError::InvalidEventId)
        }
    }
}

impl From<EventId> for u64 {
    fn from(id: EventId) -> u64 {
        id.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A booking's id, unique across the whole service and never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BookingId(u64);

impl BookingId {
    /// The raw number.
    pub fn get(self) -> u64 {
        self.0
    }

    /// Wraps a number read back from our own storage.
    pub fn from_raw(raw: u64) -> Self {
        Self(raw)
    }
}

/// A user id: 1 to 64 characters, letters, digits and `._-@:` only.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "CompactString", into = "CompactString")]
pub struct UserId(CompactString);

impl UserId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `raw` is a valid user id; shared with the HTTP validators so
    /// both layers apply the one rule.
    pub fn is_valid(raw: &str) -> bool {
        // Every allowed character is one ASCII byte, so bytes are characters.
        (1..=MAX_USER_ID_CHARS).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@' | b':'))
    }
}

impl TryFrom<&str> for UserId {
    type Error = DomainError;

    fn try_from(raw: &str) -> Result<Self, Self::Error> {
        if Self::is_valid(raw) {
            Ok(Self(CompactString::from(raw)))
        } else {
            Err(DomainError::InvalidUserId)
        }
    }
}

impl TryFrom<CompactString> for UserId {
    type Error = DomainError;

    fn try_from(raw: CompactString) -> Result<Self, Self::Error> {
        if Self::is_valid(&raw) {
            Ok(Self(raw))
        } else {
            Err(DomainError::InvalidUserId)
        }
    }
}

impl From<UserId> for CompactString {
    fn from(id: UserId) -> CompactString {
        id.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A point in time, in milliseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(i64);

impl Timestamp {
    /// A timestamp from milliseconds since the epoch.
    pub fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    /// Milliseconds since the epoch.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// This moment plus `secs` seconds.
    pub fn plus_secs(self, secs: u32) -> Self {
        Self(self.0.saturating_add(i64::from(secs) * 1_000))
    }

    /// This moment plus `millis` milliseconds (minus, when negative).
    pub fn plus_millis(self, millis: i64) -> Self {
        Self(self.0.saturating_add(millis))
    }

    /// Parses an RFC 3339 timestamp (any offset), to the millisecond;
    /// `None` when it is not one.
    pub fn parse_rfc3339(raw: &str) -> Option<Self> {
        chrono::DateTime::parse_from_rfc3339(raw)
            .ok()
            .map(|t| Self(t.timestamp_millis()))
    }

    /// RFC 3339 UTC with milliseconds, e.g. `2024-02-04T10:00:00.000Z`.
    pub fn to_rfc3339(self) -> String {
        match chrono::DateTime::from_timestamp_millis(self.0) {
            Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            // Out of chrono's range (±262,000 years): never produced by a clock.
            None => String::from("1970-01-01T00:00:00.000Z"),
        }
    }

    /// [`Self::to_rfc3339`] as something to format, so a reply writes it
    /// straight into its body instead of into a `String` first.
    pub fn rfc3339(self) -> Rfc3339 {
        Rfc3339(self)
    }
}

/// A [`Timestamp`] formatted as [`Timestamp::to_rfc3339`] formats it.
#[derive(Debug, Clone, Copy)]
pub struct Rfc3339(Timestamp);

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use chrono::{Datelike, Timelike};
        match chrono::DateTime::from_timestamp_millis(self.0 .0) {
            // Years of four digits (all RFC 3339 can say) without a String.
            Some(t) if (0..=9999).contains(&t.year()) => write!(
                f,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                t.year(),
                t.month(),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                t.timestamp_subsec_millis()
            ),
            _ => f.write_str(&self.0.to_rfc3339()),
        }
    }
}

/// Hands out booking ids for every event of the service.
///
/// Shared by all event actors, so it is atomic; ids are only ever skipped,
/// never reused.
#[derive(Debug)]
pub struct BookingIdSequence {
    /// The id the next booking gets.
    next: AtomicU64,
}

impl Default for BookingIdSequence {
    fn default() -> Self {
        Self::starting_at(1)
    }
}

impl BookingIdSequence {
    /// A sequence whose first id is `first`.
    pub fn starting_at(first: u64) -> Self {
        Self {
            next: AtomicU64::new(first.max(1)),
        }
    }

    /// Takes the next id.
    pub fn next_id(&self) -> BookingId {
        BookingId(self.next.fetch_add(1, Ordering::Relaxed))
    }

    /// The id the next booking would get (for snapshots).
    pub fn peek(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }

    /// Makes sure ids already in use are never handed out again.
    pub fn skip_past(&self, used: BookingId) {
        self.next.fetch_max(used.0 + 1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Just;

    proptest::proptest! {
        /// The formatter writes exactly what `to_rfc3339` makes, in every
        /// year and outside chrono's range.
        #[test]
        fn rfc3339_formats_as_to_rfc3339(millis in proptest::prop_oneof![
            -62_167_219_200_000i64..=253_402_300_799_999,
            proptest::num::i64::ANY,
            Just(0i64),
            Just(-1i64),
        ]) {
            let t = Timestamp::from_millis(millis);
            proptest::prop_assert_eq!(t.rfc3339().to_string(), t.to_rfc3339());
        }
    }

    #[test]
    fn event_ids_are_one_to_two_to_the_53_minus_one() {
        assert!(EventId::try_from(0).is_err());
        assert!(EventId::try_from(1).is_ok());
        assert!(EventId::try_from(MAX_EVENT_ID).is_ok());
        assert!(EventId::try_from(MAX_EVENT_ID + 1).is_err());
    }

    #[test]
    fn user_ids_allow_letters_digits_and_five_marks_only() {
        assert!(UserId::try_from("user.name_1-x@host:9").is_ok());
        assert!(UserId::try_from("").is_err());
        assert!(UserId::try_from("has space").is_err());
        assert!(UserId::try_from("slash/").is_err());
        assert!(UserId::try_from("a".repeat(64).as_str()).is_ok());
        assert!(UserId::try_from("a".repeat(65).as_str()).is_err());
    }

    #[test]
    fn timestamps_print_as_rfc3339_with_milliseconds() {
        assert_eq!(
            Timestamp::from_millis(1_707_040_800_000).to_rfc3339(),
            "2024-02-04T10:00:00.000Z"
        );
        assert_eq!(
            Timestamp::from_millis(1_707_040_800_123).to_rfc3339(),
            "2024-02-04T10:00:00.123Z"
        );
    }

    #[test]
    fn rfc3339_timestamps_parse_with_any_offset_and_junk_is_refused() {
        assert_eq!(
            Timestamp::parse_rfc3339("2024-02-04T10:00:00.123Z"),
            Some(Timestamp::from_millis(1_707_040_800_123))
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2024-02-04T11:00:00+01:00"),
            Some(Timestamp::from_millis(1_707_040_800_000))
        );
        for bad in ["", "2024-02-04", "yesterday", "2024-13-01T00:00:00Z"] {
            assert_eq!(Timestamp::parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_id_sequence_never_hands_out_an_id_it_was_told_is_used() {
        let ids = BookingIdSequence::default();
        assert_eq!(ids.next_id().get(), 1);
        ids.skip_past(BookingId::from_raw(41));
        assert_eq!(ids.next_id().get(), 42);
        ids.skip_past(BookingId::from_raw(3));
        assert_eq!(ids.next_id().get(), 43);
    }
}
