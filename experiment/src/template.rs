//! The experiment template (`apiVersion: faultline.dev/v1`, `kind: Experiment`) and its parser.
//!
//! Parsing happens in two passes: serde checks structure (unknown fields, types) and gives line
//! and column; [`Experiment::validate`] then checks meaning (names, ranges, fault parameters) and
//! reports every problem it finds, not just the first.
use crate::{faults::FaultSpec, probes::Probe, Dur};
use serde::{Deserialize, Serialize};
use std::{collections::BTreeMap, fmt, time::Duration};

pub const API_VERSION: &str = "faultline.dev/v1";
/// Templates larger than this are refused before parsing.
pub const MAX_TEMPLATE_BYTES: usize = 256 * 1024;

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Experiment {
    /// Version of the template language: `faultline.dev/v1`.
    #[cfg_attr(feature = "schema", schemars(extend("const" = API_VERSION)))]
    pub api_version: String,
    /// Always `Experiment`.
    #[cfg_attr(feature = "schema", schemars(extend("const" = "Experiment")))]
    pub kind: String,
    /// Name, description and labels of the template.
    pub metadata: Metadata,
    /// Which delegates may run this experiment (label selector); `startRun` may name one instead.
    #[serde(default)]
    pub target: Target,
    /// What must hold for the run to pass: the probes and the recovery and score limits.
    pub hypothesis: Hypothesis,
    /// The method: run in order; a `parallel` group runs its faults together. Empty (or left
    /// out) for a plain steady-state check: the probes run, nothing is injected, no score.
    #[serde(default)]
    pub steps: Vec<Step>,
    /// Guardrails: when one trips, the run is stopped (ABORTED) and everything reverted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub abort_when: Vec<Guardrail>,
    /// Actions run after the method, whatever its outcome (also on abort).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollbacks: Vec<Rollback>,
    /// A schedule for this template, created, updated or paused with it by a GitOps sync
    /// (docs/gitops.md). Other ways of storing a template keep it in the text and ignore it.
    /// Never part of the spec sent to delegates.
    #[serde(default, skip_serializing)]
    pub schedule: Option<ScheduleSpec>,
}

/// A schedule declared in a template's file (docs/gitops.md, docs/schedules.md). The hub
/// checks `cron` and `timezone` when it syncs the file.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScheduleSpec {
    /// 5 fields, 6 with seconds first, or an alias such as `@daily` (docs/schedules.md).
    pub cron: String,
    /// An IANA time zone, e.g. `Europe/Berlin`; default `UTC`.
    #[serde(default = "utc")]
    pub timezone: String,
    /// A delegate name or `k=v,...` selector; default: the template's `target.delegate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegate: Option<String>,
    /// What a fire does while the previous run is unfinished: `forbid` (skip, the default),
    /// `queue` (start it after) or `allow` (start it anyway).
    #[serde(default)]
    pub concurrency: ScheduleConcurrency,
    /// Delays each fire by a random amount up to this (e.g. `5m`), at most 24h.
    #[serde(default)]
    pub jitter: Dur,
    /// `false` keeps the schedule paused.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn utc() -> String {
    "UTC".into()
}

fn yes() -> bool {
    true
}

/// `schedule.concurrency`.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum ScheduleConcurrency {
    #[default]
    Forbid,
    Queue,
    Allow,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metadata {
    /// The template's name, unique in its project: 1-63 lowercase letters, digits and `-`.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"^[a-z0-9-]{1,63}$")))]
    pub name: String,
    /// Free text shown in the dashboard.
    #[serde(default)]
    pub description: String,
    /// Free-form `key: value` labels, for finding templates.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Target {
    /// Labels a delegate must all carry (`key: value`), e.g. `{env: staging}`.
    #[serde(default)]
    pub delegate: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Hypothesis {
    /// The checks whose outcomes decide the run; at least one, names unique.
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub probes: Vec<Probe>,
    /// After the last fault ends, every probe that checks after chaos (eot, edge, continuous)
    /// must pass again within this time.
    #[serde(default = "default_recover_within")]
    pub recover_within: Dur,
    /// Steady-state window before the first fault: continuous probes sample it, and its
    /// latencies are the control group of the statistical verdict.
    #[serde(default)]
    pub baseline: Dur,
    /// The run FAILS when its resilience score is below this (0-100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 0, max = 100)))]
    pub min_score: Option<f64>,
}

/// What [`is_valid_name`] checks, as an error message.
pub const NAME_RULE: &str = "must be 1-63 characters of lowercase letters, digits and '-'";

/// Whether `name` may be a template's `metadata.name`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn default_recover_within() -> Dur {
    Dur::secs(30)
}

/// One step of the method: exactly one of `fault`, `pause`, `parallel` or `action`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(extend("oneOf" = [
    {"required": ["fault"]}, {"required": ["pause"]}, {"required": ["parallel"]}, {"required": ["action"]}
])))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Step {
    /// Optional label for events and the dashboard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Fault kind, e.g. `process-kill`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "schema",
        schemars(schema_with = "crate::schema::fault_kind")
    )]
    pub fault: Option<String>,
    /// 0-10, how much this fault counts in the resilience score (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(max = 10), extend("default" = default_weight())))]
    pub weight: Option<u8>,
    /// What the fault acts on; its fields depend on the fault kind.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    #[cfg_attr(
        feature = "schema",
        schemars(schema_with = "crate::schema::object_or_null")
    )]
    pub target: serde_json::Value,
    /// Settings of the fault kind; omitted means all defaults.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    #[cfg_attr(
        feature = "schema",
        schemars(schema_with = "crate::schema::object_or_null")
    )]
    pub params: serde_json::Value,
    /// How long the fault is held (or, for one-shot faults, watched) before it is reverted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Dur>,
    /// Wait this long, with no fault applied by this step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<Dur>,
    /// Faults applied together; the group ends when the last of them ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub parallel: Option<Vec<FaultStep>>,
    /// A custom action: run a program or send an HTTP request from the delegate. It fails the
    /// run (ERROR) when the program's exit code or the response's status is not the expected one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    /// How to undo the `action`: journalled before the action runs, and run when the method
    /// ends, or when the run is aborted, tripped by a guardrail or stopped, and after a restart
    /// of the delegate or a lost hub, like a fault's revert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<Action>,
    /// Run the `action` alongside the next steps (Chaos Toolkit's `background`); the method
    /// waits for it before it ends.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub background: bool,
}

/// A fault inside a `parallel` group.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FaultStep {
    /// Optional label for events and the dashboard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Fault kind, e.g. `process-pause`.
    #[cfg_attr(
        feature = "schema",
        schemars(schema_with = "crate::schema::fault_kind")
    )]
    pub fault: String,
    /// 0-10, how much this fault counts in the resilience score.
    #[serde(default = "default_weight")]
    #[cfg_attr(feature = "schema", schemars(range(max = 10)))]
    pub weight: u8,
    /// What the fault acts on; its fields depend on the fault kind.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    #[cfg_attr(
        feature = "schema",
        schemars(schema_with = "crate::schema::object_or_null")
    )]
    pub target: serde_json::Value,
    /// Settings of the fault kind; omitted means all defaults.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    #[cfg_attr(
        feature = "schema",
        schemars(schema_with = "crate::schema::object_or_null")
    )]
    pub params: serde_json::Value,
    /// How long the fault is held (or, for one-shot faults, watched) before it is reverted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Dur>,
}

pub fn default_weight() -> u8 {
    5
}

/// Stop the run when a probe fails this many checks in a row.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Guardrail {
    /// A hypothesis probe's name.
    pub probe: String,
    /// Failed checks in a row that trip the guardrail (at least 1).
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub consecutive_failures: u32,
}

/// An action after the method: exactly one of `command` or `http`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(extend("oneOf" = [
    {"required": ["command"]}, {"required": ["http"]}
])))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Rollback {
    /// Optional label for events and the dashboard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Run a program on the delegate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandAction>,
    /// Send an HTTP request from the delegate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpAction>,
    /// Longest the action may take.
    #[serde(default = "default_rollback_timeout")]
    pub timeout: Dur,
}

fn default_rollback_timeout() -> Dur {
    Dur::secs(30)
}

/// A custom action (a method step's `action` or `undo`): exactly one of `command` or `http`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(extend("oneOf" = [
    {"required": ["command"]}, {"required": ["http"]}
])))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Action {
    /// Run a program on the delegate (the operator's `command=` entries apply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandAction>,
    /// Send an HTTP request from the delegate (the network allow-list applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpAction>,
    /// Longest the action may take; a program still running then is killed with its process
    /// group.
    #[serde(default = "default_rollback_timeout")]
    pub timeout: Dur,
}

impl Rollback {
    /// The rollback as the action it runs.
    pub fn action(&self) -> Action {
        Action {
            command: self.command.clone(),
            http: self.http.clone(),
            timeout: self.timeout,
        }
    }
}

/// A program the delegate runs: exactly one of `run` or `shell`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(extend("oneOf" = crate::schema::run_or_shell())))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CommandAction {
    /// argv; no shell is involved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub run: Vec<String>,
    /// A script for `/bin/sh -c`, instead of `run`, when a shell is really wanted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    /// Extra environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Working directory of the program.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// The exit code that means done (default 0); any other is a failure.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub expect_exit: i32,
    /// Keep the program's output (at most 4 KiB of stdout and of stderr) in the step's event
    /// (`action.done`, `action.undone`, `rollback.done`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub capture_output: bool,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

/// An HTTP request the delegate sends; a 2xx status, or `expectStatus`, counts as done.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpAction {
    /// `http://` or `https://` URL.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"^https?://")))]
    pub url: String,
    /// HTTP method.
    #[serde(default = "default_post")]
    #[cfg_attr(feature = "schema", schemars(extend("enum" = crate::probes::HTTP_METHODS)))]
    pub method: String,
    /// Request headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Request body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The status that means done; without it, any 2xx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 100, max = 599)))]
    pub expect_status: Option<u16>,
}

fn default_post() -> String {
    "POST".into()
}

/// The method as the executor runs it: stages in order, each a group of faults, a pause or a
/// custom action.
#[derive(Clone, Debug, PartialEq)]
// A run plans its stages once; boxing the action would only add indirection to every match.
#[allow(clippy::large_enum_variant)]
pub enum Stage {
    Faults(Vec<PlannedFault>),
    Pause(Duration),
    Action(PlannedAction),
}

/// A custom action step of the method.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedAction {
    /// Index of the top-level step.
    pub step: usize,
    /// Where it is in the template, e.g. `steps[1]`.
    pub path: String,
    pub name: Option<String>,
    pub action: Action,
    pub undo: Option<Action>,
    pub background: bool,
}

/// One fault of the method, numbered in the order it appears (its *ordinal*: the unit the
/// resilience score weighs).
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedFault {
    pub ordinal: usize,
    /// Where it is in the template, e.g. `steps[2].parallel[0]`.
    pub path: String,
    /// Index of the top-level step.
    pub step: usize,
    pub name: Option<String>,
    pub weight: u8,
    pub spec: FaultSpec,
    /// How long it is held (or watched): `duration` plus the kind's extra time.
    pub hold: Duration,
}

impl Step {
    /// Names of the fault-only fields this step sets (wrong on a pause, a parallel group or an
    /// action).
    fn fault_fields_set(&self) -> impl Iterator<Item = &'static str> {
        [
            ("weight", self.weight.is_some()),
            ("target", !self.target.is_null()),
            ("params", !self.params.is_null()),
            ("duration", self.duration.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
    }

    /// Names of the action-only fields this step sets (wrong on any other step).
    fn action_fields_set(&self) -> impl Iterator<Item = &'static str> {
        [
            ("undo", self.undo.is_some()),
            ("background", self.background),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
    }

    /// This step as a fault step, when it is one.
    pub fn as_fault(&self) -> Option<FaultStep> {
        self.fault.as_ref().map(|fault| FaultStep {
            name: self.name.clone(),
            fault: fault.clone(),
            weight: self.weight.unwrap_or_else(default_weight),
            target: self.target.clone(),
            params: self.params.clone(),
            duration: self.duration,
        })
    }
}

impl FaultStep {
    /// The typed fault, or an error naming the field under `at` (e.g. `steps[0]`).
    pub fn fault_spec(&self, at: &str) -> Result<FaultSpec, SpecError> {
        FaultSpec::parse(at, self)
    }

    /// How long the fault is held or watched; one-shot faults default to 0.
    pub fn hold(&self) -> Duration {
        self.duration.map(|d| d.0).unwrap_or_default()
    }
}

/// One problem in a template, located as precisely as we can.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SpecError {
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Dotted path of the offending field, e.g. `steps[0].params.signal`.
    pub field: String,
    pub message: String,
    /// How to fix it, when we can tell.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl SpecError {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        SpecError {
            line: None,
            column: None,
            field: field.into(),
            message: message.into(),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let (Some(l), Some(c)) = (self.line, self.column) {
            write!(f, "line {l}, column {c}: ")?;
        }
        if self.field.is_empty() {
            write!(f, "{}", self.message)?;
        } else {
            write!(f, "{}: {}", self.field, self.message)?;
        }
        match &self.hint {
            Some(h) => write!(f, " (hint: {h})"),
            None => Ok(()),
        }
    }
}

/// Every problem found in one template.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct SpecErrors(pub Vec<SpecError>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|e| e.to_string()).collect();
        f.write_str(&parts.join("; "))
    }
}

/// Parses and validates a YAML template. Never panics, whatever the input.
pub fn parse_template(yaml: &str) -> Result<Experiment, SpecErrors> {
    if yaml.len() > MAX_TEMPLATE_BYTES {
        return Err(SpecErrors(vec![SpecError::field(
            "",
            format!(
                "template is {} bytes; the limit is {MAX_TEMPLATE_BYTES}",
                yaml.len()
            ),
        )]));
    }
    let exp: Experiment =
        serde_norway::from_str(yaml).map_err(|e| SpecErrors(vec![from_yaml_error(yaml, &e)]))?;
    exp.validate().map_err(|SpecErrors(mut errs)| {
        locate_errors(yaml, &mut errs);
        SpecErrors(errs)
    })?;
    Ok(exp)
}

/// Meaning errors know their field; this finds where each stands in the YAML text.
pub fn locate_errors(yaml: &str, errs: &mut [SpecError]) {
    let at = crate::locate::Locations::of(yaml);
    for e in errs.iter_mut().filter(|e| e.line.is_none()) {
        if let Some((line, column)) = at.find(&e.field) {
            (e.line, e.column) = (Some(line), Some(column));
        }
    }
}

/// Turns serde_norway's message ("steps[0]: unknown field `x`, expected ... at line 3 column 5")
/// into a located error with the field path split out.
fn from_yaml_error(yaml: &str, e: &serde_norway::Error) -> SpecError {
    let (line, column) = e
        .location()
        .map(|l| {
            let (line, column) = crate::locate::within(yaml, l.line(), l.column());
            (Some(line), Some(column))
        })
        .unwrap_or((None, None));
    let mut text = e.to_string();
    if let Some(i) = text.rfind(" at line ") {
        text.truncate(i);
    }
    let (mut field, message) = match text.split_once(": ") {
        Some((path, rest)) if !path.contains(' ') => (path.to_string(), rest.to_string()),
        _ => (String::new(), text.clone()),
    };
    for marker in ["unknown field `", "missing field `"] {
        if let Some(rest) = message.strip_prefix(marker) {
            if let Some(name) = rest.split('`').next() {
                field = if field.is_empty() {
                    name.to_string()
                } else {
                    format!("{field}.{name}")
                };
            }
        }
    }
    let hint = crate::hints::for_yaml_error(&field, &message);
    SpecError {
        line,
        column,
        field,
        message,
        hint,
    }
}

impl Experiment {
    /// Checks meaning after structure: every problem is collected.
    pub fn validate(&self) -> Result<(), SpecErrors> {
        let mut errs = Vec::new();
        if self.api_version != API_VERSION {
            errs.push(SpecError::field(
                "apiVersion",
                format!("must be {API_VERSION:?}, got {:?}", self.api_version),
            ));
        }
        if self.kind != "Experiment" {
            errs.push(SpecError::field(
                "kind",
                format!("must be \"Experiment\", got {:?}", self.kind),
            ));
        }
        if !is_valid_name(&self.metadata.name) {
            errs.push(SpecError::field("metadata.name", NAME_RULE));
        }
        if let Some(sc) = &self.schedule {
            if sc.cron.trim().is_empty() {
                errs.push(SpecError::field("schedule.cron", "must not be empty"));
            }
            if sc.jitter.0 > Duration::from_secs(86_400) {
                errs.push(SpecError::field("schedule.jitter", "must be at most 24h"));
            }
        }
        for (k, v) in &self.target.delegate {
            if k.is_empty() || k.len() > 63 || v.len() > 255 {
                errs.push(SpecError::field(
                    format!("target.delegate.{k}"),
                    "label keys are 1-63 characters and values at most 255",
                ));
            }
        }
        if self.hypothesis.probes.is_empty() {
            errs.push(SpecError::field(
                "hypothesis.probes",
                "at least one probe is required",
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, p) in self.hypothesis.probes.iter().enumerate() {
            let at = format!("hypothesis.probes[{i}]");
            if p.name.is_empty() {
                errs.push(SpecError::field(format!("{at}.name"), "must not be empty"));
            } else if !seen.insert(p.name.as_str()) {
                errs.push(SpecError::field(
                    format!("{at}.name"),
                    format!("duplicate probe name {:?}", p.name),
                ));
            }
            p.validate(&at, &mut errs);
        }
        let h = &self.hypothesis;
        if h.recover_within.0 > Duration::from_secs(3600) {
            errs.push(SpecError::field(
                "hypothesis.recoverWithin",
                "must be at most 1h",
            ));
        }
        if h.baseline.0 > Duration::from_secs(3600) {
            errs.push(SpecError::field(
                "hypothesis.baseline",
                "must be at most 1h",
            ));
        }
        if let Some(m) = h.min_score {
            if !(0.0..=100.0).contains(&m) {
                errs.push(SpecError::field(
                    "hypothesis.minScore",
                    "must be between 0 and 100",
                ));
            }
        }
        for (i, s) in self.steps.iter().enumerate() {
            validate_step(i, s, &mut errs);
        }
        for (i, g) in self.abort_when.iter().enumerate() {
            let at = format!("abortWhen[{i}]");
            if !seen.contains(g.probe.as_str()) {
                let names: Vec<&str> = seen.iter().copied().collect();
                errs.push(
                    SpecError::field(
                        format!("{at}.probe"),
                        format!("no hypothesis probe is named {:?}", g.probe),
                    )
                    .hint(
                        crate::hints::did_you_mean(&g.probe, &names)
                            .unwrap_or_else(|| format!("name one of: {}", names.join(", "))),
                    ),
                );
            }
            if g.consecutive_failures == 0 {
                errs.push(SpecError::field(
                    format!("{at}.consecutiveFailures"),
                    "must be at least 1",
                ));
            }
        }
        for (i, r) in self.rollbacks.iter().enumerate() {
            validate_action(&format!("rollbacks[{i}]"), &r.action(), &mut errs);
        }
        if self.planned_duration() > Duration::from_secs(24 * 3600) {
            errs.push(SpecError::field(
                "steps",
                "the experiment would run longer than 24h",
            ));
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(SpecErrors(errs))
        }
    }

    /// The method as stages of typed faults. Call on a validated experiment; faults that do not
    /// parse are left out.
    pub fn plan(&self) -> Vec<Stage> {
        let mut ordinal = 0;
        let mut stages = Vec::new();
        for (i, s) in self.steps.iter().enumerate() {
            if let Some(p) = s.pause {
                stages.push(Stage::Pause(p.0));
                continue;
            }
            if let Some(action) = &s.action {
                stages.push(Stage::Action(PlannedAction {
                    step: i,
                    path: format!("steps[{i}]"),
                    name: s.name.clone(),
                    action: action.clone(),
                    undo: s.undo.clone(),
                    background: s.background,
                }));
                continue;
            }
            let members: Vec<(String, FaultStep)> = match (&s.parallel, s.as_fault()) {
                (Some(group), _) => group
                    .iter()
                    .enumerate()
                    .map(|(j, f)| (format!("steps[{i}].parallel[{j}]"), f.clone()))
                    .collect(),
                (None, Some(f)) => vec![(format!("steps[{i}]"), f)],
                (None, None) => continue,
            };
            let mut group = Vec::new();
            for (path, f) in members {
                let Ok(spec) = f.fault_spec(&path) else {
                    continue;
                };
                group.push(PlannedFault {
                    ordinal,
                    hold: f.hold() + spec.extra_time(),
                    path,
                    step: i,
                    name: f.name.clone(),
                    weight: f.weight,
                    spec,
                });
                ordinal += 1;
            }
            stages.push(Stage::Faults(group));
        }
        stages
    }

    /// Every fault of the method in ordinal order.
    pub fn faults(&self) -> Vec<PlannedFault> {
        self.plan()
            .into_iter()
            .flat_map(|s| match s {
                Stage::Faults(f) => f,
                Stage::Pause(_) | Stage::Action(_) => Vec::new(),
            })
            .collect()
    }

    /// Score weights by fault ordinal.
    pub fn weights(&self) -> Vec<u8> {
        self.faults().iter().map(|f| f.weight).collect()
    }

    /// Upper bound of how long a run of this experiment takes on the delegate, used by the hub
    /// to resolve runs whose delegate went silent.
    pub fn planned_duration(&self) -> Duration {
        let method: Duration = self
            .plan()
            .iter()
            .map(|s| match s {
                Stage::Pause(d) => *d,
                Stage::Faults(g) => g.iter().map(|f| f.hold).max().unwrap_or_default(),
                Stage::Action(a) => {
                    a.action.timeout.0 + a.undo.as_ref().map_or(Duration::ZERO, |u| u.timeout.0)
                }
            })
            .sum();
        let probes = &self.hypothesis.probes;
        let probe_max = probes
            .iter()
            .map(|p| p.check_budget() + p.interval.0)
            .max()
            .unwrap_or_default();
        let delay_max = probes
            .iter()
            .map(|p| p.initial_delay.0)
            .max()
            .unwrap_or_default();
        let rollbacks: Duration = self.rollbacks.iter().map(|r| r.timeout.0).sum();
        self.hypothesis.baseline.0
            + method
            + self.hypothesis.recover_within.0
            + probe_max * 2
            + delay_max * 2
            + rollbacks
    }

    /// Kinds this experiment needs that a delegate with these capabilities lacks, each as an
    /// error on the field that asks for it.
    pub fn check_capabilities(
        &self,
        faults: &[String],
        probes: &[String],
        delegate: &str,
    ) -> Vec<SpecError> {
        let mut errs = Vec::new();
        for f in self.faults() {
            let kind = f.spec.kind();
            if !faults.iter().any(|k| k == kind) {
                errs.push(
                    SpecError::field(
                        format!("{}.fault", f.path),
                        format!("delegate {delegate} does not support fault {kind}"),
                    )
                    .hint(format!(
                        "it supports: {}; pick another delegate or upgrade it",
                        list_or_none(faults)
                    )),
                );
            }
        }
        for (i, p) in self.hypothesis.probes.iter().enumerate() {
            let kind = p.kind_name();
            if !kind.is_empty() && !probes.iter().any(|k| k == kind) {
                errs.push(
                    SpecError::field(
                        format!("hypothesis.probes[{i}].{kind}"),
                        format!("delegate {delegate} does not support probe {kind}"),
                    )
                    .hint(format!("it supports: {}", list_or_none(probes))),
                );
            }
        }
        errs
    }
}

fn list_or_none(l: &[String]) -> String {
    if l.is_empty() {
        "nothing".into()
    } else {
        l.join(", ")
    }
}

fn validate_step(i: usize, s: &Step, errs: &mut Vec<SpecError>) {
    let at = format!("steps[{i}]");
    let set = [
        s.fault.is_some(),
        s.pause.is_some(),
        s.parallel.is_some(),
        s.action.is_some(),
    ];
    if set.iter().filter(|b| **b).count() != 1 {
        errs.push(
            SpecError::field(
                &at,
                "a step is exactly one of fault, pause, parallel or action",
            )
            .hint("split it into separate steps"),
        );
        return;
    }
    if let Some(a) = &s.action {
        for name in s.fault_fields_set() {
            errs.push(SpecError::field(
                format!("{at}.{name}"),
                "does not apply to an action",
            ));
        }
        validate_action(&format!("{at}.action"), a, errs);
        if let Some(u) = &s.undo {
            validate_action(&format!("{at}.undo"), u, errs);
        }
        return;
    }
    for name in s.action_fields_set() {
        errs.push(
            SpecError::field(format!("{at}.{name}"), "belongs to an action step")
                .hint("add an action to the step, or remove the field"),
        );
    }
    if let Some(p) = s.pause {
        for name in s.fault_fields_set() {
            errs.push(SpecError::field(
                format!("{at}.{name}"),
                "does not apply to a pause",
            ));
        }
        if p.0 > Duration::from_secs(3600) {
            errs.push(SpecError::field(
                format!("{at}.pause"),
                "must be at most 1h",
            ));
        }
        return;
    }
    if let Some(group) = &s.parallel {
        for name in s.fault_fields_set() {
            errs.push(
                SpecError::field(
                    format!("{at}.{name}"),
                    "belongs to each fault of a parallel group",
                )
                .hint("move it into the faults under parallel"),
            );
        }
        if group.is_empty() {
            errs.push(SpecError::field(
                format!("{at}.parallel"),
                "needs at least one fault",
            ));
        }
        for (j, f) in group.iter().enumerate() {
            validate_fault(&format!("{at}.parallel[{j}]"), f, errs);
        }
        return;
    }
    if let Some(f) = s.as_fault() {
        validate_fault(&at, &f, errs);
    }
}

/// A custom action (a step's `action` or `undo`, or a rollback) at `at`.
fn validate_action(at: &str, a: &Action, errs: &mut Vec<SpecError>) {
    match (&a.command, &a.http) {
        (Some(c), None) => {
            crate::probes::validate_command(&c.run, &c.shell, &format!("{at}.command"), errs)
        }
        (None, Some(h)) => {
            if !(h.url.starts_with("http://") || h.url.starts_with("https://")) {
                errs.push(SpecError::field(
                    format!("{at}.http.url"),
                    "must start with http:// or https://",
                ));
            }
            if !crate::probes::HTTP_METHODS.contains(&h.method.as_str()) {
                errs.push(SpecError::field(
                    format!("{at}.http.method"),
                    format!("unsupported method {:?}", h.method),
                ));
            }
            if h.expect_status.is_some_and(|s| !(100..=599).contains(&s)) {
                errs.push(SpecError::field(
                    format!("{at}.http.expectStatus"),
                    "must be an HTTP status between 100 and 599",
                ));
            }
        }
        _ => errs.push(SpecError::field(at, "give exactly one of command or http")),
    }
    if a.timeout.0.is_zero() || a.timeout.0 > Duration::from_secs(600) {
        errs.push(SpecError::field(
            format!("{at}.timeout"),
            "must be between 1ms and 10m",
        ));
    }
}

fn validate_fault(at: &str, f: &FaultStep, errs: &mut Vec<SpecError>) {
    if f.weight > 10 {
        errs.push(SpecError::field(
            format!("{at}.weight"),
            "must be between 0 and 10",
        ));
    }
    if f.duration
        .is_some_and(|d| d.0 > Duration::from_secs(12 * 3600))
    {
        errs.push(SpecError::field(
            format!("{at}.duration"),
            "must be at most 12h",
        ));
    }
    if let Err(e) = f.fault_spec(at) {
        errs.push(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const GOOD: &str = r#"
apiVersion: faultline.dev/v1
kind: Experiment
metadata:
  name: web-survives-kill
target:
  delegate: {role: demo}
hypothesis:
  probes:
    - name: web-ok
      http: {url: "http://127.0.0.1:8080/", expect: {status: 200}}
      interval: 200ms
      timeout: 1s
  recoverWithin: 10s
steps:
  - fault: process-kill
    target: {name: demo-web}
    params: {signal: KILL}
    duration: 2s
"#;

    #[test]
    fn parses_a_good_template() {
        let e = parse_template(GOOD).unwrap();
        assert_eq!(e.metadata.name, "web-survives-kill");
        assert_eq!(e.hypothesis.probes[0].interval, Dur::from_millis(200));
        assert_eq!(e.weights(), vec![5]);
        assert!(e.planned_duration() >= Duration::from_secs(12));
    }

    #[test]
    fn unknown_field_names_line_column_and_field() {
        let bad = GOOD.replace(
            "  name: web-survives-kill",
            "  name: web-survives-kill\n  nmae: x",
        );
        let err = parse_template(&bad).unwrap_err();
        let e = &err.0[0];
        assert_eq!(e.field, "metadata.nmae", "{e:?}");
        assert_eq!(e.line, Some(6), "{e:?}");
        assert_eq!(e.column, Some(3), "{e:?}");
        assert!(e.message.contains("unknown field"), "{e:?}");
    }

    /// Found by the `template` fuzz target (fuzz/): comments only, the last without a newline,
    /// were located on a line after the text's last one.
    #[test]
    fn the_end_of_a_text_is_on_its_last_line() {
        for (text, at) in [
            ("# a\n# b", (2, 4)),
            ("#", (1, 2)),
            ("# a\n# b\n", (3, 1)),
            // A lone CR ends a line in YAML (and in the dashboard's editor).
            ("# a\r# bc", (2, 5)),
            ("# a\r\n# bc", (2, 5)),
            ("\r\r\r# a", (4, 4)),
        ] {
            let e = &parse_template(text).unwrap_err().0[0];
            assert_eq!(
                (e.line, e.column),
                (Some(at.0), Some(at.1)),
                "{text:?}: {e:?}"
            );
        }
    }

    /// Found by the `template` fuzz target (fuzz/): an empty last item written without a newline
    /// was located by its null value, on the line after the text's last one.
    #[test]
    fn a_meaning_error_at_the_end_is_on_the_last_line() {
        let text = "apiVersion: faultline.dev/v1\nkind: Experiment\nmetadata: {name: x}\n\
            hypothesis: {probes: [{name: up, http: {url: \"http://127.0.0.1:8080/\"}}]}\n\
            steps:\n  - # c";
        let errs = parse_template(text).unwrap_err().0;
        let e = errs
            .iter()
            .find(|e| e.field == "steps[0]")
            .expect("steps[0]");
        assert_eq!((e.line, e.column), (Some(6), Some(8)), "{errs:?}");
    }

    #[test]
    fn malformed_yaml_has_a_location() {
        let err = parse_template("apiVersion: [unclosed\nkind: x").unwrap_err();
        assert!(err.0[0].line.is_some(), "{err:?}");
    }

    #[test]
    fn semantic_errors_are_all_reported() {
        let bad = GOOD
            .replace("faultline.dev/v1", "v0")
            .replace("name: web-ok", "name: ''")
            .replace("signal: KILL", "signal: LOUD");
        let err = parse_template(&bad).unwrap_err();
        let fields: Vec<&str> = err.0.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"apiVersion"), "{fields:?}");
        assert!(fields.contains(&"hypothesis.probes[0].name"), "{fields:?}");
        assert!(fields.contains(&"steps[0].params.signal"), "{fields:?}");
        // Meaning errors are located too: `signal` is on line 18 (`params: {signal: LOUD}`).
        let sig = err
            .0
            .iter()
            .find(|e| e.field == "steps[0].params.signal")
            .unwrap();
        assert_eq!((sig.line, sig.column), (Some(18), Some(14)), "{sig:?}");
        assert!(err.0.iter().all(|e| e.line.is_some()), "{err:?}");
    }

    #[test]
    fn never_panics_on_junk() {
        for junk in [
            "",
            "-",
            ":",
            "{",
            "[[[",
            "a: &x\nb: *x",
            "\u{0}",
            "steps: 5",
            "apiVersion: 1\nkind: 2",
        ] {
            let _ = parse_template(junk);
        }
    }
}
