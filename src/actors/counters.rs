//! What event actors decided, counted as they decide it, for `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

use boxoffice_metrics::prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use boxoffice_metrics::prometheus_client::metrics::counter::ConstCounter;
use boxoffice_metrics::prometheus_client::metrics::MetricType;
use boxoffice_metrics::{counter, gauge};

/// What event actors decided, counted as they decide it.
#[derive(Debug)]
pub struct EventCounters {
    /// Bookings made, by what they got: `[confirmed, held, waiting]`.
    pub booked: [AtomicU64; 3],
    /// Bookings cancelled by their user.
    pub cancellations: AtomicU64,
    /// Waiting bookings that got their tickets (or an offer).
    pub promotions: AtomicU64,
    /// Holds and offers that lapsed.
    pub holds_expired: AtomicU64,
    /// Messages refused because an event's mailbox was full.
    pub mailbox_rejections: AtomicU64,
    /// Waiting-room entries admitted.
    pub room_admitted: AtomicU64,
    /// Waiting-room admissions that lapsed unused.
    pub room_expired: AtomicU64,
    /// Seats booked (confirmed) at seated events.
    pub seats_booked: AtomicU64,
    /// How long a best-available booking took to decide, in nanoseconds.
    pub best_available: boxoffice_metrics::AtomicHistogram,
}

impl Default for EventCounters {
    fn default() -> Self {
        // Best available takes microseconds (bench/README.md): buckets
        // from a quarter of one to a millisecond, and one for outliers.
        const NANOS: &[u64] = &[
            250, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 1_000_000,
        ];
        Self {
            booked: Default::default(),
            cancellations: Default::default(),
            promotions: Default::default(),
            holds_expired: Default::default(),
            mailbox_rejections: Default::default(),
            room_admitted: Default::default(),
            room_expired: Default::default(),
            seats_booked: Default::default(),
            best_available: boxoffice_metrics::AtomicHistogram::new(NANOS, 1e9),
        }
    }
}

/// Which of [`EventCounters::booked`] a booking counts in.
#[derive(Debug, Clone, Copy)]
pub enum BookedAs {
    /// Got its tickets.
    Confirmed = 0,
    /// Got a hold to confirm.
    Held = 1,
    /// Joined the queue.
    Waiting = 2,
}

impl EventCounters {
    /// Counts one new booking.
    pub fn booked(&self, outcome: BookedAs) {
        self.booked[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Writes the actors' families, with `events` the number of events
    /// held right now and `room_waiting` the room entries waiting.
    pub fn encode(
        &self,
        encoder: &mut DescriptorEncoder,
        events: usize,
        room_waiting: u64,
    ) -> std::fmt::Result {
        {
            let mut family = encoder.encode_descriptor(
                "boxoffice_bookings",
                "Bookings made, by what they got",
                None,
                MetricType::Counter,
            )?;
            for (outcome, value) in ["confirmed", "held", "waiting"].iter().zip(&self.booked) {
                let labels = [("outcome", *outcome)];
                ConstCounter::new(value.load(Ordering::Relaxed))
                    .encode(family.encode_family(&labels)?)?;
            }
        }
        counter(
            encoder,
            "boxoffice_cancellations",
            "Bookings cancelled by their user",
            &self.cancellations,
        )?;
        counter(
            encoder,
            "boxoffice_promotions",
            "Waiting bookings that got their tickets or an offer",
            &self.promotions,
        )?;
        counter(
            encoder,
            "boxoffice_holds_expired",
            "Holds and offers that lapsed unconfirmed",
            &self.holds_expired,
        )?;
        counter(
            encoder,
            "boxoffice_mailbox_rejections",
            "Changes refused with 503 because an event's mailbox was full",
            &self.mailbox_rejections,
        )?;
        counter(
            encoder,
            "boxoffice_seats_booked",
            "Seats booked (confirmed) at seated events",
            &self.seats_booked,
        )?;
        boxoffice_metrics::histogram(
            encoder,
            "boxoffice_best_available_seconds",
            "Time to decide a best-available booking at a seated event (the choice of seats and its apply)",
            &self.best_available,
        )?;
        counter(
            encoder,
            "boxoffice_room_admitted",
            "Waiting-room entries admitted",
            &self.room_admitted,
        )?;
        counter(
            encoder,
            "boxoffice_room_expired",
            "Waiting-room admissions that lapsed unused",
            &self.room_expired,
        )?;
        gauge(
            encoder,
            "boxoffice_room_waiting",
            "Waiting-room entries waiting, over every event",
            i64::try_from(room_waiting).unwrap_or(i64::MAX),
        )?;
        gauge(
            encoder,
            "boxoffice_events",
            "Events held by the service",
            events as i64,
        )
    }
}
