//! What the other seating modules name: a seat's index and what a
//! booking waits for (here, below the modules that use them, so that no
//! two of them depend on each other).

use serde::{Deserialize, Serialize};

/// A seat's index in its map: sections, then rows, then seats, in order.
pub type SeatIx = u32;

/// What a waiting booking will take once its turn comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Want {
    /// Only this category's sections.
    pub category: Option<u16>,
    /// Adjacent seats only (the default); `false`: the best one by one.
    pub apart: bool,
}
