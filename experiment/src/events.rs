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
pub const PAUSE_STARTED: &str = "pause.started";
pub const GUARDRAIL_TRIPPED: &str = "guardrail.tripped";
pub const ROLLBACK_DONE: &str = "rollback.done";
/// A one-shot fault (a kill) whose watch is over: it cannot be undone, but its window in the
/// phase definition closes here (payload: [`FaultEvent`]).
pub const FAULT_ENDED: &str = "fault.ended";
/// A dry run resolved a fault: its targets, nothing applied (payload: [`FaultEvent`]).
pub const FAULT_PLANNED: &str = "fault.planned";
/// A custom action step started (payload: [`ActionEvent`] without `ok`).
pub const ACTION_STARTED: &str = "action.started";
/// A custom action step ended (payload: [`ActionEvent`]).
pub const ACTION_DONE: &str = "action.done";
/// An action step's `undo` ran (payload: [`ActionEvent`]).
pub const ACTION_UNDONE: &str = "action.undone";

/// Every event kind a delegate sends (metrics count anything else as `other`).
pub const KINDS: &[&str] = &[
    RUN_STARTED,
    PROBE_CHECK,
    FAULT_APPLIED,
    FAULT_REVERTED,
    RUN_RECOVERED,
    RUN_FINISHED,
    RUN_ABORTED,
    PAUSE_STARTED,
    GUARDRAIL_TRIPPED,
    ROLLBACK_DONE,
    FAULT_ENDED,
    FAULT_PLANNED,
    ACTION_STARTED,
    ACTION_DONE,
    ACTION_UNDONE,
];

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// No fault applied yet.
    Before,
    /// At least one fault active.
    During,
    /// No fault active, one applied, another still to come (see [`crate::phase`]).
    Between,
    /// Every fault of the method ended.
    After,
}

impl Phase {
    pub fn as_str(&self) -> &'static str {
        match self {
            Phase::Before => "before",
            Phase::During => "during",
            Phase::Between => "between",
            Phase::After => "after",
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProbeCheck {
    pub probe: String,
    pub phase: Phase,
    /// Ordinal of the (first) fault this check counts for in the score.
    pub step: usize,
    /// Every fault ordinal this check counts for: the faults active when it started (several in
    /// a parallel group), else the most recent group, else the first. Empty in events from
    /// older delegates, which means `[step]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counts_for: Vec<usize>,
    /// The probe's mode (`sot`, `eot`, `edge`, `continuous`, `onChaos`).
    #[serde(default)]
    pub mode: String,
    /// Tries this check took (1 unless it needed retries).
    #[serde(default = "one")]
    pub attempts: u32,
    pub ok: bool,
    pub latency_ms: f64,
    pub detail: String,
    /// What a command probe printed, capped, only with `captureOutput: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// When the check started (the delegate's clock, ms since the Unix epoch): the moment its
    /// phase was read. Absent in events from older delegates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<i64>,
}

fn one() -> u32 {
    1
}

impl ProbeCheck {
    /// The fault ordinals this check counts for.
    pub fn ordinals(&self) -> Vec<usize> {
        if self.counts_for.is_empty() {
            vec![self.step]
        } else {
            self.counts_for.clone()
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FaultEvent {
    /// Fault ordinal.
    pub step: usize,
    /// Where the fault is in the template, e.g. `steps[2].parallel[0]`.
    #[serde(default)]
    pub path: String,
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
    /// Statistical verdict per latency-measuring probe (control = before, chaos = during).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latency: Vec<crate::stats::LatencyShift>,
    /// What `recovery_ms` is measured from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_from: Option<RecoveryFrom>,
}

/// The event recovery is measured from: the end of the method's last fault (its
/// `fault.reverted`; for a one-shot kill, its `fault.applied`) or action (`action.done`, or its
/// `action.undone` when it has an undo). Sent in `run.recovered` and `run.finished`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryFrom {
    /// The event's kind, e.g. `fault.reverted`.
    pub event: String,
    /// The step's path in the template, e.g. `steps[2]`.
    pub path: String,
    /// The fault kind, or `action`.
    pub what: String,
    /// When the event happened, in milliseconds since `run.started`.
    pub at_ms: u64,
}

impl RecoveryFrom {
    /// "after process-kill (steps[2]) at +5.0 s", "after process-pause (steps[0]) was reverted
    /// at +4.0 s", "after action steps[1] was undone at +3.2 s".
    pub fn describe(&self) -> String {
        let at = format!("+{:.1} s", self.at_ms as f64 / 1000.0);
        let thing = if self.what == "action" {
            format!("action {}", self.path)
        } else {
            format!("{} ({})", self.what, self.path)
        };
        let how = match self.event.as_str() {
            FAULT_REVERTED => " was reverted",
            ACTION_DONE => " ended",
            ACTION_UNDONE => " was undone",
            _ => "",
        };
        format!("after {thing}{how} at {at}")
    }

    /// "back 1.3 s after process-kill (steps[2]) at +5.0 s".
    pub fn sentence(&self, recovery_ms: u64) -> String {
        let took = if recovery_ms < 1000 {
            format!("{recovery_ms} ms")
        } else {
            format!("{:.1} s", recovery_ms as f64 / 1000.0)
        };
        format!("back {took} {}", self.describe())
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RollbackDone {
    pub index: usize,
    #[serde(default)]
    pub name: String,
    pub ok: bool,
    pub detail: String,
    /// What a command rollback printed, capped, only with `captureOutput: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GuardrailTripped {
    pub probe: String,
    pub consecutive_failures: u32,
}

/// A custom action step of the method, or its undo.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ActionEvent {
    /// Index of the method step.
    pub step: usize,
    /// Where it is in the template, e.g. `steps[1]`.
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub name: String,
    /// Whether it did what was expected; absent in `action.started`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok: Option<bool>,
    /// What ran and how it ended (`/usr/bin/kubectl: exit status: 0`), never its output.
    pub detail: String,
    /// Runs alongside the next steps.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub background: bool,
    /// What a command printed, capped, only with `captureOutput: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}
