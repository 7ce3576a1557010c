//! The service's reads: what event actors show, once it is durable, and
//! never held behind a change that does not commit.
//!
//! A read asks the event's actor (or takes the status it published) and
//! goes out once every change it shows is durable. A change that is slow
//! to commit (a leader cut off from its majority holds its last changes
//! until the partition heals) holds no read for long: after
//! [`READ_PATIENCE`] the read is answered from the state as the durable
//! changes left it (`actors::pending`). Live streams read the newest state
//! instead, and wait for it: a stream told of a change must send it.

use std::sync::Arc;

use actix::Addr;
use futures_util::future::join_all;

use super::{BoxOffice, Result, ServiceError, Settled};
use crate::actors::messages::{Durable, Read};
use crate::actors::{ask, EventActor};
use crate::domain::{
    BookingView, DomainError, EntryView, Event, EventId, EventStatus, UserId, WaitingPage,
};
use crate::persistence::journal::Lsn;

/// How long a read waits for what it shows to become durable before it is
/// answered from the state as the durable changes left it: longer than a
/// healthy commit takes (a whole booking through a 3-node cluster behind
/// HAProxy under load: p99 24.8 ms, bench/README.md), so reads go on
/// showing the newest state under load without copying the event, and far
/// shorter than the 2 s (`2 × election_timeout_ms`) a change on a leader
/// cut off from its majority waits for its commit.
pub const READ_PATIENCE: std::time::Duration = std::time::Duration::from_millis(100);

impl BoxOffice {
    /// `user`'s room entry at event `id`: the active one, else the latest.
    pub async fn room_entry(&self, id: EventId, user: UserId) -> Result<EntryView> {
        Ok(self
            .read(id, move |event| event.room_entry(&user))
            .await??)
    }

    /// [`Self::room_entry`] for many users in one read, with the LSN the
    /// answers reflect (durable), for live streams.
    pub async fn room_entries_at(
        &self,
        id: EventId,
        users: Vec<UserId>,
    ) -> Result<(Vec<std::result::Result<EntryView, DomainError>>, Lsn)> {
        self.read_at(id, move |event| {
            users.iter().map(|user| event.room_entry(user)).collect()
        })
        .await
    }

    /// `user`'s booking at event `id`: the active one, else the latest ended.
    pub async fn booking(&self, id: EventId, user: UserId) -> Result<BookingView> {
        Ok(self.read(id, move |event| event.booking(&user)).await??)
    }

    /// Event `id`'s settings and counters.
    pub async fn status(&self, id: EventId) -> Result<EventStatus> {
        if let Some(published) = self.servable_published(id)? {
            return Ok(published.status.clone());
        }
        self.read(id, |event| event.status()).await
    }

    /// [`Self::status`] with the LSN of the newest change it reflects (which
    /// is durable), for live streams: the newest state, once durable.
    pub async fn status_at(&self, id: EventId) -> Result<(EventStatus, Lsn)> {
        // What the actor published, when all of it is durable and still
        // true; else the actor's turn, as for every other read.
        if let Some(published) = self.servable_published(id)? {
            return Ok((published.status.clone(), published.lsn()));
        }
        self.read_at(id, |event| event.status()).await
    }

    /// Event `id`'s status as the reply body `render` makes of it. A
    /// published status keeps its body, so between two changes every read
    /// sends the bytes the first one made; else the actor's answer is
    /// rendered for this read alone.
    pub async fn status_body<E: From<ServiceError>>(
        &self,
        id: EventId,
        render: impl FnOnce(&EventStatus) -> std::result::Result<bytes::Bytes, E>,
    ) -> std::result::Result<bytes::Bytes, E> {
        if let Some(published) = self.servable_published(id)? {
            return published.rendered(render);
        }
        let status = self.read(id, |event| event.status()).await?;
        render(&status)
    }

    /// What event `id`'s actor last published, if it may be served now
    /// (see [`crate::actors::Published::servable`]).
    pub(super) fn servable_published(
        &self,
        id: EventId,
    ) -> Result<Option<Arc<crate::actors::Published>>> {
        let (published, current) = self
            .registry
            .published_current(id)
            .ok_or(ServiceError::EventNotFound)?;
        let servable =
            current && published.servable(self.registry.clock().now(), &self.log.state());
        Ok(servable.then_some(published))
    }

    /// [`Self::booking`] for many users in one read of the event, with the
    /// LSN of the newest change the answers reflect (which is durable).
    pub async fn bookings_at(
        &self,
        id: EventId,
        users: Vec<UserId>,
    ) -> Result<(Vec<std::result::Result<BookingView, DomainError>>, Lsn)> {
        self.read_at(id, move |event| {
            users.iter().map(|user| event.booking(user)).collect()
        })
        .await
    }

    /// A page of event `id`'s waiting list.
    pub async fn waiting_page(
        &self,
        id: EventId,
        offset: usize,
        limit: usize,
    ) -> Result<WaitingPage> {
        self.read(id, move |event| event.waiting_page(offset, limit))
            .await
    }

    /// Up to `limit` events from 0-based `offset`, in id order, and how many
    /// there are.
    pub async fn events(&self, offset: usize, limit: usize) -> Result<(Vec<EventStatus>, u64)> {
        let (ids, total) = self.registry.page(offset, limit);
        let statuses = join_all(ids.into_iter().map(|id| self.status(id))).await;
        let items = statuses
            .into_iter()
            // An event whose creation failed may vanish between listing and reading.
            .filter(|s| !matches!(s, Err(ServiceError::EventNotFound)))
            .collect::<Result<Vec<_>>>()?;
        Ok((items, total as u64))
    }

    /// Reads from event `id`'s actor what is durable, without waiting
    /// behind a change that is slow to commit: the current state if what
    /// it shows is durable within [`READ_PATIENCE`], else the state as the
    /// durable changes left it (issue 35, finding 3: a leader cut off from
    /// its majority used to hold every read of an event behind its pending
    /// change until the commit bound, then answer 503). Either shows every
    /// acknowledged change and nothing a crash or a lost leadership could
    /// take back.
    pub(super) async fn read<T, F>(&self, id: EventId, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(&Event) -> T + Clone + Send + 'static,
    {
        Ok(self.read_indexed(id, op).await?.0)
    }

    /// [`Self::read`], with the LSN of the newest change the answer
    /// reflects (durable).
    pub(super) async fn read_indexed<T, F>(&self, id: EventId, op: F) -> Result<(T, Lsn)>
    where
        T: Send + 'static,
        F: Fn(&Event) -> T + Clone + Send + 'static,
    {
        let addr = self.actor_of(id)?;
        let current = self
            .ask_read(&addr, op.clone(), Some(READ_PATIENCE))
            .await?;
        if let Ok(Settled::Durable) =
            tokio::time::timeout(READ_PATIENCE, self.settled(current.lsn)).await
        {
            return Ok((current.value, current.lsn));
        }
        let durable = self
            .ask_read(&addr, op, Some(std::time::Duration::ZERO))
            .await?;
        let lsn = durable.lsn;
        Ok((self.durable(durable).await?, lsn))
    }

    /// Reads event `id`'s newest state from its actor, once what it shows
    /// is durable (for live streams: a stream told of a change must send
    /// the state with it), with the LSN of the newest change it reflects.
    pub(super) async fn read_at<T: Send + 'static>(
        &self,
        id: EventId,
        op: impl FnOnce(&Event) -> T + Send + 'static,
    ) -> Result<(T, Lsn)> {
        let addr = self.actor_of(id)?;
        let answer = self.ask_read(&addr, op, None).await?;
        let lsn = answer.lsn;
        Ok((self.durable(answer).await?, lsn))
    }

    /// Asks `addr` for `op` of its state (see [`Read::patience`]).
    async fn ask_read<T: Send + 'static>(
        &self,
        addr: &Addr<EventActor>,
        op: impl FnOnce(&Event) -> T + Send + 'static,
        patience: Option<std::time::Duration>,
    ) -> Result<Durable<T>> {
        let op = Box::new(op);
        Ok(ask(
            addr,
            &self.registry.counters().mailbox_rejections,
            |reply| Read {
                op,
                reply,
                patience,
            },
        )
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::scripted_log::ScriptedLog;
    use crate::actors::Registry;
    use crate::clock::Clock;
    use crate::persistence::change_log::ChangeLog;
    use crate::persistence::journal::Journal;
    use crate::service::NewEvent;

    fn user(name: &str) -> UserId {
        UserId::try_from(name).expect("user id")
    }

    /// Issue 35, finding 3: a change that does not commit (a leader cut
    /// off from its majority; here a log that never makes it durable)
    /// holds no read of its event: each is answered from the state as the
    /// durable changes left it, which has every acknowledged change and
    /// not the pending one. Before, every read here waited for the pending
    /// change (on a cluster, until the commit bound, then 503).
    #[actix_web::test]
    async fn reads_do_not_wait_behind_a_change_that_does_not_commit() {
        let log = Arc::new(ScriptedLog::durable_through(Lsn::ZERO));
        let registry = Arc::new(Registry::with_log(
            1,
            Journal::disabled(Lsn::FIRST),
            Arc::clone(&log) as Arc<dyn ChangeLog>,
            Clock::system(),
        ));
        let limits = crate::config::Settings::default().limits;
        let service = Arc::new(BoxOffice::new(
            registry,
            Arc::clone(&log) as Arc<dyn ChangeLog>,
            limits,
        ));
        let new = NewEvent {
            total_tickets: 2,
            ..NewEvent::default()
        };
        let created = tokio::spawn({
            let service = Arc::clone(&service);
            async move { service.create_event(new, None).await }
        });
        // The creation and a's booking are acknowledged once durable.
        let durable_soon = |log: Arc<ScriptedLog>| async move {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            log.make_durable(log.next_lsn().prev());
        };
        durable_soon(Arc::clone(&log)).await;
        let event = created.await.expect("task").expect("created").id;
        let booked = tokio::spawn({
            let service = Arc::clone(&service);
            async move { service.book(event, user("a"), 1).await }
        });
        durable_soon(Arc::clone(&log)).await;
        booked.await.expect("task").expect("a booked");

        // b's booking is taken and never made durable.
        let pending = tokio::time::timeout(
            std::time::Duration::from_millis(300),
            service.book(event, user("b"), 1),
        )
        .await;
        assert!(pending.is_err(), "b's booking is not durable: no answer");

        let answered = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            let status = service.status(event).await.expect("status");
            let a = service.booking(event, user("a")).await.expect("a");
            let b = service.booking(event, user("b")).await;
            let (listed, _) = service.events(0, 10).await.expect("list");
            (status, a, b, listed)
        })
        .await;
        let Ok((status, a, b, listed)) = answered else {
            panic!("the reads waited behind b's booking, which never commits");
        };
        assert_eq!(status.available_tickets, 1, "a's booking, not b's");
        assert_eq!(a.status, crate::domain::BookingStatus::Confirmed);
        assert!(matches!(b, Err(ServiceError::Domain(_))), "{b:?}");
        assert_eq!(listed[0].available_tickets, 1);
    }
}
