//! Choosing seats: best available together (the first row in quality order
//! with a long enough free run, then the best block of that row, avoiding
//! blocks that strand a single seat), and best available one by one.
//!
//! Why this is fast on a big, nearly sold map: the row is found in the
//! [`MaxTree`](super::MaxTree) of longest free runs in O(log rows); only
//! that row's seats are then read.

use super::{SeatIx, SeatState, Seating, Want};

/// A candidate block: whether it strands a seat, its distance from the
/// row's middle (doubled, so it is whole), its first seat number.
type BlockKey = (bool, u64, u32);

impl Seating {
    /// The seats best available gives `quantity` seats asked for as `want`
    /// says, or `None` when none fit (the booking waits).
    pub fn choose(&self, quantity: u32, want: Want) -> Option<Vec<SeatIx>> {
        if quantity == 0 {
            return None;
        }
        let tree = match want.category {
            Some(c) => self.runs_by_category.get(usize::from(c))?,
            None => &self.runs,
        };
        if !want.apart {
            let row = tree.first_from(0, quantity)?;
            let start = self.best_block(row, quantity)?;
            return Some((start..start + quantity).collect());
        }
        let mut chosen = Vec::with_capacity(quantity as usize);
        let mut from = 0;
        while chosen.len() < quantity as usize {
            let row = tree.first_from(from, 1)?;
            let mut free = self.free_in_quality_order(row);
            free.truncate(quantity as usize - chosen.len());
            chosen.extend(free);
            from = row + 1;
        }
        chosen.sort_unstable();
        Some(chosen)
    }

    /// The first seat of the best block of `n` adjacent free seats in
    /// `row`: nearest the middle, lower number on a tie, and one that
    /// strands no seat if the row has any such.
    pub(super) fn best_block(&self, row: usize, n: u32) -> Option<SeatIx> {
        let info = &self.layout.rows[row];
        let middle2 = u64::from(1 + info.seats);
        let mut best: Option<BlockKey> = None;
        for (a, b) in self.free_runs(row) {
            // Numbers within the row, 1-based, inclusive.
            if b + 1 - a < n {
                continue;
            }
            for s in a..=b + 1 - n {
                let e = s + n - 1;
                let strands = (a + 1 == s) || (e + 1 == b);
                let centre2 = u64::from(2 * s + n - 1);
                let key = (strands, centre2.abs_diff(middle2), s);
                if best.is_none_or(|k| key < k) {
                    best = Some(key);
                }
            }
        }
        best.map(|(_, _, s)| info.first + s - 1)
    }

    /// The longest run of adjacent free seats in `row`.
    pub(super) fn longest_run(&self, row: usize) -> u32 {
        self.free_runs(row)
            .map(|(a, b)| b + 1 - a)
            .max()
            .unwrap_or(0)
    }

    /// The row's free runs as (first, last) seat numbers, left to right:
    /// runs end at a taken seat, a gap or the row's end.
    fn free_runs(&self, row: usize) -> impl Iterator<Item = (u32, u32)> + '_ {
        let info = &self.layout.rows[row];
        let first = info.first;
        let mut number = 1;
        std::iter::from_fn(move || {
            while number <= info.seats {
                let seat = first + number - 1;
                if self.state(seat) != SeatState::Free {
                    number += 1;
                    continue;
                }
                let start = number;
                let mut end = number;
                while end < info.seats
                    && !self.layout.gap_after(first + end - 1)
                    && self.state(first + end) == SeatState::Free
                {
                    end += 1;
                }
                number = end + 1;
                return Some((start, end));
            }
            None
        })
    }

    /// The row's free seats, nearest its middle first (lower number on a tie).
    fn free_in_quality_order(&self, row: usize) -> Vec<SeatIx> {
        let info = &self.layout.rows[row];
        let middle2 = u64::from(1 + info.seats);
        let mut free: Vec<u32> = (1..=info.seats)
            .filter(|&n| self.state(info.first + n - 1) == SeatState::Free)
            .collect();
        free.sort_unstable_by_key(|&n| (u64::from(2 * n).abs_diff(middle2), n));
        free.into_iter().map(|n| info.first + n - 1).collect()
    }
}
