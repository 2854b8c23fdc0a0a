//! The one definition of a probe check's phase, and of the faults a check counts for in the
//! score. Both are read off the faults' windows at the moment the check **starts** (a check that
//! outlives a revert keeps the phase it started in):
//!
//! ```text
//!            baseline      fault A          fault B (kill, watched 1 s)
//! time  ─────────────────[=========]──────[==]────────────────────────▶
//! phase   before           during  between during  after
//! ```
//!
//! - `before`: no fault has been applied yet;
//! - `during`: at least one fault is active, from its `fault.applied` to its end (its
//!   `fault.reverted`; for a one-shot kill, the end of its watch, `duration` + `restartWait`,
//!   reported as `fault.ended`);
//! - `between`: no fault is active, one has been applied, and another is still to come (a pause
//!   or an action between fault groups);
//! - `after`: every fault of the method has ended.
//!
//! The delegate keeps one [`FaultClock`] per run and updates it as it applies and ends faults;
//! every consumer (the score, the latency statistics, the verdict, the timeline) reads the phase
//! it stamped on the check. Pure: no clock of its own, no I/O.
use crate::events::Phase;
use std::collections::BTreeSet;

/// Which faults are active, and how many the method still has to apply.
#[derive(Clone, Debug, Default)]
pub struct FaultClock {
    /// Faults in the method.
    total: usize,
    /// Ordinals applied so far (active or ended).
    applied: BTreeSet<usize>,
    /// Ordinals active now.
    active: BTreeSet<usize>,
    /// Ordinals of the most recent group applied.
    last_group: Vec<usize>,
    /// Ordinals of the method's first group.
    first_group: Vec<usize>,
}

impl FaultClock {
    /// A clock for a method of `total` faults whose first group is `first_group`.
    pub fn new(total: usize, first_group: Vec<usize>) -> Self {
        FaultClock {
            total,
            first_group,
            ..FaultClock::default()
        }
    }

    /// Fault `ordinal` of the group `group` was applied.
    pub fn applied(&mut self, ordinal: usize, group: &[usize]) {
        self.applied.insert(ordinal);
        self.active.insert(ordinal);
        self.last_group = group.to_vec();
    }

    /// Fault `ordinal` ended (reverted, or its watch is over). Ending a fault that is not active
    /// changes nothing.
    pub fn ended(&mut self, ordinal: usize) {
        self.active.remove(&ordinal);
    }

    /// Whether any fault is active now.
    pub fn any_active(&self) -> bool {
        !self.active.is_empty()
    }

    /// The phase of a check starting now.
    pub fn phase(&self) -> Phase {
        if !self.active.is_empty() {
            Phase::During
        } else if self.applied.is_empty() {
            Phase::Before
        } else if self.applied.len() >= self.total {
            Phase::After
        } else {
            Phase::Between
        }
    }

    /// The fault ordinals a check starting now counts for in the score: the faults active now,
    /// else those of the most recent group, else those of the first group.
    pub fn counts_for(&self) -> Vec<usize> {
        if !self.active.is_empty() {
            self.active.iter().copied().collect()
        } else if !self.last_group.is_empty() {
            self.last_group.clone()
        } else {
            self.first_group.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_drawn_example() {
        // Fault 0 alone, a pause, then fault 1 (a kill watched briefly).
        let mut c = FaultClock::new(2, vec![0]);
        assert_eq!((c.phase(), c.counts_for()), (Phase::Before, vec![0]));
        c.applied(0, &[0]);
        assert_eq!((c.phase(), c.counts_for()), (Phase::During, vec![0]));
        c.ended(0);
        assert_eq!((c.phase(), c.counts_for()), (Phase::Between, vec![0]));
        c.applied(1, &[1]);
        assert_eq!((c.phase(), c.counts_for()), (Phase::During, vec![1]));
        c.ended(1);
        assert_eq!((c.phase(), c.counts_for()), (Phase::After, vec![1]));
    }

    #[test]
    fn a_parallel_group_is_during_until_its_last_fault_ends() {
        let mut c = FaultClock::new(2, vec![0, 1]);
        c.applied(0, &[0, 1]);
        c.applied(1, &[0, 1]);
        c.ended(0);
        assert_eq!((c.phase(), c.counts_for()), (Phase::During, vec![1]));
        c.ended(1);
        assert_eq!((c.phase(), c.counts_for()), (Phase::After, vec![0, 1]));
    }

    #[test]
    fn no_fault_is_before_throughout() {
        let c = FaultClock::new(0, vec![]);
        assert_eq!((c.phase(), c.counts_for()), (Phase::Before, vec![]));
    }

    /// What happens in a method, in order: a fault of a group applied, a fault ended, a check.
    #[derive(Clone, Debug)]
    enum Op {
        Apply(usize, Vec<usize>),
        End(usize),
        Check,
    }

    /// Random methods: groups of 1-3 faults, all applied, then ended in a random order, with
    /// checks anywhere, and a gap (a check) after each group.
    fn method() -> impl Strategy<Value = (usize, Vec<usize>, Vec<Op>)> {
        let group = (
            1usize..4,
            any::<u64>(),
            prop::collection::vec(0usize..7, 0..8),
        );
        prop::collection::vec(group, 0..5).prop_map(|groups| {
            let (mut ops, mut next, mut first) = (Vec::new(), 0, Vec::new());
            for (size, seed, checks) in groups {
                let ordinals: Vec<usize> = (next..next + size).collect();
                if next == 0 {
                    first = ordinals.clone();
                }
                next += size;
                let mut order = ordinals.clone();
                let mut s = seed;
                for i in (1..order.len()).rev() {
                    s = s
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    order.swap(i, (s >> 33) as usize % (i + 1));
                }
                let mut steps: Vec<Op> = ordinals
                    .iter()
                    .map(|o| Op::Apply(*o, ordinals.clone()))
                    .collect();
                steps.extend(order.into_iter().map(Op::End));
                for at in checks {
                    steps.insert(at.min(steps.len()), Op::Check);
                }
                ops.extend(steps);
                ops.push(Op::Check);
            }
            (next, first, ops)
        })
    }

    proptest! {
        /// The clock agrees with the definition read straight off the history of events.
        #[test]
        fn phase_matches_the_event_history((total, first, ops) in method()) {
            let mut clock = FaultClock::new(total, first.clone());
            let (mut applied, mut ended) = (BTreeSet::new(), BTreeSet::new());
            let mut last_group: Vec<usize> = Vec::new();
            for op in &ops {
                match op {
                    Op::Apply(o, group) => {
                        clock.applied(*o, group);
                        applied.insert(*o);
                        last_group = group.clone();
                    }
                    Op::End(o) => {
                        clock.ended(*o);
                        ended.insert(*o);
                    }
                    Op::Check => {
                        let active: Vec<usize> = applied.difference(&ended).copied().collect();
                        let want = if !active.is_empty() {
                            Phase::During
                        } else if applied.is_empty() {
                            Phase::Before
                        } else if applied.len() == total {
                            Phase::After
                        } else {
                            Phase::Between
                        };
                        prop_assert_eq!(clock.phase(), want);
                        let counts = if !active.is_empty() {
                            active
                        } else if applied.is_empty() {
                            first.clone()
                        } else {
                            last_group.clone()
                        };
                        prop_assert_eq!(clock.counts_for(), counts);
                    }
                }
            }
        }
    }
}
