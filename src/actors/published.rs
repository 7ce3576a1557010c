//! An event's status as its actor last published it, so a status read need
//! not wait its turn in the actor's mailbox.
//!
//! The actor publishes after every change it journals and every change it
//! undoes, before it answers, so a read that starts after a change was
//! answered finds that change or a later one. A reader may serve what it
//! finds only if it is [`servable`](Published::servable): everything in it
//! is durable and no hold in it has lapsed since. Otherwise it asks the
//! actor, as every read did before.
//!
//! A published status also keeps its reply body, rendered by the first
//! reader that serves it: between two changes, every status read sends the
//! same bytes, so they are made once, as a live stream's messages are.

use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;

use crate::domain::{Event, EventStatus, Timestamp};
use crate::persistence::journal::{JournalState, Lsn};

/// One published status.
#[derive(Debug)]
pub struct Published {
    /// The event's status.
    pub status: EventStatus,
    /// The newest change it reflects.
    lsn: Lsn,
    /// The earliest hold deadline in it: from then on a hold in it may
    /// have lapsed.
    valid_until: Option<Timestamp>,
    /// The reply body made of `status` by the first reader that served it.
    rendered: OnceLock<bytes::Bytes>,
}

/// Where an event's actor publishes; readers load from it without locks.
pub type PublishedSlot = Arc<ArcSwap<Published>>;

impl Published {
    /// `event` as it is, reflecting changes up to `lsn`.
    pub fn of(event: &Event, lsn: Lsn) -> Self {
        Self {
            status: event.status(),
            lsn,
            // Holds only: the room's counters are what the actor has done
            // so far, whether read here or from the actor.
            valid_until: event.next_hold_deadline(),
            rendered: OnceLock::new(),
        }
    }

    /// A slot holding `event`'s status.
    pub fn slot(event: &Event, lsn: Lsn) -> PublishedSlot {
        Arc::new(ArcSwap::from_pointee(Self::of(event, lsn)))
    }

    /// The newest change it reflects.
    pub fn lsn(&self) -> Lsn {
        self.lsn
    }

    /// The reply body `render` makes of the status, made once: `render`
    /// must depend on nothing but the status. A failed render is not kept.
    pub fn rendered<E>(
        &self,
        render: impl FnOnce(&EventStatus) -> Result<bytes::Bytes, E>,
    ) -> Result<bytes::Bytes, E> {
        if let Some(body) = self.rendered.get() {
            return Ok(body.clone());
        }
        let body = render(&self.status)?;
        // Two first readers may race; either body is the same.
        let _ = self.rendered.set(body.clone());
        Ok(body)
    }

    /// Whether this may be served at `now`: everything in it is durable and
    /// no hold in it has reached its deadline.
    pub fn servable(&self, now: Timestamp, journal: &JournalState) -> bool {
        self.valid_until.is_none_or(|deadline| now < deadline) && journal.is_durable(self.lsn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{BookingIdSequence, EventId, EventSettings, UserId};

    fn journal_durable_to(lsn: u64) -> JournalState {
        JournalState {
            durable: Lsn::new(lsn),
            ..JournalState::default()
        }
    }

    #[test]
    fn only_what_is_durable_is_served() {
        let at = Timestamp::from_millis(1_000_000);
        let settings = EventSettings::new(None, 5, 1);
        let (event, _) =
            Event::create(EventId::try_from(1).expect("id"), settings, at).expect("event");
        let published = Published::of(&event, Lsn::new(7));
        assert!(!published.servable(at, &journal_durable_to(6)));
        assert!(published.servable(at, &journal_durable_to(7)));
        let mut failed = journal_durable_to(9);
        failed.failed.push(Lsn::new(7)..=Lsn::new(8));
        assert!(
            !published.servable(at, &failed),
            "a lost change is never served"
        );
    }

    #[test]
    fn a_status_with_a_hold_is_served_only_before_its_deadline() {
        let at = Timestamp::from_millis(1_000_000);
        let mut settings = EventSettings::new(None, 5, 1);
        settings.hold_secs = 60;
        let (mut event, _) =
            Event::create(EventId::try_from(1).expect("id"), settings, at).expect("event");
        let user = UserId::try_from("a").expect("user");
        event
            .book(&user, 1, &BookingIdSequence::default(), at)
            .expect("booked");
        let published = Published::of(&event, Lsn::new(2));
        assert_eq!(published.status.held_tickets, 1);
        let durable = journal_durable_to(2);
        let deadline = at.plus_secs(60);
        assert!(published.servable(Timestamp::from_millis(deadline.millis() - 1), &durable));
        assert!(
            !published.servable(deadline, &durable),
            "the hold lapses at its deadline"
        );
    }

    #[test]
    fn a_status_is_rendered_once_and_a_failed_render_is_not_kept() {
        let at = Timestamp::from_millis(1_000_000);
        let (event, _) = Event::create(
            EventId::try_from(1).expect("id"),
            EventSettings::new(None, 5, 1),
            at,
        )
        .expect("event");
        let published = Published::of(&event, Lsn::new(1));
        let failed: Result<bytes::Bytes, &str> = published.rendered(|_| Err("no"));
        assert_eq!(failed, Err("no"));
        let renders = std::cell::Cell::new(0);
        let render = |status: &EventStatus| {
            renders.set(renders.get() + 1);
            Ok::<_, &str>(bytes::Bytes::from(status.available_tickets.to_string()))
        };
        assert_eq!(published.rendered(render), Ok(bytes::Bytes::from("5")));
        assert_eq!(published.rendered(render), Ok(bytes::Bytes::from("5")));
        assert_eq!(renders.get(), 1);
    }
}
