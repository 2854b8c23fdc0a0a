//! `node-cordon`: marks the target nodes unschedulable (`spec.unschedulable: true`, as
//! `kubectl cordon`) for the step's duration. The plan reads the nodes, so the journal holds
//! which of them were schedulable before anything changes: only those are cordoned, and revert
//! (also a restarted delegate's journal recovery) uncordons only those, never a node that was
//! cordoned already. `count` / `percentage` pick among the matching schedulable nodes. Each
//! write is a merge patch carrying the `resourceVersion` just read; a 409 reads again.
use super::{Applied, Fault, FaultError, RunCtx};
use crate::k8s::{Kube, KubeError};
use faultline_experiment::faults::{FaultSpec, NodeTarget};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams, Patch, PatchParams};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Attempts of one write before a run of 409s is given up.
const CONFLICT_RETRIES: u32 = 5;

pub struct NodeCordon {
    kube: Option<Arc<Kube>>,
}

impl NodeCordon {
    pub fn new(kube: Option<Arc<Kube>>) -> Self {
        NodeCordon { kube }
    }

    fn kube(&self) -> Result<&Kube, FaultError> {
        self.kube
            .as_deref()
            .ok_or(FaultError::Kube(KubeError::NotConfigured))
    }
}

/// What the journal keeps in `Applied.data`: the nodes this fault cordons (schedulable when
/// planned), the only ones revert uncordons.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    nodes: Vec<String>,
    /// Matching nodes that were cordoned already: left alone, also by revert.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    already: Vec<String>,
}

fn data(a: &Applied) -> Result<Data, FaultError> {
    serde_json::from_value(a.data.clone())
        .map_err(|e| FaultError::Unsupported(format!("{} record: {e}", a.kind)))
}

fn cordoned(n: &Node) -> bool {
    n.spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false)
}

fn get(kube: &Kube, name: &str) -> Result<Option<Node>, KubeError> {
    let n = name.to_string();
    kube.call(&format!("get node {name}"), move |c| async move {
        Api::<Node>::all(c).get_opt(&n).await
    })
}

/// The matching nodes as (name, cordoned).
pub(super) fn select(kube: &Kube, target: &NodeTarget) -> Result<Vec<(String, bool)>, FaultError> {
    if target.names.is_empty() {
        let mut lp = ListParams::default();
        if let Some(l) = &target.label_selector {
            lp = lp.labels(l);
        }
        let list = kube.call("list nodes", |c| async move {
            Api::<Node>::all(c).list(&lp).await
        })?;
        Ok(list
            .items
            .into_iter()
            .filter_map(|n| Some((n.metadata.name.clone()?, cordoned(&n))))
            .collect())
    } else {
        let mut out = Vec::new();
        for name in &target.names {
            if let Some(n) = get(kube, name)? {
                out.push((name.clone(), cordoned(&n)));
            }
        }
        Ok(out)
    }
}

/// Sets `spec.unschedulable` to `to`, guarded by the resourceVersion just read; retries on
/// 409. Returns whether it wrote (`false`: already so); a node gone is a 404 error.
pub(super) fn set(kube: &Kube, name: &str, to: bool) -> Result<bool, KubeError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let Some(now) = get(kube, name)? else {
            return Err(KubeError::Api {
                what: format!("get node {name}"),
                status: 404,
                reason: "NotFound".into(),
                message: format!("nodes \"{name}\" not found"),
            });
        };
        if cordoned(&now) == to {
            return Ok(false);
        }
        let body = serde_json::json!({
            "metadata": {"resourceVersion": now.metadata.resource_version},
            "spec": {"unschedulable": to},
        });
        let n = name.to_string();
        match kube.call(&format!("patch node {name}"), move |c| async move {
            Api::<Node>::all(c)
                .patch(&n, &PatchParams::default(), &Patch::Merge(body))
                .await
        }) {
            Ok(_) => return Ok(true),
            Err(e) if e.status() == Some(409) && attempt < CONFLICT_RETRIES => {
                tracing::debug!(node = %name, attempt, "node patch conflict; reading again")
            }
            Err(e) => return Err(e),
        }
    }
}

pub(super) fn what(t: &NodeTarget) -> String {
    match &t.label_selector {
        Some(l) => format!("matching labels {l}"),
        None => format!("named {}", t.names.join(",")),
    }
}

impl Fault for NodeCordon {
    fn kind(&self) -> &'static str {
        "node-cordon"
    }

    fn revertible(&self, _: &Applied) -> bool {
        true
    }

    fn available(&self) -> bool {
        self.kube.as_ref().is_some_and(|k| k.cluster().is_some())
    }

    fn plan(&self, spec: &FaultSpec, ctx: RunCtx<'_>) -> Result<Applied, FaultError> {
        let FaultSpec::NodeCordon { target } = spec else {
            return Err(FaultError::WrongSpec {
                kind: self.kind(),
                given: spec.kind(),
            });
        };
        let found = select(self.kube()?, target)?;
        let (already, mut free): (Vec<_>, Vec<_>) = found.into_iter().partition(|n| n.1);
        let already: Vec<String> = already.into_iter().map(|n| n.0).collect();
        let matched = free.len() + already.len();
        free.shuffle(&mut rand::rng());
        free.truncate(target.pick(free.len()));
        let mut nodes: Vec<String> = free.into_iter().map(|n| n.0).collect();
        nodes.sort();
        if nodes.is_empty() {
            return Err(FaultError::NoMatch(format!(
                "no schedulable node {} ({matched} matched, {} cordoned already)",
                what(target),
                already.len()
            )));
        }
        let mut detail = format!(
            "cordon {} of {matched} nodes {} ({})",
            nodes.len(),
            what(target),
            nodes.join(", ")
        );
        if !already.is_empty() {
            detail.push_str(&format!(
                "; left alone, cordoned already: {}",
                already.join(", ")
            ));
        }
        let d = Data { nodes, already };
        Ok(Applied::new(
            ctx,
            self.kind(),
            detail,
            serde_json::to_value(d).unwrap_or_default(),
        ))
    }

    fn apply(&self, plan: &Applied) -> Result<(), FaultError> {
        let d = data(plan)?;
        let kube = self.kube()?;
        for name in &d.nodes {
            set(kube, name, true)?;
        }
        Ok(())
    }

    fn revert(&self, applied: &Applied) -> Result<String, FaultError> {
        let d = data(applied)?;
        uncordon(self.kube()?, &d.nodes)
    }
}

/// Uncordons `nodes` (those a fault cordoned); says which it uncordoned and which are gone.
pub(super) fn uncordon(kube: &Kube, nodes: &[String]) -> Result<String, FaultError> {
    let (mut done, mut gone) = (Vec::new(), Vec::new());
    for name in nodes {
        match set(kube, name, false) {
            Ok(true) => done.push(name.clone()),
            Ok(false) => {}
            Err(e) if e.status() == Some(404) => gone.push(name.clone()),
            Err(e) => return Err(e.into()),
        }
    }
    let mut out = if done.is_empty() {
        "no node left to uncordon".to_string()
    } else {
        format!("uncordoned {}", done.join(", "))
    };
    if !gone.is_empty() {
        out.push_str(&format!("; gone: {}", gone.join(", ")));
    }
    Ok(out)
}
