//! What several benches share: timing a fault's apply and revert through the real registry.
use faultline_delegate::{
    faults::{Faults, RunCtx},
    journal::Journal,
};
use faultline_experiment::faults::FaultSpec;
use std::time::{Duration, Instant};

/// Applies and reverts `spec(i)` for i in 0..n (plan, fsynced journal entry and apply; revert
/// and journal removal); returns the sorted apply and revert times.
pub fn cycles(
    faults: &Faults,
    journal: &Journal,
    n: usize,
    mut spec: impl FnMut(usize) -> FaultSpec,
) -> (Vec<Duration>, Vec<Duration>) {
    let (mut apply, mut revert) = (Vec::new(), Vec::new());
    for i in 0..n {
        let spec = spec(i);
        let ctx = RunCtx {
            run_id: "bench-cycle",
            step: i,
        };
        let t = Instant::now();
        let a = faults
            .inject(journal, &spec, ctx)
            .unwrap_or_else(|e| panic!("{}: {e}", spec.kind()));
        apply.push(t.elapsed());
        let t = Instant::now();
        faults
            .revert(journal, &a)
            .unwrap_or_else(|e| panic!("{}: {e}", spec.kind()));
        revert.push(t.elapsed());
    }
    apply.sort();
    revert.sort();
    (apply, revert)
}
