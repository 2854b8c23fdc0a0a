//! The pod-scoped faults (`pod-network-*`, `pod-cpu-stress`, `pod-memory-stress`,
//! `pod-process-kill`): the host fault modules, run inside the target pods of this delegate's
//! node. No fault code is written twice: each kind wraps the host kind's own implementation.
//!
//! - **Which pods:** those the target selects whose `spec.nodeName` is this delegate's node
//!   (`--node-name`), then `count` / `percentage` of them. Pods on other nodes are counted in
//!   the refusal when none is here.
//! - **Where inside:** the container's id from the pod's status leads to its processes (the id
//!   is in their cgroup paths, see `containers.rs`) and its init process.
//!   - network kinds: the pod's network namespace is attached as `/run/netns/fl-…` (so it stays
//!     reachable by name, also after a restart of the container or the delegate) and the host
//!     kind acts inside it, on `target.interface` (default `eth0`); revert removes the name;
//!   - stress kinds: the host kind's workers are moved into the container's cgroups at once, so
//!     the container's CPU and memory limits apply to them (a memory worker is the first the
//!     OOM killer takes there);
//!   - `pod-process-kill`: the processes named `target.process` among the container's, one host
//!     `process-kill` each.
//! - **Journal:** the outer entry holds, per pod, the container, its init's pid, the attached
//!   namespace name and the host kind's own records, so revert and journal recovery undo each
//!   with the host kind's revert.
use super::{Applied, Fault, FaultError, RunCtx};
use crate::{
    containers,
    k8s::{Kube, KubeError},
};
use faultline_experiment::faults::{FaultSpec, PodScopeTarget};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub struct PodScoped {
    kind: &'static str,
    host: Box<dyn Fault>,
    kube: Option<Arc<Kube>>,
    /// The stress kinds' workers, moved into the container's cgroups once started.
    workers: Option<Arc<super::stress::Workers>>,
}

/// One pod's part of the fault, as journalled.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Part {
    pod: String,
    container: String,
    container_id: String,
    /// The container's init, as a host pid, when planned.
    pid: i32,
    /// The pod's network namespace, attached under this name (network kinds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    netns: Option<String>,
    /// The host kind's records.
    applied: Vec<Applied>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Data {
    parts: Vec<Part>,
}

fn data(a: &Applied) -> Result<Data, FaultError> {
    serde_json::from_value(a.data.clone())
        .map_err(|e| FaultError::Unsupported(format!("{} record: {e}", a.kind)))
}

impl PodScoped {
    /// `kind` runs `host` (the host kind's implementation) inside pods of the cluster's node.
    pub fn new(kind: &'static str, host: Box<dyn Fault>, kube: Option<Arc<Kube>>) -> Self {
        PodScoped {
            kind,
            host,
            kube,
            workers: None,
        }
    }

    /// For a stress kind: the workers its host kind starts.
    pub fn with_workers(mut self, workers: Arc<super::stress::Workers>) -> Self {
        self.workers = Some(workers);
        self
    }

    fn kube(&self) -> Result<&Kube, FaultError> {
        self.kube
            .as_deref()
            .ok_or(FaultError::Kube(KubeError::NotConfigured))
    }

    fn network(&self) -> bool {
        self.kind.starts_with("pod-network-")
    }

    /// The pods of `t` on `node`, picked; and how many matched anywhere.
    fn select(&self, t: &PodScopeTarget, node: &str) -> Result<(Vec<Pod>, usize), FaultError> {
        let kube = self.kube()?;
        let ns = t.namespace.clone();
        let all: Vec<Pod> = if t.names.is_empty() {
            let mut lp = ListParams::default();
            if let Some(l) = &t.label_selector {
                lp = lp.labels(l);
            }
            if let Some(f) = &t.field_selector {
                lp = lp.fields(f);
            }
            kube.call("list pods", |c| async move {
                Api::<Pod>::namespaced(c, &ns).list(&lp).await
            })?
            .items
        } else {
            let mut out = Vec::new();
            for name in &t.names {
                let (ns, n) = (ns.clone(), name.clone());
                if let Some(p) = kube.call(&format!("get pod {name}"), |c| async move {
                    Api::<Pod>::namespaced(c, &ns).get_opt(&n).await
                })? {
                    out.push(p);
                }
            }
            out
        };
        let live: Vec<Pod> = all
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        let matched = live.len();
        let mut here: Vec<Pod> = live
            .into_iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
            .collect();
        here.shuffle(&mut rand::rng());
        let n = t.pods().pick(here.len());
        here.truncate(n);
        here.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        Ok((here, matched))
    }
}

/// The container to act in (named, or the first) with its runtime id, when it runs.
fn container(pod: &Pod, want: Option<&str>) -> Result<(String, String), FaultError> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let names: Vec<String> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter().map(|c| c.name.clone()))
        .collect();
    let c = match want {
        Some(w) if names.iter().any(|n| n == w) => w.to_string(),
        Some(w) => {
            return Err(FaultError::NoMatch(format!(
                "pod {name} has no container named {w} (it has: {})",
                names.join(", ")
            )))
        }
        None => names
            .first()
            .cloned()
            .ok_or_else(|| FaultError::NoMatch(format!("pod {name} has no container")))?,
    };
    let id = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().find(|s| s.name == c))
        .and_then(|s| s.container_id.as_deref())
        .and_then(containers::runtime_id)
        .map(str::to_string)
        .ok_or_else(|| {
            FaultError::NoMatch(format!("container {c} of pod {name} is not running"))
        })?;
    Ok((c, id))
}

fn net_name(ctx: RunCtx<'_>, i: usize) -> String {
    let run: String = ctx
        .run_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(8)
        .collect();
    format!("fl-{run}-{}-{i}", ctx.step)
}

fn map_container(e: containers::ContainerError) -> FaultError {
    FaultError::Refused(e.to_string())
}

impl Fault for PodScoped {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn revertible(&self, applied: &Applied) -> bool {
        match data(applied) {
            Ok(d) => d
                .parts
                .iter()
                .flat_map(|p| p.applied.iter())
                .any(|a| self.host.revertible(a)),
            Err(_) => true,
        }
    }

    fn available(&self) -> bool {
        self.host.available()
            && self
                .kube
                .as_ref()
                .is_some_and(|k| k.cluster().is_some() && k.node().is_some())
    }

    fn plan(&self, spec: &FaultSpec, ctx: RunCtx<'_>) -> Result<Applied, FaultError> {
        let Some(target) = spec.pod_scope().filter(|_| spec.kind() == self.kind) else {
            return Err(FaultError::WrongSpec {
                kind: self.kind,
                given: spec.kind(),
            });
        };
        let kube = self.kube()?;
        let Some(node) = kube.node().map(str::to_string) else {
            return Err(FaultError::Refused(format!(
                "{} runs inside pods on the delegate's own node, and this delegate was not told its node (--node-name; the Helm chart's DaemonSet sets it)",
                self.kind
            )));
        };
        let (pods, matched) = self.select(target, &node)?;
        if pods.is_empty() {
            return Err(FaultError::NoMatch(format!(
                "no pod in namespace {} on node {node} matches ({matched} match on other nodes: target the delegate of their node)",
                target.namespace
            )));
        }
        let mut parts = Vec::new();
        let mut details = Vec::new();
        for (i, pod) in pods.iter().enumerate() {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let (c, id) = container(pod, target.container.as_deref())?;
            let pid = containers::init_pid(&id).map_err(map_container)?;
            let mut part = Part {
                pod: name.clone(),
                container: c.clone(),
                container_id: id.clone(),
                pid,
                netns: None,
                applied: Vec::new(),
            };
            if self.network() {
                let ns = net_name(ctx, i);
                // The host kind's plan reads the namespace (its interface): attach it for the
                // plan, and again at apply (a dry run leaves nothing behind).
                containers::attach_netns(&ns, pid).map_err(map_container)?;
                let host = spec.host(Some(&ns), None).expect("a pod-scoped kind");
                let planned = self.host.plan(&host, ctx);
                containers::detach_netns(&ns);
                part.applied.push(planned?);
                part.netns = Some(ns);
            } else if self.kind == "pod-process-kill" {
                let want = target.process.as_deref().unwrap_or_default();
                let mut found: Vec<i32> = containers::processes(&id)
                    .into_iter()
                    .filter(|p| {
                        std::fs::read_to_string(format!("/proc/{p}/comm"))
                            .is_ok_and(|c| c.trim_end() == want)
                    })
                    .collect();
                if found.is_empty() {
                    return Err(FaultError::NoMatch(format!(
                        "no process named {want} in container {c} of pod {name}"
                    )));
                }
                found.shuffle(&mut rand::rng());
                if let FaultSpec::PodProcessKill { params, .. } = spec {
                    let n = match (params.count, params.percentage) {
                        (Some(c), _) => (c as usize).min(found.len()),
                        (_, Some(p)) => (found.len() * p as usize).div_ceil(100).max(1),
                        _ => found.len(),
                    };
                    found.truncate(n);
                }
                found.sort();
                for p in found {
                    let host = spec.host(None, Some(p)).expect("a pod-scoped kind");
                    part.applied.push(self.host.plan(&host, ctx)?);
                }
            } else {
                let host = spec.host(None, None).expect("a pod-scoped kind");
                part.applied.push(self.host.plan(&host, ctx)?);
            }
            let inner: Vec<&str> = part.applied.iter().map(|a| a.detail.as_str()).collect();
            details.push(format!(
                "pod {name} (container {c}, pid {pid}{}): {}",
                part.netns
                    .as_deref()
                    .map(|n| format!(", netns {n}"))
                    .unwrap_or_default(),
                inner.join("; ")
            ));
            parts.push(part);
        }
        let detail = format!(
            "in {} of {matched} matching pods on node {node}: {}",
            parts.len(),
            details.join(" | ")
        );
        Ok(Applied::new(
            ctx,
            self.kind,
            detail,
            serde_json::to_value(Data { parts }).unwrap_or_default(),
        ))
    }

    fn apply(&self, plan: &Applied) -> Result<(), FaultError> {
        let d = data(plan)?;
        for part in &d.parts {
            if let Some(ns) = &part.netns {
                containers::attach_netns(ns, part.pid).map_err(map_container)?;
            }
            let tag = super::stress::tag(&plan.run_id, plan.step);
            let before = self
                .workers
                .as_ref()
                .map(|w| w.running(&tag))
                .unwrap_or_default();
            for a in &part.applied {
                self.host.apply(a)?;
            }
            if let Some(w) = &self.workers {
                for pid in w.running(&tag).into_iter().filter(|p| !before.contains(p)) {
                    containers::join(pid, &part.container_id).map_err(map_container)?;
                }
            }
        }
        Ok(())
    }

    fn revert(&self, applied: &Applied) -> Result<String, FaultError> {
        let d = data(applied)?;
        let mut out = Vec::new();
        for part in &d.parts {
            if let Some(ns) = &part.netns {
                // The name is gone with the delegate's mount namespace (a restarted container
                // without shared mounts): reach the pod's namespace again through its container.
                if !std::path::Path::new("/run/netns").join(ns).exists() {
                    if let Ok(pid) = containers::init_pid(&part.container_id) {
                        if let Err(e) = containers::attach_netns(ns, pid) {
                            tracing::warn!(netns = %ns, error = %e, "cannot attach the pod's network namespace again");
                        }
                    }
                }
            }
            let mut done = Vec::new();
            for a in &part.applied {
                done.push(self.host.revert(a)?);
            }
            if let Some(ns) = &part.netns {
                containers::detach_netns(ns);
            }
            out.push(format!("pod {}: {}", part.pod, done.join("; ")));
        }
        Ok(out.join(" | "))
    }
}
