//! Reserved seating: a seated event's map, each seat's state, each
//! booking's seats, and the choice of seats (exact, best available
//! together, best available one by one).
//!
//! The map's layout is shared (`Arc`) and never changes; what moves is one
//! byte a seat, each row's longest free run in [`MaxTree`]s (over all rows
//! and per category), and the seat list of each booking. The event owns one
//! of these and calls it from its `apply`, so seats move in the same step
//! as the tickets they are, with the same exact undo.

mod choose;
mod layout;
mod lists;
mod max_tree;
mod seat;
mod shape;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use layout::Layout;
pub use max_tree::MaxTree;
pub use seat::{SeatIx, Want};
pub use shape::{valid_name, RowShape, SeatShape, SectionShape, DEFAULT_CATEGORY, MAX_NAME_CHARS};

use crate::DomainError;
use lists::{ListUndo, SeatLists};

/// What a seat is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum SeatState {
    /// For sale.
    Free = 0,
    /// In a held booking.
    Held = 1,
    /// In a confirmed booking.
    Booked = 2,
    /// Not for sale (the organiser blocked it).
    Blocked = 3,
}

impl SeatState {
    /// The letter of the seat map: `f`, `h`, `b` or `x`.
    pub fn letter(self) -> u8 {
        match self {
            Self::Free => b'f',
            Self::Held => b'h',
            Self::Booked => b'b',
            Self::Blocked => b'x',
        }
    }

    fn from_bits(bits: u8) -> Self {
        match bits & STATE_BITS {
            0 => Self::Free,
            1 => Self::Held,
            2 => Self::Booked,
            _ => Self::Blocked,
        }
    }
}

/// The low bits of a seat's byte: its [`SeatState`].
const STATE_BITS: u8 = 0b11;

/// How a booking asks for seats.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SeatRequest {
    /// Exactly these seats, all or nothing; never waits.
    Exact(Vec<SeatIx>),
    /// The best `quantity` seats: adjacent ones when `together`, in
    /// `category` (an index into [`Layout::categories`]) if given.
    Best {
        /// How many.
        quantity: u32,
        /// Only this category's sections.
        category: Option<u16>,
        /// One block of adjacent seats, or the best seats one by one.
        together: bool,
    },
}

impl SeatRequest {
    /// Seats asked for.
    pub fn quantity(&self) -> u32 {
        match self {
            Self::Exact(seats) => seats.len() as u32,
            Self::Best { quantity, .. } => *quantity,
        }
    }
}

/// How to take seat moves back exactly: the caller keeps one per change.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SeatUndo {
    /// Each seat's byte before, in the order they moved.
    states: Vec<(SeatIx, u8)>,
    /// The bookings' seat lists' steps, in order.
    lists: Vec<ListUndo>,
    /// Blocked seats before, if that moved.
    blocked: Option<u64>,
}

impl SeatUndo {
    /// Seats the change booked (confirmed): booked now, not before.
    pub fn booked(&self, seating: &Seating) -> usize {
        let mut seats: Vec<SeatIx> = self
            .states
            .iter()
            .filter(|&&(seat, before)| {
                SeatState::from_bits(before) != SeatState::Booked
                    && seating.state(seat) == SeatState::Booked
            })
            .map(|&(seat, _)| seat)
            .collect();
        seats.sort_unstable();
        seats.dedup();
        seats.len()
    }

    /// Whether the change moved no seat.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty() && self.lists.is_empty() && self.blocked.is_none()
    }
}

/// A seated event's seats.
#[derive(Debug, Clone)]
pub struct Seating {
    /// What never changes.
    layout: Arc<Layout>,
    /// One byte a seat: its [`SeatState`].
    states: Vec<u8>,
    /// Each row's longest run of free adjacent seats, over every row.
    runs: MaxTree,
    /// The same, one tree per category (other categories' rows are 0).
    runs_by_category: Vec<MaxTree>,
    /// Seats the organiser blocked.
    blocked: u64,
    /// Each booking record's seats (in map order, kept when it ends) and
    /// what it waits for, by its handle.
    lists: SeatLists,
}

impl PartialEq for Seating {
    fn eq(&self, other: &Self) -> bool {
        self.layout == other.layout
            && self.states == other.states
            && self.runs == other.runs
            && self.runs_by_category == other.runs_by_category
            && self.blocked == other.blocked
            && self.lists == other.lists
    }
}

impl Eq for Seating {}

/// A section of the map as readers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SectionView {
    /// Its name.
    pub name: String,
    /// Its category.
    pub category: String,
    /// Its rows, best first.
    pub rows: Vec<RowView>,
}

/// A row of the map as readers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowView {
    /// Its name.
    pub name: String,
    /// How many seats.
    pub seats: u32,
    /// Seat numbers a gap follows.
    pub gaps_after: Vec<u32>,
    /// One letter a seat: `f` free, `h` held, `b` booked, `x` blocked.
    pub states: String,
}

/// A seated event's seats as snapshots store them: the shape, what is
/// blocked and each booking's seats (states follow from the bookings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatingSnapshot {
    /// The map.
    pub shape: SeatShape,
    /// Blocked seats, ascending.
    pub blocked: Vec<SeatIx>,
    /// Per booking handle that has seats or waits for some: its seats and
    /// its want, ascending by handle.
    pub bookings: Vec<(u32, Vec<SeatIx>, Want)>,
}

impl Seating {
    /// Every seat free. The shape must have passed [`SeatShape::check`].
    pub fn new(shape: SeatShape) -> Self {
        let layout = Layout::new(shape);
        let rows = layout.rows.len();
        let categories = layout.categories.len();
        let mut seating = Self {
            states: vec![0; layout.seat_count as usize],
            runs: MaxTree::new(rows),
            runs_by_category: vec![MaxTree::new(rows); categories],
            blocked: 0,
            lists: SeatLists::default(),
            layout: Arc::new(layout),
        };
        for row in 0..rows {
            seating.index_row(row);
        }
        seating
    }

    /// What never changes: the shape and its lookups.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The layout, shared: for readers that outlive this state (live
    /// streams name seats with it).
    pub fn shared_layout(&self) -> Arc<Layout> {
        Arc::clone(&self.layout)
    }

    /// Every seat's letter (`f`, `h`, `b`, `x`), in map order.
    pub fn letters(&self) -> Vec<u8> {
        self.states
            .iter()
            .map(|&b| SeatState::from_bits(b).letter())
            .collect()
    }

    /// Seats the organiser blocked.
    pub fn blocked(&self) -> u64 {
        self.blocked
    }

    /// A seat's state.
    pub fn state(&self, seat: SeatIx) -> SeatState {
        SeatState::from_bits(self.states[seat as usize])
    }

    /// The seats of the booking `handle`, in map order.
    pub fn seats_of(&self, handle: u32) -> &[SeatIx] {
        self.lists.seats(handle)
    }

    /// What the booking `handle` waits for.
    pub fn want_of(&self, handle: u32) -> Want {
        self.lists.want(handle)
    }

    /// The map as readers see it: every row with one letter a seat.
    pub fn map_view(&self) -> Vec<SectionView> {
        self.layout.view(&self.letters())
    }

    /// Refuses seat numbers past the map's end (a change read from disk or
    /// a peer is checked before it indexes anything).
    pub fn check_range(&self, seats: &[SeatIx]) -> Result<(), DomainError> {
        match seats.iter().find(|&&s| s as usize >= self.states.len()) {
            Some(s) => Err(DomainError::Inconsistent(format!(
                "seat {s} is not on the map"
            ))),
            None => Ok(()),
        }
    }

    /// Which of `seats` are taken (held, booked or blocked).
    pub fn taken(&self, seats: &[SeatIx]) -> Vec<SeatIx> {
        seats
            .iter()
            .copied()
            .filter(|&s| self.state(s) != SeatState::Free)
            .collect()
    }

    /// Gives the booking `handle` its `seats` as `state` (held or booked)
    /// and notes what it waits for; every seat must be free.
    pub fn assign(
        &mut self,
        handle: u32,
        mut seats: Vec<SeatIx>,
        state: SeatState,
        want: Want,
        undo: &mut SeatUndo,
    ) -> Result<(), DomainError> {
        self.check_range(&seats)?;
        if let Some(&seat) = seats.iter().find(|&&s| self.state(s) != SeatState::Free) {
            return Err(DomainError::Inconsistent(format!(
                "seat {} is taken",
                self.layout.seat_id(seat)
            )));
        }
        seats.sort_unstable();
        self.lists.set(handle, &seats, want, &mut undo.lists)?;
        self.set_states(&seats, state, undo);
        Ok(())
    }

    /// Notes that the booking `handle` waits for seats (it has none).
    pub fn wait(&mut self, handle: u32, want: Want, undo: &mut SeatUndo) {
        // An empty list appends nothing, so it cannot be refused.
        let _ = self.lists.set(handle, &[], want, &mut undo.lists);
    }

    /// Moves every seat of the booking `handle` to `state`: booked when a
    /// hold is confirmed, free when it ends (its list is kept).
    pub fn mark_all(&mut self, handle: u32, state: SeatState, undo: &mut SeatUndo) {
        let seats = self.seats_of(handle).to_vec();
        self.set_states(&seats, state, undo);
    }

    /// Keeps the first `keep` seats of the booking `handle` and frees the rest.
    pub fn keep_first(&mut self, handle: u32, keep: usize, undo: &mut SeatUndo) {
        let freed = self.seats_of(handle).get(keep..).unwrap_or(&[]).to_vec();
        self.set_states(&freed, SeatState::Free, undo);
        self.lists.truncate(handle, keep, &mut undo.lists);
    }

    /// Blocks `block` (each free) and unblocks `unblock` (each blocked).
    pub fn block(
        &mut self,
        block: &[SeatIx],
        unblock: &[SeatIx],
        undo: &mut SeatUndo,
    ) -> Result<(), DomainError> {
        self.check_range(block)?;
        self.check_range(unblock)?;
        let wrong = block
            .iter()
            .find(|&&s| self.state(s) != SeatState::Free)
            .or_else(|| {
                unblock
                    .iter()
                    .find(|&&s| self.state(s) != SeatState::Blocked)
            });
        if let Some(&seat) = wrong {
            return Err(DomainError::Inconsistent(format!(
                "seat {} cannot move as the change says",
                self.layout.seat_id(seat)
            )));
        }
        undo.blocked.get_or_insert(self.blocked);
        self.set_states(block, SeatState::Blocked, undo);
        self.set_states(unblock, SeatState::Free, undo);
        self.blocked = self.blocked + block.len() as u64 - unblock.len() as u64;
        Ok(())
    }

    /// Takes back seat moves, newest change first.
    pub fn undo(&mut self, undo: SeatUndo) {
        let mut rows = Vec::new();
        for (seat, byte) in undo.states.into_iter().rev() {
            self.states[seat as usize] = byte;
            rows.push(self.layout.row_of(seat));
        }
        self.lists.undo(undo.lists);
        if let Some(blocked) = undo.blocked {
            self.blocked = blocked;
        }
        rows.sort_unstable();
        rows.dedup();
        for row in rows {
            self.index_row(row);
        }
    }

    /// The snapshot form.
    pub fn to_snapshot(&self) -> SeatingSnapshot {
        SeatingSnapshot {
            shape: self.layout.shape.clone(),
            blocked: (0..self.states.len() as SeatIx)
                .filter(|&s| self.state(s) == SeatState::Blocked)
                .collect(),
            bookings: self
                .lists
                .used()
                .map(|(handle, seats, want)| (handle, seats.to_vec(), want))
                .collect(),
        }
    }

    /// Seats as a snapshot stored them, before the bookings' states are
    /// marked (the event does that, knowing which bookings hold seats).
    pub fn from_snapshot(snapshot: SeatingSnapshot, max_seats: u64) -> Result<Self, String> {
        snapshot.shape.check(max_seats).map_err(|e| e.to_string())?;
        let mut seating = Self::new(snapshot.shape);
        let mut undo = SeatUndo::default();
        let seat_count = seating.states.len() as u64;
        let in_range = |s: &SeatIx| u64::from(*s) < seat_count;
        if !snapshot.blocked.iter().all(in_range) {
            return Err("a blocked seat is not on the map".into());
        }
        let mut blocked = snapshot.blocked;
        blocked.sort_unstable();
        blocked.dedup();
        seating
            .block(&blocked, &[], &mut undo)
            .map_err(|e| e.to_string())?;
        for (handle, seats, want) in snapshot.bookings {
            if !seats.iter().all(in_range) {
                return Err(format!(
                    "booking {handle} has a seat that is not on the map"
                ));
            }
            if want
                .category
                .is_some_and(|c| usize::from(c) >= seating.layout.categories.len())
            {
                return Err(format!("booking {handle} waits for an unknown category"));
            }
            let mut seats = seats;
            seats.sort_unstable();
            seats.dedup();
            seating
                .lists
                .set(handle, &seats, want, &mut undo.lists)
                .map_err(|e| e.to_string())?;
        }
        Ok(seating)
    }

    /// Marks the seats of a restored booking that holds its tickets.
    pub fn restore_taken(&mut self, handle: u32, state: SeatState) -> Result<(), String> {
        let seats = self.seats_of(handle).to_vec();
        if let Some(&seat) = seats.iter().find(|&&s| self.state(s) != SeatState::Free) {
            return Err(format!("seat {} is taken twice", self.layout.seat_id(seat)));
        }
        self.set_states(&seats, state, &mut SeatUndo::default());
        Ok(())
    }

    /// Heap bytes held for the seats (not the shared layout), for the
    /// memory benchmark: the seat bytes, the free-run trees, and the
    /// bookings' seat lists.
    pub fn heap_parts(&self) -> (usize, usize, usize) {
        let trees = std::iter::once(&self.runs)
            .chain(&self.runs_by_category)
            .map(MaxTree::heap_bytes)
            .sum();
        (self.states.capacity(), trees, self.lists.heap_bytes())
    }

    /// Moves `seats` to `state`, then recounts each row they are in once.
    fn set_states(&mut self, seats: &[SeatIx], state: SeatState, undo: &mut SeatUndo) {
        let mut last_row = None;
        for &seat in seats {
            let byte = &mut self.states[seat as usize];
            undo.states.push((seat, *byte));
            *byte = (*byte & !STATE_BITS) | state as u8;
        }
        for &seat in seats {
            let row = self.layout.row_of(seat);
            if last_row != Some(row) {
                self.index_row(row);
                last_row = Some(row);
            }
        }
    }

    /// Recounts row `row`'s longest free run into the trees.
    fn index_row(&mut self, row: usize) {
        let run = self.longest_run(row);
        self.runs.set(row, run);
        let category = usize::from(self.layout.rows[row].category);
        self.runs_by_category[category].set(row, run);
    }
}
