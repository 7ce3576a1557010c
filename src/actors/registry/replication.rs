//! What a cluster node's replicated log asks of the registry: committed
//! changes this node did not make, applied in commit order; the committed
//! state as a Raft snapshot's image; an image installed in place of the
//! state; and a barrier behind everything sent to the actors. A single
//! node uses none of it.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use actix::Addr;
use tokio::sync::oneshot;

use super::{Registry, COLLECT_IN_FLIGHT};
use crate::actors::messages::{ApplyCommitted, Read, TakeCommitted};
use crate::actors::EventActor;
use crate::domain::{Event, EventId};
use crate::persistence::journal::{Lsn, Record};
use crate::persistence::recovery::Recovered;
use crate::persistence::StoredEvent;

impl Registry {
    /// Applies a change that a cluster committed and this node did not
    /// make itself (a follower's, or a former leader's after its undo), at
    /// `lsn`, in commit order: through the event's actor, or as a new event
    /// or idempotency key.
    pub fn apply_committed(&self, lsn: Lsn, record: Record) {
        let record = match record {
            Record::KeyedCreate(key) => return self.note_create_key(&mut self.keys(), key, lsn),
            Record::CreateKey(key) => {
                return self.note_create_key(&mut self.keys(), key.into(), lsn)
            }
            other => other,
        };
        let Some((id, change)) = record.into_change() else {
            return;
        };
        if let Some(booking) = change.new_booking() {
            self.ids.skip_past(booking);
        }
        self.changes.fetch_add(1, Ordering::Relaxed);
        if let Some(created) = Event::from_creation(id, &change) {
            let event = match created {
                Ok(event) => event,
                Err(e) => {
                    self.divergence.report(&format!(
                        "committed creation of event {id} (change {lsn}) cannot be applied: {e}"
                    ));
                    return;
                }
            };
            let mut ordered = self.ordered.write().unwrap_or_else(|p| p.into_inner());
            // An actor already there is this node's own creation, undone.
            self.actors.insert(id, self.start(event, lsn));
            self.note_id(&mut ordered, id);
            return;
        }
        match self.actors.get(&id) {
            // Queued behind whatever the actor has; never refused for a
            // full mailbox: a committed change must be applied.
            Some(handle) => {
                handle.sent.fetch_max(lsn.get(), Ordering::AcqRel);
                handle.addr.do_send(ApplyCommitted { lsn, change });
            }
            None => self.divergence.report(&format!(
                "committed change {lsn} to event {id}, which does not exist here"
            )),
        }
    }

    /// Waits until every actor has handled every message sent to it
    /// before this call (committed changes among them).
    pub async fn barrier(&self) {
        use futures_util::stream::{self, StreamExt};
        let (ids, _) = self.page(0, usize::MAX);
        stream::iter(ids)
            .filter_map(|id| std::future::ready(self.get(id)))
            .map(|addr| async move {
                let (reply, answer) = oneshot::channel();
                if addr
                    .send(Read {
                        op: Box::new(|_| ()),
                        reply,
                        patience: None,
                    })
                    .await
                    .is_ok()
                {
                    let _ = answer.await;
                }
            })
            .buffer_unordered(COLLECT_IN_FLIGHT)
            .collect::<()>()
            .await;
    }

    /// The state as a cluster committed it through `through` (this node's
    /// LSN), encoded: a Raft snapshot's image. Each event's actor is asked
    /// before this returns, so a committed change applied after the call
    /// is in none of them; the caller keeps the commit mark from moving
    /// until the future is done (see `TakeCommitted`). Events created
    /// beyond `through` (a leader's, not committed yet) are left out, and
    /// idempotency keys of events left out with them.
    pub fn committed_image(
        &self,
        through: Lsn,
        next_change_index: u64,
    ) -> impl std::future::Future<Output = std::io::Result<Vec<u8>>> + Send + 'static {
        use futures_util::stream::{self, StreamExt, TryStreamExt};
        let addrs: Vec<Addr<EventActor>> = {
            let ordered = self.ordered.read().unwrap_or_else(|p| p.into_inner());
            ordered
                .iter()
                .filter_map(|id| self.actors.get(id))
                .filter(|handle| handle.started_at <= through)
                .map(|handle| handle.addr.clone())
                .collect()
        };
        let asked: Vec<_> = addrs
            .iter()
            .map(|addr| {
                let (reply, answer) = oneshot::channel();
                // Unbounded, so it is queued now, behind every committed
                // change sent before it and ahead of any after.
                addr.do_send(TakeCommitted { through, reply });
                answer
            })
            .collect();
        let (create_keys, _) = self.create_keys();
        let taken_at = self.clock.now();
        let (next_event_id, next_booking_id) = (self.next_event_id(), self.next_booking_id());
        let log = Arc::clone(&self.log);
        async move {
            let mut events: Vec<StoredEvent> = stream::iter(asked)
                .map(|answer| async move {
                    answer
                        .await
                        .map_err(|_| std::io::Error::other("an event's actor stopped"))
                })
                .buffer_unordered(COLLECT_IN_FLIGHT)
                .try_collect()
                .await?;
            events.sort_unstable_by_key(|e| e.event.id);
            // An image's `applied_lsn` is the event's change index (a
            // node's LSNs mean nothing to another node): live stream ids
            // go on from it on a node that installs the image.
            for stored in &mut events {
                stored.applied_lsn = Lsn::new(log.live_id(stored.event.id, stored.applied_lsn));
            }
            let present: BTreeSet<EventId> = events.iter().map(|e| e.event.id).collect();
            let image = crate::persistence::ServiceSnapshot {
                taken_at,
                journal_lsn: through,
                // Ahead of the committed state on a leader: ids skipped,
                // never reused.
                next_event_id,
                next_booking_id,
                events,
                create_keys: create_keys
                    .into_iter()
                    .filter(|key| present.contains(&key.event))
                    .collect(),
                next_change_index,
            };
            crate::persistence::codec::encode(&image).map_err(std::io::Error::other)
        }
    }

    /// Replaces the whole state with a Raft snapshot's image
    /// ([`Self::committed_image`]), each event numbered `lsn`; the change
    /// feed index the next item gets and each event's change index. Actors
    /// of the state it replaces stop.
    pub fn replace_with_image(
        &self,
        image: &[u8],
        lsn: Lsn,
    ) -> std::io::Result<crate::cluster::log::Installed> {
        let bad = |why: String| std::io::Error::new(std::io::ErrorKind::InvalidData, why);
        let image: crate::persistence::ServiceSnapshot =
            crate::persistence::codec::decode(image).map_err(|e| bad(e.to_string()))?;
        let mut events = std::collections::BTreeMap::new();
        let mut change_indexes = Vec::with_capacity(image.events.len());
        for stored in image.events {
            let id = stored.event.id;
            change_indexes.push((id, stored.applied_lsn.get()));
            let event = Event::from_snapshot(stored.event)
                .map_err(|e| bad(format!("event {id} in a snapshot: {e}")))?;
            events.insert(id, (event, lsn));
        }
        self.actors.clear();
        self.ordered
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.keys().0.clear();
        let next_change_index = image.next_change_index;
        self.install(Recovered {
            events,
            next_event_id: image.next_event_id,
            next_booking_id: image.next_booking_id,
            next_lsn: lsn.next(),
            snapshot: None,
            replayed: 0,
            replayed_bytes: 0,
            bookings: 0,
            create_keys: image.create_keys,
            next_change_index,
        });
        self.changes.fetch_add(1, Ordering::Relaxed);
        Ok(crate::cluster::log::Installed {
            next_change_index,
            change_indexes,
        })
    }
}

impl crate::cluster::log::Applier for Registry {
    fn apply(&self, lsn: Lsn, record: Record) {
        self.apply_committed(lsn, record);
    }

    fn image(&self, through: Lsn, next_change_index: u64) -> crate::cluster::log::ImageFuture {
        Box::pin(self.committed_image(through, next_change_index))
    }

    fn install(&self, image: &[u8], lsn: Lsn) -> std::io::Result<crate::cluster::log::Installed> {
        self.replace_with_image(image, lsn)
    }
}

impl crate::cluster::node::Service for Registry {
    fn barrier(self: Arc<Self>) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(async move { Registry::barrier(&self).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::persistence::journal::Journal;

    /// A committed change to an event this node does not have, and a
    /// committed creation its domain refuses, are divergences: reported
    /// (in the service: ERROR and exit 4), never skipped with a log line.
    #[actix_web::test]
    async fn a_committed_change_this_node_cannot_apply_is_a_divergence() {
        use crate::persistence::journal::Record;
        let (reports, reported) = std::sync::mpsc::channel::<String>();
        let reports = std::sync::Mutex::new(reports);
        let registry = Registry::new(1, Journal::disabled(Lsn::FIRST), Clock::system())
            .with_divergence(crate::actors::Divergence::calling(move |what| {
                let _ = reports.lock().expect("lock").send(what.to_owned());
            }));
        registry.apply_committed(
            Lsn::new(3),
            Record::Cancelled {
                event: EventId::try_from(9).expect("id"),
                user: crate::domain::UserId::try_from("a").expect("user"),
                at: Clock::system().now(),
            },
        );
        let what = reported.try_recv().expect("reported");
        assert_eq!(
            what,
            "committed change 3 to event 9, which does not exist here"
        );
    }
}
