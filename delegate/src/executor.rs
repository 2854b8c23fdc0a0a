//! The executor: one tokio task per run, driving an [`Experiment`] through its phases and
//! reporting every step as an event in the outbox.
//!
//! A run goes: `run.started`; one check of every probe (before); per step, apply the fault
//! (journaled), probe at each probe's interval while it is held, revert; then probe until every
//! probe has passed once or `recoverWithin` runs out (after); `run.finished` with the verdict and
//! the score. Stopping a run (hub abort, halt, dead-man, shutdown) drops the task's future at its
//! next await point and reverts whatever the journal says is still applied.
//!
//! The executor owns run lifecycles and verdicts. Sending belongs to the link, persistence of
//! events to the outbox, the faults and probes themselves to their registries.
use crate::{
    faults::{Faults, RunCtx},
    journal::Journal,
    outbox::Outbox,
    probes::{Check, Probes},
    state::{run_ids_with_suffix, valid_run_id, write_durable},
};
use faultline_proto::v1::{self as pb, delegate_message::Msg};
use faultline_spec::{
    events::{self, FaultEvent, Phase, ProbeCheck, RunFinished, Verdict},
    probes::Probe as ProbeSpec,
    Dur, Experiment,
};
use futures::future::join_all;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::{
    collections::{HashMap, VecDeque},
    fs,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::Duration,
};
use tokio::{
    sync::{mpsc, oneshot, watch},
    time::{sleep_until, timeout_at, Instant},
};

/// Messages for the hub that are not run events (`RunAccepted`, `RunRejected`, `Aborted`).
pub type ToHub = mpsc::UnboundedSender<Msg>;

/// How many finished run ids to remember for spotting a duplicate assignment.
const REMEMBER_FINISHED: usize = 1024;

/// One run as assigned; also what is persisted as `<run_id>.spec.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRequest {
    pub run_id: String,
    pub template_name: String,
    pub template_version: u32,
    pub spec: Experiment,
}

/// Why a run is stopped before it ends by itself.
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

    fn reason(&self) -> String {
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

/// Why a run was not started.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// The run is already running or known from before: ignore the assignment.
    #[error("run is already known")]
    Duplicate,
    /// The delegate is shutting down; the hub re-queues the run when the delegate is back.
    #[error("the delegate is shutting down")]
    Closed,
    /// Cannot run it at all; tell the hub why.
    #[error("{0}")]
    Rejected(String),
}

/// Where a run ended up.
enum Outcome {
    Passed,
    Failed(String),
    Error(String),
    Stopped(Stop),
}

#[derive(Clone)]
pub struct Executor {
    inner: Arc<Inner>,
}

struct Inner {
    outbox: Arc<Outbox>,
    journal: Arc<Journal>,
    faults: Arc<Faults>,
    probes: Arc<Probes>,
    to_hub: ToHub,
    running: Mutex<HashMap<String, Handle>>,
    /// Runs finished by this process, so a repeated assignment is ignored even after their files
    /// are gone.
    finished: Mutex<VecDeque<String>>,
    /// Set on shutdown: no new runs.
    closed: AtomicBool,
}

struct Handle {
    stop: oneshot::Sender<Stop>,
    done: watch::Receiver<bool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Executor {
    pub fn new(
        outbox: Arc<Outbox>,
        journal: Arc<Journal>,
        faults: Arc<Faults>,
        probes: Arc<Probes>,
        to_hub: ToHub,
    ) -> Self {
        Executor {
            inner: Arc::new(Inner {
                outbox,
                journal,
                faults,
                probes,
                to_hub,
                running: Mutex::new(HashMap::new()),
                finished: Mutex::new(VecDeque::new()),
                closed: AtomicBool::new(false),
            }),
        }
    }

    /// Handles `AssignRun`: starts the run, ignores a duplicate, or answers `RunRejected`.
    pub fn assign(&self, a: pb::AssignRun) {
        let run_id = a.run_id.clone();
        let started = parse_assignment(a)
            .map_err(StartError::Rejected)
            .and_then(|req| self.start(req));
        match started {
            Ok(()) => {}
            Err(StartError::Duplicate) => {
                tracing::info!(run = %run_id, "ignoring a repeated assignment")
            }
            Err(StartError::Closed) => {
                tracing::info!(run = %run_id, "ignoring an assignment during shutdown")
            }
            Err(StartError::Rejected(reason)) => {
                tracing::warn!(run = %run_id, %reason, "rejecting run");
                let _ = self
                    .inner
                    .to_hub
                    .send(Msg::RunRejected(pb::RunRejected { run_id, reason }));
            }
        }
    }

    /// Checks that the run can execute here, persists its spec, answers `RunAccepted` and spawns
    /// its task.
    pub fn start(&self, req: RunRequest) -> Result<(), StartError> {
        let inner = &self.inner;
        if inner.closed.load(Ordering::SeqCst) {
            return Err(StartError::Closed);
        }
        if !valid_run_id(&req.run_id) {
            return Err(StartError::Rejected(format!(
                "invalid run id {:?}",
                req.run_id
            )));
        }
        for f in req.spec.faults() {
            inner
                .faults
                .get(f.spec.kind())
                .map_err(|e| StartError::Rejected(e.to_string()))?;
        }
        let mut running = lock(&inner.running);
        if self.knows(&running, &req.run_id) {
            return Err(StartError::Duplicate);
        }
        let bytes = serde_json::to_vec(&req)
            .map_err(|e| StartError::Rejected(format!("cannot encode the run: {e}")))?;
        write_durable(&inner.outbox.spec_path(&req.run_id), &bytes, 0o600)
            .map_err(|e| StartError::Rejected(format!("cannot persist the run: {e:#}")))?;
        let (stop_tx, stop_rx) = oneshot::channel();
        let (done_tx, done_rx) = watch::channel(false);
        running.insert(
            req.run_id.clone(),
            Handle {
                stop: stop_tx,
                done: done_rx,
            },
        );
        drop(running);
        let _ = inner.to_hub.send(Msg::RunAccepted(pb::RunAccepted {
            run_id: req.run_id.clone(),
        }));
        tracing::info!(run = %req.run_id, template = %req.template_name, version = req.template_version, "run accepted");
        tokio::spawn(run_task(inner.clone(), req, stop_rx, done_tx));
        Ok(())
    }

    fn knows(&self, running: &HashMap<String, Handle>, run_id: &str) -> bool {
        running.contains_key(run_id)
            || lock(&self.inner.finished).iter().any(|r| r == run_id)
            || self.inner.outbox.knows(run_id)
            || self.inner.outbox.spec_path(run_id).exists()
    }

    /// Handles `AbortRun`: stops the run if it is running, then confirms with `Aborted` (also for
    /// an unknown or finished run, so repeating an abort is harmless).
    pub async fn abort(&self, run_id: &str, reason: &str) {
        self.stop_one(run_id, Stop::Abort(reason.to_string())).await;
        let _ = self.inner.to_hub.send(Msg::Aborted(pb::Aborted {
            run_id: run_id.to_string(),
        }));
    }

    /// Stops every running run and waits until each has reverted its faults and written its
    /// final events. Shutdown and revocation also refuse new runs from then on.
    pub async fn stop_all(&self, stop: Stop) {
        if matches!(stop, Stop::Shutdown | Stop::Revoked) {
            self.inner.closed.store(true, Ordering::SeqCst);
        }
        let ids = self.running();
        if !ids.is_empty() {
            tracing::warn!(runs = ids.len(), reason = %stop.reason(), "stopping every run");
        }
        join_all(ids.iter().map(|id| self.stop_one(id, stop.clone()))).await;
        if let Stop::Abort(_) = stop {
            for run_id in ids {
                let _ = self.inner.to_hub.send(Msg::Aborted(pb::Aborted { run_id }));
            }
        }
    }

    async fn stop_one(&self, run_id: &str, stop: Stop) {
        let Some(handle) = lock(&self.inner.running).remove(run_id) else {
            return;
        };
        tracing::info!(run = %run_id, reason = %stop.reason(), "stopping run");
        // If the run is already finishing on its own, the send fails and it just completes.
        let _ = handle.stop.send(stop);
        let mut done = handle.done;
        let _ = done.wait_for(|d| *d).await;
    }

    /// Waits until the run is no longer running.
    pub async fn wait(&self, run_id: &str) {
        let done = lock(&self.inner.running)
            .get(run_id)
            .map(|h| h.done.clone());
        if let Some(mut done) = done {
            let _ = done.wait_for(|d| *d).await;
        }
    }

    /// Ids of the runs executing now.
    pub fn running(&self) -> Vec<String> {
        let mut ids: Vec<String> = lock(&self.inner.running).keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Runs the hub must not give up on: executing, or with events it has not acknowledged.
    pub fn inflight(&self) -> Vec<String> {
        let mut ids = self.running();
        ids.extend(self.inner.outbox.unsettled_runs());
        ids.sort();
        ids.dedup();
        ids
    }

    /// At start, after the journal was recovered: every run that was in flight when the previous
    /// process ended gets its `run.finished` (ERROR), so the hub learns its final state.
    pub fn finish_interrupted(&self) -> anyhow::Result<usize> {
        let outbox = &self.inner.outbox;
        let ids = run_ids_with_suffix(outbox.dir(), ".spec.json")?;
        let mut n = 0;
        for run_id in ids {
            if outbox.is_finished(&run_id) {
                continue;
            }
            let weights: Vec<u8> = fs::read(outbox.spec_path(&run_id))
                .ok()
                .and_then(|b| serde_json::from_slice::<RunRequest>(&b).ok())
                .map(|r| r.spec.weights())
                .unwrap_or_default();
            let mut tally = Tally::default();
            for ev in outbox.history(&run_id)? {
                match ev.kind.as_str() {
                    events::PROBE_CHECK => {
                        if let Ok(c) = serde_json::from_str::<ProbeCheck>(&ev.payload_json) {
                            tally.record(c.step, c.ok);
                        }
                    }
                    events::RUN_RECOVERED => {
                        tally.recovery_ms = ev.payload().get("recoveryMs").and_then(|v| v.as_u64());
                    }
                    _ => {}
                }
            }
            let fin = tally.finished(
                &weights,
                Verdict::Error,
                "delegate restarted mid-run; faults reverted".into(),
            );
            outbox.push(&run_id, events::RUN_FINISHED, &fin)?;
            self.remember_finished(&run_id);
            tracing::warn!(run = %run_id, "finished a run interrupted by a restart (ERROR)");
            n += 1;
        }
        Ok(n)
    }

    fn remember_finished(&self, run_id: &str) {
        remember_finished(&self.inner, run_id)
    }
}

fn remember_finished(inner: &Inner, run_id: &str) {
    let mut f = lock(&inner.finished);
    f.push_back(run_id.to_string());
    while f.len() > REMEMBER_FINISHED {
        f.pop_front();
    }
}

/// `AssignRun` -> a checked request, or the reason it cannot run.
pub fn parse_assignment(a: pb::AssignRun) -> Result<RunRequest, String> {
    if !valid_run_id(&a.run_id) {
        return Err(format!("invalid run id {:?}", a.run_id));
    }
    let spec: Experiment =
        serde_json::from_str(&a.spec_json).map_err(|e| format!("invalid spec: {e}"))?;
    spec.validate().map_err(|e| format!("invalid spec: {e}"))?;
    Ok(RunRequest {
        run_id: a.run_id,
        template_name: a.template_name,
        template_version: a.template_version,
        spec,
    })
}

/// Probe outcomes so far, for the score and the counts in `run.finished`.
#[derive(Default)]
struct Tally {
    checks: Vec<(usize, bool)>,
    passed: u32,
    recovery_ms: Option<u64>,
}

impl Tally {
    fn record(&mut self, step: usize, ok: bool) {
        self.checks.push((step, ok));
        self.passed += ok as u32;
    }

    fn finished(&self, weights: &[u8], verdict: Verdict, reason: String) -> RunFinished {
        RunFinished {
            verdict,
            score: faultline_spec::score::score(weights, self.checks.iter().copied()),
            reason,
            checks_passed: self.passed,
            checks_total: self.checks.len() as u32,
            recovery_ms: self.recovery_ms,
            latency: Vec::new(),
        }
    }
}

async fn run_task(
    inner: Arc<Inner>,
    req: RunRequest,
    stop_rx: oneshot::Receiver<Stop>,
    done: watch::Sender<bool>,
) {
    let run = Run {
        inner: inner.clone(),
        req,
        tally: Mutex::new(Tally::default()),
        passing_since: Mutex::new(HashMap::new()),
    };
    let stopped = async {
        match stop_rx.await {
            Ok(s) => s,
            // The handle is gone without a stop: nothing can stop this run any more.
            Err(_) => std::future::pending().await,
        }
    };
    let outcome = tokio::select! {
        o = run.drive() => o,
        s = stopped => Outcome::Stopped(s),
    };
    run.finish(outcome);
    let id = &run.req.run_id;
    lock(&inner.running).remove(id);
    remember_finished(&inner, id);
    let _ = done.send(true);
}

struct Run {
    inner: Arc<Inner>,
    req: RunRequest,
    tally: Mutex<Tally>,
    /// Per probe: since when it has passed without a failure (`None` while failing). Recovery is
    /// read from this, so a recovery inside a kill's watch window is measured, not missed.
    passing_since: Mutex<HashMap<String, Option<Instant>>>,
}

impl Run {
    fn id(&self) -> &str {
        &self.req.run_id
    }

    fn emit<P: Serialize + ?Sized>(&self, kind: &str, payload: &P) {
        if let Err(e) = self.inner.outbox.push(self.id(), kind, payload) {
            tracing::error!(run = %self.id(), kind, error = format!("{e:#}"), "failed to record an event");
        }
    }

    async fn check(&self, probe: &ProbeSpec, phase: Phase, step: usize) -> Check {
        let started = Instant::now();
        let c = self.inner.probes.check(probe).await;
        lock(&self.tally).record(step, c.ok);
        {
            let mut health = lock(&self.passing_since);
            let since = health.entry(probe.name.clone()).or_insert(None);
            *since = if c.ok {
                Some(since.unwrap_or(started))
            } else {
                None
            };
        }
        tracing::debug!(run = %self.id(), probe = %probe.name, phase = phase.as_str(), ok = c.ok, detail = %c.detail, "probe check");
        let ev = ProbeCheck {
            probe: probe.name.clone(),
            phase,
            step,
            counts_for: vec![step],
            mode: probe.mode.as_str().into(),
            attempts: 1,
            ok: c.ok,
            latency_ms: c.latency_ms,
            detail: c.detail.clone(),
        };
        self.emit(events::PROBE_CHECK, &ev);
        c
    }

    async fn drive(&self) -> Outcome {
        let exp = &self.req.spec;
        let template = if self.req.template_name.is_empty() {
            &exp.metadata.name
        } else {
            &self.req.template_name
        };
        self.emit(
            events::RUN_STARTED,
            &json!({ "template": template, "version": self.req.template_version }),
        );

        let probes = &exp.hypothesis.probes;
        let before = join_all(probes.iter().map(|p| self.before_check(p))).await;
        let failing: Vec<String> = before.into_iter().flatten().collect();
        if !failing.is_empty() {
            return Outcome::Failed(format!(
                "steady state did not hold before the fault: {}",
                failing.join("; ")
            ));
        }

        let (faults, journal) = (&self.inner.faults, &self.inner.journal);
        let mut since_last_fault = Instant::now();
        for f in exp.faults() {
            let (i, spec) = (f.ordinal, &f.spec);
            let kind = spec.kind();
            let revertible = match faults.get(kind) {
                Ok(f) => f.revertible(),
                Err(e) => return Outcome::Error(e.to_string()),
            };
            let applied = match faults.inject(
                journal,
                spec,
                RunCtx {
                    run_id: self.id(),
                    step: i,
                },
            ) {
                Ok(a) => a,
                Err(e) => {
                    return Outcome::Error(format!("step {i} ({kind}) could not be applied: {e}"))
                }
            };
            tracing::info!(run = %self.id(), step = i, kind, detail = %applied.detail, "fault applied");
            self.emit(
                events::FAULT_APPLIED,
                &FaultEvent {
                    step: i,
                    path: f.path.clone(),
                    fault: kind.into(),
                    detail: applied.detail.clone(),
                },
            );

            // A one-shot fault (a kill) ends the moment it is applied: recovery counts from here.
            if !revertible {
                since_last_fault = Instant::now();
            }
            self.probe_window(Phase::During, i, f.hold).await;

            match faults.revert(journal, &applied) {
                Ok(detail) if revertible => {
                    tracing::info!(run = %self.id(), step = i, kind, %detail, "fault reverted");
                    self.emit(
                        events::FAULT_REVERTED,
                        &FaultEvent {
                            step: i,
                            path: f.path.clone(),
                            fault: kind.into(),
                            detail,
                        },
                    );
                }
                Ok(_) => {}
                Err(e) => {
                    return Outcome::Error(format!("step {i} ({kind}) could not be reverted: {e}"))
                }
            }
            if revertible {
                since_last_fault = Instant::now();
            }
        }

        let last = exp.weights().len().saturating_sub(1);
        let within = exp.hypothesis.recover_within;
        match self.await_recovery(last, within.0, since_last_fault).await {
            Some(ms) => {
                lock(&self.tally).recovery_ms = Some(ms);
                self.emit(events::RUN_RECOVERED, &json!({ "recoveryMs": ms }));
                Outcome::Passed
            }
            None => Outcome::Failed(format!("did not recover within {within}")),
        }
    }

    /// One steady-state check; `Some("name: detail")` when it failed.
    async fn before_check(&self, p: &ProbeSpec) -> Option<String> {
        let c = self.check(p, Phase::Before, 0).await;
        (!c.ok).then(|| format!("{}: {}", p.name, c.detail))
    }

    /// Every probe at its own interval for `window`; checks still in flight at the end are
    /// dropped (and not counted), so the fault is held for exactly `window`.
    async fn probe_window(&self, phase: Phase, step: usize, window: Duration) {
        let deadline = Instant::now() + window;
        let probes = &self.req.spec.hypothesis.probes;
        let all = join_all(probes.iter().map(|p| async move {
            let mut next = Instant::now();
            while next < deadline {
                self.check(p, phase, step).await;
                next = (next + p.interval.0).max(Instant::now());
                if next >= deadline {
                    break;
                }
                sleep_until(next).await;
            }
        }));
        let _ = timeout_at(deadline, all).await;
    }

    /// Probes until every probe has passed once; returns the recovery time in ms (from `since`
    /// to the start of the check from which the slowest probe has passed without a failure), or
    /// `None` if some probe did not pass by `since + within`. Each probe is checked at least once.
    async fn await_recovery(&self, step: usize, within: Duration, since: Instant) -> Option<u64> {
        let deadline = since + within;
        let probes = &self.req.spec.hypothesis.probes;
        let firsts = join_all(probes.iter().map(|p| async move {
            let mut next = Instant::now();
            let mut first = true;
            loop {
                let started = Instant::now();
                if !first && started > deadline {
                    return None;
                }
                if self.check(p, Phase::After, step).await.ok {
                    return Some(started.max(since));
                }
                first = false;
                next = (next + p.interval.0).max(Instant::now());
                if next > deadline {
                    return None;
                }
                sleep_until(next).await;
            }
        }))
        .await;
        let mut latest = since;
        let health = lock(&self.passing_since);
        for (f, p) in firsts.into_iter().zip(probes) {
            let first_pass = f?;
            let passing = health.get(&p.name).copied().flatten().unwrap_or(first_pass);
            latest = latest.max(passing);
        }
        Some((latest - since).as_millis() as u64)
    }

    /// Reverts whatever is still applied, then writes the final events.
    fn finish(&self, outcome: Outcome) {
        if let Outcome::Stopped(stop) = &outcome {
            self.emit(events::RUN_ABORTED, &json!({ "reason": stop.reason() }));
        }
        let (faults, journal) = (&self.inner.faults, &self.inner.journal);
        for a in journal.entries_for(self.id()) {
            let revertible = faults.get(&a.kind).map(|f| f.revertible()).unwrap_or(false);
            match faults.revert(journal, &a) {
                Ok(detail) => {
                    tracing::info!(run = %self.id(), step = a.step, kind = %a.kind, %detail, "fault reverted");
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
                    tracing::error!(run = %self.id(), step = a.step, kind = %a.kind, error = %e, "failed to revert a fault; the journal keeps it for the next start")
                }
            }
        }
        let (verdict, reason) = match outcome {
            Outcome::Passed => {
                let ms = lock(&self.tally).recovery_ms.unwrap_or_default();
                (Verdict::Passed, format!("recovered in {ms}ms"))
            }
            Outcome::Failed(r) => (Verdict::Failed, r),
            Outcome::Error(r) => (Verdict::Error, r),
            Outcome::Stopped(s) => (s.verdict(), s.reason()),
        };
        let weights = self.req.spec.weights();
        let fin = lock(&self.tally).finished(&weights, verdict, reason);
        tracing::info!(run = %self.id(), verdict = verdict.as_str(), score = ?fin.score, reason = %fin.reason, "run finished");
        self.emit(events::RUN_FINISHED, &fin);
    }
}
