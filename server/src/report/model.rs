//! What a run report says, computed from what the hub stored about the run: the method's
//! timeline and fault windows (folded from the run's events the way the dashboard's run view
//! folds them, `web/src/pages/runs/events.ts` and `chart.ts`), each check placed at the moment
//! it started, and per probe and phase the counts and latency percentiles. Pure: no I/O, no
//! formatting for a medium (`html.rs` and `pdf.rs` do that).
use crate::runs::{EventRow, RunRow, TimedCheck, TERMINAL};
use crate::templates::VersionRow;
use chrono::{DateTime, Utc};
use faultline_experiment::{events, stats, Experiment};
use serde_json::Value;
use std::collections::BTreeMap;

/// Failed checks listed one by one; the rest are counted.
pub const FAILURES_LISTED: usize = 100;

/// Phases in the order of a run (`between`: no fault active, another still to come).
pub const PHASES: [&str; 4] = ["before", "during", "between", "after"];

/// Everything the report is made from, as read from the stores (`super::load`).
pub struct Input {
    pub run: RunRow,
    pub project: String,
    pub template: String,
    /// The template version the run is pinned to.
    pub version: VersionRow,
    /// That version's parsed template; `None` if it can no longer be read.
    pub spec: Option<Experiment>,
    pub delegate: Option<String>,
    /// The run's events other than probe checks, in seq order.
    pub events: Vec<EventRow>,
    pub checks: Vec<TimedCheck>,
    /// When the report was made: "now" for a run still going.
    pub generated_at: DateTime<Utc>,
}

/// How a timeline line reads: as the dashboard colours it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Info,
    Fault,
    Ok,
    Bad,
    Warn,
}

impl Tone {
    pub fn as_str(self) -> &'static str {
        match self {
            Tone::Info => "info",
            Tone::Fault => "fault",
            Tone::Ok => "ok",
            Tone::Bad => "bad",
            Tone::Warn => "warn",
        }
    }
}

/// One line of the method's timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct TimelineItem {
    pub at: DateTime<Utc>,
    /// Seconds since the run started.
    pub t: f64,
    pub kind: String,
    pub title: String,
    pub detail: String,
    pub tone: Tone,
}

/// A fault's window, in seconds since the run started.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultWindow {
    /// The fault's ordinal.
    pub step: i64,
    pub label: String,
    pub from: f64,
    pub to: f64,
    /// A one-shot fault (a kill) with no watch: a line at its time, not a window.
    pub instant: bool,
    /// Still active when the report was made.
    pub active: bool,
}

/// An action step's mark on the plot.
#[derive(Clone, Debug, PartialEq)]
pub struct ActionMark {
    pub t: f64,
    pub label: String,
    /// The action (or its undo) failed.
    pub bad: bool,
}

/// One check on the plot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CheckPoint {
    /// Index into [`Report::probe_names`].
    pub probe: usize,
    /// Seconds since the run started, at the check's start.
    pub t: f64,
    pub latency_ms: f64,
    pub ok: bool,
}

/// A probe's checks in one phase.
#[derive(Clone, Debug, PartialEq)]
pub struct PhaseStats {
    pub phase: String,
    pub checks: usize,
    pub failed: usize,
    /// Latency percentiles of the passing checks (failed ones timed out or errored: their
    /// latency says little), `None` without any.
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProbeStats {
    pub name: String,
    /// http, tcp, … (from the template); empty when the template does not name it.
    pub kind: String,
    pub mode: String,
    pub checks: usize,
    pub failed: usize,
    /// The phases it checked in, in run order.
    pub phases: Vec<PhaseStats>,
}

/// A failed check, for the list of failures.
#[derive(Clone, Debug, PartialEq)]
pub struct FailedCheck {
    pub t: f64,
    pub probe: String,
    pub phase: String,
    pub latency_ms: f64,
    pub detail: String,
}

/// The report's content.
pub struct Report {
    pub run: RunRow,
    pub project: String,
    pub template: String,
    pub version: VersionRow,
    pub spec: Option<Experiment>,
    pub delegate: Option<String>,
    pub generated_at: DateTime<Utc>,
    /// The zero of every time in the report: `run.started`, else the first event, else the
    /// hub's start time; `None` for a run that never started.
    pub start: Option<DateTime<Utc>>,
    /// The run has ended (nothing is active any more).
    pub done: bool,
    pub timeline: Vec<TimelineItem>,
    pub windows: Vec<FaultWindow>,
    pub actions: Vec<ActionMark>,
    /// From the start to the method's first step.
    pub baseline: Option<(f64, f64)>,
    /// Where the time axis ends: the last event, or now for a run still going.
    pub x_end: f64,
    /// Probe names, sorted (the plot's series and colours, as the dashboard orders them).
    pub probe_names: Vec<String>,
    /// Every check, by start time.
    pub points: Vec<CheckPoint>,
    pub probes: Vec<ProbeStats>,
    /// The first [`FAILURES_LISTED`] failed checks, by start time.
    pub failures: Vec<FailedCheck>,
    pub passed: usize,
    pub failed: usize,
}

/// What the plot needs, borrowed from a [`Report`] (or made by a test).
#[derive(Clone, Copy, Debug)]
pub struct PlotData<'a> {
    pub probes: &'a [String],
    pub points: &'a [CheckPoint],
    pub windows: &'a [FaultWindow],
    pub actions: &'a [ActionMark],
    pub baseline: Option<(f64, f64)>,
    pub x_end: f64,
}

impl Report {
    pub fn plot_data(&self) -> PlotData<'_> {
        PlotData {
            probes: &self.probe_names,
            points: &self.points,
            windows: &self.windows,
            actions: &self.actions,
            baseline: self.baseline,
            x_end: self.x_end,
        }
    }

    /// The run's 8-character id, as the dashboard and the CLI show it.
    pub fn short_id(&self) -> String {
        self.run.id.to_string()[..8].to_string()
    }

    /// Seconds since the run started, `None` before it is known.
    pub fn offset(&self, at: DateTime<Utc>) -> Option<f64> {
        self.start.map(|s| secs(at, s))
    }

    /// The resilience score, or why there is none: "91.7", "none: aborted at steps[1]", "n/a".
    pub fn score_text(&self) -> String {
        if let Some(s) = self.run.score {
            return format!("{s:.1}");
        }
        if !self.done {
            return "not yet".into();
        }
        if self.run.dry_run {
            return "none: a dry run applies nothing".into();
        }
        match self.run.state.as_str() {
            "ABORTED" | "ERROR" => {
                let word = if self.run.state == "ABORTED" {
                    "aborted"
                } else {
                    "ended in error"
                };
                let last = self
                    .timeline
                    .iter()
                    .rev()
                    .find(|t| t.kind == events::FAULT_APPLIED)
                    .and_then(|t| {
                        t.title
                            .split_once('(')
                            .map(|(_, p)| p.trim_end_matches(')'))
                    });
                match last {
                    Some(path) => format!("none: {word} at {path}"),
                    None => format!("none: {word} before the faults"),
                }
            }
            _ => "n/a: no check counted for a fault".into(),
        }
    }

    /// "1.3 s, back 1.3 s after process-kill (steps[0]) at +5.0 s", or "–".
    pub fn recovery_text(&self) -> String {
        match (self.run.recovery_ms, &self.run.recovery_from) {
            (Some(ms), Some(from)) => {
                format!(
                    "{}, {}",
                    duration_ms(ms as f64),
                    from.0.sentence(ms.max(0) as u64)
                )
            }
            (Some(ms), None) => duration_ms(ms as f64),
            _ => "–".into(),
        }
    }

    /// The latency statistics sentences, one per latency-measuring probe.
    pub fn latency(&self) -> &[stats::LatencyShift] {
        self.run
            .latency
            .as_ref()
            .map(|l| l.0.as_slice())
            .unwrap_or(&[])
    }
}

impl Report {
    /// The method as the template planned it, one line per step: "steps[0]: process-pause for
    /// 5s (weight 5)".
    pub fn planned_steps(&self) -> Vec<String> {
        let Some(spec) = &self.spec else {
            return Vec::new();
        };
        let held = |d: &Option<faultline_experiment::Dur>| {
            d.as_ref().map(|d| format!(" for {d}")).unwrap_or_default()
        };
        spec.steps
            .iter()
            .enumerate()
            .map(|(i, st)| {
                let named = |what: String| match &st.name {
                    Some(n) if !n.is_empty() => format!("{n}: {what}"),
                    _ => what,
                };
                let what = if let Some(f) = &st.fault {
                    let w = st
                        .weight
                        .unwrap_or(faultline_experiment::template::default_weight());
                    format!("{f}{} (weight {w})", held(&st.duration))
                } else if let Some(p) = &st.pause {
                    format!("pause {p}")
                } else if let Some(group) = &st.parallel {
                    let faults: Vec<String> = group
                        .iter()
                        .map(|f| format!("{}{}", f.fault, held(&f.duration)))
                        .collect();
                    format!("together: {}", faults.join(", "))
                } else if let Some(a) = &st.action {
                    let how = if a.http.is_some() {
                        "an HTTP request"
                    } else {
                        "a program"
                    };
                    let bg = if st.background {
                        ", in the background"
                    } else {
                        ""
                    };
                    let undo = if st.undo.is_some() {
                        ", with an undo"
                    } else {
                        ""
                    };
                    format!("action: {how}{bg}{undo}")
                } else {
                    "?".into()
                };
                format!("steps[{i}]: {}", named(what))
            })
            .collect()
    }
}

fn secs(at: DateTime<Utc>, start: DateTime<Utc>) -> f64 {
    (at - start).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6
}

/// "850 ms", "1.3 s" (the dashboard's timeline wording).
pub fn duration_ms(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{} ms", ms.round())
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

/// Kinds whose fault is an instant, not a window (unless it reports a revert or a watch).
const ONE_SHOT: &[&str] = &["process-kill"];

/// A fault the run applied, while folding its events.
struct FaultState {
    step: i64,
    path: String,
    fault: String,
    applied: DateTime<Utc>,
    ended: Option<DateTime<Utc>>,
    /// How its end is known: `reverted`, `watched` (a kill's watch is over) or `inferred`.
    how: &'static str,
}

/// The stage index of a fault path: `steps[2].parallel[0]` → 2.
fn stage_of(path: &str) -> Option<u64> {
    let rest = path.strip_prefix("steps[")?;
    rest.split(']').next()?.parse().ok()
}

/// Ends, as inferred at `at`, every fault still open that `which` picks.
fn end_faults(faults: &mut [FaultState], at: DateTime<Utc>, which: &dyn Fn(&FaultState) -> bool) {
    for f in faults.iter_mut().filter(|f| f.ended.is_none()) {
        if which(f) {
            (f.ended, f.how) = (Some(at), "inferred");
        }
    }
}

fn s<'a>(p: &'a Value, key: &str) -> &'a str {
    p.get(key).and_then(Value::as_str).unwrap_or("")
}

fn n(p: &Value, key: &str) -> Option<f64> {
    p.get(key).and_then(Value::as_f64).filter(|v| v.is_finite())
}

fn with_path(what: &str, path: &str) -> String {
    if path.is_empty() {
        what.to_string()
    } else {
        format!("{what} ({path})")
    }
}

impl Report {
    pub fn build(input: Input) -> Report {
        let Input {
            run,
            project,
            template,
            version,
            spec,
            delegate,
            events: evs,
            checks,
            generated_at,
        } = input;
        let done = TERMINAL.contains(&run.state.as_str());
        let check_time = |c: &TimedCheck| {
            c.started_ms
                .and_then(DateTime::<Utc>::from_timestamp_millis)
                .unwrap_or(c.at)
        };
        let start = evs
            .iter()
            .find(|e| e.kind == events::RUN_STARTED)
            .or(evs.first())
            .map(|e| e.at)
            .or(run.started_at)
            .or_else(|| checks.iter().map(check_time).min());
        let last_at = evs
            .iter()
            .map(|e| e.at)
            .chain(checks.iter().map(|c| c.at))
            .max();

        let mut timeline = Vec::new();
        let mut faults: Vec<FaultState> = Vec::new();
        let mut actions = Vec::new();
        let mut method_at: Option<DateTime<Utc>> = None;
        let zero = start.unwrap_or(generated_at);
        for e in &evs {
            let p = &e.payload.0;
            let title;
            let (mut detail, mut tone) = (String::new(), Tone::Info);
            match e.kind.as_str() {
                events::RUN_STARTED => {
                    title = if p.get("dryRun") == Some(&Value::Bool(true)) {
                        "Dry run started".into()
                    } else {
                        "Run started".into()
                    };
                    detail = [
                        s(p, "template").to_string(),
                        n(p, "version").map(|v| format!("v{v}")).unwrap_or_default(),
                    ]
                    .iter()
                    .filter(|x| !x.is_empty())
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" ");
                }
                events::FAULT_APPLIED | events::FAULT_PLANNED => {
                    let planned = e.kind == events::FAULT_PLANNED;
                    let (path, fault) = (s(p, "path"), s(p, "fault"));
                    let fault = if fault.is_empty() { "?" } else { fault };
                    let verb = if planned { "Planned" } else { "Applied" };
                    (title, detail) = (
                        format!("{verb} {}", with_path(fault, path)),
                        s(p, "detail").to_string(),
                    );
                    tone = if planned { Tone::Info } else { Tone::Fault };
                    if !planned {
                        method_at.get_or_insert(e.at);
                        // Stages run one after another: a later stage starting means every
                        // earlier one ended.
                        if let Some(stage) = stage_of(path) {
                            end_faults(&mut faults, e.at, &|g| {
                                stage_of(&g.path).is_some_and(|x| x < stage)
                            });
                        }
                        let step = n(p, "step").map(|v| v as i64).unwrap_or(-1);
                        let f = FaultState {
                            step,
                            path: path.to_string(),
                            fault: fault.to_string(),
                            applied: e.at,
                            ended: None,
                            how: "",
                        };
                        match faults.iter_mut().find(|g| g.step == step) {
                            Some(g) => *g = f,
                            None => faults.push(f),
                        }
                    }
                }
                events::FAULT_REVERTED | events::FAULT_ENDED => {
                    let watched = e.kind == events::FAULT_ENDED;
                    let step = n(p, "step").map(|v| v as i64).unwrap_or(-1);
                    let mut path = s(p, "path").to_string();
                    if let Some(f) = faults.iter_mut().find(|g| g.step == step) {
                        (f.ended, f.how) =
                            (Some(e.at), if watched { "watched" } else { "reverted" });
                        if path.is_empty() {
                            path = f.path.clone();
                        }
                    }
                    let fault = s(p, "fault");
                    let fault = if fault.is_empty() { "?" } else { fault };
                    let verb = if watched { "Watch ended:" } else { "Reverted" };
                    title = format!("{verb} {}", with_path(fault, &path));
                    detail = s(p, "detail").to_string();
                    tone = Tone::Ok;
                }
                events::PAUSE_STARTED => {
                    method_at.get_or_insert(e.at);
                    if let Some(stage) = n(p, "stage") {
                        end_faults(&mut faults, e.at, &|g| {
                            stage_of(&g.path).is_some_and(|x| (x as f64) < stage)
                        });
                    }
                    title = match n(p, "durationMs") {
                        Some(d) => format!("Pause for {}", duration_ms(d)),
                        None => "Pause".into(),
                    };
                }
                events::GUARDRAIL_TRIPPED => {
                    let probe = s(p, "probe");
                    title = format!(
                        "Guardrail tripped: {}",
                        if probe.is_empty() { "?" } else { probe }
                    );
                    detail = n(p, "consecutiveFailures")
                        .map(|c| format!("{c} failed checks in a row"))
                        .unwrap_or_default();
                    tone = Tone::Bad;
                }
                events::ROLLBACK_DONE => {
                    let ok = p.get("ok") == Some(&Value::Bool(true));
                    let name = match s(p, "name") {
                        "" => format!(
                            "#{}",
                            n(p, "index").map(|i| i.to_string()).unwrap_or("?".into())
                        ),
                        name => name.to_string(),
                    };
                    title = format!("Rollback {name} {}", if ok { "done" } else { "failed" });
                    detail = s(p, "detail").to_string();
                    tone = if ok { Tone::Ok } else { Tone::Bad };
                }
                events::ACTION_STARTED | events::ACTION_DONE | events::ACTION_UNDONE => {
                    let name = [s(p, "name"), s(p, "path")]
                        .into_iter()
                        .find(|x| !x.is_empty())
                        .unwrap_or("action");
                    let ok = p.get("ok") == Some(&Value::Bool(true));
                    let what = match e.kind.as_str() {
                        events::ACTION_STARTED => "started",
                        events::ACTION_DONE if ok => "done",
                        events::ACTION_DONE => "failed",
                        _ if ok => "undone",
                        _ => "undo failed",
                    };
                    detail = s(p, "detail").to_string();
                    if e.kind == events::ACTION_STARTED {
                        method_at.get_or_insert(e.at);
                        let bg = if p.get("background") == Some(&Value::Bool(true)) {
                            " (background)"
                        } else {
                            ""
                        };
                        title = format!("Action {name} started{bg}");
                        tone = Tone::Fault;
                    } else {
                        title = format!("Action {name} {what}");
                        tone = if ok { Tone::Ok } else { Tone::Bad };
                    }
                    actions.push(ActionMark {
                        t: secs(e.at, zero),
                        label: format!("{name} {what}"),
                        bad: e.kind != events::ACTION_STARTED && !ok,
                    });
                }
                events::RUN_RECOVERED => {
                    end_faults(&mut faults, e.at, &|_| true);
                    let ms = n(p, "recoveryMs");
                    let from = p.get("from").unwrap_or(&Value::Null);
                    let (path, what) = (s(from, "path"), s(from, "what"));
                    let since = match ms {
                        Some(ms) if !path.is_empty() => {
                            let thing = if what == "action" {
                                format!("action {path}")
                            } else {
                                format!("{what} ({path})")
                            };
                            format!(" {} after {thing}", duration_ms(ms))
                        }
                        Some(ms) => format!(" in {}", duration_ms(ms)),
                        None => String::new(),
                    };
                    title = format!("Recovered{since}");
                    tone = Tone::Ok;
                }
                events::RUN_ABORTED => {
                    title = "Aborted".into();
                    detail = match s(p, "reason") {
                        "" => "aborted".into(),
                        r => r.to_string(),
                    };
                    tone = Tone::Warn;
                }
                events::RUN_FINISHED => {
                    end_faults(&mut faults, e.at, &|_| true);
                    let verdict = match s(p, "verdict") {
                        "" => "ERROR",
                        v => v,
                    };
                    let score = n(p, "score")
                        .map(|s| format!(", score {s:.1}"))
                        .unwrap_or_default();
                    title = format!("Finished: {verdict}{score}");
                    detail = s(p, "reason").to_string();
                    tone = match verdict {
                        "PASSED" => Tone::Ok,
                        "ABORTED" => Tone::Warn,
                        _ => Tone::Bad,
                    };
                }
                other => {
                    title = other.to_string();
                    detail = p.to_string().chars().take(300).collect();
                }
            }
            timeline.push(TimelineItem {
                at: e.at,
                t: secs(e.at, zero),
                kind: e.kind.clone(),
                title,
                detail,
                tone,
            });
        }

        let end = if done {
            last_at.unwrap_or(generated_at)
        } else {
            last_at.map_or(generated_at, |l| l.max(generated_at))
        };
        let windows = faults
            .iter()
            .map(|f| {
                let from = secs(f.applied, zero);
                let one_shot = ONE_SHOT.contains(&f.fault.as_str());
                let instant = one_shot && !matches!(f.how, "reverted" | "watched");
                let ended = f.ended.or(done.then_some(end));
                let active = !instant && ended.is_none();
                let to = match (instant, ended) {
                    (true, _) => from,
                    (false, Some(e)) => secs(e, zero),
                    (false, None) => secs(end, zero).max(from),
                };
                let label = if one_shot && f.how == "watched" {
                    format!("{} (watch)", f.fault)
                } else {
                    f.fault.clone()
                };
                FaultWindow {
                    step: f.step,
                    label,
                    from,
                    to,
                    instant,
                    active,
                }
            })
            .collect();

        // Checks, placed when they started (the moment their phase was read).
        let mut order: Vec<(DateTime<Utc>, &TimedCheck)> =
            checks.iter().map(|c| (check_time(c), c)).collect();
        order.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.seq.cmp(&b.1.seq)));
        let mut probe_names: Vec<String> = checks.iter().map(|c| c.probe.clone()).collect();
        probe_names.sort();
        probe_names.dedup();
        let index: BTreeMap<&str, usize> = probe_names
            .iter()
            .enumerate()
            .map(|(i, p)| (p.as_str(), i))
            .collect();
        let points: Vec<CheckPoint> = order
            .iter()
            .map(|(at, c)| CheckPoint {
                probe: index[c.probe.as_str()],
                t: secs(*at, zero),
                latency_ms: c.latency_ms,
                ok: c.ok,
            })
            .collect();
        let failed = checks.iter().filter(|c| !c.ok).count();
        let failures = order
            .iter()
            .filter(|(_, c)| !c.ok)
            .take(FAILURES_LISTED)
            .map(|(at, c)| FailedCheck {
                t: secs(*at, zero),
                probe: c.probe.clone(),
                phase: c.phase.clone(),
                latency_ms: c.latency_ms,
                detail: c.detail.clone(),
            })
            .collect();
        let probes = probe_stats(&probe_names, &checks, spec.as_ref());
        let x_end = [
            1.0,
            secs(end, zero),
            points.iter().map(|p| p.t).fold(0.0, f64::max),
        ]
        .into_iter()
        .fold(0.0, f64::max);
        let baseline = match method_at {
            Some(m) if m > zero => Some((0.0, secs(m, zero))),
            Some(_) => None,
            None if done => None,
            None => Some((0.0, x_end)),
        };
        Report {
            passed: checks.len() - failed,
            failed,
            run,
            project,
            template,
            version,
            spec,
            delegate,
            generated_at,
            start,
            done,
            timeline,
            windows,
            actions,
            baseline,
            x_end,
            probe_names,
            points,
            probes,
            failures,
        }
    }
}

/// Per probe (in `names` order) and phase: counts and the percentiles of passing checks.
fn probe_stats(
    names: &[String],
    checks: &[TimedCheck],
    spec: Option<&Experiment>,
) -> Vec<ProbeStats> {
    names
        .iter()
        .map(|name| {
            let mine: Vec<&TimedCheck> = checks.iter().filter(|c| &c.probe == name).collect();
            let declared = spec.and_then(|s| s.hypothesis.probes.iter().find(|p| &p.name == name));
            let mode = mine
                .iter()
                .rev()
                .map(|c| c.mode.as_str())
                .find(|m| !m.is_empty())
                .map(str::to_string)
                .or_else(|| declared.map(|p| p.mode.as_str().to_string()))
                .unwrap_or_default();
            let mut phases: Vec<&str> = mine.iter().map(|c| c.phase.as_str()).collect();
            phases.sort_by_key(|p| {
                (
                    PHASES.iter().position(|x| x == p).unwrap_or(PHASES.len()),
                    *p,
                )
            });
            phases.dedup();
            ProbeStats {
                name: name.clone(),
                kind: declared
                    .map(|p| p.kind_name().to_string())
                    .unwrap_or_default(),
                mode,
                checks: mine.len(),
                failed: mine.iter().filter(|c| !c.ok).count(),
                phases: phases
                    .into_iter()
                    .map(|phase| {
                        let here: Vec<&&TimedCheck> =
                            mine.iter().filter(|c| c.phase == phase).collect();
                        let mut ok: Vec<f64> = here
                            .iter()
                            .filter(|c| c.ok && c.latency_ms.is_finite())
                            .map(|c| c.latency_ms)
                            .collect();
                        ok.sort_by(f64::total_cmp);
                        let q = |p| stats::quantile_sorted(&ok, p);
                        PhaseStats {
                            phase: phase.to_string(),
                            checks: here.len(),
                            failed: here.iter().filter(|c| !c.ok).count(),
                            p50: q(0.5),
                            p95: q(0.95),
                            p99: q(0.99),
                            max: ok.last().copied(),
                        }
                    })
                    .collect(),
            }
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use sqlx::types::Json;
    use uuid::Uuid;

    pub fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-05T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    pub fn at(ms: i64) -> DateTime<Utc> {
        t0() + chrono::Duration::milliseconds(ms)
    }

    pub fn ev(seq: i64, ms: i64, kind: &str, payload: Value) -> EventRow {
        EventRow {
            seq,
            at: at(ms),
            kind: kind.into(),
            payload: Json(payload),
        }
    }

    pub fn check(
        seq: i64,
        probe: &str,
        phase: &str,
        ms: i64,
        ok: bool,
        latency: f64,
    ) -> TimedCheck {
        TimedCheck {
            seq,
            probe: probe.into(),
            phase: phase.into(),
            mode: "continuous".into(),
            at: at(ms + latency as i64),
            started_ms: Some(at(ms).timestamp_millis()),
            ok,
            latency_ms: latency,
            detail: if ok {
                String::new()
            } else {
                "connection refused".into()
            },
        }
    }

    pub fn input(state: &str, events: Vec<EventRow>, checks: Vec<TimedCheck>) -> Input {
        Input {
            run: RunRow {
                id: Uuid::from_u128(0x1234abcd_0000_4000_8000_000000000001),
                project_id: Uuid::from_u128(1),
                template_id: Uuid::from_u128(2),
                template_version: 3,
                delegate_id: None,
                state: state.into(),
                planned_ms: 10_000,
                abort_requested_at: None,
                score: Some(87.5),
                delegate_score: Some(87.5),
                recovery_ms: Some(1300),
                recovery_from: Some(Json(events::RecoveryFrom {
                    event: events::FAULT_REVERTED.into(),
                    path: "steps[0]".into(),
                    what: "process-pause".into(),
                    at_ms: 5000,
                })),
                verdict_reason: Some("every probe held".into()),
                latency: None,
                created_by: "user:ana@example.com".into(),
                created_at: t0(),
                started_at: Some(t0()),
                ended_at: Some(at(9000)),
                dry_run: false,
                schedule_id: None,
                checks_ok: 0,
                checks_failed: 0,
                events_pruned_at: None,
            },
            project: "default".into(),
            template: "pause-web".into(),
            version: VersionRow {
                version: 3,
                yaml: String::new(),
                created_by: "user:ana@example.com".into(),
                created_at: t0(),
                git_commit: None,
                git_path: None,
            },
            spec: None,
            delegate: Some("edge-1".into()),
            events,
            checks,
            generated_at: at(60_000),
        }
    }

    /// A run with two stages, a one-shot kill, an action and a finish.
    pub fn sample() -> Report {
        let checks = vec![
            check(2, "web", "before", 500, true, 10.0),
            check(4, "web", "during", 3000, false, 500.0),
            check(9, "web", "after", 8000, true, 12.0),
            check(11, "api", "during", 2500, true, 40.0),
        ];
        Report::build(input("FAILED", sample_events(), checks))
    }

    pub fn sample_events() -> Vec<EventRow> {
        vec![
            ev(
                1,
                0,
                "run.started",
                serde_json::json!({"template": "pause-web", "version": 3}),
            ),
            ev(
                3,
                2000,
                "fault.applied",
                serde_json::json!({"step": 0, "path": "steps[0]", "fault": "process-pause", "detail": "pid 42"}),
            ),
            ev(
                5,
                5000,
                "fault.reverted",
                serde_json::json!({"step": 0, "path": "steps[0]", "fault": "process-pause", "detail": ""}),
            ),
            ev(
                6,
                6000,
                "fault.applied",
                serde_json::json!({"step": 1, "path": "steps[1]", "fault": "process-kill", "detail": "pid 43"}),
            ),
            ev(
                7,
                6500,
                "action.started",
                serde_json::json!({"step": 2, "path": "steps[2]", "name": "scale-up", "detail": ""}),
            ),
            ev(
                8,
                7000,
                "action.done",
                serde_json::json!({"step": 2, "path": "steps[2]", "name": "scale-up", "ok": false, "detail": "exit 1"}),
            ),
            ev(
                10,
                9000,
                "run.finished",
                serde_json::json!({"verdict": "FAILED", "score": 87.5, "reason": "r", "checksPassed": 3, "checksTotal": 4}),
            ),
        ]
    }

    #[test]
    fn fault_windows_follow_the_events_and_stages() {
        let r = sample();
        assert_eq!(r.start, Some(t0()));
        assert_eq!(r.windows.len(), 2);
        let pause = &r.windows[0];
        assert_eq!(
            (pause.from, pause.to, pause.instant, pause.active),
            (2.0, 5.0, false, false)
        );
        // A kill without a watch is an instant at its time.
        let kill = &r.windows[1];
        assert_eq!((kill.from, kill.to, kill.instant), (6.0, 6.0, true));
        assert_eq!(r.baseline, Some((0.0, 2.0)));
        assert_eq!(r.x_end, 9.0);
        assert_eq!(r.actions.len(), 2);
        assert!(r.actions[1].bad && !r.actions[0].bad);
    }

    #[test]
    fn an_unreverted_fault_ends_at_the_next_stage_or_the_run_end() {
        let events = vec![
            ev(1, 0, "run.started", serde_json::json!({})),
            ev(
                2,
                1000,
                "fault.applied",
                serde_json::json!({"step": 0, "path": "steps[0]", "fault": "cpu-stress"}),
            ),
            ev(
                3,
                4000,
                "fault.applied",
                serde_json::json!({"step": 1, "path": "steps[1]", "fault": "network-delay"}),
            ),
            ev(
                4,
                7000,
                "run.aborted",
                serde_json::json!({"reason": "guardrail"}),
            ),
        ];
        let r = Report::build(input("ABORTED", events, vec![]));
        assert_eq!((r.windows[0].from, r.windows[0].to), (1.0, 4.0));
        assert_eq!((r.windows[1].from, r.windows[1].to), (4.0, 7.0));
        assert!(!r.windows[1].active, "the run has ended");
        let mut live = input(
            "RUNNING",
            vec![
                ev(1, 0, "run.started", serde_json::json!({})),
                ev(
                    2,
                    1000,
                    "fault.applied",
                    serde_json::json!({"step": 0, "path": "steps[0]", "fault": "cpu-stress"}),
                ),
            ],
            vec![],
        );
        live.run.score = None;
        let r = Report::build(live);
        assert!(r.windows[0].active);
        assert_eq!(r.windows[0].to, 60.0, "shaded to now");
        assert_eq!(r.score_text(), "not yet");
    }

    #[test]
    fn timeline_reads_like_the_run_view() {
        let r = sample();
        let titles: Vec<&str> = r.timeline.iter().map(|t| t.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "Run started",
                "Applied process-pause (steps[0])",
                "Reverted process-pause (steps[0])",
                "Applied process-kill (steps[1])",
                "Action scale-up started",
                "Action scale-up failed",
                "Finished: FAILED, score 87.5",
            ]
        );
        assert_eq!(r.timeline[0].detail, "pause-web v3");
        assert_eq!(r.timeline[2].t, 5.0);
        assert_eq!(r.timeline[5].tone, Tone::Bad);
    }

    #[test]
    fn probes_are_counted_per_phase_with_percentiles_of_passing_checks() {
        let r = sample();
        assert_eq!(r.probe_names, ["api", "web"]);
        assert_eq!((r.passed, r.failed), (3, 1));
        let web = &r.probes[1];
        assert_eq!((web.checks, web.failed), (3, 1));
        let phases: Vec<&str> = web.phases.iter().map(|p| p.phase.as_str()).collect();
        assert_eq!(phases, ["before", "during", "after"]);
        let during = &web.phases[1];
        assert_eq!((during.checks, during.failed, during.p50), (1, 1, None));
        assert_eq!(web.phases[0].p50, Some(10.0));
        assert_eq!(r.failures.len(), 1);
        assert_eq!(r.failures[0].t, 3.0, "placed at its start");
        assert_eq!(r.failures[0].detail, "connection refused");
        // Points are in start order, each with its probe's index.
        let ts: Vec<f64> = r.points.iter().map(|p| p.t).collect();
        assert_eq!(ts, [0.5, 2.5, 3.0, 8.0]);
        assert_eq!(r.points[1].probe, 0);
    }

    #[test]
    fn score_and_recovery_say_why() {
        let r = sample();
        assert_eq!(r.score_text(), "87.5");
        assert_eq!(
            r.recovery_text(),
            "1.3 s, back 1.3 s after process-pause (steps[0]) was reverted at +5.0 s"
        );
        let mut i = input(
            "ABORTED",
            vec![
                ev(1, 0, "run.started", serde_json::json!({})),
                ev(
                    2,
                    1000,
                    "fault.applied",
                    serde_json::json!({"step": 0, "path": "steps[0]", "fault": "cpu-stress"}),
                ),
            ],
            vec![],
        );
        i.run.score = None;
        assert_eq!(Report::build(i).score_text(), "none: aborted at steps[0]");
    }
}
