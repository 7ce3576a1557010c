//! What never changes about a seated event's map, with the lookups made
//! from it once: each row's first seat, the gaps as one bit a seat, the
//! categories, and names to rows for reading seat ids.

use std::collections::HashMap;

use super::shape::SeatShape;
use super::{RowView, SeatIx, SectionView};

/// One row's place in the map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowInfo {
    /// Index of its seat 1.
    pub first: SeatIx,
    /// How many seats.
    pub seats: u32,
    /// Its section's index.
    pub section: u16,
    /// Its section's category's index.
    pub category: u16,
}

/// The map's shape and lookups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The shape as the organiser gave it.
    pub shape: SeatShape,
    /// Every row, sections then rows, in quality order.
    pub rows: Vec<RowInfo>,
    /// Distinct categories, in the order sections first name them.
    pub categories: Vec<String>,
    /// Seats in the map.
    pub seat_count: u64,
    /// Per section: its first row's index.
    section_rows: Vec<u32>,
    /// One bit a seat: a gap follows it in its row.
    gap_after: Vec<u64>,
    /// Section names to indexes.
    sections: HashMap<String, u16>,
    /// Per section, row names to row indexes.
    row_names: Vec<HashMap<String, u32>>,
}

impl Layout {
    /// The lookups of a checked shape.
    pub fn new(shape: SeatShape) -> Self {
        let mut rows = Vec::new();
        let mut categories: Vec<String> = Vec::new();
        let mut sections = HashMap::new();
        let mut row_names = Vec::new();
        let mut section_rows = Vec::new();
        let mut first: SeatIx = 0;
        let mut gaps = Vec::new();
        for (s, section) in shape.sections.iter().enumerate() {
            let category = match categories.iter().position(|c| *c == section.category) {
                Some(c) => c,
                None => {
                    categories.push(section.category.clone());
                    categories.len() - 1
                }
            } as u16;
            sections.insert(section.name.clone(), s as u16);
            section_rows.push(rows.len() as u32);
            let mut names = HashMap::new();
            for row in &section.rows {
                names.insert(row.name.clone(), rows.len() as u32);
                rows.push(RowInfo {
                    first,
                    seats: row.seats,
                    section: s as u16,
                    category,
                });
                gaps.extend(row.gaps_after.iter().map(|&g| first + g - 1));
                first += row.seats;
            }
            row_names.push(names);
        }
        let mut gap_after = vec![0u64; (first as usize).div_ceil(64)];
        for seat in gaps {
            gap_after[seat as usize / 64] |= 1 << (seat % 64);
        }
        Self {
            shape,
            rows,
            categories,
            seat_count: u64::from(first),
            section_rows,
            gap_after,
            sections,
            row_names,
        }
    }

    /// Whether a gap follows `seat` in its row.
    pub fn gap_after(&self, seat: SeatIx) -> bool {
        self.gap_after[seat as usize / 64] & (1 << (seat % 64)) != 0
    }

    /// The row `seat` is in.
    pub fn row_of(&self, seat: SeatIx) -> usize {
        self.rows.partition_point(|r| r.first <= seat) - 1
    }

    /// A seat's id: `"{section}-{row}-{number}"`.
    pub fn seat_id(&self, seat: SeatIx) -> String {
        let row = self.row_of(seat);
        let info = &self.rows[row];
        let section = &self.shape.sections[usize::from(info.section)].name;
        format!("{section}-{}-{}", self.row_name(row), seat - info.first + 1)
    }

    /// The seat an id names, if it names one of this map's.
    pub fn parse_seat(&self, id: &str) -> Option<SeatIx> {
        let mut parts = id.split('-');
        let (section, row, number) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let section = *self.sections.get(section)?;
        let row = *self.row_names[usize::from(section)].get(row)?;
        let info = &self.rows[row as usize];
        // Digits only: `+5`, ` 5` and `05` are not seat numbers.
        if number.starts_with('0') || !number.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let number: u32 = number.parse().ok()?;
        (1..=info.seats)
            .contains(&number)
            .then(|| info.first + number - 1)
    }

    /// The map as readers see it, given every seat's letter in map order.
    pub fn view(&self, letters: &[u8]) -> Vec<SectionView> {
        let mut rows = self.rows.iter();
        self.shape
            .sections
            .iter()
            .map(|section| SectionView {
                name: section.name.clone(),
                category: section.category.clone(),
                rows: section
                    .rows
                    .iter()
                    .zip(rows.by_ref())
                    .map(|(shape, info)| {
                        let first = info.first as usize;
                        let row = letters
                            .get(first..first + info.seats as usize)
                            .unwrap_or(&[]);
                        RowView {
                            name: shape.name.clone(),
                            seats: shape.seats,
                            gaps_after: shape.gaps_after.clone(),
                            states: row.iter().map(|&b| b as char).collect(),
                        }
                    })
                    .collect(),
            })
            .collect()
    }

    /// The index of a category by name.
    pub fn category(&self, name: &str) -> Option<u16> {
        self.categories
            .iter()
            .position(|c| c == name)
            .map(|c| c as u16)
    }

    /// Row `row`'s name.
    pub fn row_name(&self, row: usize) -> &str {
        let info = &self.rows[row];
        let first_of_section = self.section_rows[usize::from(info.section)] as usize;
        &self.shape.sections[usize::from(info.section)].rows[row - first_of_section].name
    }
}
