//! Each booking's seat list, back to back in one arena.
//!
//! Why an arena: a boxed slice a booking costs 16 bytes of pointer and
//! length plus an allocation of its own; a 95%-sold 100,000-seat hall has
//! about 50,000 bookings, so the lists alone were 19.5 bytes a seat against
//! the 16 for everything. Here a booking is a 12-byte [`Entry`]
//! (where its seats start, how many, what it waits for) and its seats are 4
//! bytes each in one vector. A list that is replaced or cut short leaves
//! dead seats behind; once they outnumber the live ones the arena is
//! compacted, and that too is undone exactly.

use super::seat::{SeatIx, Want};
use crate::DomainError;

/// `Entry::category` of a booking that waits for any category. Shapes
/// have fewer than this many sections, so no category's index is this.
const ANY_CATEGORY: u16 = u16::MAX;

/// Dead seats below this many are never compacted away: a small event
/// would compact over and over for nothing.
const COMPACT_FROM: usize = 1 << 16;

/// Where a booking's seats lie in the arena and what it waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Entry {
    start: u32,
    len: u32,
    /// [`Want::category`], [`ANY_CATEGORY`] for none.
    category: u16,
    apart: bool,
}

/// No seats, and the default want (padding for handles without seats).
impl Default for Entry {
    fn default() -> Self {
        Self {
            start: 0,
            len: 0,
            category: ANY_CATEGORY,
            apart: false,
        }
    }
}

impl Entry {
    fn want(self) -> Want {
        Want {
            category: (self.category != ANY_CATEGORY).then_some(self.category),
            apart: self.apart,
        }
    }

    /// Whether the entry says anything (a default one is padding).
    fn is_used(self) -> bool {
        self.len > 0 || self.want() != Want::default()
    }
}

/// One step to take back, newest last (see [`SeatLists::undo`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ListUndo {
    /// Booking `handle`'s entry before, how many entries there were and
    /// how many seats were dead.
    Entry {
        handle: u32,
        before: Entry,
        entries: usize,
        dead: usize,
    },
    /// Seats were appended to an arena of this length.
    Appended { len: usize },
    /// The arena, the entries and the dead count before a compaction.
    Compacted {
        arena: Vec<SeatIx>,
        entries: Vec<Entry>,
        dead: usize,
    },
}

/// Every booking's seats, by booking handle.
#[derive(Debug, Clone, Default)]
pub(super) struct SeatLists {
    arena: Vec<SeatIx>,
    /// By handle; shorter than the event's records when the last ones
    /// have no seats.
    entries: Vec<Entry>,
    /// Seats in the arena that no entry covers any more.
    dead: usize,
}

/// Equal when every booking has the same seats and want, wherever in the
/// arena they lie (a restored event's arena has no dead seats).
impl PartialEq for SeatLists {
    fn eq(&self, other: &Self) -> bool {
        self.used().eq(other.used())
    }
}

impl Eq for SeatLists {}

impl SeatLists {
    /// The seats of booking `handle`, in the order they were given.
    pub(super) fn seats(&self, handle: u32) -> &[SeatIx] {
        match self.entries.get(handle as usize) {
            Some(e) => {
                let start = e.start as usize;
                self.arena.get(start..start + e.len as usize).unwrap_or(&[])
            }
            None => &[],
        }
    }

    /// What booking `handle` waits for.
    pub(super) fn want(&self, handle: u32) -> Want {
        self.entries
            .get(handle as usize)
            .map_or(Want::default(), |e| e.want())
    }

    /// Every booking that has seats or waits for some: its handle, seats
    /// and want, by handle.
    pub(super) fn used(&self) -> impl Iterator<Item = (u32, &[SeatIx], Want)> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.is_used())
            .map(|(handle, e)| (handle as u32, self.seats(handle as u32), e.want()))
    }

    /// Gives booking `handle` the list `seats` and the want `want`; its
    /// old list becomes dead. Refused, with nothing changed, only when the
    /// arena cannot address the seats even after a compaction.
    pub(super) fn set(
        &mut self,
        handle: u32,
        seats: &[SeatIx],
        want: Want,
        undo: &mut Vec<ListUndo>,
    ) -> Result<(), DomainError> {
        let start = if seats.is_empty() {
            0
        } else {
            self.append(seats, undo)?
        };
        let entries = self.entries.len();
        let at = handle as usize;
        if at >= entries {
            self.entries.resize(at + 1, Entry::default());
        }
        let before = self.entries[at];
        undo.push(ListUndo::Entry {
            handle,
            before,
            entries,
            dead: self.dead,
        });
        self.dead += before.len as usize;
        self.entries[at] = Entry {
            start,
            len: seats.len() as u32,
            category: want.category.unwrap_or(ANY_CATEGORY),
            apart: want.apart,
        };
        Ok(())
    }

    /// Cuts booking `handle`'s list to its first `keep` seats.
    pub(super) fn truncate(&mut self, handle: u32, keep: usize, undo: &mut Vec<ListUndo>) {
        let entries = self.entries.len();
        let Some(entry) = self.entries.get_mut(handle as usize) else {
            return;
        };
        if keep >= entry.len as usize {
            return;
        }
        undo.push(ListUndo::Entry {
            handle,
            before: *entry,
            entries,
            dead: self.dead,
        });
        self.dead += entry.len as usize - keep;
        entry.len = keep as u32;
    }

    /// Takes back `steps`, newest first.
    pub(super) fn undo(&mut self, steps: Vec<ListUndo>) {
        for step in steps.into_iter().rev() {
            match step {
                ListUndo::Entry {
                    handle,
                    before,
                    entries,
                    dead,
                } => {
                    if (handle as usize) < entries {
                        self.entries[handle as usize] = before;
                    }
                    self.entries.truncate(entries);
                    self.dead = dead;
                }
                ListUndo::Appended { len } => self.arena.truncate(len),
                ListUndo::Compacted {
                    arena,
                    entries,
                    dead,
                } => {
                    self.arena = arena;
                    self.entries = entries;
                    self.dead = dead;
                }
            }
        }
    }

    /// Heap bytes held: the arena and the entries, spare capacity included.
    pub(super) fn heap_bytes(&self) -> usize {
        self.arena.capacity() * std::mem::size_of::<SeatIx>()
            + self.entries.capacity() * std::mem::size_of::<Entry>()
    }

    /// Appends `seats` (compacting first when dead seats are the most, or
    /// when the arena could not address them otherwise); where they start.
    fn append(&mut self, seats: &[SeatIx], undo: &mut Vec<ListUndo>) -> Result<u32, DomainError> {
        let limit = u32::MAX as usize;
        let live = self.arena.len() - self.dead;
        if live + seats.len() > limit {
            return Err(DomainError::Inconsistent(
                "the event's seat lists are full".into(),
            ));
        }
        let mostly_dead = self.dead >= COMPACT_FROM && self.dead * 2 > self.arena.len();
        if mostly_dead || self.arena.len() + seats.len() > limit {
            self.compact(undo);
        }
        let len = self.arena.len();
        undo.push(ListUndo::Appended { len });
        self.arena.extend_from_slice(seats);
        Ok(len as u32)
    }

    /// Rewrites the arena with the live lists only, in handle order.
    fn compact(&mut self, undo: &mut Vec<ListUndo>) {
        let mut arena = Vec::with_capacity(self.arena.len() - self.dead);
        let mut entries = self.entries.clone();
        for entry in &mut entries {
            let start = entry.start as usize;
            arena.extend_from_slice(&self.arena[start..start + entry.len as usize]);
            entry.start = (arena.len() - entry.len as usize) as u32;
        }
        undo.push(ListUndo::Compacted {
            arena: std::mem::replace(&mut self.arena, arena),
            entries: std::mem::replace(&mut self.entries, entries),
            dead: std::mem::take(&mut self.dead),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A step of the model: set a list, cut one short, or undo the
    /// steps since the last mark.
    #[derive(Debug, Clone)]
    enum Op {
        Set(u32, Vec<SeatIx>, Option<u16>, bool),
        Truncate(u32, usize),
        Mark,
        Undo,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0u32..12, prop::collection::vec(0u32..1000, 0..6), prop::option::of(0u16..3), any::<bool>())
                .prop_map(|(h, s, c, a)| Op::Set(h, s, c, a)),
            2 => (0u32..12, 0usize..4).prop_map(|(h, k)| Op::Truncate(h, k)),
            1 => Just(Op::Mark),
            1 => Just(Op::Undo),
        ]
    }

    /// The plain model: a vector of (seats, want) by handle.
    type Model = Vec<(Vec<SeatIx>, Want)>;

    fn model_of(lists: &SeatLists) -> Model {
        let mut model = Model::new();
        for (handle, seats, want) in lists.used() {
            model.resize(handle as usize + 1, (Vec::new(), Want::default()));
            model[handle as usize] = (seats.to_vec(), want);
        }
        model
    }

    /// Without the default entries at the end (padding, not bookings).
    fn trimmed(mut model: Model) -> Model {
        while model
            .last()
            .is_some_and(|(s, w)| s.is_empty() && *w == Want::default())
        {
            model.pop();
        }
        model
    }

    proptest! {
        /// Every step does what the model does and undo takes back
        /// exactly what was done since the mark (compaction needs more dead
        /// seats than these runs make: `compacts_and_undoes_exactly`).
        #[test]
        fn follows_the_model(ops in prop::collection::vec(op(), 1..80)) {
            let mut lists = SeatLists::default();
            let mut model = Model::new();
            let mut undo = Vec::new();
            let mut marked = (lists.clone(), model.clone());
            for op in ops {
                match op {
                    Op::Set(h, seats, category, apart) => {
                        let want = Want { category, apart };
                        lists.set(h, &seats, want, &mut undo).expect("room");
                        if model.len() <= h as usize {
                            model.resize(h as usize + 1, (Vec::new(), Want::default()));
                        }
                        model[h as usize] = (seats, want);
                    }
                    Op::Truncate(h, keep) => {
                        lists.truncate(h, keep, &mut undo);
                        if let Some((seats, _)) = model.get_mut(h as usize) {
                            seats.truncate(keep);
                        }
                    }
                    Op::Mark => {
                        undo.clear();
                        marked = (lists.clone(), model.clone());
                    }
                    Op::Undo => {
                        lists.undo(std::mem::take(&mut undo));
                        prop_assert_eq!(&lists, &marked.0);
                        prop_assert_eq!(lists.dead, marked.0.dead);
                        prop_assert_eq!(&lists.arena, &marked.0.arena);
                        model = marked.1.clone();
                    }
                }
                prop_assert_eq!(trimmed(model_of(&lists)), trimmed(model.clone()));
                let live: usize = lists.entries.iter().map(|e| e.len as usize).sum();
                prop_assert_eq!(lists.arena.len() - lists.dead, live);
            }
        }
    }

    /// Replacing lists over and over compacts the arena once dead seats
    /// are the most, keeps every list, and undo restores the arena as it
    /// was, byte for byte.
    #[test]
    fn compacts_and_undoes_exactly() {
        let mut lists = SeatLists::default();
        let mut undo = Vec::new();
        let seats: Vec<SeatIx> = (0..1000).collect();
        lists.set(0, &seats, Want::default(), &mut undo).unwrap();
        lists.set(1, &[7, 8], Want::default(), &mut undo).unwrap();
        undo.clear();
        let mut compactions = 0;
        for round in 0..200u32 {
            let before = lists.clone();
            let mut steps = Vec::new();
            let list: Vec<SeatIx> = (round..round + 1000).collect();
            lists.set(0, &list, Want::default(), &mut steps).unwrap();
            let compacted = steps
                .iter()
                .any(|s| matches!(s, ListUndo::Compacted { .. }));
            if compacted {
                compactions += 1;
                assert_eq!(lists.dead, 1000, "the replaced list is dead");
                let mut back = lists.clone();
                back.undo(steps);
                assert_eq!(back.arena, before.arena);
                assert_eq!(back.entries, before.entries);
                assert_eq!(back.dead, before.dead);
            }
            assert_eq!(lists.seats(0), &list[..]);
            assert_eq!(lists.seats(1), &[7, 8]);
            assert!(lists.arena.len() <= 2 * COMPACT_FROM + 4000);
        }
        assert!(compactions >= 2, "{compactions} compactions");
    }

    #[test]
    fn an_entry_is_twelve_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 12);
    }
}
