//! Is a history of concurrent calls linearizable? The Wing-Gong search
//! with Lowe's memo (as Porcupine, github.com/anishathalye/porcupine, runs
//! it): the calls and returns in time order on a linked list; at each step
//! the candidates are the calls sent before the first return still on the
//! list; the search places one the model accepts (unlinking it), goes on,
//! and comes back to try the next when a branch ends. A configuration
//! already seen (the same set of placed calls and the same model state) is
//! not searched twice.
//!
//! A call whose answer never came (a timeout, a 503 that may still be
//! committed) returns at "never": it may take effect at any point after it
//! was sent, or not at all. Such calls are tried after the answered
//! candidates, so that the search does not place at once what most often
//! never happened; the search ends when every answered call is placed.
//!
//! The model is changed in place and undone on the way back (a state of a
//! few thousand bookings is not copied each step), and the memo keeps
//! 128-bit fingerprints (a Zobrist hash of the placed set and the model's
//! own fingerprint), not configurations: a collision could prune a branch,
//! with a chance far below any test's other sources of doubt.

use std::collections::HashSet;

use crate::XorShift;

/// The sequential specification, changed in place.
pub trait Model {
    /// A call with its recorded answer (or the fact that none came).
    type Op;
    /// What [`Model::undo`] needs to take an applied call back.
    type Undo;
    /// Applies `op` if its recorded answer can be given in this state;
    /// `None` (and the state unchanged) when it cannot. A call without an
    /// answer must be possible in every state.
    fn apply(&mut self, op: &Self::Op) -> Option<Self::Undo>;
    /// Takes back the last applied call.
    fn undo(&mut self, undo: Self::Undo);
    /// A hash of the whole state: equal states give equal fingerprints.
    fn fingerprint(&self) -> u64;
    /// Where `op` goes among the calls that may go next: the lower first,
    /// those alike in the order they were sent. Only a hint for the search
    /// (a model whose answers show their own order, such as ids handed out
    /// in sequence, saves it from trying orders that fail later).
    fn rank(_op: &Self::Op) -> u64 {
        0
    }
}

/// One call of the history, with its times in any unit that orders them
/// (for example nanoseconds since the test began).
#[derive(Debug, Clone)]
pub struct Call<O> {
    pub invoked: u64,
    /// `None`: no answer came; it may have taken effect or not.
    pub returned: Option<u64>,
    pub op: O,
}

/// What the search found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    /// No order fits. `placed` calls is the most any order managed before
    /// `stuck` (an index into the history) returned without being placed.
    NotLinearizable {
        placed: usize,
        stuck: usize,
    },
    /// The search tried `budget` steps without an answer; `placed` and
    /// `stuck` as above, for where it got to.
    OutOfBudget {
        placed: usize,
        stuck: usize,
    },
}

const NIL: usize = usize::MAX;
const HEAD: usize = 0;

/// The calls and returns in time order, as a doubly linked list that the
/// search unlinks a placed call's pair from and links it back on a
/// backtrack (in the reverse order, so each node's own links still point
/// at where it was).
struct Entries {
    next: Vec<usize>,
    prev: Vec<usize>,
    /// For each node: the call it belongs to, and whether it is its return.
    owner: Vec<(usize, bool)>,
    call_node: Vec<usize>,
    return_node: Vec<usize>,
}

impl Entries {
    fn new<O>(calls: &[Call<O>]) -> Self {
        let mut times: Vec<(u64, bool, usize)> = Vec::with_capacity(calls.len() * 2);
        for (i, call) in calls.iter().enumerate() {
            times.push((call.invoked, false, i));
            times.push((call.returned.unwrap_or(u64::MAX), true, i));
        }
        // At the same instant a call comes before a return: the two are
        // then taken as concurrent, the permissive reading.
        times.sort_unstable();
        let nodes = times.len() + 1;
        let mut entries = Entries {
            next: (1..=nodes)
                .map(|n| if n == nodes { NIL } else { n })
                .collect(),
            prev: (0..nodes).map(|n| n.wrapping_sub(1)).collect(),
            owner: vec![(NIL, false); nodes],
            call_node: vec![NIL; calls.len()],
            return_node: vec![NIL; calls.len()],
        };
        entries.prev[HEAD] = NIL;
        for (k, &(_, is_return, i)) in times.iter().enumerate() {
            let node = k + 1;
            entries.owner[node] = (i, is_return);
            if is_return {
                entries.return_node[i] = node;
            } else {
                entries.call_node[i] = node;
            }
        }
        entries
    }

    fn unlink(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = next;
        if next != NIL {
            self.prev[next] = prev;
        }
    }

    fn relink(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = node;
        if next != NIL {
            self.prev[next] = node;
        }
    }

    fn lift(&mut self, call: usize) {
        self.unlink(self.call_node[call]);
        self.unlink(self.return_node[call]);
    }

    fn unlift(&mut self, call: usize) {
        self.relink(self.return_node[call]);
        self.relink(self.call_node[call]);
    }

    /// The calls that may go next, answered ones first (each group in the
    /// model's [`Model::rank`], then in the order sent), and the call of
    /// the first return on the list (which must be placed before anything
    /// sent after it).
    fn candidates<M: Model>(&self, calls: &[Call<M::Op>]) -> (Vec<usize>, usize) {
        let mut answered = Vec::new();
        let mut unanswered = Vec::new();
        let mut node = self.next[HEAD];
        while node != NIL {
            let (call, is_return) = self.owner[node];
            if is_return {
                answered.sort_by_key(|&c: &usize| M::rank(&calls[c].op));
                answered.extend(unanswered);
                return (answered, call);
            }
            if calls[call].returned.is_some() {
                answered.push(call);
            } else {
                unanswered.push(call);
            }
            node = self.next[node];
        }
        answered.sort_by_key(|&c: &usize| M::rank(&calls[c].op));
        answered.extend(unanswered);
        (answered, NIL)
    }
}

/// One level of the search: the configuration's candidates and the next
/// one to try.
struct Level {
    candidates: Vec<usize>,
    next: usize,
    first_return: usize,
}

/// Whether `calls`, starting from `model`'s state, can be ordered so that
/// each call takes effect at one instant between its invocation and its
/// return and the model accepts every answer; at most `budget` model
/// steps. `model` is back in its first state afterwards only when the
/// verdict is not [`Verdict::Linearizable`].
pub fn check<M: Model>(model: &mut M, calls: &[Call<M::Op>], budget: u64) -> Verdict {
    let mut entries = Entries::new(calls);
    let mut keys = XorShift::new(0x5eed_1ea5_ab1e);
    let keys: Vec<u64> = calls.iter().map(|_| keys.next_u64()).collect();
    let mut answered_left = calls.iter().filter(|c| c.returned.is_some()).count();
    let mut placed_key = 0u64;
    // The placed calls, in order, with what takes each back.
    let mut placed: Vec<(usize, M::Undo)> = Vec::new();
    let mut seen: HashSet<(u64, u64)> = HashSet::new();
    let mut steps = 0u64;
    let mut deepest = (0, NIL);
    let (candidates, first_return) = entries.candidates::<M>(calls);
    let mut levels = vec![Level {
        candidates,
        next: 0,
        first_return,
    }];
    while answered_left > 0 {
        let Some(level) = levels.last_mut() else {
            return Verdict::NotLinearizable {
                placed: deepest.0,
                stuck: deepest.1,
            };
        };
        if let Some(&call) = level.candidates.get(level.next) {
            level.next += 1;
            steps += 1;
            if steps > budget {
                return Verdict::OutOfBudget {
                    placed: deepest.0,
                    stuck: deepest.1,
                };
            }
            let Some(undo) = model.apply(&calls[call].op) else {
                continue;
            };
            let key = placed_key ^ keys[call];
            if !seen.insert((key, model.fingerprint())) {
                model.undo(undo);
                continue;
            }
            placed_key = key;
            placed.push((call, undo));
            entries.lift(call);
            answered_left -= usize::from(calls[call].returned.is_some());
            let (candidates, first_return) = entries.candidates::<M>(calls);
            levels.push(Level {
                candidates,
                next: 0,
                first_return,
            });
        } else {
            if placed.len() >= deepest.0 {
                deepest = (placed.len(), level.first_return);
            }
            levels.pop();
            if let Some((call, undo)) = placed.pop() {
                model.undo(undo);
                placed_key ^= keys[call];
                entries.unlift(call);
                answered_left += usize::from(calls[call].returned.is_some());
            }
        }
    }
    Verdict::Linearizable
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A register: writes answer nothing, reads answer the value.
    #[derive(Debug, Clone)]
    struct Register(u8);

    #[derive(Debug, Clone)]
    enum RegisterOp {
        Write(u8),
        Read(Option<u8>),
    }

    impl Register {
        fn step(&self, op: &RegisterOp) -> Option<Self> {
            match *op {
                RegisterOp::Write(v) => Some(Register(v)),
                RegisterOp::Read(Some(v)) => (v == self.0).then_some(self.clone()),
                RegisterOp::Read(None) => Some(self.clone()),
            }
        }
    }

    impl Model for Register {
        type Op = RegisterOp;
        /// The value before.
        type Undo = u8;
        fn apply(&mut self, op: &RegisterOp) -> Option<u8> {
            let after = self.step(op)?;
            Some(std::mem::replace(&mut self.0, after.0))
        }
        fn undo(&mut self, before: u8) {
            self.0 = before;
        }
        fn fingerprint(&self) -> u64 {
            u64::from(self.0)
        }
    }

    fn call(invoked: u64, returned: Option<u64>, op: RegisterOp) -> Call<RegisterOp> {
        Call {
            invoked,
            returned,
            op,
        }
    }

    #[test]
    fn sequential_reads_of_the_last_write_are_linearizable() {
        let history = [
            call(0, Some(1), RegisterOp::Write(1)),
            call(2, Some(3), RegisterOp::Read(Some(1))),
            call(4, Some(5), RegisterOp::Write(2)),
            call(6, Some(7), RegisterOp::Read(Some(2))),
        ];
        assert_eq!(
            check(&mut Register(0), &history, 1_000),
            Verdict::Linearizable
        );
    }

    #[test]
    fn a_stale_read_after_a_finished_write_is_not() {
        let history = [
            call(0, Some(1), RegisterOp::Write(1)),
            call(2, Some(3), RegisterOp::Write(2)),
            call(4, Some(5), RegisterOp::Read(Some(1))),
        ];
        assert_eq!(
            check(&mut Register(0), &history, 1_000),
            Verdict::NotLinearizable {
                placed: 2,
                stuck: 2
            }
        );
    }

    #[test]
    fn overlapping_calls_may_take_effect_in_either_order() {
        // The read overlaps both writes: it may see either; the second read
        // comes after both and sees 1, so write 2 took effect first.
        let history = [
            call(0, Some(10), RegisterOp::Write(1)),
            call(1, Some(9), RegisterOp::Write(2)),
            call(2, Some(8), RegisterOp::Read(Some(2))),
            call(11, Some(12), RegisterOp::Read(Some(1))),
        ];
        assert_eq!(
            check(&mut Register(0), &history, 1_000),
            Verdict::Linearizable
        );
    }

    #[test]
    fn an_unanswered_write_may_take_effect_late_or_never() {
        let late = [
            call(0, None, RegisterOp::Write(3)),
            call(5, Some(6), RegisterOp::Read(Some(0))),
            call(7, Some(8), RegisterOp::Read(Some(3))),
        ];
        assert_eq!(check(&mut Register(0), &late, 1_000), Verdict::Linearizable);
        let never = [
            call(0, None, RegisterOp::Write(3)),
            call(5, Some(6), RegisterOp::Read(Some(0))),
        ];
        assert_eq!(
            check(&mut Register(0), &never, 1_000),
            Verdict::Linearizable
        );
        // Not before it was sent.
        let early = [
            call(0, Some(1), RegisterOp::Read(Some(3))),
            call(2, None, RegisterOp::Write(3)),
        ];
        assert!(matches!(
            check(&mut Register(0), &early, 1_000),
            Verdict::NotLinearizable { .. }
        ));
    }

    #[test]
    fn a_search_past_its_budget_says_so() {
        let history: Vec<_> = (0..20)
            .map(|i| call(0, Some(100), RegisterOp::Write(i)))
            .chain([call(101, Some(102), RegisterOp::Read(Some(99)))])
            .collect();
        assert!(matches!(
            check(&mut Register(0), &history, 50),
            Verdict::OutOfBudget { .. }
        ));
    }

    /// The definition, by brute force: some subset holding every answered
    /// call, in some order that keeps real-time order, that the model takes.
    fn brute_force(init: &Register, calls: &[Call<RegisterOp>]) -> bool {
        fn extend(state: &Register, calls: &[Call<RegisterOp>], used: &mut Vec<bool>) -> bool {
            let answered_left = (0..calls.len()).any(|i| !used[i] && calls[i].returned.is_some());
            if !answered_left {
                return true;
            }
            for i in 0..calls.len() {
                // i may go next if no other unused call returned before i began.
                let free = !used[i]
                    && (0..calls.len()).all(|j| {
                        used[j] || j == i || calls[j].returned.is_none_or(|r| r >= calls[i].invoked)
                    });
                if !free {
                    continue;
                }
                if let Some(next) = state.step(&calls[i].op) {
                    used[i] = true;
                    let found = extend(&next, calls, used);
                    used[i] = false;
                    if found {
                        return true;
                    }
                }
            }
            false
        }
        extend(init, calls, &mut vec![false; calls.len()])
    }

    #[test]
    fn the_search_agrees_with_brute_force_on_random_small_histories() {
        let mut rng = XorShift::new(35);
        let mut linearizable = 0;
        for _ in 0..3_000 {
            let n = 1 + rng.below(6) as usize;
            let history: Vec<_> = (0..n)
                .map(|_| {
                    let invoked = rng.below(10);
                    let returned = (rng.below(5) > 0).then(|| invoked + rng.below(6));
                    let op = if rng.below(2) == 0 {
                        RegisterOp::Write(rng.below(3) as u8)
                    } else if returned.is_some() {
                        RegisterOp::Read(Some(rng.below(3) as u8))
                    } else {
                        RegisterOp::Read(None)
                    };
                    call(invoked, returned, op)
                })
                .collect();
            let expected = brute_force(&Register(0), &history);
            let verdict = check(&mut Register(0), &history, 1_000_000);
            assert_eq!(
                verdict == Verdict::Linearizable,
                expected,
                "{history:?}: {verdict:?}"
            );
            linearizable += usize::from(expected);
        }
        // Both answers were exercised.
        assert!((500..2_500).contains(&linearizable), "{linearizable}");
    }

    #[test]
    fn many_concurrent_writers_are_searched_within_the_memo() {
        // 12 writes of one value at once, then a read of it: the memo keeps
        // the search from trying every order.
        let history: Vec<_> = (0..12)
            .map(|_| call(0, Some(100), RegisterOp::Write(7)))
            .chain([call(101, Some(102), RegisterOp::Read(Some(7)))])
            .collect();
        assert_eq!(
            check(&mut Register(0), &history, 100_000),
            Verdict::Linearizable
        );
    }
}
