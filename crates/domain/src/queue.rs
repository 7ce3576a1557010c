//! The first-come, first-served waiting list of one event.

use super::fenwick::Fenwick;

/// Slots per liveness word.
const WORD_BITS: usize = 64;

/// Marks a slot whose booking has left the queue (promoted or cancelled).
const GONE: u32 = u32::MAX;

/// Gone slots at the front that are worth handing back: below this the
/// memory is small and the copy not worth making.
/// (One word in this crate's own tests, so they hand slots back often.)
const RECLAIM_MIN_SLOTS: usize = if cfg!(test) {
    WORD_BITS
} else {
    64 * WORD_BITS
};

/// A FIFO of booking handles, each asking for some tickets, with O(log n)
/// live positions and tickets-ahead counts.
///
/// Every arrival takes the next sequence number; leaving only marks the slot
/// gone, so nobody else's sequence number changes and a position is the count
/// of live slots up to and including one's own. That count is a rank: one
/// bit per slot in 64-bit words, and a Fenwick tree over the words' counts.
/// The tree is 64 times smaller than one over slots, so at a million
/// waiting it still sits in cache, and a rank is a prefix sum plus a popcount.
///
/// Sequence numbers are absolute; the vectors start at `base`. Once the gone
/// slots at the front are at least half of them, whole words of them are
/// handed back and `base` moves on, so a queue whose front keeps moving
/// (promotions, cancellations of the oldest) holds memory for the span from
/// its oldest live entry to its newest, not for every arrival since start.
/// Tickets ahead work the same way: a second Fenwick tree over each word's
/// sum of quantities, plus the quantities before one's own slot in its word.
#[derive(Debug, Clone, Default)]
pub struct WaitingQueue {
    /// The sequence number of `slots[0]`, a multiple of [`WORD_BITS`].
    base: u32,
    /// The booking handle that took each sequence number, or `GONE`.
    slots: Vec<u32>,
    /// The tickets each live slot asks for; 0 for gone slots.
    quantities: Vec<u32>,
    /// Bit `seq % 64` of word `seq / 64` is set while slot `seq` is live.
    live_bits: Vec<u64>,
    /// How many live slots each word holds, as prefix sums.
    live_words: Fenwick,
    /// How many tickets each word's live slots ask for, as prefix sums.
    ticket_words: Fenwick,
    /// Every slot before this one is gone: the head search starts here.
    head: usize,
    /// Number of live slots.
    len: usize,
    /// Tickets asked for by all live slots.
    tickets: u64,
}

/// One live entry of the queue, as seen by a reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueEntry {
    /// The booking handle (an index the owning event understands).
    pub handle: u32,
    /// 1-based place in the queue.
    pub position: u64,
    /// Tickets this entry asks for.
    pub quantity: u32,
}

/// The entry at the front of the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Its sequence number.
    pub seq: u32,
    /// Its booking handle.
    pub handle: u32,
    /// Tickets it asks for.
    pub quantity: u32,
}

impl WaitingQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many bookings are waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nobody is waiting.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Tickets asked for by everyone waiting.
    pub fn tickets(&self) -> u64 {
        self.tickets
    }

    /// The most tickets any waiting booking asks for, if anyone waits.
    /// O(n) over the slots, without allocating: for the rare capacity cut.
    pub fn largest_quantity(&self) -> Option<u32> {
        // Gone slots hold 0, and the head search start skips the gone prefix.
        self.quantities[self.head.min(self.quantities.len())..]
            .iter()
            .copied()
            .max()
            .filter(|&q| q > 0)
    }

    /// Whether another arrival fits: sequence numbers are `u32`, and
    /// `u32::MAX` is reserved for gone slots.
    pub fn has_room(&self) -> bool {
        (self.base as usize + self.slots.len()) < GONE as usize
    }

    /// Slots held in memory (live and gone), for tests and accounting.
    pub fn slots_held(&self) -> usize {
        self.slots.len()
    }

    /// The index of sequence number `seq` in the vectors, if it is held.
    fn index_of(&self, seq: u32) -> Option<usize> {
        let index = seq.checked_sub(self.base)? as usize;
        (index < self.slots.len()).then_some(index)
    }

    /// Appends `handle`, asking for `quantity` tickets, at the back and
    /// returns its sequence number. The caller checks [`Self::has_room`] first.
    pub fn push(&mut self, handle: u32, quantity: u32) -> u32 {
        assert!(self.has_room(), "waiting queue sequence space exhausted");
        debug_assert_ne!(handle, GONE);
        let index = self.slots.len();
        let seq = self.base + index as u32;
        self.slots.push(handle);
        self.quantities.push(0);
        if self.slots.len() > self.live_bits.len() * WORD_BITS {
            self.live_bits.push(0);
            self.live_words.push(0);
            self.ticket_words.push(0);
        }
        self.mark(index, true);
        self.set_tickets(index, quantity);
        self.len += 1;
        seq
    }

    /// Removes the entry with sequence number `seq` from wherever it stands.
    /// Returns false when `seq` is not live.
    pub fn remove(&mut self, seq: u32) -> bool {
        let Some(index) = self.index_of(seq) else {
            return false;
        };
        if self.slots[index] == GONE {
            return false;
        }
        self.slots[index] = GONE;
        self.mark(index, false);
        self.set_tickets(index, 0);
        self.len -= 1;
        self.skip_gone_head();
        self.reclaim_front();
        true
    }

    /// Puts `handle` back at sequence number `seq`, which it left earlier:
    /// undoing a removal restores the exact place in the queue.
    pub fn revive(&mut self, seq: u32, handle: u32, quantity: u32) {
        if seq < self.base {
            // Its slot was handed back after it left (an undo after the
            // front moved on): take the words back first.
            self.grow_front(seq);
        }
        let index = (seq - self.base) as usize;
        assert!(
            self.slots.get(index) == Some(&GONE),
            "only a gone slot can be revived"
        );
        self.slots[index] = handle;
        self.mark(index, true);
        self.set_tickets(index, quantity);
        self.len += 1;
        self.head = self.head.min(index);
    }

    /// Changes how many tickets the live entry `seq` asks for.
    pub fn set_quantity(&mut self, seq: u32, quantity: u32) {
        let index = self.index_of(seq);
        debug_assert!(
            index.is_some_and(|i| self.slots[i] != GONE),
            "only a live entry changes its quantity"
        );
        if let Some(index) = index {
            self.set_tickets(index, quantity);
        }
    }

    /// The entry at the front, if anyone waits.
    pub fn head(&self) -> Option<Head> {
        let index = self.first_live()?;
        Some(Head {
            seq: self.base + index as u32,
            handle: self.slots[index],
            quantity: self.quantities[index],
        })
    }

    /// 1-based position of the live entry `seq`, or `None` if it is gone.
    pub fn position(&self, seq: u32) -> Option<u64> {
        let index = self.index_of(seq)?;
        (self.slots[index] != GONE).then(|| self.rank(index))
    }

    /// Tickets asked for by the live entries ahead of `seq`, or `None` if
    /// it is gone.
    pub fn tickets_ahead(&self, seq: u32) -> Option<u64> {
        let index = self.index_of(seq)?;
        match self.slots[index] {
            handle if handle != GONE => {
                let word = index / WORD_BITS;
                let in_word: u64 = self.quantities[word * WORD_BITS..index]
                    .iter()
                    .map(|&q| u64::from(q))
                    .sum();
                Some(self.ticket_words.prefix_sum(word) + in_word)
            }
            _ => None,
        }
    }

    /// Up to `limit` live entries starting at 0-based queue `offset`, in
    /// queue order. Finding the start costs O(log n); the walk then skips
    /// gone slots.
    pub fn page(&self, offset: usize, limit: usize) -> Vec<QueueEntry> {
        let mut out = Vec::with_capacity(limit.min(self.len.saturating_sub(offset)));
        let Some(start) = self.select(offset as u64 + 1) else {
            return out;
        };
        let mut position = offset as u64;
        for (&handle, &quantity) in self.slots[start..].iter().zip(&self.quantities[start..]) {
            if out.len() == limit {
                break;
            }
            if handle != GONE {
                position += 1;
                out.push(QueueEntry {
                    handle,
                    position,
                    quantity,
                });
            }
        }
        out
    }

    /// All live handles in queue order.
    pub fn handles(&self) -> impl Iterator<Item = u32> + '_ {
        self.slots[self.head.min(self.slots.len())..]
            .iter()
            .copied()
            .filter(|&h| h != GONE)
    }

    /// Sets or clears slot `index`'s live bit and its word's count.
    fn mark(&mut self, index: usize, live: bool) {
        let (word, bit) = (index / WORD_BITS, index % WORD_BITS);
        let mask = 1u64 << bit;
        debug_assert_eq!(
            self.live_bits[word] & mask != 0,
            !live,
            "slot liveness flips"
        );
        if live {
            self.live_bits[word] |= mask;
            self.live_words.add(word, 1);
        } else {
            self.live_bits[word] &= !mask;
            self.live_words.add(word, -1);
        }
    }

    /// Sets slot `index`'s ticket count, keeping its word's sum and the total.
    fn set_tickets(&mut self, index: usize, quantity: u32) {
        let before = std::mem::replace(&mut self.quantities[index], quantity);
        let delta = i64::from(quantity) - i64::from(before);
        self.ticket_words.add(index / WORD_BITS, delta);
        self.tickets = self.tickets.wrapping_add_signed(delta);
    }

    /// Live slots up to and including `index`.
    fn rank(&self, index: usize) -> u64 {
        let (word, bit) = (index / WORD_BITS, index % WORD_BITS);
        let upto = if bit == WORD_BITS - 1 {
            u64::MAX
        } else {
            (1u64 << (bit + 1)) - 1
        };
        self.live_words.prefix_sum(word) + u64::from((self.live_bits[word] & upto).count_ones())
    }

    /// The slot of the `k`-th live entry (1-based).
    fn select(&self, k: u64) -> Option<usize> {
        let word = self.live_words.find_kth(k)?;
        let mut bits = self.live_bits[word];
        for _ in 1..k - self.live_words.prefix_sum(word) {
            bits &= bits - 1;
        }
        Some(word * WORD_BITS + bits.trailing_zeros() as usize)
    }

    /// The first live slot; `head` is kept on it by every removal.
    fn first_live(&self) -> Option<usize> {
        (self.head < self.slots.len()).then_some(self.head)
    }

    /// Hands back whole words of gone slots at the front once they are at
    /// least half of what is held: the copy of the rest is paid for by the
    /// removals that emptied them, so it is O(1) amortised per removal.
    fn reclaim_front(&mut self) {
        let words = self.head / WORD_BITS;
        let cut = words * WORD_BITS;
        if cut < RECLAIM_MIN_SLOTS || cut * 2 < self.slots.len() {
            return;
        }
        self.slots.drain(..cut);
        self.quantities.drain(..cut);
        self.live_bits.drain(..words);
        self.shrink();
        self.base += cut as u32;
        self.head -= cut;
        self.rebuild_words();
    }

    /// Takes back the words from `seq`'s down to the current base, all gone.
    fn grow_front(&mut self, seq: u32) {
        let new_base = seq - seq % WORD_BITS as u32;
        let added = (self.base - new_base) as usize;
        self.slots.splice(0..0, std::iter::repeat_n(GONE, added));
        self.quantities.splice(0..0, std::iter::repeat_n(0, added));
        self.live_bits
            .splice(0..0, std::iter::repeat_n(0, added / WORD_BITS));
        self.base = new_base;
        self.head += added;
        self.rebuild_words();
    }

    /// Returns memory the vectors no longer need once they shrank well
    /// below what they hold.
    fn shrink(&mut self) {
        if self.slots.capacity() > 4 * self.slots.len().max(RECLAIM_MIN_SLOTS) {
            self.slots.shrink_to(2 * self.slots.len());
            self.quantities.shrink_to(2 * self.quantities.len());
            self.live_bits.shrink_to(2 * self.live_bits.len());
        }
    }

    /// Both per-word trees, from the slots, in O(words).
    fn rebuild_words(&mut self) {
        self.live_words =
            Fenwick::from_counts(self.live_bits.iter().map(|w| u64::from(w.count_ones())));
        self.ticket_words = Fenwick::from_counts(
            self.quantities
                .chunks(WORD_BITS)
                .map(|c| c.iter().map(|&q| u64::from(q)).sum()),
        );
    }

    /// Keeps `head` on the first live slot so finding the front is O(1)
    /// amortised.
    fn skip_gone_head(&mut self) {
        while self.head < self.slots.len() && self.slots[self.head] == GONE {
            self.head += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes the front entry, as a promotion does.
    fn pop_front(q: &mut WaitingQueue) -> Option<u32> {
        let head = q.head()?;
        assert!(q.remove(head.seq));
        Some(head.handle)
    }

    #[test]
    fn tickets_ahead_sum_the_quantities_in_front_across_words_and_removals() {
        let mut q = WaitingQueue::new();
        let seqs: Vec<u32> = (0..200u32).map(|h| q.push(h, h % 4 + 1)).collect();
        let mut live: Vec<(u32, u32)> = seqs.iter().map(|&s| (s, s % 4 + 1)).collect();
        for &s in seqs.iter().filter(|&&s| s % 5 == 0) {
            assert!(q.remove(s));
        }
        live.retain(|&(s, _)| s % 5 != 0);
        q.set_quantity(seqs[101], 9);
        if let Some(e) = live.iter_mut().find(|(s, _)| *s == 101) {
            e.1 = 9;
        }
        let mut ahead = 0u64;
        for &(s, quantity) in &live {
            assert_eq!(q.tickets_ahead(s), Some(ahead), "seq {s}");
            ahead += u64::from(quantity);
        }
        assert_eq!(q.tickets(), ahead);
        assert_eq!(q.largest_quantity(), Some(9));
        assert_eq!(q.tickets_ahead(seqs[0]), None);
        assert_eq!(q.head().map(|h| (h.handle, h.quantity)), Some((1, 2)));
    }

    #[test]
    fn positions_close_up_when_someone_leaves_the_middle() {
        let mut q = WaitingQueue::new();
        let seqs: Vec<u32> = (10..15).map(|h| q.push(h, 1)).collect();
        assert!(q.remove(seqs[2]));
        assert_eq!(q.position(seqs[0]), Some(1));
        assert_eq!(q.position(seqs[1]), Some(2));
        assert_eq!(q.position(seqs[2]), None);
        assert_eq!(q.position(seqs[3]), Some(3));
        assert_eq!(q.position(seqs[4]), Some(4));
        assert_eq!(q.len(), 4);
    }

    #[test]
    fn pop_front_serves_in_arrival_order_skipping_those_who_left() {
        let mut q = WaitingQueue::new();
        let a = q.push(1, 1);
        q.push(2, 1);
        q.push(3, 1);
        q.remove(a);
        assert_eq!(pop_front(&mut q), Some(2));
        assert_eq!(pop_front(&mut q), Some(3));
        assert_eq!(pop_front(&mut q), None);
        assert!(q.is_empty());
    }

    #[test]
    fn a_revived_entry_gets_its_old_place_back() {
        let mut q = WaitingQueue::new();
        let seqs: Vec<u32> = (0..4).map(|h| q.push(h, 1)).collect();
        assert_eq!(pop_front(&mut q), Some(0));
        q.remove(seqs[2]);
        q.revive(seqs[0], 0, 1);
        q.revive(seqs[2], 2, 1);
        assert_eq!(q.handles().collect::<Vec<_>>(), vec![0, 1, 2, 3]);
        assert_eq!(q.position(seqs[2]), Some(3));
        assert_eq!(
            pop_front(&mut q),
            Some(0),
            "the head moves back to the revived entry"
        );
    }

    #[test]
    fn ranks_are_right_across_word_boundaries() {
        let mut q = WaitingQueue::new();
        let seqs: Vec<u32> = (0..300).map(|h| q.push(h, 1)).collect();
        for &s in seqs.iter().filter(|&&s| s % 3 == 0) {
            q.remove(s);
        }
        let mut expected = 0;
        for &s in &seqs {
            if s % 3 != 0 {
                expected += 1;
                assert_eq!(q.position(s), Some(expected), "seq {s}");
            }
        }
        let page = q.page(120, 5);
        assert_eq!(page.first().map(|e| e.position), Some(121));
        assert_eq!(
            page.iter().map(|e| e.handle).collect::<Vec<_>>(),
            vec![181, 182, 184, 185, 187]
        );
    }

    #[test]
    fn removing_a_gone_entry_twice_changes_nothing() {
        let mut q = WaitingQueue::new();
        let a = q.push(1, 1);
        assert!(q.remove(a));
        assert_eq!(q.largest_quantity(), None, "nobody waits");
        assert!(!q.remove(a));
        assert!(!q.remove(99));
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn a_page_starts_at_the_offset_and_numbers_positions_from_it() {
        let mut q = WaitingQueue::new();
        let seqs: Vec<u32> = (0..10).map(|h| q.push(h, 1)).collect();
        q.remove(seqs[1]);
        q.remove(seqs[5]);
        let page = q.page(2, 3);
        assert_eq!(
            page,
            vec![
                QueueEntry {
                    handle: 3,
                    position: 3,
                    quantity: 1
                },
                QueueEntry {
                    handle: 4,
                    position: 4,
                    quantity: 1
                },
                QueueEntry {
                    handle: 6,
                    position: 5,
                    quantity: 1
                },
            ]
        );
        assert!(q.page(8, 5).is_empty());
        assert_eq!(
            q.handles().collect::<Vec<_>>(),
            vec![0, 2, 3, 4, 6, 7, 8, 9]
        );
    }

    /// What the queue must equal: a plain list of (seq, handle, quantity).
    #[derive(Debug, Clone, Copy)]
    enum Op {
        Push(u32),
        RemoveAt(usize),
        PopFront,
        UndoLastRemoval,
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            4 => (1u32..5).prop_map(Op::Push),
            2 => (0usize..1_000).prop_map(Op::RemoveAt),
            3 => Just(Op::PopFront),
            1 => Just(Op::UndoLastRemoval),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Whatever arrives and leaves (and is undone), positions, tickets
        /// ahead, the head and pages equal a plain list's, while slots are
        /// handed back at the front.
        #[test]
        fn the_queue_equals_a_plain_list_while_it_reclaims_slots(
            ops in proptest::collection::vec(op(), 1..2_000),
        ) {
            let mut q = WaitingQueue::new();
            let mut model: Vec<(u32, u32, u32)> = Vec::new();
            let mut removed: Vec<(usize, (u32, u32, u32))> = Vec::new();
            let mut next_handle = 0u32;
            for op in ops {
                match op {
                    Op::Push(quantity) => {
                        let seq = q.push(next_handle, quantity);
                        model.push((seq, next_handle, quantity));
                        next_handle += 1;
                        removed.clear();
                    }
                    Op::RemoveAt(i) if !model.is_empty() => {
                        let at = i % model.len();
                        let entry = model.remove(at);
                        assert!(q.remove(entry.0));
                        removed.push((at, entry));
                    }
                    Op::PopFront if !model.is_empty() => {
                        let entry = model.remove(0);
                        let head = q.head().expect("a head");
                        assert_eq!((head.seq, head.handle, head.quantity), entry);
                        assert!(q.remove(head.seq));
                        removed.push((0, entry));
                    }
                    Op::UndoLastRemoval => {
                        if let Some((at, entry)) = removed.pop() {
                            q.revive(entry.0, entry.1, entry.2);
                            model.insert(at, entry);
                        }
                    }
                    _ => {}
                }
                assert_eq!(q.len(), model.len());
                let mut ahead = 0u64;
                for (i, &(seq, _, quantity)) in model.iter().enumerate() {
                    assert_eq!(q.position(seq), Some(i as u64 + 1));
                    assert_eq!(q.tickets_ahead(seq), Some(ahead));
                    ahead += u64::from(quantity);
                }
                assert_eq!(q.tickets(), ahead);
                let handles: Vec<u32> = q.handles().collect();
                let expected: Vec<u32> = model.iter().map(|e| e.1).collect();
                assert_eq!(handles, expected);
                if model.len() > 3 {
                    let page = q.page(2, 2);
                    assert_eq!(page[0].handle, model[2].1);
                    assert_eq!(page[0].position, 3);
                }
                // What is held spans the oldest live entry to the newest,
                // plus at most the gone words not yet worth handing back.
                if let (Some(first), Some(last)) = (model.first(), model.last()) {
                    let span = (last.0 - first.0) as usize + 1;
                    assert!(q.slots_held() <= 2 * span + 2 * RECLAIM_MIN_SLOTS + WORD_BITS);
                }
            }
        }
    }

    #[test]
    fn churn_at_the_front_keeps_the_slots_held_flat() {
        let mut q = WaitingQueue::new();
        let mut seqs = std::collections::VecDeque::new();
        for h in 0..1_000 {
            seqs.push_back(q.push(h, 1));
        }
        let mut most = 0;
        for round in 0..200_000u32 {
            // The oldest leaves (promoted or cancelled), a newcomer joins.
            let seq = seqs.pop_front().expect("someone waits");
            assert!(q.remove(seq));
            seqs.push_back(q.push(round % 1_000, 1));
            most = most.max(q.slots_held());
        }
        assert_eq!(q.len(), 1_000);
        assert!(
            most <= 4 * 1_000 + 2 * RECLAIM_MIN_SLOTS,
            "held {most} slots"
        );
    }
}
