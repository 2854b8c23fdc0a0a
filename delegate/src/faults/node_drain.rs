//! `node-drain`: cordons the target nodes, then evicts their pods through the Eviction API for
//! the step's duration, as `kubectl drain` does.
//!
//! - **What is journalled:** the plan reads the nodes and their pods, so the journal holds
//!   which nodes were schedulable before anything changes. Only those are cordoned, and revert
//!   (also a restarted delegate's journal recovery) uncordons only those.
//! - **Which pods:** DaemonSet pods and static pods' mirrors are left alone (their node runs
//!   them whatever happens), and so are finished and terminating pods. A pod no controller
//!   manages, or one with an `emptyDir` volume, makes the plan refuse, naming it, unless
//!   `force` / `deleteEmptyDirData` says so: such a pod, or its data, would be gone for good.
//! - **PodDisruptionBudgets:** an eviction a budget refuses (429 TooManyRequests) is retried
//!   every `retryInterval` until every pod is evicted or the step ends. A pod still blocked
//!   then stays where it is, and revert says so.
//! - **Following the pods:** once every pod is evicted, a watch of each node's pods follows
//!   them until they are gone; revert reports how many went.
//!
//! The evictions run as a task on the Kubernetes client's runtime, so applying returns once
//! the nodes are cordoned. After a restart the task is gone; the journal still uncordons.
use super::{node_cordon, Applied, Fault, FaultError, RunCtx};
use crate::k8s::{Kube, KubeError};
use faultline_experiment::faults::{FaultSpec, NodeDrainParams, NodeTarget};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

/// How often a refused eviction is tried again, unless `retryInterval` says otherwise.
const DEFAULT_RETRY: Duration = Duration::from_secs(5);

pub struct NodeDrain {
    kube: Option<Arc<Kube>>,
    /// Running drains by (run, step).
    drains: Mutex<HashMap<(String, usize), Running>>,
}

struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    progress: Arc<Mutex<Progress>>,
}

/// What the journal keeps in `Applied.data`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    /// The nodes drained.
    drained: Vec<String>,
    /// Those of them this fault cordons (schedulable when planned): the only ones revert
    /// uncordons.
    nodes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    grace_period_seconds: Option<u32>,
    retry_ms: u64,
    #[serde(default)]
    force: bool,
    #[serde(default)]
    delete_empty_dir_data: bool,
}

/// What the drain did so far, for revert's detail. Pods are `namespace/name`.
#[derive(Debug, Default)]
struct Progress {
    evicted: BTreeSet<String>,
    gone: BTreeSet<String>,
    /// Pods a PodDisruptionBudget kept, with the number of refusals.
    blocked: BTreeMap<String, u32>,
    /// The last failure other than a budget's, per pod.
    failed: BTreeMap<String, String>,
    /// Pods that appeared later and may not be evicted (unmanaged, emptyDir), with why.
    refused: BTreeMap<String, &'static str>,
}

impl Progress {
    fn pending(&self) -> usize {
        self.blocked.len() + self.failed.len()
    }

    fn summary(&self) -> String {
        let mut out = format!(
            "evicted {} pods ({} gone)",
            self.evicted.len(),
            self.gone.len()
        );
        if !self.blocked.is_empty() {
            let list: Vec<String> = self
                .blocked
                .iter()
                .map(|(p, n)| format!("{p} ({n} refusals)"))
                .collect();
            out.push_str(&format!(
                "; kept by a PodDisruptionBudget until the end: {}",
                list.join(", ")
            ));
        }
        if !self.failed.is_empty() {
            let list: Vec<String> = self
                .failed
                .iter()
                .map(|(p, e)| format!("{p}: {e}"))
                .collect();
            out.push_str(&format!("; could not evict {}", list.join("; ")));
        }
        if !self.refused.is_empty() {
            let list: Vec<String> = self
                .refused
                .iter()
                .map(|(p, why)| format!("{p} ({why})"))
                .collect();
            out.push_str(&format!("; not evicted: {}", list.join(", ")));
        }
        out
    }
}

/// What the drain does with a pod.
#[derive(Debug, PartialEq)]
enum Verdict {
    Evict,
    Leave,
    Refuse(&'static str),
}

fn verdict(p: &Pod, force: bool, empty_dir: bool) -> Verdict {
    let meta = &p.metadata;
    if meta
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"))
        || meta.deletion_timestamp.is_some()
    {
        return Verdict::Leave;
    }
    let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded" | "Failed")) {
        return Verdict::Leave;
    }
    let controller = meta
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true));
    match controller {
        Some(o) if o.kind == "DaemonSet" => return Verdict::Leave,
        None if !force => {
            return Verdict::Refuse(
                "no controller manages it: it would not be recreated (params.force evicts it)",
            )
        }
        _ => {}
    }
    let has_empty_dir = p
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .is_some_and(|v| v.iter().any(|v| v.empty_dir.is_some()));
    if has_empty_dir && !empty_dir {
        return Verdict::Refuse(
            "it has an emptyDir volume whose data would be lost (params.deleteEmptyDirData evicts it)",
        );
    }
    Verdict::Evict
}

fn key(p: &Pod) -> (String, String) {
    (
        p.metadata.namespace.clone().unwrap_or_default(),
        p.metadata.name.clone().unwrap_or_default(),
    )
}

fn on_node(node: &str) -> String {
    format!("spec.nodeName={node}")
}

fn data(a: &Applied) -> Result<Data, FaultError> {
    serde_json::from_value(a.data.clone())
        .map_err(|e| FaultError::Unsupported(format!("{} record: {e}", a.kind)))
}

impl NodeDrain {
    pub fn new(kube: Option<Arc<Kube>>) -> Self {
        NodeDrain {
            kube,
            drains: Mutex::new(HashMap::new()),
        }
    }

    fn kube(&self) -> Result<&Arc<Kube>, FaultError> {
        self.kube
            .as_ref()
            .ok_or(FaultError::Kube(KubeError::NotConfigured))
    }

    /// The pods on `node` now.
    fn pods(kube: &Kube, node: &str) -> Result<Vec<Pod>, KubeError> {
        let lp = ListParams::default().fields(&on_node(node));
        Ok(kube
            .call(&format!("list pods on node {node}"), |c| async move {
                Api::<Pod>::all(c).list(&lp).await
            })?
            .items)
    }
}

impl Fault for NodeDrain {
    fn kind(&self) -> &'static str {
        "node-drain"
    }

    fn revertible(&self, _: &Applied) -> bool {
        true
    }

    fn available(&self) -> bool {
        self.kube.as_ref().is_some_and(|k| k.cluster().is_some())
    }

    fn plan(&self, spec: &FaultSpec, ctx: RunCtx<'_>) -> Result<Applied, FaultError> {
        let FaultSpec::NodeDrain { target, params } = spec else {
            return Err(FaultError::WrongSpec {
                kind: self.kind(),
                given: spec.kind(),
            });
        };
        let kube = self.kube()?;
        let mut found = node_cordon::select(kube, target)?;
        let matched = found.len();
        found.shuffle(&mut rand::rng());
        found.truncate(target.pick(matched));
        found.sort();
        if found.is_empty() {
            return Err(FaultError::NoMatch(format!(
                "no node {}",
                node_cordon::what(target)
            )));
        }
        let d = data_of(&found, params);
        let (mut evict, mut left, mut refused) = (Vec::new(), 0, Vec::new());
        for node in &d.drained {
            for p in Self::pods(kube, node)? {
                let (ns, name) = key(&p);
                match verdict(&p, d.force, d.delete_empty_dir_data) {
                    Verdict::Evict => evict.push(format!("{ns}/{name}")),
                    Verdict::Leave => left += 1,
                    Verdict::Refuse(why) => refused.push(format!("{ns}/{name} on {node}: {why}")),
                }
            }
        }
        if !refused.is_empty() {
            return Err(FaultError::Refused(format!(
                "node-drain would evict pods that must not be: {}",
                refused.join("; ")
            )));
        }
        Ok(Applied::new(
            ctx,
            self.kind(),
            detail(target, matched, &d, &evict, left),
            serde_json::to_value(&d).unwrap_or_default(),
        ))
    }

    fn apply(&self, plan: &Applied) -> Result<(), FaultError> {
        let d = data(plan)?;
        let kube = self.kube()?;
        for name in &d.nodes {
            node_cordon::set(kube, name, true)?;
        }
        let progress = Arc::new(Mutex::new(Progress::default()));
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let (p, timeout) = (progress.clone(), kube.timeout());
        let run = plan.run_id.clone();
        let task = kube.spawn(move |c| async move {
            tokio::select! {
                _ = drain(c, &d, &p, timeout) => {
                    tracing::info!(run_id = %run, progress = %lock(&p).summary(), "node drain done");
                }
                _ = stopped => {}
            }
        });
        lock(&self.drains).insert(
            (plan.run_id.clone(), plan.step),
            Running {
                stop,
                task,
                progress,
            },
        );
        Ok(())
    }

    fn revert(&self, applied: &Applied) -> Result<String, FaultError> {
        let d = data(applied)?;
        let running = lock(&self.drains).remove(&(applied.run_id.clone(), applied.step));
        let progress = match running {
            Some(r) => {
                let _ = r.stop.send(());
                r.task.abort();
                let p = lock(&r.progress);
                p.summary()
            }
            None => "evictions unknown (the delegate restarted)".to_string(),
        };
        let out = node_cordon::uncordon(self.kube()?, &d.nodes)?;
        Ok(format!("{out}; {progress}"))
    }
}

fn data_of(found: &[(String, bool)], p: &NodeDrainParams) -> Data {
    Data {
        drained: found.iter().map(|n| n.0.clone()).collect(),
        nodes: found.iter().filter(|n| !n.1).map(|n| n.0.clone()).collect(),
        grace_period_seconds: p
            .grace_period
            .map(|g| g.0.as_secs().min(u32::MAX as u64) as u32),
        retry_ms: p
            .retry_interval
            .map(|d| d.0)
            .unwrap_or(DEFAULT_RETRY)
            .as_millis() as u64,
        force: p.force,
        delete_empty_dir_data: p.delete_empty_dir_data,
    }
}

fn detail(target: &NodeTarget, matched: usize, d: &Data, evict: &[String], left: usize) -> String {
    let mut out = format!(
        "drain {} of {matched} nodes {} ({}): evict {} pods",
        d.drained.len(),
        node_cordon::what(target),
        d.drained.join(", "),
        evict.len()
    );
    if !evict.is_empty() {
        out.push_str(&format!(" ({})", evict.join(", ")));
    }
    if left > 0 {
        out.push_str(&format!(
            ", leave {left} (DaemonSet, mirror, finished or terminating)"
        ));
    }
    let already: Vec<&String> = d.drained.iter().filter(|n| !d.nodes.contains(n)).collect();
    if !already.is_empty() {
        let list: Vec<&str> = already.iter().map(|s| s.as_str()).collect();
        out.push_str(&format!("; cordoned already: {}", list.join(", ")));
    }
    out
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Creates the pod's Eviction (policy/v1) with its grace period. Written here because kube's
/// own `evict` names the field `delete_options`, which the API server ignores.
async fn evict(
    c: &kube::Client,
    ns: &str,
    name: &str,
    grace: Option<u32>,
) -> Result<kube::core::Status, kube::Error> {
    let mut body = serde_json::json!({
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": name, "namespace": ns},
    });
    if let Some(g) = grace {
        body["deleteOptions"] = serde_json::json!({"gracePeriodSeconds": g});
    }
    let req = http::Request::post(format!("/api/v1/namespaces/{ns}/pods/{name}/eviction"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body.to_string().into_bytes())
        .map_err(kube::Error::HttpError)?;
    c.request::<kube::core::Status>(req).await
}

/// Evicts every pod of the drained nodes, trying refused ones again every `retry_ms`; then
/// follows the evicted pods until they are gone. Runs until done or stopped (dropped).
async fn drain(c: kube::Client, d: &Data, progress: &Mutex<Progress>, timeout: Duration) {
    let retry = Duration::from_millis(d.retry_ms);
    loop {
        let mut seen = BTreeSet::new();
        for node in &d.drained {
            seen.insert(format!("node {node}"));
            let lp = ListParams::default().fields(&on_node(node));
            let pods = match tokio::time::timeout(timeout, Api::<Pod>::all(c.clone()).list(&lp))
                .await
            {
                Ok(Ok(l)) => l.items,
                Ok(Err(e)) => {
                    tracing::warn!(node = %node, error = %e, "drain: cannot list the node's pods");
                    lock(progress)
                        .failed
                        .insert(format!("node {node}"), e.to_string());
                    continue;
                }
                Err(_) => {
                    lock(progress)
                        .failed
                        .insert(format!("node {node}"), "listing its pods timed out".into());
                    continue;
                }
            };
            lock(progress).failed.remove(&format!("node {node}"));
            for p in pods {
                let (ns, name) = key(&p);
                let id = format!("{ns}/{name}");
                seen.insert(id.clone());
                match verdict(&p, d.force, d.delete_empty_dir_data) {
                    Verdict::Evict => {}
                    Verdict::Leave => continue,
                    Verdict::Refuse(why) => {
                        lock(progress).refused.insert(id, why);
                        continue;
                    }
                }
                let r =
                    tokio::time::timeout(timeout, evict(&c, &ns, &name, d.grace_period_seconds))
                        .await;
                let mut pr = lock(progress);
                match r {
                    Ok(Ok(_)) => {
                        tracing::info!(pod = %id, node = %node, "drain: evicted");
                        pr.blocked.remove(&id);
                        pr.failed.remove(&id);
                        pr.evicted.insert(id);
                    }
                    Ok(Err(kube::Error::Api(s))) if s.code == 429 => {
                        tracing::info!(pod = %id, message = %s.message, "drain: eviction refused by a disruption budget; will retry");
                        *pr.blocked.entry(id).or_default() += 1;
                    }
                    Ok(Err(kube::Error::Api(s))) if s.code == 404 => {
                        pr.blocked.remove(&id);
                    }
                    Ok(Err(e)) => {
                        let e = KubeError::of("evict", e).to_string();
                        pr.failed.insert(id, e);
                    }
                    Err(_) => {
                        pr.failed
                            .insert(id, format!("no answer within {timeout:?}"));
                    }
                }
            }
        }
        {
            // A pod that went by other means is no longer waited for.
            let mut p = lock(progress);
            p.blocked.retain(|id, _| seen.contains(id));
            p.failed.retain(|id, _| seen.contains(id));
            if p.pending() == 0 {
                break;
            }
        }
        tokio::time::sleep(retry).await;
    }
    follow(c, d, progress, timeout).await;
}

/// Watches the drained nodes' pods until every evicted one is gone (a list first, then a watch
/// from its resourceVersion, again when a watch ends).
async fn follow(c: kube::Client, d: &Data, progress: &Mutex<Progress>, timeout: Duration) {
    // The server ends each watch a little before the client's read timeout would.
    let watch_secs = timeout.as_secs().saturating_sub(1).clamp(1, 290) as u32;
    loop {
        let outstanding: BTreeSet<String> = {
            let p = lock(progress);
            p.evicted.difference(&p.gone).cloned().collect()
        };
        if outstanding.is_empty() {
            return;
        }
        let mut watches = Vec::new();
        for node in &d.drained {
            let api = Api::<Pod>::all(c.clone());
            let lp = ListParams::default().fields(&on_node(node));
            let Ok(Ok(list)) = tokio::time::timeout(timeout, api.list(&lp)).await else {
                continue;
            };
            let present: BTreeSet<String> = list
                .items
                .iter()
                .map(|p| {
                    let (ns, n) = key(p);
                    format!("{ns}/{n}")
                })
                .collect();
            {
                let mut p = lock(progress);
                for id in outstanding.difference(&present) {
                    p.gone.insert(id.clone());
                }
            }
            let rv = list.metadata.resource_version.unwrap_or_default();
            let wp = WatchParams::default()
                .fields(&on_node(node))
                .timeout(watch_secs);
            if let Ok(Ok(s)) = tokio::time::timeout(timeout, api.watch(&wp, &rv)).await {
                watches.push(s.boxed());
            }
        }
        if watches.is_empty() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        let mut events = futures::stream::select_all(watches);
        while let Some(ev) = events.next().await {
            if let Ok(WatchEvent::Deleted(p)) = ev {
                let (ns, n) = key(&p);
                let mut pr = lock(progress);
                let id = format!("{ns}/{n}");
                if pr.evicted.contains(&id) {
                    pr.gone.insert(id);
                }
                if pr.evicted.len() == pr.gone.len() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn pods_are_evicted_left_or_refused_as_kubectl_drain_would() {
        let owned = |kind: &str| {
            serde_json::json!({"metadata": {"name": "p", "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": kind, "name": "o", "uid": "u", "controller": true}]}})
        };
        assert_eq!(
            verdict(&pod(owned("ReplicaSet")), false, false),
            Verdict::Evict
        );
        assert_eq!(
            verdict(&pod(owned("DaemonSet")), false, false),
            Verdict::Leave
        );
        let bare = pod(serde_json::json!({"metadata": {"name": "p"}}));
        assert!(
            matches!(verdict(&bare, false, false), Verdict::Refuse(w) if w.contains("params.force"))
        );
        assert_eq!(verdict(&bare, true, false), Verdict::Evict);
        let mut scratch = owned("StatefulSet");
        scratch["spec"] =
            serde_json::json!({"containers": [], "volumes": [{"name": "s", "emptyDir": {}}]});
        assert!(
            matches!(verdict(&pod(scratch.clone()), false, false), Verdict::Refuse(w) if w.contains("deleteEmptyDirData"))
        );
        assert_eq!(verdict(&pod(scratch), false, true), Verdict::Evict);
        let mut mirror = owned("Node");
        mirror["metadata"]["annotations"] = serde_json::json!({"kubernetes.io/config.mirror": "x"});
        assert_eq!(verdict(&pod(mirror), false, false), Verdict::Leave);
        let mut done = owned("Job");
        done["status"] = serde_json::json!({"phase": "Succeeded"});
        assert_eq!(verdict(&pod(done), false, false), Verdict::Leave);
    }
}
