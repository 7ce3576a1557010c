//! The plumbing of boxoffice's `/metrics`, and nothing of what is counted.
//!
//! A leaf: every layer of the service depends on it and it depends on none of
//! them. Each layer owns the counters of what it does (the journal its
//! batches and syncs, the actors what they decided, the HTTP layer its
//! requests), all plain atomics so a request never takes a lock to be
//! counted, and writes them itself through the helpers here; the service's
//! exporter only asks each layer in turn at scrape time.

use std::sync::atomic::{AtomicU64, Ordering};

pub use prometheus_client;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

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

/// Renders every family of one collector in the text format, every name
/// already prefixed `boxoffice_` by whoever writes it.
pub struct Exporter {
    registry: prometheus_client::registry::Registry,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter").finish_non_exhaustive()
    }
}

impl Exporter {
    /// An exporter of what `sources` writes at each scrape.
    pub fn new(sources: Box<dyn prometheus_client::collector::Collector>) -> Self {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(sources);
        Self { registry }
    }

    /// The OpenMetrics text of every family.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// Writes a plain (label-less) counter.
pub fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: &AtomicU64,
) -> std::fmt::Result {
    let metric = ConstCounter::new(value.load(Ordering::Relaxed));
    metric.encode(encoder.encode_descriptor(name, help, None, MetricType::Counter)?)
}

/// Writes a plain (label-less) integer gauge.
pub fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: i64,
) -> std::fmt::Result {
    ConstGauge::new(value).encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

/// Writes a plain (label-less) gauge in seconds or another fractional unit.
pub fn gauge_f64(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: f64,
) -> std::fmt::Result {
    ConstGauge::new(value).encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

/// Writes `histogram` as one label-less family.
pub fn histogram(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    histogram: &AtomicHistogram,
) -> std::fmt::Result {
    histogram.encode(&mut encoder.encode_descriptor(name, help, None, MetricType::Histogram)?)
}

/// The process's resident memory, where the OS tells it (Linux).
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    // "VmRSS:    475416 kB"
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::collector::Collector;
    use prometheus_client::registry::Registry as PromRegistry;

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
