//! What the journal stores: one [`Record`] per change.

use serde::{Deserialize, Serialize};

use super::Lsn;
use boxoffice_domain::{
    BookingId, Change, CreateKey, EventId, EventSettings, FeedItem, Timestamp, UserId,
};

/// One journal entry. Replaying these in order rebuilds the state.
///
/// Stored by variant index, so variants are only ever appended: the first
/// three are the v1 forms, still read from older journals and turned into
/// [`Change`]s by [`Record::into_change`]; new journals write
/// [`Record::Published`], [`Record::CreateKey`] and [`Record::Skipped`]
/// ([`Record::Change`] is what journals before the change feed hold).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// v1: an event was created (now `Change::Created`).
    EventCreated {
        /// Its id.
        event: EventId,
        /// Its name.
        name: Option<String>,
        /// Its tickets.
        total_tickets: u64,
        /// When.
        at: Timestamp,
    },
    /// v1: a user booked one ticket (now `Change::Booked`).
    Booked {
        /// The event.
        event: EventId,
        /// The new booking's id.
        booking: BookingId,
        /// Who.
        user: UserId,
        /// When.
        at: Timestamp,
    },
    /// v1: a user cancelled (now `Change::Cancelled`).
    Cancelled {
        /// The event.
        event: EventId,
        /// Who.
        user: UserId,
        /// When.
        at: Timestamp,
    },
    /// LSNs from this record's own up to `through` were abandoned after a
    /// disk fault: their clients were told nothing changed.
    Skipped {
        /// The last abandoned LSN.
        through: Lsn,
    },
    /// A change to one event, exactly as the domain made it.
    Change {
        /// The event.
        event: EventId,
        /// What happened.
        change: Change,
    },
    /// An event create made under an idempotency key, as journals before
    /// waiting rooms hold it (read, no longer written: see
    /// [`Record::KeyedCreate`]).
    CreateKey(CreateKeyV5),
    /// A change to one event, with what the change feed shows of it: the
    /// objects it touched as they stood after, numbered from `first_index`
    /// in the order they changed. `first_index` is the first field, so the
    /// feed finds its place in a segment by decoding two numbers a record.
    Published {
        /// The feed index of `items[0]`; the journal sets it on submit, so
        /// indexes follow LSN order.
        first_index: u64,
        /// The event.
        event: EventId,
        /// What happened.
        change: Change,
        /// What the feed shows of it; never empty.
        items: Vec<FeedItem>,
    },
    /// An event create made under an idempotency key, with the room it
    /// asked for: written after the event's creation, before the create is
    /// answered.
    KeyedCreate(CreateKey),
}

/// An idempotency key as journals and snapshots before waiting rooms held
/// it: [`CreateKey`] without its room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateKeyV5 {
    /// The client's `Idempotency-Key`.
    pub key: String,
    /// The event id the create asked for, if any.
    pub requested: Option<EventId>,
    /// The settings it asked for, defaults applied.
    pub settings: EventSettings,
    /// The event it made.
    pub event: EventId,
    /// When.
    pub at: Timestamp,
}

impl From<CreateKeyV5> for CreateKey {
    fn from(old: CreateKeyV5) -> Self {
        Self {
            key: old.key,
            requested: old.requested,
            settings: old.settings,
            event: old.event,
            at: old.at,
            room: Default::default(),
        }
    }
}

/// Variant index of [`Record::Published`] in the encoding.
pub(crate) const PUBLISHED_VARIANT: u32 = 6;

/// Per-user limit that v1 events, which had none, are given when read back:
/// one ticket a booking was all v1 could sell.
pub const V1_MAX_PER_USER: u32 = 10;

impl Record {
    /// Numbers a [`Record::Published`]'s feed items from `next`; returns
    /// the index after them (`next` for any other record).
    pub fn number_feed_items(&mut self, next: u64) -> u64 {
        match self {
            Record::Published {
                first_index, items, ..
            } => {
                *first_index = next;
                next + items.len() as u64
            }
            _ => next,
        }
    }

    /// The event change this record holds, reading v1 forms as the change
    /// they stood for; `None` for a skip or an idempotency key.
    pub fn into_change(self) -> Option<(EventId, Change)> {
        match self {
            Self::EventCreated {
                event,
                name,
                total_tickets,
                at,
            } => Some((
                event,
                Change::Created {
                    settings: EventSettings::new(name, total_tickets, V1_MAX_PER_USER),
                    at,
                },
            )),
            Self::Booked {
                event,
                booking,
                user,
                at,
            } => Some((
                event,
                Change::Booked {
                    booking,
                    user,
                    quantity: 1,
                    at,
                },
            )),
            Self::Cancelled { event, user, at } => Some((event, Change::Cancelled { user, at })),
            Self::Skipped { .. } | Self::CreateKey(_) | Self::KeyedCreate(_) => None,
            Self::Change { event, change } | Self::Published { event, change, .. } => {
                Some((event, change))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// v1 journals hold the first three variants; they must read back as
    /// the changes they stood for (and keep their bytes: variant indexes
    /// are the format).
    #[test]
    fn v1_records_read_as_the_changes_they_stood_for() {
        let event = EventId::try_from(3).expect("id");
        let user = UserId::try_from("ann").expect("user");
        let at = Timestamp::from_millis(7);
        let created = Record::EventCreated {
            event,
            name: Some("Gig".into()),
            total_tickets: 5,
            at,
        };
        assert_eq!(
            created.into_change(),
            Some((
                event,
                Change::Created {
                    settings: EventSettings::new(Some("Gig".into()), 5, V1_MAX_PER_USER),
                    at,
                }
            ))
        );
        let booked = Record::Booked {
            event,
            booking: BookingId::from_raw(9),
            user: user.clone(),
            at,
        };
        assert_eq!(
            booked.into_change(),
            Some((
                event,
                Change::Booked {
                    booking: BookingId::from_raw(9),
                    user: user.clone(),
                    quantity: 1,
                    at,
                }
            ))
        );
        let cancelled = Record::Cancelled {
            event,
            user: user.clone(),
            at,
        };
        assert_eq!(
            cancelled.into_change(),
            Some((event, Change::Cancelled { user, at }))
        );
        assert_eq!(
            Record::Skipped {
                through: Lsn::new(4)
            }
            .into_change(),
            None
        );
        // A v1 Booked record's bytes: variant 1, then its fields.
        let bytes = crate::codec::encode(&Record::Booked {
            event,
            booking: BookingId::from_raw(9),
            user: UserId::try_from("ann").expect("user"),
            at,
        })
        .expect("encodes");
        assert_eq!(bytes[0], 1, "the v1 variant index is kept");
    }

    /// The feed reads a published record's variant and first index without
    /// decoding the rest.
    #[test]
    fn a_published_record_starts_with_its_variant_and_first_index() {
        let event = EventId::try_from(3).expect("id");
        let record = Record::Published {
            first_index: 300,
            event,
            change: Change::Cancelled {
                user: UserId::try_from("ann").expect("user"),
                at: Timestamp::from_millis(7),
            },
            items: Vec::new(),
        };
        let bytes = crate::codec::encode(&record).expect("encodes");
        assert_eq!(
            crate::codec::decode_prefix::<(u32, u64)>(&bytes).expect("prefix"),
            (PUBLISHED_VARIANT, 300)
        );
        assert_eq!(
            record.into_change(),
            Some((
                event,
                Change::Cancelled {
                    user: UserId::try_from("ann").expect("user"),
                    at: Timestamp::from_millis(7),
                }
            ))
        );
    }
}
