//! End-to-end tests against real parts, compiled as one binary (one module per area).
//! Run with `./scripts/test.sh`, which builds the binaries and starts the shared Postgres.
mod bad_input;
mod identity;
mod import;
mod language;
mod lifecycle;
mod resilience;
mod safety;
mod sso;

use serde_json::Value;

/// Events must be exactly seq 1..n, start with run.started and end with run.finished.
pub fn assert_complete(run: &Value) {
    let evs = run["events"].as_array().expect("events");
    let seqs: Vec<i64> = evs.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    let want: Vec<i64> = (1..=seqs.len() as i64).collect();
    assert_eq!(seqs, want, "events must be contiguous from 1: {run}");
    assert_eq!(evs.first().unwrap()["kind"], "run.started", "{run}");
    assert_eq!(evs.last().unwrap()["kind"], "run.finished", "{run}");
}

/// Single-step runs: the score is the plain pass rate of all checks, to one decimal.
pub fn expected_score(run: &Value) -> f64 {
    let t = &run["probeTally"];
    let (p, n) = (t["passed"].as_f64().unwrap(), t["total"].as_f64().unwrap());
    (p * 100.0 / n * 10.0).round() / 10.0
}
