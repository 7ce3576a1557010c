//! The newest change feed items, kept in memory as the writer wrote them.
//!
//! A follower of the feed (a live feed reader, the webhook sender) reads
//! right behind the writer: during an on-sale, every few milliseconds a
//! page of what the last group commits wrote. Reading those back from the
//! segment means a blocking thread, a read and a decode of every record,
//! per follower, for items the writer had in hand a moment before (measured:
//! a quarter of the service's CPU with two followers, `bench/feed.sh`). So
//! the writer hands each written batch's items here too, and a read whose
//! items are all still here is answered from memory; older ones come from
//! the segments as before. Bounded by a count of items, oldest dropped
//! first.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use super::feed::FeedEntry;
use super::Record;

/// Items kept: about 130 bytes each in memory, so some 8 MiB; at 30,000
/// bookings a second, the last two seconds.
pub const RECENT_ITEMS: usize = 65_536;

/// The newest items written, oldest first, indexes strictly increasing.
#[derive(Debug)]
pub struct RecentChanges {
    items: Mutex<VecDeque<FeedEntry>>,
    capacity: usize,
}

impl Default for RecentChanges {
    fn default() -> Self {
        Self::with_capacity(RECENT_ITEMS)
    }
}

impl RecentChanges {
    /// Keeps at most `capacity` items.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            items: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
        }
    }

    fn items(&self) -> MutexGuard<'_, VecDeque<FeedEntry>> {
        self.items.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds the items of written `records` (in journal order), dropping the
    /// oldest past the capacity.
    pub fn extend(&self, records: Vec<Record>) {
        let mut entries = Vec::new();
        for record in records {
            if let Record::Published {
                first_index,
                event,
                change,
                items,
            } = record
            {
                let at = change.at();
                entries.extend(items.into_iter().enumerate().map(|(i, item)| FeedEntry {
                    index: first_index + i as u64,
                    at,
                    event_id: event,
                    item,
                }));
            }
        }
        if entries.is_empty() {
            return;
        }
        let mut items = self.items();
        // Only written records come here, so a batch after a disk fault
        // follows the abandoned indexes with a gap, which `read` allows for.
        items.extend(entries);
        let excess = items.len().saturating_sub(self.capacity);
        items.drain(..excess);
    }

    /// The items with index in `after + 1 ..= durable`, at most `limit`, if
    /// every one of them that exists is still here (the oldest kept is at
    /// or before `after + 1`); `None` sends the reader to the segments.
    pub fn read(&self, after: u64, limit: usize, durable: u64) -> Option<Vec<FeedEntry>> {
        let items = self.items();
        let oldest = items.front()?.index;
        if oldest > after.saturating_add(1) {
            return None;
        }
        let start = items.partition_point(|e| e.index <= after);
        Some(
            items
                .range(start..)
                .take_while(|e| e.index <= durable)
                .take(limit)
                .cloned()
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use boxoffice_domain::{Change, EventId, EventSettings, EventStatus, FeedItem, Timestamp};

    fn published(first_index: u64, n: usize) -> Record {
        let event = EventId::try_from(1).expect("id");
        let at = Timestamp::from_millis(first_index as i64);
        let status = EventStatus {
            id: event,
            settings: EventSettings::new(None, 1, 1),
            available_tickets: 1,
            confirmed_tickets: 0,
            held_tickets: 0,
            waiting_count: 0,
            waiting_tickets: 0,
            created_at: at,
            updated_at: at,
            room: Default::default(),
            blocked_seats: None,
        };
        Record::Published {
            first_index,
            event,
            change: Change::Updated {
                patch: Default::default(),
                at,
            },
            items: vec![FeedItem::Event(status); n],
        }
    }

    fn indexes(got: Option<Vec<FeedEntry>>) -> Option<Vec<u64>> {
        got.map(|v| v.into_iter().map(|e| e.index).collect())
    }

    #[test]
    fn reads_what_it_holds_and_sends_older_reads_to_the_segments() {
        let recent = RecentChanges::with_capacity(5);
        assert_eq!(indexes(recent.read(0, 10, 0)), None, "nothing held yet");
        recent.extend(vec![published(1, 2), published(3, 1)]);
        assert_eq!(indexes(recent.read(0, 10, 3)), Some(vec![1, 2, 3]));
        assert_eq!(indexes(recent.read(1, 1, 3)), Some(vec![2]));
        assert_eq!(
            indexes(recent.read(0, 10, 2)),
            Some(vec![1, 2]),
            "not past durable"
        );
        assert_eq!(indexes(recent.read(3, 10, 3)), Some(vec![]));
        // Past the capacity the oldest go: a read from before them is not
        // answered here.
        recent.extend(vec![published(4, 3)]);
        assert_eq!(indexes(recent.read(0, 10, 6)), None);
        assert_eq!(indexes(recent.read(1, 10, 6)), Some(vec![2, 3, 4, 5, 6]));
        // A gap (abandoned indexes) is passed over.
        recent.extend(vec![published(9, 1)]);
        assert_eq!(indexes(recent.read(5, 10, 9)), Some(vec![6, 9]));
    }
}
