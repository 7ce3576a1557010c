//! Where a change log stands: the position of a record ([`Lsn`]), what is
//! durable and what was lost ([`JournalState`]), and the one refusal
//! ([`Refused`]). Shared by both back-ends, the journal and a cluster's
//! replicated log, and by everyone who waits on either.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

/// A log sequence number: the position of a record in the journal, from 1.
/// [`Lsn::ZERO`] is the position before the first record: "everything up to
/// here" is then nothing, so waiting for it never waits.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Lsn(u64);

impl Lsn {
    /// Before the first record.
    pub const ZERO: Lsn = Lsn(0);
    /// The first record's.
    pub const FIRST: Lsn = Lsn(1);
    /// After every record (the disabled journal's durable mark).
    pub const MAX: Lsn = Lsn(u64::MAX);

    /// The LSN with this number.
    pub const fn new(raw: u64) -> Self {
        Self(raw)
    }

    /// Its number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The next position.
    pub fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }

    /// The position before (`ZERO` stays `ZERO`).
    pub fn prev(self) -> Self {
        Self(self.0.saturating_sub(1))
    }
}

impl std::fmt::Display for Lsn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// What waiters and actors read about the journal.
/// Why a log refuses changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// A cluster node that does not lead: its changes are the leader's to
    /// make. By design, not a fault of the node: it is healthy and serves
    /// reads.
    NotLeader,
    /// The log cannot make changes durable now (a disk fault being
    /// repaired, a failed snapshot with the journal off): why.
    Failing(String),
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotLeader => f.write_str("this node is not the cluster's leader"),
            Self::Failing(why) => f.write_str(why),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct JournalState {
    /// Every LSN up to this one is durable, unless it lies in `failed`.
    pub durable: Lsn,
    /// Bumped at every fault; an actor that sees a new epoch undoes its
    /// changes that are not durable.
    pub epoch: u64,
    /// LSN ranges abandoned after faults.
    pub failed: Vec<RangeInclusive<Lsn>>,
    /// Why writes are refused right now, if they are.
    pub fault: Option<Fault>,
    /// The change feed's newest index on disk: every item up to it that a
    /// record not in `failed` holds can be read back (0: none yet).
    pub changes_durable: u64,
}

impl JournalState {
    /// Whether `lsn` is on disk for good.
    pub fn is_durable(&self, lsn: Lsn) -> bool {
        lsn <= self.durable && !self.failed.iter().any(|r| r.contains(&lsn))
    }

    /// Whether `lsn` will never be durable.
    pub fn has_failed(&self, lsn: Lsn) -> bool {
        self.failed.iter().any(|r| r.contains(&lsn)) || (self.fault.is_some() && lsn > self.durable)
    }
}

/// Why a submission was refused; nothing was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the journal is not accepting changes")]
pub struct Refused;
