//! What the service counts, for `GET /metrics`.
//!
//! Each part of the service owns the counters of what it does (the journal
//! its batches and syncs, the registry what its actors decided, the snapshot
//! store its snapshots, the HTTP layer its requests), all plain atomics: a
//! request never takes a lock to be counted. [`Exporter`] reads them at
//! scrape time and writes them with `prometheus-client`'s text encoder.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry as PromRegistry;

/// A histogram with fixed bucket bounds, recorded with atomics only.
/// Values are whole units (microseconds, records, ...); `units_per_export`
/// of them make one exported base unit (1e6 µs make a second).
#[derive(Debug)]
pub struct AtomicHistogram {
    /// Upper bounds of the buckets, in units, ascending.
    bounds: &'static [u64],
    /// Observations per bucket (not cumulative); the last is above every bound.
    buckets: Box<[AtomicU64]>,
    /// Sum of all observations, in units.
    sum: AtomicU64,
    /// Units in one exported base unit.
    units_per_export: f64,
}

impl AtomicHistogram {
    /// A histogram over `bounds` (in units), exported in units of
    /// `units_per_export`.
    pub fn new(bounds: &'static [u64], units_per_export: f64) -> Self {
        Self {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            units_per_export,
        }
    }

    /// Microsecond buckets from 50 µs to 10 s, exported in seconds.
    pub fn seconds() -> Self {
        const BOUNDS: &[u64] = &[
            50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
            500_000, 1_000_000, 2_500_000, 10_000_000,
        ];
        Self::new(BOUNDS, 1e6)
    }

    /// Counts from 1 to 65,536 in powers of four.
    pub fn counts() -> Self {
        const BOUNDS: &[u64] = &[1, 4, 16, 64, 256, 1_024, 4_096, 16_384, 65_536];
        Self::new(BOUNDS, 1.0)
    }

    /// Records one value, in units.
    pub fn observe(&self, value: u64) {
        let bucket = self.bounds.partition_point(|&b| b < value);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// Records a duration (for a histogram in microseconds).
    pub fn observe_duration(&self, elapsed: std::time::Duration) {
        self.observe(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
    }

    /// (sum, count, per-bucket counts) in exported units. The buckets are
    /// not cumulative: `prometheus-client`'s encoder adds them up. The
    /// count is their total, so it always equals the `+Inf` bucket even
    /// while observations race the read.
    fn read(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let mut count = 0;
        let mut buckets = Vec::with_capacity(self.buckets.len());
        for (i, bucket) in self.buckets.iter().enumerate() {
            let n = bucket.load(Ordering::Relaxed);
            count += n;
            let bound = self
                .bounds
                .get(i)
                .map_or(f64::INFINITY, |&b| b as f64 / self.units_per_export);
            buckets.push((bound, n));
        }
        let sum = self.sum.load(Ordering::Relaxed) as f64 / self.units_per_export;
        (sum, count, buckets)
    }

    /// Whether nothing was observed yet.
    pub fn is_empty(&self) -> bool {
        self.buckets.iter().all(|b| b.load(Ordering::Relaxed) == 0)
    }

    /// Writes it as one histogram (of a family or a descriptor).
    pub fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::MetricEncoder,
    ) -> std::fmt::Result {
        let (sum, count, buckets) = self.read();
        encoder
            .encode_histogram::<prometheus_client::encoding::NoLabelSet>(sum, count, &buckets, None)
    }
}

/// What event actors decided, counted as they decide it.
#[derive(Debug, Default)]
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
}

/// The journal's batches and syncs.
#[derive(Debug)]
pub struct JournalStats {
    /// Records per written batch.
    pub batch_records: AtomicHistogram,
    /// Time of each `fdatasync`.
    pub fsync_seconds: AtomicHistogram,
    /// Bytes appended to segments since start: what snapshots are weighed
    /// against.
    pub written_bytes: AtomicU64,
}

impl JournalStats {
    /// Bytes appended to segments since start.
    pub fn written_bytes(&self) -> u64 {
        self.written_bytes.load(Ordering::Relaxed)
    }
}

impl Default for JournalStats {
    fn default() -> Self {
        Self {
            batch_records: AtomicHistogram::counts(),
            fsync_seconds: AtomicHistogram::seconds(),
            written_bytes: AtomicU64::new(0),
        }
    }
}

/// The newest snapshot.
#[derive(Debug, Default)]
pub struct SnapshotStats {
    /// Total time of the newest snapshot (collect, encode, write), in µs.
    pub last_micros: AtomicU64,
    /// Size of the newest snapshot file.
    pub last_bytes: AtomicU64,
    /// Snapshots written since start.
    pub written: AtomicU64,
}

/// Where the exporter reads each family from at scrape time.
pub struct Sources {
    /// HTTP requests and refusals.
    pub http: Arc<crate::http::metrics::HttpStats>,
    /// The actors' decisions.
    pub events: Arc<EventCounters>,
    /// How many events exist right now.
    pub event_count: Box<dyn Fn() -> usize + Send + Sync>,
    /// The journal.
    pub journal: Arc<JournalStats>,
    /// Snapshots.
    pub snapshots: Arc<SnapshotStats>,
    /// How many live streams are open right now.
    pub live_streams: Box<dyn Fn() -> usize + Send + Sync>,
    /// Connections served and refused.
    pub connections: Arc<crate::http::connections::Connections>,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources").finish_non_exhaustive()
    }
}

/// Renders every family in the text format.
pub struct Exporter {
    registry: PromRegistry,
}

impl Exporter {
    /// An exporter of `sources`, every name prefixed `boxoffice_`.
    pub fn new(sources: Sources) -> Self {
        let mut registry = PromRegistry::default();
        registry.register_collector(Box::new(sources));
        Self { registry }
    }

    /// The OpenMetrics text of every family.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// The process's resident memory, where the OS tells it (Linux).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    // "VmRSS:    475416 kB"
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A plain (label-less) counter.
fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: &AtomicU64,
) -> std::fmt::Result {
    let metric = ConstCounter::new(value.load(Ordering::Relaxed));
    metric.encode(encoder.encode_descriptor(name, help, None, MetricType::Counter)?)
}

impl Collector for Sources {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        self.http.encode(&mut encoder)?;
        {
            let mut family = encoder.encode_descriptor(
                "boxoffice_bookings",
                "Bookings made, by what they got",
                None,
                MetricType::Counter,
            )?;
            for (outcome, value) in ["confirmed", "held", "waiting"]
                .iter()
                .zip(&self.events.booked)
            {
                let labels = [("outcome", *outcome)];
                ConstCounter::new(value.load(Ordering::Relaxed))
                    .encode(family.encode_family(&labels)?)?;
            }
        }
        counter(
            &mut encoder,
            "boxoffice_cancellations",
            "Bookings cancelled by their user",
            &self.events.cancellations,
        )?;
        counter(
            &mut encoder,
            "boxoffice_promotions",
            "Waiting bookings that got their tickets or an offer",
            &self.events.promotions,
        )?;
        counter(
            &mut encoder,
            "boxoffice_holds_expired",
            "Holds and offers that lapsed unconfirmed",
            &self.events.holds_expired,
        )?;
        counter(
            &mut encoder,
            "boxoffice_mailbox_rejections",
            "Changes refused with 503 because an event's mailbox was full",
            &self.events.mailbox_rejections,
        )?;
        ConstGauge::new((self.event_count)() as i64).encode(encoder.encode_descriptor(
            "boxoffice_events",
            "Events held by the service",
            None,
            MetricType::Gauge,
        )?)?;
        self.journal
            .batch_records
            .encode(&mut encoder.encode_descriptor(
                "boxoffice_journal_batch_records",
                "Journal records written per batch (one write and, in always mode, one sync)",
                None,
                MetricType::Histogram,
            )?)?;
        self.journal
            .fsync_seconds
            .encode(&mut encoder.encode_descriptor(
                "boxoffice_journal_fsync_seconds",
                "Time of each journal fdatasync",
                None,
                MetricType::Histogram,
            )?)?;
        let seconds = self.snapshots.last_micros.load(Ordering::Relaxed) as f64 / 1e6;
        ConstGauge::new(seconds).encode(encoder.encode_descriptor(
            "boxoffice_snapshot_seconds",
            "Total time of the newest snapshot: collect, encode, write",
            None,
            MetricType::Gauge,
        )?)?;
        ConstGauge::new(self.snapshots.last_bytes.load(Ordering::Relaxed) as i64).encode(
            encoder.encode_descriptor(
                "boxoffice_snapshot_bytes",
                "Size of the newest snapshot file",
                None,
                MetricType::Gauge,
            )?,
        )?;
        ConstGauge::new((self.live_streams)() as i64).encode(encoder.encode_descriptor(
            "boxoffice_live_streams",
            "Server-Sent Event streams open",
            None,
            MetricType::Gauge,
        )?)?;
        ConstGauge::new(self.connections.served() as i64).encode(encoder.encode_descriptor(
            "boxoffice_connections",
            "TCP connections being served",
            None,
            MetricType::Gauge,
        )?)?;
        counter(
            &mut encoder,
            "boxoffice_connections_refused",
            "Connections refused because their address held server.max_connections_per_ip",
            self.connections.refused_counter(),
        )?;
        if let Some(bytes) = resident_bytes() {
            ConstGauge::new(bytes as i64).encode(encoder.encode_descriptor(
                "boxoffice_resident_memory_bytes",
                "Resident memory of the process (VmRSS); the events and bookings are most of it",
                None,
                MetricType::Gauge,
            )?)?;
        }
        counter(
            &mut encoder,
            "boxoffice_journal_written_bytes",
            "Bytes appended to the journal since start",
            &self.journal.written_bytes,
        )?;
        counter(
            &mut encoder,
            "boxoffice_snapshots_written",
            "Snapshots written since start",
            &self.snapshots.written,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_counts_each_value_in_the_first_bucket_that_holds_it() {
        let h = AtomicHistogram::new(&[10, 100], 1.0);
        for v in [0, 10, 11, 100, 101, 5_000] {
            h.observe(v);
        }
        let (sum, count, buckets) = h.read();
        assert_eq!(count, 6);
        assert_eq!(sum, 5_222.0);
        assert_eq!(
            buckets,
            vec![(10.0, 2), (100.0, 2), (f64::INFINITY, 2)],
            "per bucket, +Inf last"
        );
        let mut text = String::new();
        let mut registry = PromRegistry::default();
        #[derive(Debug)]
        struct One(AtomicHistogram);
        impl Collector for One {
            fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
                self.0.encode(&mut encoder.encode_descriptor(
                    "h",
                    "test",
                    None,
                    MetricType::Histogram,
                )?)
            }
        }
        registry.register_collector(Box::new(One(h)));
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        assert!(text.contains("h_bucket{le=\"100.0\"} 4"), "{text}");
        assert!(text.contains("h_bucket{le=\"+Inf\"} 6"), "{text}");
        assert!(text.contains("h_count 6"), "{text}");
    }
}
