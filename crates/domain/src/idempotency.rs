//! Idempotency keys of event creates: a create repeated with the same key
//! within a day returns the first reply and creates nothing.
//!
//! A key remembers what the first create asked for (so a different body
//! with the same key can be told apart) and what it made (so the first
//! reply can be given again exactly: an event is created from its settings
//! alone, so its status at creation is rebuilt from them). Keys are bounded
//! in time ([`KEY_LIFETIME_MILLIS`]) and in number (the oldest go first).

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::ids::{EventId, Timestamp};
use crate::room::RoomSettings;
use crate::settings::EventSettings;

/// How long a key is remembered: 24 hours.
pub const KEY_LIFETIME_MILLIS: i64 = 24 * 60 * 60 * 1_000;

/// Longest key accepted, in bytes (printable ASCII only).
pub const MAX_KEY_LEN: usize = 255;

/// One remembered create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateKey {
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
    /// The waiting room it asked for, defaults applied (stored from
    /// snapshot format 6 and journal record `KeyedCreate` on).
    pub room: RoomSettings,
}

impl CreateKey {
    /// Whether another create asks for the same thing as this one did.
    pub fn same_request(
        &self,
        requested: Option<EventId>,
        settings: &EventSettings,
        room: RoomSettings,
    ) -> bool {
        self.requested == requested && &self.settings == settings && self.room == room
    }

    fn expired(&self, now: Timestamp) -> bool {
        now.millis().saturating_sub(self.at.millis()) >= KEY_LIFETIME_MILLIS
    }
}

/// Whether `key` is a usable idempotency key: 1 to 255 printable ASCII
/// characters.
pub fn valid_key(key: &str) -> bool {
    (1..=MAX_KEY_LEN).contains(&key.len()) && key.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// The remembered creates, oldest first.
#[derive(Debug, Clone)]
pub struct CreateKeys {
    by_key: HashMap<String, CreateKey>,
    /// Keys in the order they were made: expiry and the cap take the front.
    order: VecDeque<String>,
    /// Most keys kept.
    max: usize,
}

impl CreateKeys {
    /// An empty set that keeps at most `max` keys.
    pub fn new(max: usize) -> Self {
        Self {
            by_key: HashMap::new(),
            order: VecDeque::new(),
            max: max.max(1),
        }
    }

    /// The create remembered under `key` at `now`, if it has not expired.
    pub fn get(&self, key: &str, now: Timestamp) -> Option<&CreateKey> {
        self.by_key.get(key).filter(|k| !k.expired(now))
    }

    /// Remembers `entry` (replacing an expired one under the same key), then
    /// forgets what expired by `now` and the oldest beyond the cap.
    pub fn insert(&mut self, entry: CreateKey, now: Timestamp) {
        if self.by_key.contains_key(&entry.key) {
            self.order.retain(|k| k != &entry.key);
        }
        self.order.push_back(entry.key.clone());
        self.by_key.insert(entry.key.clone(), entry);
        self.forget(now);
    }

    /// Forgets `key` (a create whose change could not be made durable).
    pub fn remove(&mut self, key: &str) {
        if self.by_key.remove(key).is_some() {
            self.order.retain(|k| k != key);
        }
    }

    /// Forgets what expired by `now`, and the oldest beyond the cap.
    pub fn forget(&mut self, now: Timestamp) {
        while let Some(oldest) = self.order.front() {
            let drop = self.by_key.len() > self.max
                || self.by_key.get(oldest).is_none_or(|k| k.expired(now));
            if !drop {
                break;
            }
            if let Some(key) = self.order.pop_front() {
                self.by_key.remove(&key);
            }
        }
    }

    /// How many keys are remembered.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Forgets every key (the state they belong to is being replaced).
    pub fn clear(&mut self) {
        self.by_key.clear();
        self.order.clear();
    }

    /// Every remembered create, oldest first (for snapshots).
    pub fn entries(&self) -> Vec<CreateKey> {
        self.order
            .iter()
            .filter_map(|k| self.by_key.get(k))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, event: u64, at: i64) -> CreateKey {
        CreateKey {
            key: key.into(),
            requested: None,
            settings: EventSettings::new(None, 5, 1),
            event: EventId::try_from(event).expect("id"),
            at: Timestamp::from_millis(at),
            room: RoomSettings::default(),
        }
    }

    #[test]
    fn a_key_lasts_a_day_then_is_forgotten() {
        let mut keys = CreateKeys::new(10);
        keys.insert(entry("a", 1, 0), Timestamp::from_millis(0));
        let day = KEY_LIFETIME_MILLIS;
        assert!(keys.get("a", Timestamp::from_millis(day - 1)).is_some());
        assert!(keys.get("a", Timestamp::from_millis(day)).is_none());
        keys.insert(entry("b", 2, day), Timestamp::from_millis(day));
        assert_eq!(keys.len(), 1, "the expired one went");
        // The same key after it expired names the new create.
        keys.insert(entry("b", 3, day + 1), Timestamp::from_millis(day + 1));
        assert_eq!(
            keys.get("b", Timestamp::from_millis(day + 1))
                .map(|k| k.event.get()),
            Some(3)
        );
        assert_eq!(keys.entries().len(), 1);
    }

    #[test]
    fn the_oldest_go_first_past_the_cap() {
        let mut keys = CreateKeys::new(2);
        for (i, key) in ["a", "b", "c"].iter().enumerate() {
            keys.insert(
                entry(key, i as u64 + 1, i as i64),
                Timestamp::from_millis(i as i64),
            );
        }
        let now = Timestamp::from_millis(3);
        assert!(keys.get("a", now).is_none());
        assert!(keys.get("b", now).is_some() && keys.get("c", now).is_some());
        keys.remove("b");
        assert_eq!(
            keys.entries()
                .iter()
                .map(|k| k.key.as_str())
                .collect::<Vec<_>>(),
            ["c"]
        );
        keys.clear();
        assert!(keys.is_empty() && keys.entries().is_empty());
        keys.insert(entry("d", 4, 4), Timestamp::from_millis(4));
        assert_eq!(keys.len(), 1, "usable after clearing");
    }

    #[test]
    fn keys_are_printable_ascii_up_to_255() {
        assert!(valid_key("a"));
        assert!(valid_key(&"k".repeat(255)));
        assert!(!valid_key(""));
        assert!(!valid_key(&"k".repeat(256)));
        assert!(!valid_key("tab\there"));
        assert!(!valid_key("é"));
        assert!(valid_key("order 42 / retry #1"));
    }

    #[test]
    fn the_same_request_is_the_same_id_and_settings() {
        let e = entry("a", 1, 0);
        let room = RoomSettings::default();
        assert!(e.same_request(None, &EventSettings::new(None, 5, 1), room));
        assert!(!e.same_request(None, &EventSettings::new(None, 6, 1), room));
        assert!(!e.same_request(
            EventId::try_from(1).ok(),
            &EventSettings::new(None, 5, 1),
            room
        ));
        let with_room = RoomSettings {
            admit_per_minute: 10,
            ..room
        };
        assert!(!e.same_request(None, &EventSettings::new(None, 5, 1), with_room));
    }
}
