//! Run events: what a delegate reports, in order, for each run. `kind` strings and payload shapes
//! are part of the contract between delegate, hub and API clients.
use serde::{Deserialize, Serialize};

pub const RUN_STARTED: &str = "run.started";
pub const PROBE_CHECK: &str = "probe.check";
pub const FAULT_APPLIED: &str = "fault.applied";
pub const FAULT_REVERTED: &str = "fault.reverted";
pub const RUN_RECOVERED: &str = "run.recovered";
pub const RUN_FINISHED: &str = "run.finished";
pub const RUN_ABORTED: &str = "run.aborted";

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Before,
    During,
    After,
}

impl Phase {
    pub fn as_str(&self) -> &'static str {
        match self {
            Phase::Before => "before",
            Phase::During => "during",
            Phase::After => "after",
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProbeCheck {
    pub probe: String,
    pub phase: Phase,
    /// Index of the fault step this check counts for in the score.
    pub step: usize,
    pub ok: bool,
    pub latency_ms: f64,
    pub detail: String,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FaultEvent {
    pub step: usize,
    pub fault: String,
    pub detail: String,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    Passed,
    Failed,
    Aborted,
    Error,
}

impl Verdict {
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Passed => "PASSED",
            Verdict::Failed => "FAILED",
            Verdict::Aborted => "ABORTED",
            Verdict::Error => "ERROR",
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RunFinished {
    pub verdict: Verdict,
    pub score: Option<f64>,
    pub reason: String,
    pub checks_passed: u32,
    pub checks_total: u32,
    pub recovery_ms: Option<u64>,
}
