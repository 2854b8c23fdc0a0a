//! `process-kill`: sends a signal (default SIGKILL) to the processes matching the target (all,
//! or `count` / `percentage` of them picked at random). A kill cannot be undone, so a one-shot
//! kill's revert does nothing; the step then watches the service come back.
//!
//! With `interval`, the kill repeats for the step's duration: a thread of the delegate finds the
//! targets again every `interval` (a supervisor restarts them with new pids) and signals them,
//! each time checking the allow-list again. The fault is then held like any other, and its
//! revert stops the thread. The thread lives in the delegate's process, so after a restart
//! there is nothing left to stop and the revert of a journalled entry is a no-op.
use super::{process, stress::StressError, Applied, Fault, FaultError, RunCtx};
use crate::allow::AllowList;
use faultline_experiment::faults::{FaultSpec, Pick, PickOrder, ProcessTarget};
use serde::{Deserialize, Serialize};
use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU32, Ordering},
        mpsc, Arc, Mutex,
    },
    thread,
    time::Duration,
};

pub struct ProcessKill {
    /// Repeated kills check each process they find against it, as `inject` does for the first.
    allow: AllowList,
    /// Running repetitions by (run, step).
    repeats: Mutex<HashMap<(String, usize), Repeat>>,
}

/// What a repeated kill keeps in `Applied.data`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RepeatData {
    interval_ms: u64,
    target: ProcessTarget,
    pick: Pick,
    /// Absent in journals written before `pick: oldest | newest` existed.
    #[serde(default)]
    order: PickOrder,
}

struct Repeat {
    /// Dropping it wakes and ends the thread.
    stop: mpsc::Sender<()>,
    thread: thread::JoinHandle<()>,
    rounds: Arc<AtomicU32>,
    signalled: Arc<AtomicU32>,
}

impl ProcessKill {
    pub fn new(allow: AllowList) -> Self {
        ProcessKill {
            allow,
            repeats: Mutex::new(HashMap::new()),
        }
    }
}

fn repeat_data(a: &Applied) -> Option<RepeatData> {
    serde_json::from_value(a.data.clone()).ok()
}

fn signal_of(a: &Applied) -> nix::sys::signal::Signal {
    a.signal
        .as_deref()
        .and_then(|s| s.parse().ok())
        .unwrap_or(nix::sys::signal::Signal::SIGKILL)
}

impl Fault for ProcessKill {
    fn kind(&self) -> &'static str {
        "process-kill"
    }

    fn revertible(&self, applied: &Applied) -> bool {
        repeat_data(applied).is_some()
    }

    fn plan(&self, spec: &FaultSpec, ctx: RunCtx<'_>) -> Result<Applied, FaultError> {
        let FaultSpec::ProcessKill { target, params } = spec else {
            return Err(FaultError::WrongSpec {
                kind: self.kind(),
                given: spec.kind(),
            });
        };
        let (found, what) = process::resolve(target)?;
        let (processes, what) = process::pick(found, &what, params.pick(), params.pick);
        let signal = process::nix_signal(params.signal).as_str();
        let (data, every) = match params.interval {
            Some(i) => (
                serde_json::to_value(RepeatData {
                    interval_ms: i.as_millis(),
                    target: target.clone(),
                    pick: params.pick(),
                    order: params.pick,
                })
                .unwrap_or_default(),
                format!(", then again every {i} until reverted"),
            ),
            None => (serde_json::Value::Null, String::new()),
        };
        Ok(Applied {
            processes,
            signal: Some(signal.into()),
            ..Applied::new(ctx, self.kind(), format!("{signal} to {what}{every}"), data)
        })
    }

    fn apply(&self, plan: &Applied) -> Result<(), FaultError> {
        let sig = signal_of(plan);
        let mut sent = 0;
        for p in &plan.processes {
            if process::signal(p, sig)? {
                sent += 1;
            }
        }
        if sent == 0 {
            // Everything exited between resolving and signalling.
            return Err(match plan.processes.first() {
                Some(p) => FaultError::NoSuchPid(p.pid),
                None => FaultError::NoSuchPid(0),
            });
        }
        if let Some(r) = repeat_data(plan) {
            let (stop, stopped) = mpsc::channel::<()>();
            let rounds = Arc::new(AtomicU32::new(1));
            let signalled = Arc::new(AtomicU32::new(sent));
            let (allow, run) = (self.allow.clone(), plan.run_id.clone());
            let (rc, sc) = (rounds.clone(), signalled.clone());
            let every = Duration::from_millis(r.interval_ms);
            let thread = thread::Builder::new()
                .name("process-kill-repeat".into())
                .spawn(move || {
                    // A timeout is the next round; a message or a dropped sender is the revert.
                    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                        rc.fetch_add(1, Ordering::Relaxed);
                        let Ok((found, what)) = process::resolve(&r.target) else {
                            continue; // not restarted yet
                        };
                        let (picked, _) = process::pick(found, &what, r.pick, r.order);
                        for p in picked {
                            let comm = std::fs::read_to_string(format!("/proc/{}/comm", p.pid))
                                .unwrap_or_default();
                            if !allow.process_name(comm.trim_end()) {
                                tracing::warn!(run_id = %run, pid = p.pid, comm = comm.trim_end(), "repeated kill skips a process the allow-list does not allow");
                                continue;
                            }
                            match process::signal(&p, sig) {
                                Ok(true) => {
                                    sc.fetch_add(1, Ordering::Relaxed);
                                }
                                Ok(false) => {}
                                Err(e) => {
                                    tracing::warn!(run_id = %run, pid = p.pid, error = %e, "repeated kill failed")
                                }
                            }
                        }
                    }
                })
                .map_err(|source| StressError::Io {
                    what: "failed to start the repeated kill".into(),
                    source,
                })?;
            let key = (plan.run_id.clone(), plan.step);
            let old = self
                .repeats
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(
                    key,
                    Repeat {
                        stop,
                        thread,
                        rounds,
                        signalled,
                    },
                );
            if let Some(old) = old {
                drop(old.stop);
                let _ = old.thread.join();
            }
        }
        Ok(())
    }

    fn revert(&self, applied: &Applied) -> Result<String, FaultError> {
        let key = (applied.run_id.clone(), applied.step);
        let r = self
            .repeats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
        match r {
            Some(r) => {
                drop(r.stop);
                let _ = r.thread.join();
                Ok(format!(
                    "stopped the repeated kill after {} rounds ({} signals sent)",
                    r.rounds.load(Ordering::Relaxed),
                    r.signalled.load(Ordering::Relaxed)
                ))
            }
            None if repeat_data(applied).is_some() => {
                Ok("nothing to stop: the repeated kill ended with its delegate process".into())
            }
            None => Ok("nothing to undo: a kill cannot be reverted".into()),
        }
    }
}
