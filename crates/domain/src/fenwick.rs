//! A growable Fenwick (binary indexed) tree of small counts.
//!
//! The waiting queue keeps one slot per arrival and marks each slot live (1)
//! or gone (0) here, so "how many live slots come before mine" — a waiting
//! position — costs O(log n) however many people left the middle of the queue.

/// Prefix sums over a sequence of counts that only grows at the end. Sums
/// are `u64`: the queue also keeps one over ticket quantities, whose total
/// can pass `u32::MAX`.
#[derive(Debug, Clone, Default)]
pub struct Fenwick {
    /// `tree[i - 1]` holds the sum of the counts in `(i - lowbit(i), i]`
    /// (1-based), the classic layout.
    tree: Vec<u64>,
}

fn lowbit(i: usize) -> usize {
    i & i.wrapping_neg()
}

impl Fenwick {
    /// Sum of the first `n` counts (`n` clamped to the length).
    pub fn prefix_sum(&self, n: usize) -> u64 {
        let mut i = n.min(self.tree.len());
        let mut sum = 0u64;
        while i > 0 {
            sum += self.tree[i - 1];
            i -= lowbit(i);
        }
        sum
    }

    /// Appends a count in O(log n): the new node covers `(i - lowbit(i), i]`,
    /// whose sum up to `i - 1` is a difference of two prefix sums.
    pub fn push(&mut self, count: u64) {
        let i = self.tree.len() + 1;
        let covered = self.prefix_sum(i - 1) - self.prefix_sum(i - lowbit(i));
        self.tree.push(count + covered);
    }

    /// A tree over `counts`, built in O(n): each node takes its own count
    /// and passes its sum on to its parent.
    pub fn from_counts(counts: impl IntoIterator<Item = u64>) -> Self {
        let mut tree: Vec<u64> = counts.into_iter().collect();
        for i in 1..=tree.len() {
            let parent = i + lowbit(i);
            if parent <= tree.len() {
                tree[parent - 1] += tree[i - 1];
            }
        }
        Self { tree }
    }

    /// Adds `delta` to the count at 0-based `index`. The caller keeps every
    /// count non-negative.
    pub fn add(&mut self, index: usize, delta: i64) {
        debug_assert!(index < self.tree.len(), "fenwick index out of range");
        let mut i = index + 1;
        while i <= self.tree.len() {
            self.tree[i - 1] = self.tree[i - 1].wrapping_add_signed(delta);
            i += lowbit(i);
        }
    }

    /// The smallest 0-based index whose prefix sum (inclusive) reaches `k`,
    /// for `k >= 1`; `None` when the total is below `k`.
    pub fn find_kth(&self, k: u64) -> Option<usize> {
        if k == 0 {
            return None;
        }
        let n = self.tree.len();
        let mut step = if n == 0 {
            0
        } else {
            1usize << (usize::BITS - 1 - n.leading_zeros())
        };
        let mut pos = 0usize;
        let mut remaining = k;
        while step > 0 {
            let next = pos + step;
            if next <= n && self.tree[next - 1] < remaining {
                pos = next;
                remaining -= self.tree[next - 1];
            }
            step >>= 1;
        }
        (pos < n).then_some(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn building_from_counts_equals_pushing_them() {
        let counts: Vec<u64> = (0..1_000u64).map(|i| (i * 7919) % 13).collect();
        let mut pushed = Fenwick::default();
        for &c in &counts {
            pushed.push(c);
        }
        let built = Fenwick::from_counts(counts.iter().copied());
        assert_eq!(built.tree, pushed.tree);
    }

    fn naive_prefix(counts: &[u64], n: usize) -> u64 {
        counts[..n].iter().sum()
    }

    #[test]
    fn prefix_sums_match_a_plain_sum_after_pushes_and_updates() {
        let mut counts = Vec::new();
        let mut tree = Fenwick::default();
        for i in 0..300u64 {
            counts.push(i % 3);
            tree.push(i % 3);
            if i % 7 == 0 && counts[(i / 2) as usize] > 0 {
                counts[(i / 2) as usize] -= 1;
                tree.add((i / 2) as usize, -1);
            }
            for n in 0..=counts.len() {
                assert_eq!(tree.prefix_sum(n), naive_prefix(&counts, n), "n={n}");
            }
        }
    }

    #[test]
    fn find_kth_returns_the_index_where_the_running_sum_reaches_k() {
        let mut tree = Fenwick::default();
        let live = [1, 0, 0, 1, 1, 0, 1];
        for &c in &live {
            tree.push(c);
        }
        assert_eq!(tree.find_kth(1), Some(0));
        assert_eq!(tree.find_kth(2), Some(3));
        assert_eq!(tree.find_kth(3), Some(4));
        assert_eq!(tree.find_kth(4), Some(6));
        assert_eq!(tree.find_kth(5), None);
        assert_eq!(tree.find_kth(0), None);
        assert_eq!(Fenwick::default().find_kth(1), None);
    }
}
