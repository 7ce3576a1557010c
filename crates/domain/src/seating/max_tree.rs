//! The rows' longest free runs in a max segment tree, so best available
//! finds the first row (in quality order) that fits a party in O(log rows)
//! however full the hall is, instead of walking every sold-out row.

/// A max segment tree over `len` slots, all 0 at first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaxTree {
    /// Leaves start at `size`; node `i` holds the max of `2i` and `2i + 1`.
    nodes: Vec<u32>,
    /// A power of two, at least the slot count.
    size: usize,
}

impl MaxTree {
    /// A tree of `len` slots, each 0.
    pub fn new(len: usize) -> Self {
        let size = len.max(1).next_power_of_two();
        Self {
            nodes: vec![0; 2 * size],
            size,
        }
    }

    /// Sets slot `i` to `value`.
    pub fn set(&mut self, i: usize, value: u32) {
        let mut node = self.size + i;
        self.nodes[node] = value;
        while node > 1 {
            node /= 2;
            let max = self.nodes[2 * node].max(self.nodes[2 * node + 1]);
            if self.nodes[node] == max {
                break;
            }
            self.nodes[node] = max;
        }
    }

    /// Heap bytes it holds.
    pub fn heap_bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<u32>()
    }

    /// The value of slot `i`.
    pub fn get(&self, i: usize) -> u32 {
        self.nodes[self.size + i]
    }

    /// The first slot at or after `from` whose value is at least `at_least`.
    pub fn first_from(&self, from: usize, at_least: u32) -> Option<usize> {
        if from >= self.size {
            return None;
        }
        self.descend(1, 0, self.size, from, at_least)
    }

    fn descend(
        &self,
        node: usize,
        lo: usize,
        hi: usize,
        from: usize,
        at_least: u32,
    ) -> Option<usize> {
        if hi <= from || self.nodes[node] < at_least {
            return None;
        }
        if hi - lo == 1 {
            return Some(lo);
        }
        let mid = (lo + hi) / 2;
        self.descend(2 * node, lo, mid, from, at_least)
            .or_else(|| self.descend(2 * node + 1, mid, hi, from, at_least))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn finds_what_a_scan_finds(
            values in proptest::collection::vec(0u32..6, 1..70),
            sets in proptest::collection::vec((0usize..70, 0u32..6), 0..30),
            from in 0usize..80,
            at_least in 1u32..7,
        ) {
            let mut plain = values.clone();
            let mut tree = MaxTree::new(values.len());
            for (i, &v) in values.iter().enumerate() {
                tree.set(i, v);
            }
            for (i, v) in sets {
                if i < plain.len() {
                    plain[i] = v;
                    tree.set(i, v);
                }
            }
            let scan = (from..plain.len()).find(|&i| plain[i] >= at_least);
            prop_assert_eq!(tree.first_from(from, at_least), scan);
            for (i, &v) in plain.iter().enumerate() {
                prop_assert_eq!(tree.get(i), v);
            }
        }
    }
}
