//! The one place the service reads the wall clock.
//!
//! The domain takes time as an argument; the actors, the service and the
//! snapshotter ask a [`Clock`] for it. In service it is the system's; tests
//! use a manual one they move by hand, so hold and offer lapses, sales
//! windows and (next) waiting-room admissions are tested without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use crate::domain::Timestamp;

/// Where "now" comes from. Cheap to clone: every actor holds one.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The system's wall clock (UTC).
    #[default]
    System,
    /// A time that moves only when told (tests, benches), shared by every
    /// clone.
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Self {
        Self::System
    }

    /// A manual clock that reads `start` until moved.
    pub fn manual(start: Timestamp) -> Self {
        Self::Manual(Arc::new(AtomicI64::new(start.millis())))
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        match self {
            Self::System => Timestamp::from_millis(chrono::Utc::now().timestamp_millis()),
            Self::Manual(millis) => Timestamp::from_millis(millis.load(Ordering::Relaxed)),
        }
    }

    /// Moves a manual clock on by `millis`; the system clock moves by itself
    /// and is left alone.
    pub fn advance(&self, millis: i64) {
        if let Self::Manual(now) = self {
            now.fetch_add(millis, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_every_clone_sees_it() {
        let clock = Clock::manual(Timestamp::from_millis(1_000));
        let other = clock.clone();
        assert_eq!(other.now(), Timestamp::from_millis(1_000));
        clock.advance(500);
        assert_eq!(other.now(), Timestamp::from_millis(1_500));
    }

    #[test]
    fn the_system_clock_reads_the_wall_clock() {
        let before = chrono::Utc::now().timestamp_millis();
        let now = Clock::system().now().millis();
        let after = chrono::Utc::now().timestamp_millis();
        assert!((before..=after).contains(&now));
        Clock::system().advance(1_000_000);
        assert!(Clock::system().now().millis() < after + 1_000_000);
    }
}
