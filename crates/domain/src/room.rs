//! The waiting room of one event: people join before and after sales
//! start, everyone who joined before is put in a uniformly random order at
//! the draw, and from then on the room admits the first waiting entries at
//! the organiser's pace. Only an admitted person may book, while the
//! admission lasts.
//!
//! Every step is a journalled [`Change`](crate::Change) decided by the
//! event (the draw carries its random seed, so a replay shuffles the same
//! way), and applied here. Positions are ranks in a [`WaitingQueue`] of
//! one-ticket slots: O(log n) to read and to keep when someone ahead leaves.

use std::collections::BTreeSet;
use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::chunked::ChunkedVec;
use crate::ids::{EventId, Timestamp, UserId};
use crate::queue::WaitingQueue;
use crate::DomainError;

/// How long an admission lasts unless the organiser says otherwise.
pub const DEFAULT_ADMIT_SECS: u32 = 600;
/// The fastest pace a room may admit at, a minute.
pub const MAX_ADMIT_PER_MINUTE: u32 = 1_000_000;
/// The longest an admission may last, in seconds (a day).
pub const MAX_ADMIT_SECS: u32 = 86_400;
/// A turn this late is not caught up: the service was down, or nobody was
/// waiting when it came. The pace starts again from now instead, so
/// admissions never come in a burst.
pub const LATE_TURN_MILLIS: i64 = 1_000;

/// The room's settings: what the organiser chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSettings {
    /// People admitted a minute; 0: no room.
    pub admit_per_minute: u32,
    /// Seconds an admission lasts.
    pub admit_secs: u32,
}

impl Default for RoomSettings {
    fn default() -> Self {
        Self {
            admit_per_minute: 0,
            admit_secs: DEFAULT_ADMIT_SECS,
        }
    }
}

impl RoomSettings {
    /// Whether the room is on: bookings need an admission.
    pub fn is_on(&self) -> bool {
        self.admit_per_minute > 0
    }

    /// Refuses values out of range, naming the field as clients do.
    pub fn check(&self) -> Result<(), DomainError> {
        if self.admit_per_minute > MAX_ADMIT_PER_MINUTE {
            return Err(DomainError::InvalidSettings {
                field: "roomAdmitPerMinute",
                message: format!("must be an integer from 0 to {MAX_ADMIT_PER_MINUTE}"),
            });
        }
        if !(1..=MAX_ADMIT_SECS).contains(&self.admit_secs) {
            return Err(DomainError::InvalidSettings {
                field: "roomAdmitSecs",
                message: format!("must be an integer from 1 to {MAX_ADMIT_SECS}"),
            });
        }
        Ok(())
    }
}

/// A change to some of the room's settings; `None` leaves one as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomPatch {
    /// New pace (0 turns the room off).
    pub admit_per_minute: Option<u32>,
    /// New admission length, for admissions made after the change.
    pub admit_secs: Option<u32>,
}

impl RoomPatch {
    /// Whether the patch names nothing.
    pub fn is_empty(&self) -> bool {
        self.admit_per_minute.is_none() && self.admit_secs.is_none()
    }

    /// `settings` with this patch applied.
    pub fn applied_to(&self, settings: RoomSettings) -> RoomSettings {
        RoomSettings {
            admit_per_minute: self.admit_per_minute.unwrap_or(settings.admit_per_minute),
            admit_secs: self.admit_secs.unwrap_or(settings.admit_secs),
        }
    }
}

/// Where an entry stands. Stored by variant index: only ever appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EntryStatus {
    /// In the room, waiting for its turn (or for the draw).
    Waiting,
    /// Its turn came: the person may book until `admitted_until`.
    Admitted,
    /// The person booked during the admission.
    Used,
    /// The admission lapsed unused.
    Expired,
    /// The person left the room.
    Left,
}

impl EntryStatus {
    /// The name clients see.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Admitted => "admitted",
            Self::Used => "used",
            Self::Expired => "expired",
            Self::Left => "left",
        }
    }

    /// Waiting or admitted: a person has at most one such entry.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Waiting | Self::Admitted)
    }
}

/// A person's latest entry, as stored (one record per person: joining again
/// after an entry ended replaces it). Equal when what is stored is equal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntryRecord {
    /// Who.
    pub user: UserId,
    /// Where it stands.
    pub status: EntryStatus,
    /// When the person joined.
    pub joined_at: Timestamp,
    /// When its status last changed.
    pub updated_at: Timestamp,
    /// When it was admitted (admitted, used or expired entries); else
    /// `joined_at`, unread.
    pub admitted_at: Timestamp,
    /// When the admission lapses (admitted entries); else `joined_at`, unread.
    pub admitted_until: Timestamp,
    /// Its slot in the room's queue while waiting; rebuilt on restore.
    #[serde(skip)]
    seq: u32,
}

impl PartialEq for EntryRecord {
    fn eq(&self, other: &Self) -> bool {
        // `seq` is an index into the queue, rebuilt on restore.
        (
            &self.user,
            self.status,
            self.joined_at,
            self.updated_at,
            self.admitted_at,
            self.admitted_until,
        ) == (
            &other.user,
            other.status,
            other.joined_at,
            other.updated_at,
            other.admitted_at,
            other.admitted_until,
        )
    }
}

impl Eq for EntryRecord {}

/// An entry as a reader sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryView {
    /// The event.
    pub event_id: EventId,
    /// Who.
    pub user_id: UserId,
    /// Where it stands.
    pub status: EntryStatus,
    /// 1-based place among the waiting entries, once drawn.
    pub position: Option<u64>,
    /// `position - 1`.
    pub people_ahead: Option<u64>,
    /// When the pace reaches it, while waiting with a position and the room
    /// admits.
    pub estimated_admission_at: Option<Timestamp>,
    /// When admitted.
    pub admitted_at: Option<Timestamp>,
    /// When the admission lapses, while admitted.
    pub admitted_until: Option<Timestamp>,
    /// When the person joined.
    pub joined_at: Timestamp,
    /// When its status last changed.
    pub updated_at: Timestamp,
}

/// The room's counters and settings, as the event's status shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomStatus {
    /// The settings.
    pub settings: RoomSettings,
    /// Entries waiting.
    pub waiting: u64,
    /// Entries admitted now, not yet used or lapsed.
    pub admitted: u64,
}

/// The admission schedule: turn `k` since `anchor` comes at
/// `anchor + ceil(k * 60,000 / admit_per_minute)` ms, so turns are spaced
/// evenly and no 60 s holds more than the pace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pace {
    /// When turn 0 came.
    pub anchor: Timestamp,
    /// Turns taken since.
    pub turns: u64,
}

impl Default for Pace {
    fn default() -> Self {
        Self {
            anchor: Timestamp::from_millis(0),
            turns: 0,
        }
    }
}

impl Pace {
    /// When turn `turns + ahead` comes at `per_minute`.
    fn turn_at(&self, ahead: u64, per_minute: u32) -> Timestamp {
        let k = u128::from(self.turns) + u128::from(ahead);
        let per_minute = u128::from(per_minute.max(1));
        let offset = (k * 60_000).div_ceil(per_minute);
        Timestamp::from_millis(
            self.anchor
                .millis()
                .saturating_add(i64::try_from(offset).unwrap_or(i64::MAX)),
        )
    }
}

/// The time between two turns at `per_minute`, rounded up, in ms.
fn step_millis(per_minute: u32) -> i64 {
    i64::from(60_000u32.div_ceil(per_minute.max(1)))
}

/// What the room has to do next, decided at some moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomStep {
    /// Draw the order of everyone waiting.
    Draw,
    /// Lapse every admission due.
    Lapse,
    /// Admit this many from the front; `restart`: the pace starts again now.
    Admit {
        /// How many.
        count: u32,
        /// Whether the schedule restarts at this moment first.
        restart: bool,
    },
}

/// How many milliseconds of turns one step admits at most at a fast pace
/// (each admission is still within a second of its turn).
const TICK_MILLIS: u64 = 50;

/// Most entries one admission change takes, so a fast pace after a pause
/// never makes one huge record.
const ADMIT_BATCH: u64 = 10_000;

/// What it takes to reverse one change to the room exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomUndo {
    settings: Option<RoomSettings>,
    pace: Option<Pace>,
    /// The waiting entries' order before a draw.
    before_draw: Option<Vec<u32>>,
    /// Records as they were before, or `None` for an added one, in order.
    records: Vec<(u32, Option<EntryRecord>)>,
    /// What the change did to the queue, in order.
    queue: Vec<QueueStep>,
    /// Admission deadlines added (true) or removed (false), in order.
    admissions: Vec<(bool, (Timestamp, u32))>,
}

impl RoomUndo {
    /// Whether the change touched the room at all.
    pub fn is_empty(&self) -> bool {
        self.settings.is_none()
            && self.pace.is_none()
            && self.before_draw.is_none()
            && self.records.is_empty()
            && self.queue.is_empty()
            && self.admissions.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QueueStep {
    Pushed(u32),
    Removed { seq: u32, handle: u32 },
}

/// One event's waiting room. Owned by the event, so nothing here locks.
#[derive(Debug, Clone, Default)]
pub struct Room {
    settings: RoomSettings,
    /// Every person's latest entry; an index is a handle.
    entries: ChunkedVec<EntryRecord>,
    /// Handles into `entries`, by user id.
    by_user: HashTable<u32>,
    hasher: DefaultHashBuilder,
    /// Waiting entries: in join order before the draw, in the drawn order
    /// (then join order) after it.
    queue: WaitingQueue,
    /// Whether the draw has happened.
    drawn: bool,
    /// Admitted entries by deadline, earliest first.
    admissions: BTreeSet<(Timestamp, u32)>,
    /// The admission schedule.
    pace: Pace,
}

/// A room in the form snapshots store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSnapshot {
    /// The settings.
    pub settings: RoomSettings,
    /// Every person's latest entry.
    pub entries: ChunkedVec<EntryRecord>,
    /// Handles of the waiting entries, first first.
    pub waiting: Vec<u32>,
    /// Whether the draw has happened.
    pub drawn: bool,
    /// The admission schedule.
    pub pace: Pace,
}

impl Room {
    /// A room with `settings` and nobody in it.
    pub fn new(settings: RoomSettings) -> Self {
        Self {
            settings,
            ..Self::default()
        }
    }

    /// The settings.
    pub fn settings(&self) -> RoomSettings {
        self.settings
    }

    /// Counters and settings.
    pub fn status(&self) -> RoomStatus {
        RoomStatus {
            settings: self.settings,
            waiting: self.queue.len() as u64,
            admitted: self.admissions.len() as u64,
        }
    }

    /// Whether anyone ever joined (an event without entries and with the
    /// room off has no room to show).
    pub fn has_entries(&self) -> bool {
        !self.entries.is_empty()
    }

    /// How many people have an entry record.
    pub fn entry_count(&self) -> usize {
        self.entries.len()
    }

    /// The handle of `user`'s latest entry.
    pub fn find(&self, user: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(user);
        self.by_user
            .find(hash, |&h| {
                self.entries
                    .get(h as usize)
                    .is_some_and(|r| r.user.as_str() == user)
            })
            .copied()
    }

    /// The handle of `user`'s active entry.
    pub fn active(&self, user: &str) -> Option<u32> {
        self.find(user)
            .filter(|&h| self.entries[h as usize].status.is_active())
    }

    /// Where entry `handle` stands.
    pub fn entry_status(&self, handle: u32) -> EntryStatus {
        self.entries[handle as usize].status
    }

    /// Whether `user` is admitted at `now` (and the admission has not lapsed).
    pub fn is_admitted(&self, user: &str, now: Timestamp) -> bool {
        self.find(user).is_some_and(|h| {
            let r = &self.entries[h as usize];
            r.status == EntryStatus::Admitted && now < r.admitted_until
        })
    }

    /// Entry `handle` as a reader sees it; `admitting`: whether the room
    /// admits now (on, drawn, sales open), for the estimate.
    pub fn view(&self, handle: u32, event: EventId, admitting: bool) -> EntryView {
        let r = &self.entries[handle as usize];
        let position = (r.status == EntryStatus::Waiting && self.drawn)
            .then(|| self.queue.position(r.seq))
            .flatten();
        let admitted = matches!(
            r.status,
            EntryStatus::Admitted | EntryStatus::Used | EntryStatus::Expired
        );
        EntryView {
            event_id: event,
            user_id: r.user.clone(),
            status: r.status,
            position,
            people_ahead: position.map(|p| p - 1),
            estimated_admission_at: position
                .filter(|_| admitting)
                .map(|p| self.pace.turn_at(p - 1, self.settings.admit_per_minute)),
            admitted_at: admitted.then_some(r.admitted_at),
            admitted_until: (r.status == EntryStatus::Admitted).then_some(r.admitted_until),
            joined_at: r.joined_at,
            updated_at: r.updated_at,
        }
    }

    /// Whether the room admits at all now: on and drawn (the event adds
    /// whether sales are open).
    pub fn is_running(&self) -> bool {
        self.settings.is_on() && self.drawn
    }

    /// Whether the draw has happened.
    pub fn is_drawn(&self) -> bool {
        self.drawn
    }

    /// The earliest admission deadline, if anyone is admitted.
    pub fn next_lapse(&self) -> Option<Timestamp> {
        self.admissions.first().map(|&(until, _)| until)
    }

    /// When the next admission turn comes, if anyone waits for one and the
    /// room runs (the event checks sales).
    /// At a fast pace this is the turn about [`TICK_MILLIS`] on, so one
    /// step admits that many at once instead of one per millisecond.
    pub fn next_turn(&self) -> Option<Timestamp> {
        let per_minute = self.settings.admit_per_minute;
        let batch = u64::from(per_minute) * TICK_MILLIS / 60_000;
        let ahead = batch.min(self.queue.len() as u64).saturating_sub(1);
        (self.is_running() && !self.queue.is_empty()).then(|| self.pace.turn_at(ahead, per_minute))
    }

    /// How many admissions are due at `now`, and whether the schedule must
    /// restart first (its next turn is late by more than
    /// [`LATE_TURN_MILLIS`]). `None`: nothing to admit.
    pub fn due_admissions(&self, now: Timestamp) -> Option<(u32, bool)> {
        let next = self.next_turn()?;
        if next > now {
            return None;
        }
        let waiting = self.queue.len() as u64;
        if next.millis() < now.millis() - LATE_TURN_MILLIS {
            return Some((1, true));
        }
        // Turns whose time has come: k with turn_at(k) <= now.
        let per_minute = u128::from(self.settings.admit_per_minute);
        let elapsed = u128::try_from(now.millis() - self.pace.anchor.millis()).unwrap_or(0);
        let reached = (elapsed * per_minute / 60_000 + 1) as u64;
        let due = reached.saturating_sub(self.pace.turns).max(1);
        let count = due.min(waiting).min(ADMIT_BATCH);
        Some((u32::try_from(count).unwrap_or(u32::MAX), false))
    }

    /// Changes the settings. A new pace starts its schedule at `at`, but
    /// never sooner than one of its own steps after the last admission
    /// (contract v4, Corrections: changing the pace back and forth admitted
    /// someone at each change); turning the room on starts at `at`.
    pub fn set_settings(&mut self, next: RoomSettings, at: Timestamp, undo: &mut RoomUndo) {
        if next == self.settings {
            return;
        }
        let (old, new) = (self.settings.admit_per_minute, next.admit_per_minute);
        if new != old {
            undo.pace.get_or_insert(self.pace);
            let anchor = if old == 0 || new == 0 {
                at
            } else {
                at.max(self.latest_admission(old).plus_millis(step_millis(new)))
            };
            self.pace = Pace { anchor, turns: 0 };
        }
        undo.settings.get_or_insert(self.settings);
        self.settings = next;
    }

    /// The latest moment the last admission of the schedule running at
    /// `per_minute` can have come: its last turn taken, or, when it has
    /// taken none, one of its steps before its first turn (a schedule
    /// starts no sooner than a step after the admission before it, so that
    /// one came at most then).
    fn latest_admission(&self, per_minute: u32) -> Timestamp {
        if self.pace.turns > 0 {
            let last = Pace {
                anchor: self.pace.anchor,
                turns: self.pace.turns - 1,
            };
            last.turn_at(0, per_minute)
        } else {
            // A schedule begun by turning the room on starts at once, not
            // a step after the admission before it (the room model found
            // 1 -> off -> 30 -> 60 a minute admitting again at the instant
            // of the last admission): the entries' own admission times
            // count too, a left one's as well (the model found the admitted
            // person leaving while the room was off; one that left waiting
            // holds its join time: later, never sooner). Rare, so a scan.
            let assumed = self.pace.anchor.plus_millis(-step_millis(per_minute));
            self.entries
                .iter()
                .filter(|r| r.status != EntryStatus::Waiting)
                .map(|r| r.admitted_at)
                .fold(assumed, Timestamp::max)
        }
    }

    /// `user` joins at the end (a new entry replaces an ended one).
    pub fn join(
        &mut self,
        user: &UserId,
        at: Timestamp,
        undo: &mut RoomUndo,
    ) -> Result<u32, DomainError> {
        let existing = self.find(user.as_str());
        if existing.is_some_and(|h| self.entries[h as usize].status.is_active()) {
            return Err(DomainError::Inconsistent(format!(
                "{user} joined the room twice"
            )));
        }
        if !self.queue.has_room() || (existing.is_none() && self.entries.len() >= u32::MAX as usize)
        {
            return Err(DomainError::EventFull);
        }
        if self.drawn
            && self.queue.is_empty()
            && self.pace.turn_at(0, self.settings.admit_per_minute) < at
        {
            // Nobody waited through the turns that passed: they are gone,
            // and the first to arrive waits for no turn of the past.
            undo.pace.get_or_insert(self.pace);
            self.pace = Pace {
                anchor: at,
                turns: 0,
            };
        }
        let record = EntryRecord {
            user: user.clone(),
            status: EntryStatus::Waiting,
            joined_at: at,
            updated_at: at,
            admitted_at: at,
            admitted_until: at,
            seq: 0,
        };
        let handle = match existing {
            Some(h) => {
                let before = std::mem::replace(&mut self.entries[h as usize], record);
                undo.records.push((h, Some(before)));
                h
            }
            None => {
                let h = self.entries.len() as u32;
                let hash = self.hasher.hash_one(user.as_str());
                let (entries, hasher) = (&self.entries, &self.hasher);
                self.by_user.insert_unique(hash, h, |&i| {
                    hasher.hash_one(entries[i as usize].user.as_str())
                });
                self.entries.push(record);
                undo.records.push((h, None));
                h
            }
        };
        let seq = self.queue.push(handle, 1);
        self.entries[handle as usize].seq = seq;
        undo.queue.push(QueueStep::Pushed(seq));
        Ok(handle)
    }

    /// `user`'s active entry ends as `left`.
    pub fn leave(
        &mut self,
        user: &UserId,
        at: Timestamp,
        undo: &mut RoomUndo,
    ) -> Result<u32, DomainError> {
        let handle = self
            .active(user.as_str())
            .ok_or(DomainError::EntryNotFound)?;
        self.end(handle, EntryStatus::Left, at, undo);
        Ok(handle)
    }

    /// The draw: every waiting entry in an order drawn from `seed`, every
    /// order equally likely (Fisher–Yates over ChaCha20).
    pub fn draw(
        &mut self,
        seed: [u8; 32],
        at: Timestamp,
        undo: &mut RoomUndo,
    ) -> Result<(), DomainError> {
        if self.drawn {
            return Err(DomainError::Inconsistent("the room was drawn twice".into()));
        }
        let before: Vec<u32> = self.queue.handles().collect();
        let mut order = before.clone();
        shuffle(&mut order, seed);
        self.requeue(&order);
        undo.before_draw = Some(before);
        undo.pace.get_or_insert(self.pace);
        self.pace = Pace {
            anchor: at,
            turns: 0,
        };
        self.drawn = true;
        Ok(())
    }

    /// Admits up to `count` of the first waiting entries; `restart`: the
    /// schedule starts again at `at` first. Each is stamped with its turn's
    /// time; a turn that came before its taker joined restarts the schedule
    /// at the join, and none later than `at` is taken. Returns their
    /// handles (at least one when the event decided the turn was due).
    pub fn admit(
        &mut self,
        count: u32,
        restart: bool,
        at: Timestamp,
        undo: &mut RoomUndo,
    ) -> Result<Vec<u32>, DomainError> {
        if !self.drawn || self.queue.len() < count as usize {
            return Err(DomainError::Inconsistent(format!(
                "admitting {count} of {} waiting (drawn: {})",
                self.queue.len(),
                self.drawn
            )));
        }
        undo.pace.get_or_insert(self.pace);
        if restart {
            self.pace = Pace {
                anchor: at,
                turns: 0,
            };
        }
        let mut admitted = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let Some(head) = self.queue.head() else { break };
            let mut turn = self.pace.turn_at(0, self.settings.admit_per_minute);
            let joined = self.entries[head.handle as usize].joined_at;
            if turn < joined {
                // The turn passed before its taker arrived (the one it was
                // meant for left): the schedule starts again at the
                // arrival, so turns stay a pace apart.
                self.pace = Pace {
                    anchor: joined,
                    turns: 0,
                };
                turn = joined;
            }
            if turn > at {
                break;
            }
            self.pace.turns += 1;
            let record = &mut self.entries[head.handle as usize];
            let before = record.clone();
            let stamp = turn;
            record.status = EntryStatus::Admitted;
            record.admitted_at = stamp;
            record.admitted_until = stamp.plus_secs(self.settings.admit_secs);
            record.updated_at = stamp;
            let deadline = (record.admitted_until, head.handle);
            undo.records.push((head.handle, Some(before)));
            self.queue.remove(head.seq);
            undo.queue.push(QueueStep::Removed {
                seq: head.seq,
                handle: head.handle,
            });
            self.admissions.insert(deadline);
            undo.admissions.push((true, deadline));
            admitted.push(head.handle);
        }
        Ok(admitted)
    }

    /// Every admission whose deadline is at or before `at` lapses, each at
    /// its deadline. Returns their handles, earliest first.
    pub fn lapse(&mut self, at: Timestamp, undo: &mut RoomUndo) -> Vec<u32> {
        let mut lapsed = Vec::new();
        while let Some(&(until, handle)) = self.admissions.first() {
            if until > at {
                break;
            }
            self.end(handle, EntryStatus::Expired, until, undo);
            lapsed.push(handle);
        }
        lapsed
    }

    /// `user` booked: an admitted entry is now used. Returns its handle.
    pub fn use_admission(
        &mut self,
        user: &UserId,
        at: Timestamp,
        undo: &mut RoomUndo,
    ) -> Option<u32> {
        let handle = self
            .find(user.as_str())
            .filter(|&h| self.entries[h as usize].status == EntryStatus::Admitted)?;
        self.end(handle, EntryStatus::Used, at, undo);
        Some(handle)
    }

    /// Makes the queue hold `order`, first first.
    fn requeue(&mut self, order: &[u32]) {
        let mut queue = WaitingQueue::new();
        for &handle in order {
            self.entries[handle as usize].seq = queue.push(handle, 1);
        }
        self.queue = queue;
    }

    /// Ends an active entry as `to`, out of the queue or the admissions.
    fn end(&mut self, handle: u32, to: EntryStatus, at: Timestamp, undo: &mut RoomUndo) {
        let record = &mut self.entries[handle as usize];
        let before = record.clone();
        record.status = to;
        record.updated_at = at;
        undo.records.push((handle, Some(before.clone())));
        match before.status {
            EntryStatus::Waiting => {
                let removed = self.queue.remove(before.seq);
                debug_assert!(removed, "a waiting entry is queued");
                undo.queue.push(QueueStep::Removed {
                    seq: before.seq,
                    handle,
                });
            }
            EntryStatus::Admitted => {
                let deadline = (before.admitted_until, handle);
                self.admissions.remove(&deadline);
                undo.admissions.push((false, deadline));
            }
            _ => debug_assert!(false, "only an active entry ends"),
        }
    }

    /// Reverses the changes recorded in `undo` (undos newest first).
    pub fn undo(&mut self, undo: RoomUndo) {
        for (added, deadline) in undo.admissions.into_iter().rev() {
            if added {
                self.admissions.remove(&deadline);
            } else {
                self.admissions.insert(deadline);
            }
        }
        for step in undo.queue.into_iter().rev() {
            match step {
                QueueStep::Pushed(seq) => {
                    let removed = self.queue.remove(seq);
                    debug_assert!(removed, "an undone join is still queued");
                }
                QueueStep::Removed { seq, handle } => self.queue.revive(seq, handle, 1),
            }
        }
        for (handle, before) in undo.records.into_iter().rev() {
            match before {
                Some(record) => self.entries[handle as usize] = record,
                None => {
                    let hash = self
                        .hasher
                        .hash_one(self.entries[handle as usize].user.as_str());
                    if let Ok(entry) = self.by_user.find_entry(hash, |&h| h == handle) {
                        entry.remove();
                    }
                    self.entries.pop();
                }
            }
        }
        if let Some(order) = undo.before_draw {
            self.requeue(&order);
            self.drawn = false;
        }
        if let Some(pace) = undo.pace {
            self.pace = pace;
        }
        if let Some(settings) = undo.settings {
            self.settings = settings;
        }
    }

    /// The room in the form snapshots store.
    pub fn to_snapshot(&self) -> RoomSnapshot {
        RoomSnapshot {
            settings: self.settings,
            entries: self.entries.clone(),
            waiting: self.queue.handles().collect(),
            drawn: self.drawn,
            pace: self.pace,
        }
    }

    /// Rebuilds a room from a snapshot, refusing one that breaks an invariant.
    pub fn from_snapshot(snapshot: RoomSnapshot) -> Result<Self, String> {
        let RoomSnapshot {
            settings,
            mut entries,
            waiting,
            drawn,
            pace,
        } = snapshot;
        settings.check().map_err(|e| e.to_string())?;
        if entries.len() > u32::MAX as usize {
            return Err("too many room entries".into());
        }
        let mut queue = WaitingQueue::new();
        let mut queued = vec![false; entries.len()];
        for &handle in &waiting {
            let Some(record) = entries.get_mut(handle as usize) else {
                return Err(format!("room queue names missing entry {handle}"));
            };
            if record.status != EntryStatus::Waiting
                || std::mem::replace(&mut queued[handle as usize], true)
            {
                return Err(format!(
                    "room queue names entry {handle} twice or while not waiting"
                ));
            }
            record.seq = queue.push(handle, 1);
        }
        let mut room = Self {
            settings,
            entries: ChunkedVec::new(),
            by_user: HashTable::with_capacity(entries.len()),
            hasher: DefaultHashBuilder::default(),
            queue,
            drawn,
            admissions: BTreeSet::new(),
            pace,
        };
        for (handle, record) in entries.iter().enumerate() {
            if record.status == EntryStatus::Admitted {
                room.admissions
                    .insert((record.admitted_until, handle as u32));
            }
            let user = record.user.as_str();
            let hasher = &room.hasher;
            match room.by_user.entry(
                hasher.hash_one(user),
                |&h| entries[h as usize].user.as_str() == user,
                |&h| hasher.hash_one(entries[h as usize].user.as_str()),
            ) {
                hashbrown::hash_table::Entry::Occupied(_) => {
                    return Err(format!("user {user} has two room entries"));
                }
                hashbrown::hash_table::Entry::Vacant(slot) => {
                    slot.insert(handle as u32);
                }
            }
        }
        room.entries = entries;
        room.verify()?;
        Ok(room)
    }

    /// Checks every invariant by a full scan.
    pub fn verify(&self) -> Result<(), String> {
        let waiting = self
            .entries
            .iter()
            .filter(|r| r.status == EntryStatus::Waiting)
            .count();
        if waiting != self.queue.len() {
            return Err(format!(
                "{waiting} waiting entries but {} queued",
                self.queue.len()
            ));
        }
        for (i, entry) in self.queue.page(0, self.queue.len()).iter().enumerate() {
            let r = &self.entries[entry.handle as usize];
            if r.status != EntryStatus::Waiting || self.queue.position(r.seq) != Some(i as u64 + 1)
            {
                return Err(format!("room entry {} out of place", entry.handle));
            }
        }
        let admitted = self
            .entries
            .iter()
            .filter(|r| r.status == EntryStatus::Admitted)
            .count();
        let indexed = self.admissions.iter().all(|&(until, h)| {
            self.entries
                .get(h as usize)
                .is_some_and(|r| r.status == EntryStatus::Admitted && r.admitted_until == until)
        });
        if !indexed || admitted != self.admissions.len() {
            return Err("admission deadlines out of step with admitted entries".into());
        }
        if self.by_user.len() != self.entries.len() {
            return Err("room user index out of step with entries".into());
        }
        Ok(())
    }

    /// Handles of the waiting entries, first first (for tests and checks).
    pub fn waiting_handles(&self) -> Vec<u32> {
        self.queue.handles().collect()
    }

    /// The user of entry `handle`.
    pub fn user_of(&self, handle: u32) -> &UserId {
        &self.entries[handle as usize].user
    }

    /// The schedule (for tests and checks).
    pub fn pace(&self) -> Pace {
        self.pace
    }
}

/// Puts `items` in an order drawn from `seed`: Fisher–Yates, each index
/// drawn uniformly by rejection (no modulo bias), so every order is equally
/// likely; ChaCha20's output for a seed is fixed, so the same seed always
/// gives the same order, on every machine and in every later build.
pub fn shuffle<T>(items: &mut [T], seed: [u8; 32]) {
    let mut rng = rand_chacha::ChaCha20Rng::from_seed(seed);
    for i in (1..items.len()).rev() {
        let range = i as u64 + 1;
        // The largest multiple of `range`, minus one: values above it would
        // favour the low indexes.
        let zone = u64::MAX - (u64::MAX % range + 1) % range;
        let j = loop {
            let x = rng.next_u64();
            if x <= zone {
                break x % range;
            }
        };
        items.swap(i, j as usize);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn turns_are_spaced_evenly_and_never_more_than_the_pace_in_a_minute() {
        let pace = Pace {
            anchor: at(1_000),
            turns: 0,
        };
        assert_eq!(pace.turn_at(0, 600), at(1_000));
        assert_eq!(pace.turn_at(1, 600), at(1_100));
        assert_eq!(pace.turn_at(600, 600), at(61_000));
        // 7 a minute: 8,571.4 ms apart, rounded up.
        let times: Vec<i64> = (0..30).map(|k| pace.turn_at(k, 7).millis()).collect();
        for window in times.windows(8) {
            assert!(
                window[7] - window[0] >= 60_000,
                "8 turns in under a minute: {window:?}"
            );
        }
    }

    #[test]
    fn a_shuffle_is_a_permutation_fixed_by_its_seed() {
        let mut a: Vec<u32> = (0..1_000).collect();
        let mut b = a.clone();
        shuffle(&mut a, [7; 32]);
        shuffle(&mut b, [7; 32]);
        assert_eq!(a, b, "same seed, same order");
        let mut c: Vec<u32> = (0..1_000).collect();
        shuffle(&mut c, [8; 32]);
        assert_ne!(a, c, "another seed, another order");
        a.sort_unstable();
        assert_eq!(a, (0..1_000).collect::<Vec<_>>());
    }

    #[test]
    fn every_order_of_three_is_about_equally_likely() {
        let mut counts = std::collections::HashMap::new();
        for n in 0..6_000u32 {
            let mut seed = [0u8; 32];
            seed[..4].copy_from_slice(&n.to_le_bytes());
            let mut items = [0u8, 1, 2];
            shuffle(&mut items, seed);
            *counts.entry(items).or_insert(0u32) += 1;
        }
        assert_eq!(counts.len(), 6);
        for (order, count) in counts {
            // Expected 1,000 each; 5 standard deviations is about ±144.
            assert!(
                (850..=1_150).contains(&count),
                "{order:?} drawn {count} times"
            );
        }
    }
}
