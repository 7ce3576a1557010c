//! What an organiser sets on an event, and changes to it.

use serde::{Deserialize, Serialize};

use super::ids::Timestamp;

/// An event's settings: everything an organiser chooses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventSettings {
    /// Optional display name.
    pub name: Option<String>,
    /// Tickets for sale.
    pub total_tickets: u64,
    /// Most tickets one user may hold (in their one booking).
    pub max_per_user: u32,
    /// Seconds a booking that gets tickets is held before it must be
    /// confirmed; 0 confirms at once.
    pub hold_secs: u32,
    /// Seconds a promoted waiting booking is offered its tickets; 0
    /// confirms at once.
    pub offer_secs: u32,
    /// Whether bookings are taken at all.
    pub sales_open: bool,
    /// Bookings are taken from this moment on (`None`: no lower bound).
    pub sales_start: Option<Timestamp>,
    /// Bookings are taken until just before this moment (`None`: no end).
    pub sales_end: Option<Timestamp>,
}

impl EventSettings {
    /// The seed behaviour: open sales, no holds, `max_per_user` tickets a user.
    pub fn new(name: Option<String>, total_tickets: u64, max_per_user: u32) -> Self {
        Self {
            name,
            total_tickets,
            max_per_user,
            hold_secs: 0,
            offer_secs: 0,
            sales_open: true,
            sales_start: None,
            sales_end: None,
        }
    }

    /// Whether bookings are taken at `now`, and if not, why.
    pub fn sales_at(&self, now: Timestamp) -> Sales {
        if !self.sales_open || self.sales_end.is_some_and(|end| now >= end) {
            Sales::Closed
        } else if self.sales_start.is_some_and(|start| now < start) {
            Sales::NotOpen
        } else {
            Sales::Open
        }
    }
}

/// Whether an event takes bookings at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sales {
    /// Bookings are taken.
    Open,
    /// Before `sales_start`.
    NotOpen,
    /// `sales_open` is false, or at or after `sales_end`.
    Closed,
}

/// A change to some of an event's settings; `None` leaves a setting as it is.
/// For the nullable settings, `Some(None)` clears them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventPatch {
    /// New display name, or `Some(None)` to remove it.
    pub name: Option<Option<String>>,
    /// New ticket count.
    pub total_tickets: Option<u64>,
    /// New per-user limit (for bookings made after the change).
    pub max_per_user: Option<u32>,
    /// New hold time (for bookings made after the change).
    pub hold_secs: Option<u32>,
    /// New offer time (for promotions made after the change).
    pub offer_secs: Option<u32>,
    /// Open or close sales.
    pub sales_open: Option<bool>,
    /// New start of sales, or `Some(None)` for none.
    pub sales_start: Option<Option<Timestamp>>,
    /// New end of sales, or `Some(None)` for none.
    pub sales_end: Option<Option<Timestamp>>,
}

impl EventPatch {
    /// `settings` with this patch applied.
    pub fn applied_to(&self, settings: &EventSettings) -> EventSettings {
        let mut next = settings.clone();
        if let Some(name) = &self.name {
            next.name.clone_from(name);
        }
        if let Some(total) = self.total_tickets {
            next.total_tickets = total;
        }
        if let Some(max) = self.max_per_user {
            next.max_per_user = max;
        }
        if let Some(secs) = self.hold_secs {
            next.hold_secs = secs;
        }
        if let Some(secs) = self.offer_secs {
            next.offer_secs = secs;
        }
        if let Some(open) = self.sales_open {
            next.sales_open = open;
        }
        if let Some(start) = self.sales_start {
            next.sales_start = start;
        }
        if let Some(end) = self.sales_end {
            next.sales_end = end;
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn a_sales_window_is_closed_below_and_open_at_its_start_and_closed_at_its_end() {
        let mut s = EventSettings::new(None, 1, 1);
        s.sales_start = Some(at(10));
        s.sales_end = Some(at(20));
        assert_eq!(s.sales_at(at(9)), Sales::NotOpen);
        assert_eq!(s.sales_at(at(10)), Sales::Open);
        assert_eq!(s.sales_at(at(19)), Sales::Open);
        assert_eq!(s.sales_at(at(20)), Sales::Closed);
        s.sales_open = false;
        assert_eq!(
            s.sales_at(at(9)),
            Sales::Closed,
            "closed wins over not yet open"
        );
    }

    #[test]
    fn a_patch_changes_only_what_it_names_and_can_clear_nullable_settings() {
        let mut s = EventSettings::new(Some("gig".into()), 5, 4);
        s.sales_start = Some(at(1));
        let patch = EventPatch {
            name: Some(None),
            total_tickets: Some(9),
            sales_start: Some(None),
            ..EventPatch::default()
        };
        let next = patch.applied_to(&s);
        assert_eq!(next.name, None);
        assert_eq!(next.total_tickets, 9);
        assert_eq!(next.sales_start, None);
        assert_eq!(next.max_per_user, 4);
    }
}
