//! The request and reply bodies of reserved seating (contract v4): the
//! `seating` key of a create, turned into a seat map's shape; the map
//! reply; the blocking request.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use crate::domain::seating::{RowShape, SeatShape, SectionShape, SectionView, DEFAULT_CATEGORY};
use crate::http::api::error::ApiError;

/// The `seating` key of a create body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(example = json!({"sections": [
    {"name": "Stalls", "category": "standard", "rows": [{"name": "A", "seats": 20, "gapsAfter": [10]}]},
    {"name": "Balcony", "category": "premium", "rowCount": 8, "seatsPerRow": 30}]}))]
pub struct SeatingRequest {
    /// Best first.
    pub sections: Vec<SectionRequest>,
}

/// One section: `rows`, or `rowCount` and `seatsPerRow` (rows `"1"`,
/// `"2"`, ...).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SectionRequest {
    /// 1 to 32 letters, digits, spaces, `.` or `_`; unique in the event.
    pub name: String,
    /// Default `"standard"`.
    pub category: Option<String>,
    /// Best first.
    pub rows: Option<Vec<RowRequest>>,
    /// Rows, when they are all alike.
    #[schema(minimum = 1)]
    pub row_count: Option<u32>,
    /// Seats in each of those rows.
    #[schema(minimum = 1)]
    pub seats_per_row: Option<u32>,
}

/// One row.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RowRequest {
    /// 1 to 32 letters, digits, spaces, `.` or `_`; unique in its section.
    pub name: String,
    /// Seats, numbered from 1.
    #[schema(minimum = 1)]
    pub seats: u32,
    /// Seat numbers after which a gap (an aisle) follows.
    pub gaps_after: Option<Vec<u32>>,
}

impl SeatingRequest {
    /// The shape this asks for, every part checked (names, sizes, gaps and
    /// at most `max_seats` seats), or a field error naming the part.
    pub fn shape(self, max_seats: u64) -> Result<SeatShape, ApiError> {
        let mut sections = Vec::with_capacity(self.sections.len());
        for (s, section) in self.sections.into_iter().enumerate() {
            let at = format!("seating.sections[{s}]");
            let rows = match (section.rows, section.row_count, section.seats_per_row) {
                (Some(rows), None, None) => rows
                    .into_iter()
                    .map(|r| RowShape {
                        name: r.name,
                        seats: r.seats,
                        gaps_after: r.gaps_after.unwrap_or_default(),
                    })
                    .collect(),
                (None, Some(count), Some(seats)) => {
                    // Each row has a seat at least: a count past the limit
                    // is refused before any row is made.
                    if u64::from(count) > max_seats {
                        return Err(ApiError::field(
                            "seating",
                            &format!("has more than {max_seats} seats, the configured limit"),
                        ));
                    }
                    (1..=count)
                        .map(|n| RowShape {
                            name: n.to_string(),
                            seats,
                            gaps_after: Vec::new(),
                        })
                        .collect()
                }
                _ => {
                    return Err(ApiError::field(
                        &at,
                        "must have either rows, or rowCount and seatsPerRow",
                    ))
                }
            };
            sections.push(SectionShape {
                name: section.name,
                category: section
                    .category
                    .unwrap_or_else(|| DEFAULT_CATEGORY.to_string()),
                rows,
            });
        }
        let shape = SeatShape { sections };
        shape.check(max_seats)?;
        Ok(shape)
    }
}

/// `PATCH /api/events/{eventId}/seats`.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[schema(example = json!({"block": ["Stalls-A-1"], "unblock": []}))]
pub struct SeatsPatchRequest {
    /// Seats to take off sale (each free or blocked already).
    #[serde(default)]
    pub block: Vec<String>,
    /// Blocked seats to put on sale again.
    #[serde(default)]
    pub unblock: Vec<String>,
}

/// `GET /api/events/{eventId}/seats`: the map and each seat's state.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"event_id": 7, "index": 1234, "sections": [{"name": "Stalls",
    "category": "standard", "rows": [{"name": "A", "seats": 20, "gaps_after": [10],
    "states": "ffffhhbbxxffffffffff"}]}]}))]
pub struct SeatMapJson {
    /// The event.
    pub event_id: u64,
    /// The change index the map reflects.
    pub index: u64,
    /// Best first.
    #[schema(value_type = Vec<SectionJson>)]
    pub sections: Vec<SectionView>,
}

/// A section of the map (the schema of what `SectionView` writes).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SectionJson {
    name: String,
    category: String,
    rows: Vec<RowJson>,
}

/// A row of the map: `states` has one letter a seat: `f` free, `h` held,
/// `b` booked, `x` blocked.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RowJson {
    name: String,
    seats: u32,
    gaps_after: Vec<u32>,
    #[schema(pattern = "^[fhbx]*$")]
    states: String,
}
