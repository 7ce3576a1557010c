//! What boxoffice's tests, benches and bench tools share, written once: a
//! small seeded random generator (so a failing run can be replayed), the
//! nearest-rank percentile, reading the address from the service's
//! start-up line, and the linearizability search over recorded histories.

pub mod linearizability;

/// A xorshift64 generator: fast, deterministic for a seed, and good enough
/// to pick users, operations and delays. Not for anything secret.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator for `seed` (any value; 0 is nudged, since xorshift
    /// would stay at 0).
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The nearest-rank `q`-quantile (0 < q <= 1) of `sorted`, which must be in
/// ascending order; the default value when it is empty.
pub fn percentile<T: Copy + Default>(sorted: &[T], q: f64) -> T {
    let n = sorted.len();
    if n == 0 {
        return T::default();
    }
    let rank = ((n as f64 * q).ceil() as usize).clamp(1, n);
    sorted[rank - 1]
}

/// The `host:port` of a `listening on http://host:port` line, as the
/// service (and the bench servers) print it once bound.
pub fn listening_address(line: &str) -> Option<&str> {
    let rest = line.split("listening on http://").nth(1)?;
    rest.split_whitespace().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_deterministic_and_stays_in_range() {
        let (mut a, mut b) = (XorShift::new(7), XorShift::new(7));
        for _ in 0..1000 {
            let x = a.below(10);
            assert_eq!(x, b.below(10));
            assert!(x < 10);
            let u = a.unit();
            assert_eq!(u, b.unit());
            assert!((0.0..1.0).contains(&u));
        }
        assert_ne!(XorShift::new(0).next_u64(), 0, "a zero seed still moves");
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 50);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&v, 1.0), 100);
        assert_eq!(percentile(&v[..1], 0.01), 1);
        assert_eq!(percentile::<u32>(&[], 0.5), 0);
    }

    #[test]
    fn the_address_is_read_from_the_start_up_line() {
        let line = "[2026-11-22T03:25:33Z INFO  boxoffice] listening on http://127.0.0.1:18081";
        assert_eq!(listening_address(line), Some("127.0.0.1:18081"));
        assert_eq!(
            listening_address("listening on http://[::1]:80 now"),
            Some("[::1]:80")
        );
        assert_eq!(listening_address("starting 2 workers"), None);
    }
}
