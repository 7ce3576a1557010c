//! Seat choice against a brute-force reading of the contract's rules, on
//! small random maps with gaps and random taken seats; undo exactness.

use proptest::prelude::*;

use super::*;

/// A small random map: 1-3 sections of 1-3 rows of 1-9 seats, gaps
/// anywhere, two categories.
fn shape() -> impl Strategy<Value = SeatShape> {
    let row = (1u32..10, proptest::collection::vec(any::<bool>(), 9));
    let section = (proptest::collection::vec(row, 1..4), any::<bool>());
    proptest::collection::vec(section, 1..4).prop_map(|sections| SeatShape {
        sections: sections
            .into_iter()
            .enumerate()
            .map(|(s, (rows, premium))| SectionShape {
                name: format!("S{s}"),
                category: if premium { "premium" } else { "standard" }.into(),
                rows: rows
                    .into_iter()
                    .enumerate()
                    .map(|(r, (seats, gaps))| RowShape {
                        name: format!("R{r}"),
                        seats,
                        gaps_after: (1..seats).filter(|&g| gaps[g as usize - 1]).collect(),
                    })
                    .collect(),
            })
            .collect(),
    })
}

/// A map with about `taken_percent` of its seats booked.
fn filled(shape: SeatShape, taken: &[bool]) -> Seating {
    let mut seating = Seating::new(shape);
    let seats: Vec<SeatIx> = (0..seating.layout.seat_count as SeatIx)
        .filter(|&s| taken.get(s as usize).copied().unwrap_or(false))
        .collect();
    let mut undo = SeatUndo::default();
    seating
        .assign(0, seats, SeatState::Booked, Want::default(), &mut undo)
        .expect("free seats");
    seating
}

/// The contract's rules, read literally: every seat's neighbours looked
/// at directly, every block of every row listed.
fn brute_force(seating: &Seating, quantity: u32, want: Want) -> Option<Vec<SeatIx>> {
    let layout = seating.layout();
    let free = |s: SeatIx| seating.state(s) == SeatState::Free;
    // Whether seat `s` (a row's seat `n`) and the next one are adjacent.
    let joined = |s: SeatIx| !layout.gap_after(s);
    let rows: Vec<usize> = (0..layout.rows.len())
        .filter(|&r| want.category.is_none_or(|c| layout.rows[r].category == c))
        .collect();
    if want.apart {
        let mut seats: Vec<(usize, u64, u32, SeatIx)> = Vec::new();
        for &r in &rows {
            let info = &layout.rows[r];
            for n in 1..=info.seats {
                let s = info.first + n - 1;
                if free(s) {
                    seats.push((
                        r,
                        u64::from(2 * n).abs_diff(u64::from(1 + info.seats)),
                        n,
                        s,
                    ));
                }
            }
        }
        seats.sort_unstable();
        if seats.len() < quantity as usize {
            return None;
        }
        let mut chosen: Vec<SeatIx> = seats[..quantity as usize].iter().map(|t| t.3).collect();
        chosen.sort_unstable();
        return Some(chosen);
    }
    for &r in &rows {
        let info = &layout.rows[r];
        let seat = |n: u32| info.first + n - 1;
        // (strands, distance, start)
        let mut blocks = Vec::new();
        for s in 1..=info.seats {
            let e = s + quantity - 1;
            if e > info.seats || !(s..=e).all(|n| free(seat(n))) || !(s..e).all(|n| joined(seat(n)))
            {
                continue;
            }
            let alone_left = s > 1
                && joined(seat(s - 1))
                && free(seat(s - 1))
                && (s - 1 == 1 || !joined(seat(s - 2)) || !free(seat(s - 2)));
            let alone_right = e < info.seats
                && joined(seat(e))
                && free(seat(e + 1))
                && (e + 1 == info.seats || !joined(seat(e + 1)) || !free(seat(e + 2)));
            let distance = u64::from(2 * s + quantity - 1).abs_diff(u64::from(1 + info.seats));
            blocks.push((alone_left || alone_right, distance, s));
        }
        if let Some(&(_, _, s)) = blocks.iter().min() {
            return Some((seat(s)..seat(s) + quantity).collect());
        }
    }
    None
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn best_available_is_the_contract_read_literally(
        shape in shape(),
        taken in proptest::collection::vec(any::<bool>(), 81),
        quantity in 1u32..6,
        category in proptest::option::of(0u16..2),
        apart in any::<bool>(),
    ) {
        let seating = filled(shape, &taken);
        let category = category.filter(|&c| usize::from(c) < seating.layout().categories.len());
        let want = Want { category, apart };
        prop_assert_eq!(seating.choose(quantity, want), brute_force(&seating, quantity, want));
    }

    #[test]
    fn undo_restores_the_seats_exactly(
        shape in shape(),
        taken in proptest::collection::vec(any::<bool>(), 81),
        quantity in 1u32..4,
        block in proptest::collection::vec(0u32..81, 0..5),
    ) {
        let mut seating = filled(shape, &taken);
        let before = seating.clone();
        let mut undo = SeatUndo::default();
        if let Some(seats) = seating.choose(quantity, Want::default()) {
            seating.assign(1, seats, SeatState::Held, Want::default(), &mut undo).expect("free");
        }
        let mut block: Vec<SeatIx> = block
            .into_iter()
            .filter(|&s| u64::from(s) < seating.layout().seat_count && seating.state(s) == SeatState::Free)
            .collect();
        block.sort_unstable();
        block.dedup();
        seating.block(&block, &[], &mut undo).expect("free seats block");
        seating.keep_first(1, 1, &mut undo);
        seating.mark_all(0, SeatState::Free, &mut undo);
        seating.undo(undo);
        prop_assert_eq!(seating, before);
    }

    #[test]
    fn a_snapshot_gives_back_the_same_seats(
        shape in shape(),
        taken in proptest::collection::vec(any::<bool>(), 81),
    ) {
        let seating = filled(shape, &taken);
        let mut back = Seating::from_snapshot(seating.to_snapshot(), 1_000).expect("restores");
        back.restore_taken(0, SeatState::Booked).expect("no seat twice");
        prop_assert_eq!(back, seating);
    }
}

fn hall() -> Seating {
    Seating::new(SeatShape {
        sections: vec![SectionShape {
            name: "Stalls".into(),
            category: DEFAULT_CATEGORY.into(),
            rows: vec![RowShape {
                name: "A".into(),
                seats: 20,
                gaps_after: vec![10],
            }],
        }],
    })
}

#[test]
fn seat_ids_name_section_row_and_number() {
    let hall = hall();
    let layout = hall.layout();
    assert_eq!(layout.seat_id(11), "Stalls-A-12");
    assert_eq!(layout.parse_seat("Stalls-A-12"), Some(11));
    for bad in [
        "Stalls-A-0",
        "Stalls-A-21",
        "Stalls-A-012",
        "Stalls-B-1",
        "Pit-A-1",
        "Stalls-A",
        "Stalls-A-1-2",
        "Stalls-A-+1",
    ] {
        assert_eq!(layout.parse_seat(bad), None, "{bad}");
    }
}

#[test]
fn best_available_takes_the_middle_and_avoids_leaving_one_seat_alone() {
    let mut hall = hall();
    // Seats 10 and 11 are the middle of 20, either side of the gap.
    assert_eq!(hall.choose(2, Want::default()), Some(vec![8, 9]));
    let mut undo = SeatUndo::default();
    // Take 1-8 so 9-10 is a run of two before the gap: a pair there
    // strands nothing, a single seat there would strand one.
    hall.assign(
        0,
        (0..8).collect(),
        SeatState::Booked,
        Want::default(),
        &mut undo,
    )
    .expect("free");
    assert_eq!(hall.choose(2, Want::default()), Some(vec![8, 9]));
    // One seat: 10 is nearest the middle but leaves 9 alone; 11 is next.
    assert_eq!(hall.choose(1, Want::default()), Some(vec![10]));
    assert_eq!(
        hall.choose(
            3,
            Want {
                category: None,
                apart: true
            }
        ),
        Some(vec![8, 9, 10])
    );
    assert_eq!(hall.choose(11, Want::default()), None);
}
