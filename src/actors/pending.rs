//! The changes an event's actor applied that its log has not yet made
//! durable, oldest first: their undos, to take them back if the log loses
//! them (a new epoch), and, while they wait longer than a commit takes, a
//! copy of the event as the durable changes left it, for readers.
//!
//! The copy is why a read need not wait behind an uncommitted change
//! (issue 35, finding 3): a leader cut off from its majority holds its
//! last changes pending until the partition heals, and before the copy
//! every read of that event waited for them, then answered 503. A read
//! served from the copy shows every acknowledged change (an answer goes
//! out only once its change is durable) and nothing that may still be
//! lost. It is made once per durable position (a clone of the event with
//! the pending changes undone) and kept while the changes stay pending, so
//! a stalled leader clones each read event once, not once per read; it is
//! dropped as soon as the durable position moves or nothing is pending.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::domain::{Event, Undo};
use crate::persistence::journal::Lsn;

/// One change applied ahead of its durability.
struct Pending {
    lsn: Lsn,
    undo: Undo,
    /// When it was handed to the log.
    since: Instant,
}

/// An actor's pending changes (see the module's doc).
#[derive(Default)]
pub struct PendingChanges {
    queue: VecDeque<Pending>,
    /// The event as of the durable LSN it is keyed by.
    durable_copy: Option<(Lsn, Event)>,
}

impl PendingChanges {
    /// Records a change handed to the log at `since` as `lsn`.
    pub fn push(&mut self, lsn: Lsn, undo: Undo, since: Instant) {
        self.queue.push_back(Pending { lsn, undo, since });
    }

    /// How many are pending.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The LSN of the newest pending change.
    pub fn newest(&self) -> Option<Lsn> {
        self.queue.back().map(|p| p.lsn)
    }

    /// Forgets the undos of the oldest changes while `is_durable` says
    /// they are; returns the LSN of the newest one forgotten.
    pub fn forget_durable(&mut self, is_durable: impl Fn(Lsn) -> bool) -> Option<Lsn> {
        let mut newest = None;
        while let Some(oldest) = self.queue.front() {
            if !is_durable(oldest.lsn) {
                break;
            }
            newest = Some(oldest.lsn);
            self.queue.pop_front();
        }
        // A copy of an older durable state is of no more use: dropped, so
        // that under steady load (something always pending) it is kept
        // only while the log stands still.
        if newest.is_some() || self.queue.is_empty() {
            self.durable_copy = None;
        }
        newest
    }

    /// Undoes every pending change in `event`, newest first, and forgets
    /// them; returns how many there were.
    pub fn undo_all(&mut self, event: &mut Event) -> usize {
        let undone = self.queue.len();
        while let Some(pending) = self.queue.pop_back() {
            event.undo(pending.undo);
        }
        self.durable_copy = None;
        undone
    }

    /// `event` without the pending changes after `through`: `None` when
    /// there are none (`event` is that state already).
    pub fn without_changes_after(&self, event: &Event, through: Lsn) -> Option<Event> {
        let first = self.queue.iter().position(|p| p.lsn > through)?;
        let mut copy = event.clone();
        for pending in self.queue.iter().skip(first).rev() {
            copy.undo(pending.undo.clone());
        }
        Some(copy)
    }

    /// Whether the oldest pending change has waited at least `patience` by
    /// `now`: longer than a commit takes.
    pub fn stalled(&self, now: Instant, patience: Duration) -> bool {
        self.queue
            .front()
            .is_some_and(|oldest| now.saturating_duration_since(oldest.since) >= patience)
    }

    /// `event` as its durable changes left it, `durable` being the LSN of
    /// the newest of them: `event` itself when nothing is pending, else the
    /// kept copy (made now if `durable` moved since it was made).
    pub fn durable_view<'a>(&'a mut self, event: &'a Event, durable: Lsn) -> &'a Event {
        if self.queue.is_empty() {
            return event;
        }
        let fresh = matches!(&self.durable_copy, Some((at, _)) if *at == durable);
        if !fresh {
            let copy = self
                .without_changes_after(event, durable)
                .unwrap_or_else(|| event.clone());
            self.durable_copy = Some((durable, copy));
        }
        match &self.durable_copy {
            Some((_, copy)) => copy,
            None => event,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{BookingIdSequence, EventId, EventSettings, Timestamp, UserId};

    fn event() -> Event {
        let at = Timestamp::from_millis(1_000_000);
        let (event, _) = Event::create(
            EventId::try_from(1).expect("id"),
            EventSettings::new(None, 5, 1),
            at,
        )
        .expect("event");
        event
    }

    /// Books `user` in `event`, as an actor would, pending as `lsn`.
    fn book(event: &mut Event, pending: &mut PendingChanges, user: &str, lsn: u64, since: Instant) {
        let user = UserId::try_from(user).expect("user");
        let made = event
            .book(
                &user,
                1,
                &BookingIdSequence::default(),
                Timestamp::from_millis(1_000_000),
            )
            .expect("booked")
            .made
            .expect("a change");
        pending.push(Lsn::new(lsn), made.undo, since);
    }

    #[test]
    fn the_durable_view_leaves_out_what_is_pending_and_is_kept_until_durable_moves() {
        let start = Instant::now();
        let mut event = event();
        let mut pending = PendingChanges::default();
        book(&mut event, &mut pending, "a", 1, start);
        assert_eq!(
            pending.forget_durable(|lsn| lsn <= Lsn::new(1)),
            Some(Lsn::new(1))
        );
        assert_eq!(
            pending
                .durable_view(&event, Lsn::new(1))
                .status()
                .available_tickets,
            4
        );

        book(&mut event, &mut pending, "b", 2, start);
        book(&mut event, &mut pending, "c", 3, start);
        assert_eq!(event.status().available_tickets, 2);
        assert_eq!(
            pending
                .durable_view(&event, Lsn::new(1))
                .status()
                .available_tickets,
            4
        );
        // Kept: a change made since does not reach the copy.
        book(&mut event, &mut pending, "d", 4, start);
        assert_eq!(
            pending
                .durable_view(&event, Lsn::new(1))
                .status()
                .available_tickets,
            4
        );
        assert_eq!(pending.newest(), Some(Lsn::new(4)));

        // b became durable: the old copy goes at once; one with b is made
        // when asked.
        assert_eq!(
            pending.forget_durable(|lsn| lsn <= Lsn::new(2)),
            Some(Lsn::new(2))
        );
        assert!(pending.durable_copy.is_none());
        assert_eq!(
            pending
                .durable_view(&event, Lsn::new(2))
                .status()
                .available_tickets,
            3
        );
        assert_eq!(pending.len(), 2);

        // Everything durable: the event itself, and the copy is gone.
        pending.forget_durable(|_| true);
        assert!(pending.is_empty() && pending.durable_copy.is_none());
        assert_eq!(
            pending
                .durable_view(&event, Lsn::new(4))
                .status()
                .available_tickets,
            1
        );
    }

    #[test]
    fn lost_changes_are_undone_newest_first_and_the_copy_goes_with_them() {
        let start = Instant::now();
        let mut event = event();
        let before = event.status();
        let mut pending = PendingChanges::default();
        book(&mut event, &mut pending, "a", 1, start);
        book(&mut event, &mut pending, "b", 2, start);
        pending.durable_view(&event, Lsn::ZERO);
        assert_eq!(pending.undo_all(&mut event), 2);
        assert_eq!(event.status(), before);
        assert!(pending.is_empty() && pending.durable_copy.is_none());
        assert!(pending.without_changes_after(&event, Lsn::ZERO).is_none());
    }

    #[test]
    fn a_change_is_stalled_once_it_has_waited_the_patience() {
        let start = Instant::now();
        let patience = Duration::from_millis(100);
        let mut event = event();
        let mut pending = PendingChanges::default();
        assert!(
            !pending.stalled(start + patience, patience),
            "nothing pending"
        );
        book(&mut event, &mut pending, "a", 1, start);
        book(&mut event, &mut pending, "b", 2, start + patience);
        assert!(!pending.stalled(start + patience / 2, patience));
        assert!(pending.stalled(start + patience, patience), "by the oldest");
        pending.forget_durable(|lsn| lsn <= Lsn::new(1));
        assert!(!pending.stalled(start + patience, patience));
    }
}
