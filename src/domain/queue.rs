//! The first-come, first-served waiting list of one event.

use super::fenwick::Fenwick;

/// Marks a slot whose booking has left the queue (promoted or cancelled).
const GONE: u32 = u32::MAX;

/// A FIFO of booking handles with O(log n) live positions.
///
/// Every arrival takes the next sequence number; leaving only marks the slot
/// gone, so nobody else's sequence number changes and a position is the count
/// of live slots up to and including one's own.
#[derive(Debug, Clone, Default)]
pub struct WaitingQueue {
    /// The booking handle that took each sequence number, or `GONE`.
    slots: Vec<u32>,
    /// 1 for each live slot, 0 for each gone one.
    live: Fenwick,
    /// Every slot before this one is gone: the head search starts here.
    head: usize,
    /// Number of live slots.
    len: usize,
}

/// One live entry of the queue, as seen by a reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueEntry {
    /// The booking handle (an index the owning event understands).
    pub handle: u32,
    /// 1-based place in the queue.
    pub position: u64,
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

    /// Whether another arrival fits: sequence numbers are `u32`, and
    /// `u32::MAX` is reserved for gone slots.
    pub fn has_room(&self) -> bool {
        self.slots.len() < GONE as usize
    }

    /// Appends `handle` at the back and returns its sequence number.
    /// The caller checks [`Self::has_room`] first.
    pub fn push(&mut self, handle: u32) -> u32 {
        assert!(self.has_room(), "waiting queue sequence space exhausted");
        debug_assert_ne!(handle, GONE);
        let seq = self.slots.len() as u32;
        self.slots.push(handle);
        self.live.push(1);
        self.len += 1;
        seq
    }

    /// Removes the entry with sequence number `seq` from wherever it stands.
    /// Returns false when `seq` is not live.
    pub fn remove(&mut self, seq: u32) -> bool {
        let index = seq as usize;
        match self.slots.get(index) {
            Some(&handle) if handle != GONE => {
                self.slots[index] = GONE;
                self.live.add(index, -1);
                self.len -= 1;
                self.skip_gone_head();
                true
            }
            _ => false,
        }
    }

    /// Puts `handle` back at sequence number `seq`, which it left earlier:
    /// undoing a removal restores the exact place in the queue.
    pub fn revive(&mut self, seq: u32, handle: u32) {
        let index = seq as usize;
        assert!(
            self.slots.get(index) == Some(&GONE),
            "only a gone slot can be revived"
        );
        self.slots[index] = handle;
        self.live.add(index, 1);
        self.len += 1;
        self.head = self.head.min(index);
    }

    /// Takes the entry at the front, returning its handle.
    pub fn pop_front(&mut self) -> Option<u32> {
        self.skip_gone_head();
        let handle = *self.slots.get(self.head)?;
        let seq = self.head as u32;
        self.remove(seq);
        Some(handle)
    }

    /// 1-based position of the live entry `seq`, or `None` if it is gone.
    pub fn position(&self, seq: u32) -> Option<u64> {
        let index = seq as usize;
        match self.slots.get(index) {
            Some(&handle) if handle != GONE => Some(self.live.prefix_sum(index + 1)),
            _ => None,
        }
    }

    /// Up to `limit` live entries starting at 0-based queue `offset`, in
    /// queue order. Finding the start costs O(log n); the walk then skips
    /// gone slots.
    pub fn page(&self, offset: usize, limit: usize) -> Vec<QueueEntry> {
        let mut out = Vec::with_capacity(limit.min(self.len.saturating_sub(offset)));
        let Some(start) = self.live.find_kth(offset as u64 + 1) else {
            return out;
        };
        let mut position = offset as u64;
        for &handle in &self.slots[start..] {
            if out.len() == limit {
                break;
            }
            if handle != GONE {
                position += 1;
                out.push(QueueEntry { handle, position });
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

    /// Keeps `head` on the first live slot so `pop_front` is amortised O(1).
    fn skip_gone_head(&mut self) {
        while self.head < self.slots.len() && self.slots[self.head] == GONE {
            self.head += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_close_up_when_someone_leaves_the_middle() {
        let mut q = WaitingQueue::new();
        let seqs: Vec<u32> = (10..15).map(|h| q.push(h)).collect();
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
        let a = q.push(1);
        q.push(2);
        q.push(3);
        q.remove(a);
        assert_eq!(q.pop_front(), Some(2));
        assert_eq!(q.pop_front(), Some(3));
        assert_eq!(q.pop_front(), None);
        assert!(q.is_empty());
    }

    #[test]
    fn a_revived_entry_gets_its_old_place_back() {
        let mut q = WaitingQueue::new();
        let seqs: Vec<u32> = (0..4).map(|h| q.push(h)).collect();
        assert_eq!(q.pop_front(), Some(0));
        q.remove(seqs[2]);
        q.revive(seqs[0], 0);
        q.revive(seqs[2], 2);
        assert_eq!(q.handles().collect::<Vec<_>>(), vec![0, 1, 2, 3]);
        assert_eq!(q.position(seqs[2]), Some(3));
        assert_eq!(
            q.pop_front(),
            Some(0),
            "the head moves back to the revived entry"
        );
    }

    #[test]
    fn removing_a_gone_entry_twice_changes_nothing() {
        let mut q = WaitingQueue::new();
        let a = q.push(1);
        assert!(q.remove(a));
        assert!(!q.remove(a));
        assert!(!q.remove(99));
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn a_page_starts_at_the_offset_and_numbers_positions_from_it() {
        let mut q = WaitingQueue::new();
        let seqs: Vec<u32> = (0..10).map(|h| q.push(h)).collect();
        q.remove(seqs[1]);
        q.remove(seqs[5]);
        let page = q.page(2, 3);
        assert_eq!(
            page,
            vec![
                QueueEntry {
                    handle: 3,
                    position: 3
                },
                QueueEntry {
                    handle: 4,
                    position: 4
                },
                QueueEntry {
                    handle: 6,
                    position: 5
                },
            ]
        );
        assert!(q.page(8, 5).is_empty());
        assert_eq!(
            q.handles().collect::<Vec<_>>(),
            vec![0, 2, 3, 4, 6, 7, 8, 9]
        );
    }
}
