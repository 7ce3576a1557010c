//! A seated event's map as the organiser drew it: sections of rows, each row
//! a run of numbered seats with gaps (aisles) after some of them. The shape
//! never changes after creation, so it is journalled once, as it is: a
//! 100,000-seat hall is a few thousand rows, not 100,000 entries.

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// Longest section, row or category name, in characters.
pub const MAX_NAME_CHARS: usize = 32;

/// Most sections a map may have: sections and categories are numbered in
/// 16 bits, and one value is left over to mean "any category".
pub const MAX_SECTIONS: usize = u16::MAX as usize - 1;

/// The map: sections in quality order (first is best).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatShape {
    /// The sections, best first.
    pub sections: Vec<SectionShape>,
}

/// One section: its rows, best first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionShape {
    /// Unique in its event.
    pub name: String,
    /// What best available may be asked to keep to (`"standard"` unless
    /// the organiser said otherwise).
    pub category: String,
    /// Best first.
    pub rows: Vec<RowShape>,
}

/// One row: seats numbered from 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowShape {
    /// Unique in its section.
    pub name: String,
    /// How many seats.
    pub seats: u32,
    /// Seat numbers after which a gap follows, ascending.
    pub gaps_after: Vec<u32>,
}

/// The category of a section that names none.
pub const DEFAULT_CATEGORY: &str = "standard";

/// Whether `name` is a valid section, row or category name: 1 to 32
/// letters, digits, spaces, `.` and `_` (never `-`, which separates the
/// parts of a seat id).
pub fn valid_name(name: &str) -> bool {
    let chars = name.chars().count();
    (1..=MAX_NAME_CHARS).contains(&chars)
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == ' ' || c == '.' || c == '_')
}

impl SeatShape {
    /// Every seat of the map, or why the map is not one: names, sizes,
    /// gaps and the total (at most `max_seats`). `field` paths name the
    /// part of the create body at fault.
    pub fn check(&self, max_seats: u64) -> Result<u64, DomainError> {
        let bad = |field: String, message: &str| {
            Err(DomainError::InvalidSeats {
                field,
                message: message.to_string(),
            })
        };
        if self.sections.is_empty() {
            return bad("seating.sections".into(), "must list at least one section");
        }
        if self.sections.len() > MAX_SECTIONS {
            return bad(
                "seating.sections".into(),
                &format!("must list at most {MAX_SECTIONS} sections"),
            );
        }
        // Sets, not a look back over the names before: a 4 MiB body has
        // room for 100,000 one-seat sections or rows.
        let mut section_names = std::collections::HashSet::new();
        let mut total: u64 = 0;
        for (s, section) in self.sections.iter().enumerate() {
            let at = format!("seating.sections[{s}]");
            if !valid_name(&section.name) {
                return bad(format!("{at}.name"), NAME_RULE);
            }
            if !section_names.insert(section.name.as_str()) {
                return bad(format!("{at}.name"), "is used by another section");
            }
            if !valid_name(&section.category) {
                return bad(format!("{at}.category"), NAME_RULE);
            }
            if section.rows.is_empty() {
                return bad(format!("{at}.rows"), "must list at least one row");
            }
            let mut row_names = std::collections::HashSet::new();
            for (r, row) in section.rows.iter().enumerate() {
                let at = format!("{at}.rows[{r}]");
                if !valid_name(&row.name) {
                    return bad(format!("{at}.name"), NAME_RULE);
                }
                if !row_names.insert(row.name.as_str()) {
                    return bad(
                        format!("{at}.name"),
                        "is used by another row of the section",
                    );
                }
                if row.seats == 0 {
                    return bad(format!("{at}.seats"), "must be an integer of at least 1");
                }
                let mut last = 0;
                for &gap in &row.gaps_after {
                    if gap == 0 || gap >= row.seats || gap <= last {
                        return bad(
                            format!("{at}.gapsAfter"),
                            "must list ascending seat numbers from 1 to one below the row's seats",
                        );
                    }
                    last = gap;
                }
                total += u64::from(row.seats);
                if total > max_seats {
                    return bad(
                        "seating".into(),
                        &format!("has more than {max_seats} seats, the configured limit"),
                    );
                }
            }
        }
        Ok(total)
    }
}

const NAME_RULE: &str = "must be 1 to 32 letters, digits, spaces, '.' or '_'";

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, seats: u32, gaps: &[u32]) -> RowShape {
        RowShape {
            name: name.into(),
            seats,
            gaps_after: gaps.to_vec(),
        }
    }

    fn shape(rows: Vec<RowShape>) -> SeatShape {
        SeatShape {
            sections: vec![SectionShape {
                name: "Stalls".into(),
                category: DEFAULT_CATEGORY.into(),
                rows,
            }],
        }
    }

    fn field_of(e: DomainError) -> String {
        match e {
            DomainError::InvalidSeats { field, .. } => field,
            other => panic!("not a seating error: {other:?}"),
        }
    }

    #[test]
    fn a_map_counts_its_seats() {
        assert_eq!(
            shape(vec![row("A", 20, &[10]), row("B", 22, &[])]).check(100),
            Ok(42)
        );
    }

    #[test]
    fn names_gaps_sizes_and_the_total_are_checked() {
        let cases = [
            (
                shape(vec![row("A-1", 2, &[])]),
                "seating.sections[0].rows[0].name",
            ),
            (
                shape(vec![row("A", 2, &[]), row("A", 2, &[])]),
                "seating.sections[0].rows[1].name",
            ),
            (
                shape(vec![row("A", 0, &[])]),
                "seating.sections[0].rows[0].seats",
            ),
            (
                shape(vec![row("A", 5, &[5])]),
                "seating.sections[0].rows[0].gapsAfter",
            ),
            (
                shape(vec![row("A", 5, &[3, 2])]),
                "seating.sections[0].rows[0].gapsAfter",
            ),
            (
                shape(vec![row("A", 5, &[0])]),
                "seating.sections[0].rows[0].gapsAfter",
            ),
            (shape(vec![]), "seating.sections[0].rows"),
            (SeatShape { sections: vec![] }, "seating.sections"),
            (shape(vec![row("A", 101, &[])]), "seating"),
            (
                shape(vec![row(&"x".repeat(33), 1, &[])]),
                "seating.sections[0].rows[0].name",
            ),
        ];
        for (map, field) in cases {
            assert_eq!(field_of(map.check(100).expect_err("refused")), field);
        }
        let many = SeatShape {
            sections: (0..=MAX_SECTIONS)
                .map(|s| SectionShape {
                    name: format!("S{s}"),
                    category: format!("c{s}"),
                    rows: vec![row("A", 1, &[])],
                })
                .collect(),
        };
        assert_eq!(
            field_of(many.check(1 << 20).expect_err("too many")),
            "seating.sections"
        );
        let mut twice = many.clone();
        twice.sections.truncate(3);
        twice.sections[2].name = "S0".into();
        assert_eq!(
            field_of(twice.check(100).expect_err("a name twice")),
            "seating.sections[2].name"
        );
        assert!(valid_name("Balcony left 2.b_"));
        assert!(!valid_name(""));
    }
}
