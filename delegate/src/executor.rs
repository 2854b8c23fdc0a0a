//! The executor: the registry of runs on this delegate. It accepts assignments (persisting each
//! spec before answering `RunAccepted`), spawns one task per run ([`crate::run`] drives it),
//! stops runs on abort, halt, dead-man or shutdown and waits until their faults are reverted,
//! and at start finishes runs a previous process left in flight.
//!
//! Sending belongs to the link, persistence of events to the outbox, the faults and probes
//! themselves to their registries.
pub use crate::run::Stop;
use crate::{
    faults::Faults,
    journal::Journal,
    outbox::Outbox,
    probes::Probes,
    run::{lock, Deps, Run, Tally},
    state::{run_ids_with_suffix, valid_run_id, write_durable},
};
use faultline_experiment::{
    events::{self, ProbeCheck, Verdict},
    Experiment,
};
use faultline_proto::v1::{self as pb, delegate_message::Msg};
use futures::future::join_all;
use serde::{Deserialize, Serialize};
use std::{
    collections::{HashMap, VecDeque},
    fs,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
};
use tokio::sync::{mpsc, oneshot, watch};

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
    /// Resolve every fault and list its targets; apply nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// The run's project (for log lines; empty from older hubs).
    #[serde(default)]
    pub project: String,
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
                tracing::info!(%run_id, "ignoring a repeated assignment")
            }
            Err(StartError::Closed) => {
                tracing::info!(%run_id, "ignoring an assignment during shutdown")
            }
            Err(StartError::Rejected(reason)) => {
                tracing::warn!(%run_id, %reason, "rejecting run");
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
        // The operator's policy, as the sandbox holds it (the faults hold the same one and
        // check it again on what each fault resolves to).
        let refused = crate::allow::refusals(inner.probes.sandbox().policy(), &req.spec);
        if !refused.is_empty() {
            return Err(StartError::Rejected(refused.join("; ")));
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
        // Every line the run logs carries its id (and, through the delegate's span, the
        // delegate's name and project).
        let span = tracing::info_span!(
            "run",
            run_id = %req.run_id,
            template = %req.template_name,
            project = %req.project
        );
        span.in_scope(|| tracing::info!(version = req.template_version, "run accepted"));
        tokio::spawn(tracing::Instrument::instrument(
            run_task(inner.clone(), req, stop_rx, done_tx),
            span,
        ));
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
        tracing::info!(%run_id, reason = %stop.reason(), "stopping run");
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
                            tally.record(&c.ordinals(), c.ok);
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
            tracing::warn!(%run_id, "finished a run interrupted by a restart (ERROR)");
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
        dry_run: a.dry_run,
        project: a.project,
    })
}

async fn run_task(
    inner: Arc<Inner>,
    req: RunRequest,
    stop_rx: oneshot::Receiver<Stop>,
    done: watch::Sender<bool>,
) {
    let deps = Deps {
        outbox: inner.outbox.clone(),
        journal: inner.journal.clone(),
        faults: inner.faults.clone(),
        probes: inner.probes.clone(),
    };
    let template = if req.template_name.is_empty() {
        req.spec.metadata.name.clone()
    } else {
        req.template_name.clone()
    };
    let run =
        Run::new(deps, req.run_id, template, req.template_version, req.spec).dry_run(req.dry_run);
    let stopped = async {
        match stop_rx.await {
            Ok(s) => s,
            // The handle is gone without a stop: nothing can stop this run any more.
            Err(_) => std::future::pending().await,
        }
    };
    run.execute(stopped).await;
    let id = &run.run_id;
    lock(&inner.running).remove(id);
    remember_finished(&inner, id);
    let _ = done.send(true);
}
