//! `pod-delete`: deletes the target pods through the Kubernetes API (all matches, or `count` /
//! `percentage` of them at random), with their own grace period, a given one, or `force`
//! (grace period 0). A deletion cannot be undone: the pods' controller replaces them, so a
//! one-shot delete's revert does nothing, like `process-kill`'s.
//!
//! With `interval`, the delete repeats for the step's duration: a thread selects the pods anew
//! every `interval` and deletes them. The fault is then held, and its revert stops the thread.
//! The thread lives in the delegate's process, so after a restart the revert of a journalled
//! entry has nothing left to stop.
use super::{Applied, Fault, FaultError, RunCtx};
use crate::k8s::{Kube, KubeError};
use faultline_experiment::faults::{FaultSpec, PodTarget};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams};
use rand::seq::SliceRandom;
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

pub struct PodDelete {
    kube: Option<Arc<Kube>>,
    /// Running repetitions by (run, step).
    repeats: Mutex<HashMap<(String, usize), Repeat>>,
}

impl PodDelete {
    pub fn new(kube: Option<Arc<Kube>>) -> Self {
        PodDelete {
            kube,
            repeats: Mutex::new(HashMap::new()),
        }
    }

    fn kube(&self) -> Result<&Arc<Kube>, FaultError> {
        self.kube
            .as_ref()
            .ok_or(FaultError::Kube(KubeError::NotConfigured))
    }
}

/// What the journal keeps in `Applied.data`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    target: PodTarget,
    /// The pods picked for the first deletion.
    pods: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    grace_period_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    interval_ms: Option<u64>,
}

struct Repeat {
    /// Dropping it wakes and ends the thread.
    stop: mpsc::Sender<()>,
    thread: thread::JoinHandle<()>,
    rounds: Arc<AtomicU32>,
    deleted: Arc<AtomicU32>,
}

fn data(a: &Applied) -> Option<Data> {
    serde_json::from_value(a.data.clone()).ok()
}

/// The names of the pods `target` selects now, in a random order of which the first
/// `target.pick(n)` are the ones to delete; and how many matched.
pub(super) fn select(kube: &Kube, target: &PodTarget) -> Result<(Vec<String>, usize), FaultError> {
    let ns = target.namespace.clone();
    let mut found: Vec<String> = if target.names.is_empty() {
        let mut lp = ListParams::default();
        if let Some(l) = &target.label_selector {
            lp = lp.labels(l);
        }
        if let Some(f) = &target.field_selector {
            lp = lp.fields(f);
        }
        let list = kube.call("list pods", |c| async move {
            Api::<Pod>::namespaced(c, &ns).list(&lp).await
        })?;
        list.items
            .into_iter()
            // A pod already being deleted counts as gone.
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter_map(|p| p.metadata.name)
            .collect()
    } else {
        let mut out = Vec::new();
        for name in &target.names {
            let (ns, n) = (ns.clone(), name.clone());
            match kube.call("get pod", |c| async move {
                Api::<Pod>::namespaced(c, &ns).get_opt(&n).await
            })? {
                Some(p) if p.metadata.deletion_timestamp.is_none() => out.push(name.clone()),
                _ => {}
            }
        }
        out
    };
    let matched = found.len();
    found.shuffle(&mut rand::rng());
    found.truncate(target.pick(matched));
    Ok((found, matched))
}

/// Deletes the pods; returns how many the API took (a pod already gone is not counted).
fn delete(kube: &Kube, ns: &str, pods: &[String], grace: Option<u32>) -> Result<u32, FaultError> {
    let mut deleted = 0;
    for name in pods {
        let (ns, n) = (ns.to_string(), name.clone());
        let dp = DeleteParams {
            grace_period_seconds: grace,
            ..DeleteParams::default()
        };
        match kube.call("delete pod", |c| async move {
            Api::<Pod>::namespaced(c, &ns).delete(&n, &dp).await
        }) {
            Ok(_) => deleted += 1,
            Err(e) if e.status() == Some(404) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(deleted)
}

pub(super) fn what(t: &PodTarget) -> String {
    let mut sel = Vec::new();
    if let Some(l) = &t.label_selector {
        sel.push(format!("labels {l}"));
    }
    if let Some(f) = &t.field_selector {
        sel.push(format!("fields {f}"));
    }
    if !t.names.is_empty() {
        sel.push(format!("names {}", t.names.join(",")));
    }
    format!(
        "in namespace {} matching {}",
        t.namespace,
        sel.join(" and ")
    )
}

impl Fault for PodDelete {
    fn kind(&self) -> &'static str {
        "pod-delete"
    }

    fn revertible(&self, applied: &Applied) -> bool {
        data(applied).is_some_and(|d| d.interval_ms.is_some())
    }

    fn available(&self) -> bool {
        self.kube.as_ref().is_some_and(|k| k.cluster().is_some())
    }

    fn plan(&self, spec: &FaultSpec, ctx: RunCtx<'_>) -> Result<Applied, FaultError> {
        let FaultSpec::PodDelete { target, params } = spec else {
            return Err(FaultError::WrongSpec {
                kind: self.kind(),
                given: spec.kind(),
            });
        };
        let kube = self.kube()?;
        let (pods, matched) = select(kube, target)?;
        if pods.is_empty() {
            return Err(FaultError::NoMatch(format!("no pod {}", what(target))));
        }
        let grace = if params.force {
            Some(0)
        } else {
            params
                .grace_period
                .map(|g| u32::try_from(g.0.as_secs()).unwrap_or(u32::MAX))
        };
        let every = params
            .interval
            .map(|i| format!(", then again every {i} until reverted"))
            .unwrap_or_default();
        let detail = format!(
            "delete {} of {matched} pods {} ({}){every}",
            pods.len(),
            what(target),
            pods.join(", ")
        );
        let d = Data {
            target: target.clone(),
            pods,
            grace_period_seconds: grace,
            interval_ms: params.interval.map(|i| i.as_millis()),
        };
        Ok(Applied::new(
            ctx,
            self.kind(),
            detail,
            serde_json::to_value(d).unwrap_or_default(),
        ))
    }

    fn apply(&self, plan: &Applied) -> Result<(), FaultError> {
        let kube = self.kube()?.clone();
        let d = data(plan).ok_or_else(|| FaultError::Unsupported("pod-delete record".into()))?;
        let sent = delete(&kube, &d.target.namespace, &d.pods, d.grace_period_seconds)?;
        if sent == 0 {
            return Err(FaultError::NoMatch(format!(
                "no pod {} was left to delete",
                what(&d.target)
            )));
        }
        let Some(every) = d.interval_ms.map(Duration::from_millis) else {
            return Ok(());
        };
        let (stop, stopped) = mpsc::channel::<()>();
        let rounds = Arc::new(AtomicU32::new(1));
        let deleted = Arc::new(AtomicU32::new(sent));
        let (rc, dc, run) = (rounds.clone(), deleted.clone(), plan.run_id.clone());
        let thread = thread::Builder::new()
            .name("pod-delete-repeat".into())
            .spawn(move || {
                // A timeout is the next round; a message or a dropped sender is the revert.
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    rc.fetch_add(1, Ordering::Relaxed);
                    let round = select(&kube, &d.target).and_then(|(pods, _)| {
                        delete(&kube, &d.target.namespace, &pods, d.grace_period_seconds)
                    });
                    match round {
                        Ok(n) => {
                            dc.fetch_add(n, Ordering::Relaxed);
                        }
                        Err(e) => {
                            tracing::warn!(run_id = %run, error = %e, "repeated pod delete failed")
                        }
                    }
                }
            })
            .map_err(|e| {
                FaultError::Unsupported(format!("cannot start the repeated delete: {e}"))
            })?;
        let old = self
            .repeats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                (plan.run_id.clone(), plan.step),
                Repeat {
                    stop,
                    thread,
                    rounds,
                    deleted,
                },
            );
        if let Some(old) = old {
            drop(old.stop);
            let _ = old.thread.join();
        }
        Ok(())
    }

    fn revert(&self, applied: &Applied) -> Result<String, FaultError> {
        let r = self
            .repeats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(applied.run_id.clone(), applied.step));
        match r {
            Some(r) => {
                drop(r.stop);
                let _ = r.thread.join();
                Ok(format!(
                    "stopped the repeated delete after {} rounds ({} pods deleted)",
                    r.rounds.load(Ordering::Relaxed),
                    r.deleted.load(Ordering::Relaxed)
                ))
            }
            None if self.revertible(applied) => {
                Ok("nothing to stop: the repeated delete ended with its delegate process".into())
            }
            None => Ok("nothing to undo: deleted pods are replaced by their controller".into()),
        }
    }
}
