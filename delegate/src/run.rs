//! One run, start to finish: the state machine the executor spawns per assignment.
//!
//! ```text
//! run.started
//! gate:      every sot / edge / continuous probe checked once (phase before); then the
//!            baseline window, continuous probes sampling; any failure -> FAILED, nothing applied
//! method:    stages in order: a group of faults (applied together, each reverted when its own
//!            duration ends; the group ends with its last fault), a pause, or a custom action
//!            (its undo journalled first; `background` ones run alongside the next stages);
//!            at its end, background actions are awaited and every undo runs, newest first
//! recovery:  from the end of the last group (for a one-shot kill: the kill) or action (its
//!            undo), until every eot / edge / continuous probe passes and keeps passing, at
//!            most recoverWithin; a method with no fault and no action (a steady-state check)
//!            checks each eot / edge probe once instead, and every check must have passed
//! finish:    revert whatever the journal still holds (faults, then undos), run rollbacks,
//!            run.finished
//! ```
//! Alongside, continuous probes check every `interval` for the whole run and onChaos probes
//! while any fault is active. Every check counts in the score for the faults active when it
//! started (else the most recent group, else the first). Guardrails (`abortWhen`) and
//! `stopOnFailure` end the run early from any check.
use crate::{
    actions,
    faults::{Faults, RunCtx},
    journal::Journal,
    outbox::Outbox,
    probes::{Check, Probes},
};
use faultline_experiment::{
    events::{
        self, ActionEvent, FaultEvent, GuardrailTripped, Phase, ProbeCheck, RecoveryFrom,
        RunFinished, Verdict,
    },
    phase::FaultClock,
    probes::{Mode, Probe as ProbeSpec, ProbeKind},
    stats,
    template::PlannedAction,
    Dur, Experiment, Stage,
};
use futures::{future::join_all, stream::FuturesUnordered, Future, StreamExt};
use serde::Serialize;
use serde_json::json;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};
use tokio::{
    sync::{mpsc, watch, Notify},
    time::{sleep, sleep_until, Instant},
};

/// What a run needs from the delegate.
#[derive(Clone)]
pub struct Deps {
    pub outbox: Arc<Outbox>,
    pub journal: Arc<Journal>,
    pub faults: Arc<Faults>,
    pub probes: Arc<Probes>,
}

/// Why a run is stopped from outside before it ends by itself.
#[derive(Clone, Debug)]
pub enum Stop {
    /// The hub asked (`AbortRun` or `HaltAll`), with its reason.
    Abort(String),
    /// The hub has been unreachable for longer than the dead-man timeout.
    DeadMan(Dur),
    /// The delegate is shutting down.
    Shutdown,
    /// The hub revoked or rejected the delegate's credential.
    Revoked,
}

impl Stop {
    fn verdict(&self) -> Verdict {
        match self {
            Stop::Abort(_) => Verdict::Aborted,
            _ => Verdict::Error,
        }
    }

    pub fn reason(&self) -> String {
        match self {
            Stop::Abort(r) if r.trim().is_empty() => "aborted".into(),
            Stop::Abort(r) => r.clone(),
            Stop::DeadMan(d) => {
                format!("lost the hub for longer than the dead-man timeout ({d}); faults reverted")
            }
            Stop::Shutdown => "the delegate shut down mid-run; faults reverted".into(),
            Stop::Revoked => "the delegate's credential was revoked; faults reverted".into(),
        }
    }
}

/// Where a run ended up.
pub enum Outcome {
    Passed,
    /// A dry run resolved every fault; the reason lists how many.
    DryRun(String),
    Failed(String),
    Error(String),
    /// A guardrail tripped: ABORTED.
    Guardrail(String),
    Stopped(Stop),
}

/// A check that ends the run early.
enum Halt {
    Guardrail(String),
    StopOnFailure(String),
}

/// Probe outcomes so far, for the score, the counts and the statistics in `run.finished`.
#[derive(Default)]
pub struct Tally {
    /// (fault ordinal, ok), one per ordinal a check counts for.
    checks: Vec<(usize, bool)>,
    total: u32,
    passed: u32,
    pub recovery_ms: Option<u64>,
    /// What `recovery_ms` is measured from.
    pub recovery_from: Option<RecoveryFrom>,
    /// Per latency-measuring probe: latencies of checks before the faults, and of checks that
    /// started while faults were active; a failed check is `f64::INFINITY`.
    samples: HashMap<String, (Vec<f64>, Vec<f64>)>,
}

impl Tally {
    pub fn record(&mut self, ordinals: &[usize], ok: bool) {
        self.checks.extend(ordinals.iter().map(|o| (*o, ok)));
        self.total += 1;
        self.passed += ok as u32;
    }

    pub fn finished(&self, weights: &[u8], verdict: Verdict, reason: String) -> RunFinished {
        let mut latency: Vec<stats::LatencyShift> = self
            .samples
            .iter()
            .map(|(probe, (before, during))| stats::latency_shift(probe, before, during))
            .collect();
        latency.sort_by(|a, b| a.probe.cmp(&b.probe));
        // Only a run that measured what it promised has a score: an aborted or failed-to-run
        // one keeps its tallies, and no score.
        let score = match verdict {
            Verdict::Passed | Verdict::Failed => {
                faultline_experiment::score::score(weights, self.checks.iter().copied())
            }
            Verdict::Aborted | Verdict::Error => None,
        };
        RunFinished {
            verdict,
            score,
            reason,
            checks_passed: self.passed,
            checks_total: self.total,
            recovery_ms: self.recovery_ms,
            latency,
            recovery_from: self.recovery_from.clone(),
        }
    }
}

/// Per probe: the health the recovery watch and the guardrails read.
#[derive(Default, Clone, Copy)]
struct Health {
    /// Since when it has passed without a failure (`None` while failing).
    passing_since: Option<Instant>,
    /// Start of its latest passing check.
    last_pass: Option<Instant>,
    consecutive_failures: u32,
}

pub struct Run {
    deps: Deps,
    pub run_id: String,
    template: String,
    version: u32,
    spec: Experiment,
    tally: Mutex<Tally>,
    /// The faults' windows: the phase and score attribution of each check as it starts.
    clock: Mutex<FaultClock>,
    /// When `run.started` was written; offsets in events (`atMs`) count from here.
    started: Mutex<Option<Instant>>,
    /// Whether any fault is active, for onChaos probes to wait on.
    active_tx: watch::Sender<bool>,
    health: Mutex<HashMap<String, Health>>,
    /// Wakes the recovery watch after every check.
    checked: Notify,
    halt_tx: mpsc::UnboundedSender<Halt>,
    halt_rx: Mutex<Option<mpsc::UnboundedReceiver<Halt>>>,
    /// Failures that decide the verdict once the method is over: onChaos checks, and checks
    /// before the first fault.
    failures: Mutex<Vec<(Phase, String)>>,
    /// Resolve and list the faults only: no probe, no fault, no rollback.
    dry_run: bool,
}

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Run {
    pub fn new(
        deps: Deps,
        run_id: String,
        template: String,
        version: u32,
        spec: Experiment,
    ) -> Self {
        let (halt_tx, halt_rx) = mpsc::unbounded_channel();
        let first_group = spec
            .plan()
            .into_iter()
            .find_map(|s| match s {
                Stage::Faults(g) => Some(g.iter().map(|f| f.ordinal).collect()),
                Stage::Pause(_) | Stage::Action(_) => None,
            })
            .unwrap_or_default();
        let clock = FaultClock::new(spec.faults().len(), first_group);
        Run {
            deps,
            run_id,
            template,
            version,
            spec,
            tally: Mutex::new(Tally::default()),
            clock: Mutex::new(clock),
            started: Mutex::new(None),
            active_tx: watch::channel(false).0,
            health: Mutex::new(HashMap::new()),
            checked: Notify::new(),
            halt_tx,
            halt_rx: Mutex::new(Some(halt_rx)),
            failures: Mutex::new(Vec::new()),
            dry_run: false,
        }
    }

    /// Makes this a dry run: every fault is resolved and its targets listed (`fault.planned`),
    /// nothing is applied, no probe runs, no rollback runs.
    pub fn dry_run(mut self, yes: bool) -> Self {
        self.dry_run = yes;
        self
    }

    fn id(&self) -> &str {
        &self.run_id
    }

    fn emit<P: Serialize + ?Sized>(&self, kind: &str, payload: &P) {
        if let Err(e) = self.deps.outbox.push(self.id(), kind, payload) {
            tracing::error!(run_id = %self.id(), kind, error = format!("{e:#}"), "failed to record an event");
        }
    }

    /// Drives the run until it ends by itself, a check halts it, or `stop` resolves; then
    /// reverts, runs rollbacks and writes `run.finished`.
    pub async fn execute(&self, stop: impl std::future::Future<Output = Stop>) {
        let mut halt_rx = lock(&self.halt_rx).take().expect("a run executes once");
        let halted = async {
            match halt_rx.recv().await {
                Some(Halt::Guardrail(r)) => Outcome::Guardrail(r),
                Some(Halt::StopOnFailure(r)) => Outcome::Failed(r),
                None => std::future::pending().await,
            }
        };
        let outcome = tokio::select! {
            o = self.drive(), if !self.dry_run => o,
            o = self.plan_only(), if self.dry_run => o,
            o = halted => o,
            s = stop => Outcome::Stopped(s),
        };
        self.finish(outcome).await;
    }

    /// One check of `probe`: up to `attempts` tries `interval` apart; recorded, scored and
    /// emitted. Returns the check.
    async fn check(&self, probe: &ProbeSpec) -> Check {
        let started = Instant::now();
        let started_ms = crate::now_ms();
        let (phase, counts_for, active) = {
            let c = lock(&self.clock);
            (c.phase(), c.counts_for(), c.any_active())
        };
        let tries = probe.attempts.max(1);
        let mut attempt = 1;
        let mut c = self.deps.probes.check(probe).await;
        while !c.ok && attempt < tries {
            sleep(probe.interval.0).await;
            attempt += 1;
            c = self.deps.probes.check(probe).await;
        }
        if attempt > 1 {
            c.detail = format!("{} (attempt {attempt} of {tries})", c.detail);
        }
        self.record(
            probe,
            (started, started_ms),
            phase,
            counts_for,
            active,
            attempt,
            &c,
        );
        c
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        probe: &ProbeSpec,
        (started, started_ms): (Instant, i64),
        phase: Phase,
        counts_for: Vec<usize>,
        active: bool,
        attempts: u32,
        c: &Check,
    ) {
        {
            let mut tally = lock(&self.tally);
            tally.record(&counts_for, c.ok);
            if measures_latency(probe) && matches!(phase, Phase::Before | Phase::During) {
                let s = tally.samples.entry(probe.name.clone()).or_default();
                // A failed check is an observation too: a latency censored at the top.
                let sample = if c.ok { c.latency_ms } else { f64::INFINITY };
                if phase == Phase::Before {
                    &mut s.0
                } else {
                    &mut s.1
                }
                .push(sample);
            }
        }
        let failures = {
            let mut health = lock(&self.health);
            let h = health.entry(probe.name.clone()).or_default();
            if c.ok {
                h.passing_since.get_or_insert(started);
                h.last_pass = Some(started);
                h.consecutive_failures = 0;
            } else {
                h.passing_since = None;
                h.consecutive_failures += 1;
            }
            h.consecutive_failures
        };
        tracing::debug!(run_id = %self.id(), probe = %probe.name, phase = phase.as_str(), ok = c.ok, detail = %c.detail, "probe check");
        self.emit(
            events::PROBE_CHECK,
            &ProbeCheck {
                probe: probe.name.clone(),
                phase,
                step: counts_for.first().copied().unwrap_or_default(),
                counts_for,
                mode: probe.mode.as_str().into(),
                attempts,
                ok: c.ok,
                latency_ms: c.latency_ms,
                detail: c.detail.clone(),
                output: c.output.clone(),
                started_ms: Some(started_ms),
            },
        );
        if !c.ok {
            let what = format!("{}: {}", probe.name, c.detail);
            if phase == Phase::Before || (probe.mode == Mode::OnChaos && active) {
                lock(&self.failures).push((phase, what.clone()));
            }
            if probe.stop_on_failure {
                let _ = self
                    .halt_tx
                    .send(Halt::StopOnFailure(format!("probe {what} (stopOnFailure)")));
            }
            for g in self
                .spec
                .abort_when
                .iter()
                .filter(|g| g.probe == probe.name)
            {
                if failures >= g.consecutive_failures {
                    self.emit(
                        events::GUARDRAIL_TRIPPED,
                        &GuardrailTripped {
                            probe: probe.name.clone(),
                            consecutive_failures: failures,
                        },
                    );
                    let _ = self.halt_tx.send(Halt::Guardrail(format!(
                        "guardrail: probe {} failed {failures} checks in a row (last: {})",
                        probe.name, c.detail
                    )));
                }
            }
        }
        self.checked.notify_waiters();
    }

    /// A dry run: resolves every fault as it would be applied (allow-list included) and lists
    /// the targets. FAILED with every reason when any fault could not be applied now.
    async fn plan_only(&self) -> Outcome {
        self.emit(
            events::RUN_STARTED,
            &json!({ "template": self.template, "version": self.version, "dryRun": true }),
        );
        let faults = self.spec.faults();
        let mut problems = Vec::new();
        for f in &faults {
            let kind = f.spec.kind();
            let ctx = RunCtx {
                run_id: self.id(),
                step: f.ordinal,
            };
            match self.deps.faults.plan(&f.spec, ctx) {
                Ok(a) => {
                    tracing::info!(run_id = %self.id(), fault = f.ordinal, path = %f.path, kind, detail = %a.detail, "fault planned (dry run)");
                    self.emit(
                        events::FAULT_PLANNED,
                        &FaultEvent {
                            step: f.ordinal,
                            path: f.path.clone(),
                            fault: kind.into(),
                            detail: a.detail,
                        },
                    );
                }
                Err(e) => problems.push(format!("{} ({kind}): {e}", f.path)),
            }
        }
        let sandbox = self.deps.probes.sandbox();
        for (at, a) in self
            .spec
            .plan()
            .iter()
            .filter_map(|s| match s {
                Stage::Action(a) => Some(a),
                _ => None,
            })
            .flat_map(|a| {
                [
                    (format!("{}.action", a.path), Some(&a.action)),
                    (format!("{}.undo", a.path), a.undo.as_ref()),
                ]
            })
        {
            if let Some(Err(e)) = a.map(|a| actions::check(sandbox, a)) {
                problems.push(format!("{at}: {e}"));
            }
        }
        if problems.is_empty() {
            Outcome::DryRun(format!(
                "dry run: {} fault{} resolved, nothing applied",
                faults.len(),
                if faults.len() == 1 { "" } else { "s" }
            ))
        } else {
            Outcome::Failed(format!("dry run: {}", problems.join("; ")))
        }
    }

    async fn drive(&self) -> Outcome {
        *lock(&self.started) = Some(Instant::now());
        self.emit(
            events::RUN_STARTED,
            &json!({ "template": self.template, "version": self.version }),
        );
        let probes = &self.spec.hypothesis.probes;
        let (end_tx, end_rx) = watch::channel(false);

        // Gate: one check of every probe that checks before the faults.
        join_all(
            probes
                .iter()
                .filter(|p| p.mode.at_start() || p.mode == Mode::Continuous)
                .map(|p| async move {
                    sleep(p.initial_delay.0).await;
                    self.check(p).await;
                }),
        )
        .await;

        // From here, continuous and onChaos probes run beside the method until the run ends.
        let background = join_all(probes.iter().filter_map(|p| match p.mode {
            Mode::Continuous => Some(futures::future::Either::Left(
                self.continuous(p, end_rx.clone()),
            )),
            Mode::OnChaos => Some(futures::future::Either::Right(
                self.on_chaos(p, end_rx.clone()),
            )),
            _ => None,
        }));
        let main = async {
            let outcome = self.method_and_recovery().await;
            let _ = end_tx.send(true);
            outcome
        };
        let (outcome, _) = tokio::join!(main, background);
        outcome
    }

    async fn method_and_recovery(&self) -> Outcome {
        sleep(self.spec.hypothesis.baseline.0).await;
        if let Some(failed) = self.failed_in(Phase::Before) {
            return Outcome::Failed(format!(
                "steady state did not hold before the faults: {failed}"
            ));
        }
        let ended = match self.method().await {
            Ok(t) => t,
            Err(o) => return o,
        };
        let chaos = self
            .spec
            .plan()
            .iter()
            .any(|s| !matches!(s, Stage::Pause(_)));
        if !chaos {
            return self.steady_state_verdict().await;
        }
        let recovered = self.recovery(ended.0).await;
        self.verdict(recovered, ended.1)
    }

    /// A method with no fault and no action: each eot / edge probe is checked once, and the
    /// steady state held when every check of the run passed.
    async fn steady_state_verdict(&self) -> Outcome {
        let end = self
            .spec
            .hypothesis
            .probes
            .iter()
            .filter(|p| matches!(p.mode, Mode::Eot | Mode::Edge));
        let failed: Vec<String> = join_all(end.map(|p| async move {
            sleep(p.initial_delay.0).await;
            let c = self.check(p).await;
            (!c.ok).then(|| format!("{}: {}", p.name, c.detail))
        }))
        .await
        .into_iter()
        .flatten()
        .collect();
        if !failed.is_empty() {
            return Outcome::Failed(format!(
                "steady state did not hold at the end: {}",
                failed.join("; ")
            ));
        }
        let (passed, total) = {
            let t = lock(&self.tally);
            (t.passed, t.total)
        };
        if passed < total {
            return Outcome::Failed(format!(
                "steady state did not hold: {} of {total} checks failed",
                total - passed
            ));
        }
        Outcome::Passed
    }

    /// Every `interval` until the run ends.
    async fn continuous(&self, p: &ProbeSpec, mut end: watch::Receiver<bool>) {
        let mut next = Instant::now() + p.interval.0;
        loop {
            tokio::select! {
                _ = sleep_until(next) => {}
                _ = end.wait_for(|e| *e) => return,
            }
            self.check(p).await;
            next = (next + p.interval.0).max(Instant::now());
        }
    }

    /// Every `interval` while a fault is active, after `initialDelay` in each active window.
    async fn on_chaos(&self, p: &ProbeSpec, mut end: watch::Receiver<bool>) {
        let mut active = self.active_tx.subscribe();
        loop {
            tokio::select! {
                r = active.wait_for(|a| *a) => if r.is_err() { return },
                _ = end.wait_for(|e| *e) => return,
            }
            tokio::select! {
                _ = sleep(p.initial_delay.0) => {}
                _ = end.wait_for(|e| *e) => return,
            }
            let mut next = Instant::now();
            while *active.borrow() {
                self.check(p).await;
                next = (next + p.interval.0).max(Instant::now());
                tokio::select! {
                    _ = sleep_until(next) => {}
                    _ = active.wait_for(|a| !*a) => break,
                    _ = end.wait_for(|e| *e) => return,
                }
            }
        }
    }

    fn failed_in(&self, phase: Phase) -> Option<String> {
        let f = lock(&self.failures);
        let mut failed: Vec<&str> = f
            .iter()
            .filter(|(p, _)| *p == phase)
            .map(|(_, w)| w.as_str())
            .collect();
        failed.dedup();
        (!failed.is_empty()).then(|| failed.join("; "))
    }

    /// Runs the stages; returns when the last fault ended (for a one-shot kill: when it was
    /// applied) or the last action (or its undo), and that event, or the outcome that ends the
    /// run.
    async fn method(&self) -> Result<(Instant, Option<RecoveryFrom>), Outcome> {
        let mut ended = (Instant::now(), None);
        let plan = self.spec.plan();
        let mut background = FuturesUnordered::new();
        for (i, stage) in plan.iter().enumerate() {
            let step = async {
                match stage {
                    Stage::Pause(d) => {
                        self.emit(
                            events::PAUSE_STARTED,
                            &json!({ "stage": i, "durationMs": d.as_millis() as u64 }),
                        );
                        sleep(*d).await;
                        Ok(None)
                    }
                    Stage::Faults(group) => self.group(group).await.map(Some),
                    Stage::Action(a) => self.action(a).await.map(|()| {
                        Some((
                            Instant::now(),
                            Some(self.reference(events::ACTION_DONE, &a.path, "action")),
                        ))
                    }),
                }
            };
            if let Stage::Action(a) = stage {
                if a.background {
                    background.push(async move { self.action(a).await.map(|()| &a.path) });
                    continue;
                }
            }
            if let Some(t) = alongside(step, &mut background).await? {
                ended = t;
            }
        }
        while let Some(r) = background.next().await {
            let path = r?;
            ended = (
                Instant::now(),
                Some(self.reference(events::ACTION_DONE, path, "action")),
            );
        }
        if let Some(path) = self.undo_actions().await? {
            ended = (
                Instant::now(),
                Some(self.reference(events::ACTION_UNDONE, &path, "action")),
            );
        }
        Ok(ended)
    }

    /// What recovery is measured from: an event of this run, now.
    fn reference(&self, event: &str, path: &str, what: &str) -> RecoveryFrom {
        let at_ms = lock(&self.started).map_or(0, |t| t.elapsed().as_millis() as u64);
        RecoveryFrom {
            event: event.into(),
            path: path.into(),
            what: what.into(),
            at_ms,
        }
    }

    /// One custom action step: its undo journalled first (refused before anything runs when
    /// the undo may not run here), then the action, at most its timeout.
    async fn action(&self, a: &PlannedAction) -> Result<(), Outcome> {
        let sandbox = self.deps.probes.sandbox();
        let fail = |why: String| Outcome::Error(format!("{} (action) {why}", a.path));
        if let Some(undo) = &a.undo {
            actions::check(sandbox, undo)
                .map_err(|e| fail(format!("cannot be undone here: {e}")))?;
            actions::journal_undo(&self.deps.journal, self.id(), a, undo)
                .map_err(|e| fail(format!("cannot write the fault journal: {e:#}")))?;
        }
        let event = |ok: Option<bool>, detail: String, output: Option<String>| ActionEvent {
            step: a.step,
            path: a.path.clone(),
            name: a.name.clone().unwrap_or_default(),
            ok,
            detail,
            background: a.background,
            output,
        };
        self.emit(
            events::ACTION_STARTED,
            &event(None, actions::describe(&a.action), None),
        );
        let done = actions::run(sandbox, &a.action).await;
        tracing::info!(run_id = %self.id(), path = %a.path, ok = done.ok, detail = %done.detail, "action done");
        self.emit(
            events::ACTION_DONE,
            &event(Some(done.ok), done.detail.clone(), done.output),
        );
        if done.ok {
            Ok(())
        } else {
            Err(fail(format!("failed: {}", done.detail)))
        }
    }

    /// Runs the undos the run's actions journalled, newest first; the path of the action undone
    /// last, if any. A failed undo is an error of the run (its action's effect may still be
    /// there).
    async fn undo_actions(&self) -> Result<Option<String>, Outcome> {
        let undos = actions::pending_undos(&self.deps.journal, self.id());
        let mut failed = Vec::new();
        let mut last = None;
        for entry in &undos {
            if let Some(ev) =
                actions::undo(self.deps.probes.sandbox(), &self.deps.journal, entry).await
            {
                if ev.ok == Some(false) {
                    failed.push(format!("{} could not be undone: {}", ev.path, ev.detail));
                }
                last = Some(ev.path.clone());
                self.emit(events::ACTION_UNDONE, &ev);
            }
        }
        if failed.is_empty() {
            Ok(last)
        } else {
            Err(Outcome::Error(failed.join("; ")))
        }
    }

    /// Applies every fault of a group, holds each for its own time, reverts it; returns when
    /// the group's last fault ended (a one-shot kill: when it was applied), and that event.
    async fn group(
        &self,
        group: &[faultline_experiment::template::PlannedFault],
    ) -> Result<(Instant, Option<RecoveryFrom>), Outcome> {
        let (faults, journal) = (&self.deps.faults, &self.deps.journal);
        let mut applied = Vec::new();
        for f in group {
            let kind = f.spec.kind();
            let fault = match faults.get(kind) {
                Ok(x) => x,
                Err(e) => return Err(Outcome::Error(e.to_string())),
            };
            let a = faults
                .inject(
                    journal,
                    &f.spec,
                    RunCtx {
                        run_id: self.id(),
                        step: f.ordinal,
                    },
                )
                .map_err(|e| {
                    Outcome::Error(format!("{} ({kind}) could not be applied: {e}", f.path))
                })?;
            let revertible = fault.revertible(&a);
            tracing::info!(run_id = %self.id(), fault = f.ordinal, path = %f.path, kind, detail = %a.detail, "fault applied");
            self.emit(
                events::FAULT_APPLIED,
                &FaultEvent {
                    step: f.ordinal,
                    path: f.path.clone(),
                    fault: kind.into(),
                    detail: a.detail.clone(),
                },
            );
            let ordinals: Vec<usize> = group.iter().map(|f| f.ordinal).collect();
            lock(&self.clock).applied(f.ordinal, &ordinals);
            self.active_tx.send_replace(true);
            let reference = self.reference(events::FAULT_APPLIED, &f.path, kind);
            applied.push((f, a, revertible, Instant::now(), reference));
        }
        let ends = join_all(applied.into_iter().map(|(f, a, revertible, at, applied_ref)| async move {
            sleep(f.hold).await;
            let kind = f.spec.kind();
            let reverted = faults.revert(journal, &a);
            {
                let mut c = lock(&self.clock);
                c.ended(f.ordinal);
                self.active_tx.send_replace(c.any_active());
            }
            match reverted {
                Ok(detail) if revertible => {
                    tracing::info!(run_id = %self.id(), fault = f.ordinal, kind, %detail, "fault reverted");
                    self.emit(
                        events::FAULT_REVERTED,
                        &FaultEvent {
                            step: f.ordinal,
                            path: f.path.clone(),
                            fault: kind.into(),
                            detail,
                        },
                    );
                    Ok((Instant::now(), Some(self.reference(events::FAULT_REVERTED, &f.path, kind))))
                }
                // A one-shot fault cannot be undone: its window closes when its watch is over,
                // and recovery counts from the moment it was applied.
                Ok(_) => {
                    let mut detail = format!("watched for {:?}; a {kind} is not undone", f.hold);
                    if let Some(o) = faults.get(kind).ok().and_then(|x| x.outcome(&a)) {
                        detail.push_str(&format!("; {o}"));
                    }
                    self.emit(
                        events::FAULT_ENDED,
                        &FaultEvent {
                            step: f.ordinal,
                            path: f.path.clone(),
                            fault: kind.into(),
                            detail,
                        },
                    );
                    Ok((at, Some(applied_ref)))
                }
                Err(e) => Err(Outcome::Error(format!(
                    "{} ({kind}) could not be reverted: {e}",
                    f.path
                ))),
            }
        }))
        .await;
        let mut last: Option<(Instant, Option<RecoveryFrom>)> = None;
        for e in ends {
            let e = e?;
            if last.as_ref().is_none_or(|l| e.0 >= l.0) {
                last = Some(e);
            }
        }
        Ok(last.unwrap_or_else(|| (Instant::now(), None)))
    }

    /// Waits until every probe that checks after chaos passes and keeps passing, measured from
    /// `since`, at most `recoverWithin`.
    async fn recovery(&self, since: Instant) -> Recovery {
        let probes: Vec<&ProbeSpec> = self
            .spec
            .hypothesis
            .probes
            .iter()
            .filter(|p| p.mode.at_end())
            .collect();
        if probes.is_empty() {
            return Recovery::NotMeasured;
        }
        let within = self.spec.hypothesis.recover_within;
        let deadline = since + within.0;
        // eot and edge probes poll until they pass; continuous ones keep their own pace.
        let pollers = join_all(
            probes
                .iter()
                .filter(|p| matches!(p.mode, Mode::Eot | Mode::Edge))
                .map(|p| async move {
                    sleep(p.initial_delay.0).await;
                    loop {
                        let started = Instant::now();
                        if self.check(p).await.ok {
                            return;
                        }
                        let next = started + p.interval.0;
                        if next > deadline {
                            return;
                        }
                        sleep_until(next.max(Instant::now())).await;
                    }
                }),
        );
        let watch = async {
            loop {
                let notified = self.checked.notified();
                if let Some(at) = self.recovered_at(&probes, since) {
                    return Recovery::Within((at - since).as_millis() as u64);
                }
                tokio::select! {
                    _ = notified => {}
                    _ = sleep_until(deadline) => {
                        // A check that started in time may still be finishing.
                        return match self.recovered_at(&probes, since) {
                            Some(at) => Recovery::Within((at - since).as_millis() as u64),
                            None => Recovery::TooLate(within),
                        };
                    }
                }
            }
        };
        // The pollers stop by themselves at the deadline; the watch decides.
        let (r, _) = tokio::join!(watch, pollers);
        r
    }

    /// When every probe passed (a check started after `since`) and has kept passing.
    fn recovered_at(&self, probes: &[&ProbeSpec], since: Instant) -> Option<Instant> {
        let health = lock(&self.health);
        let mut latest = since;
        for p in probes {
            let h = health.get(&p.name)?;
            if h.last_pass? < since {
                return None;
            }
            latest = latest.max(h.passing_since?.max(since));
        }
        Some(latest)
    }

    fn verdict(&self, recovered: Recovery, from: Option<RecoveryFrom>) -> Outcome {
        match recovered {
            Recovery::Within(ms) => {
                {
                    let mut t = lock(&self.tally);
                    t.recovery_ms = Some(ms);
                    t.recovery_from = from.clone();
                }
                self.emit(
                    events::RUN_RECOVERED,
                    &json!({ "recoveryMs": ms, "from": from }),
                );
            }
            Recovery::TooLate(within) => {
                let of = from
                    .map(|f| format!(" ({})", f.describe()))
                    .unwrap_or_default();
                return Outcome::Failed(format!("did not recover within {within}{of}"));
            }
            Recovery::NotMeasured => {}
        }
        if let Some(failed) = self.failed_in(Phase::During) {
            return Outcome::Failed(format!(
                "the hypothesis did not hold during chaos: {failed}"
            ));
        }
        if let Some(min) = self.spec.hypothesis.min_score {
            let score = faultline_experiment::score::score(
                &self.spec.weights(),
                lock(&self.tally).checks.iter().copied(),
            );
            if let Some(s) = score.filter(|s| *s < min) {
                return Outcome::Failed(format!("resilience score {s:.1} is below minScore {min}"));
            }
        }
        Outcome::Passed
    }

    /// Reverts whatever is still applied, runs the rollbacks, then writes the final events.
    async fn finish(&self, outcome: Outcome) {
        if let Outcome::Stopped(stop) = &outcome {
            self.emit(events::RUN_ABORTED, &json!({ "reason": stop.reason() }));
        }
        let (faults, journal) = (&self.deps.faults, &self.deps.journal);
        for a in journal
            .entries_for(self.id())
            .into_iter()
            .filter(|a| a.kind != actions::UNDO_KIND)
        {
            let revertible = faults
                .get(&a.kind)
                .map(|f| f.revertible(&a))
                .unwrap_or(false);
            match faults.revert(journal, &a) {
                Ok(detail) => {
                    tracing::info!(run_id = %self.id(), fault = a.step, kind = %a.kind, %detail, "fault reverted");
                    if revertible {
                        self.emit(
                            events::FAULT_REVERTED,
                            &FaultEvent {
                                step: a.step,
                                path: String::new(),
                                fault: a.kind.clone(),
                                detail,
                            },
                        );
                    }
                }
                Err(e) => {
                    tracing::error!(run_id = %self.id(), fault = a.step, kind = %a.kind, error = %e, "failed to revert a fault; the journal keeps it for the next start")
                }
            }
        }
        self.active_tx.send_replace(false);
        // What the method's end did not undo (the run was stopped, or an action failed).
        if let Err(Outcome::Error(e)) = self.undo_actions().await {
            tracing::error!(run_id = %self.id(), error = %e, "an undo failed");
        }
        let rollbacks = if self.dry_run {
            &[][..]
        } else {
            &self.spec.rollbacks[..]
        };
        for (i, r) in rollbacks.iter().enumerate() {
            let done = actions::rollback(self.deps.probes.sandbox(), i, r).await;
            tracing::info!(run_id = %self.id(), rollback = i, ok = done.ok, detail = %done.detail, "rollback");
            self.emit(events::ROLLBACK_DONE, &done);
        }
        let (verdict, reason) = match outcome {
            Outcome::Passed => {
                let t = lock(&self.tally);
                match (t.recovery_ms, &t.recovery_from) {
                    (Some(ms), Some(from)) => (Verdict::Passed, from.sentence(ms)),
                    (Some(ms), None) => (Verdict::Passed, format!("recovered in {ms} ms")),
                    _ => (Verdict::Passed, "the hypothesis held".into()),
                }
            }
            Outcome::DryRun(r) => (Verdict::Passed, r),
            Outcome::Failed(r) => (Verdict::Failed, r),
            Outcome::Error(r) => (Verdict::Error, r),
            Outcome::Guardrail(r) => (Verdict::Aborted, r),
            Outcome::Stopped(s) => (s.verdict(), s.reason()),
        };
        let fin = lock(&self.tally).finished(&self.spec.weights(), verdict, reason);
        tracing::info!(run_id = %self.id(), verdict = verdict.as_str(), score = ?fin.score, reason = %fin.reason, "run finished");
        self.emit(events::RUN_FINISHED, &fin);
    }
}

/// Drives `step` to its end while the background actions in `background` run; the first of
/// them to fail ends the method.
async fn alongside<T, B, X>(
    step: impl Future<Output = Result<T, Outcome>>,
    background: &mut FuturesUnordered<B>,
) -> Result<T, Outcome>
where
    B: Future<Output = Result<X, Outcome>>,
{
    tokio::pin!(step);
    loop {
        tokio::select! {
            // Background actions first: one pushed just now starts before the next step.
            biased;
            Some(r) = background.next(), if !background.is_empty() => { r?; }
            r = &mut step => return r,
        }
    }
}

enum Recovery {
    Within(u64),
    TooLate(Dur),
    NotMeasured,
}

/// Probes whose latency says something about the system under test and that sample both
/// before and during the faults: continuous network probes.
fn measures_latency(p: &ProbeSpec) -> bool {
    p.mode == Mode::Continuous
        && matches!(
            p.kind(),
            Some(
                ProbeKind::Http(_)
                    | ProbeKind::Tcp(_)
                    | ProbeKind::Postgres(_)
                    | ProbeKind::Redis(_)
            )
        )
}
