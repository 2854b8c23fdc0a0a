//! The `k8s` probe: one object of the delegate's cluster exists, is absent, or a field of it
//! (a JSON pointer) compares as expected; or `podsReady`: the pods a label selector matches are
//! all Ready, and at least `min`. Registered only when the cluster's API answered at start;
//! reads only namespaces the allow-list names (`namespace=`), and never Secrets.
use super::{bounded_part, compare, Check, Probe};
use crate::{k8s::Kube, sandbox::Sandbox};
use faultline_experiment::probes::{K8sProbe as K8sSpec, Probe as ProbeSpec};
use futures::future::BoxFuture;
use k8s_openapi::api::{
    apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet},
    batch::v1::Job,
    core::v1::{Pod, Service},
};
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use std::{sync::Arc, time::Instant};

pub struct K8sProbe {
    pub kube: Arc<Kube>,
    pub sandbox: Sandbox,
}

impl Probe for K8sProbe {
    fn kind(&self) -> &'static str {
        "k8s"
    }

    fn check<'a>(&'a self, spec: &'a ProbeSpec) -> BoxFuture<'a, Check> {
        let this = self;
        bounded_part(spec, self.kind(), spec.k8s.as_ref(), move |k| async move {
            let start = Instant::now();
            if !this.sandbox.policy().k8s_namespace(&k.namespace) {
                return Check::fail(
                    start,
                    format!(
                        "namespace {} may not be read on this delegate (needs --allow namespace={})",
                        k.namespace, k.namespace
                    ),
                );
            }
            let (kube, k) = (this.kube.clone(), k.clone());
            // The client's calls block until answered (bounded): off the async runtime.
            tokio::task::spawn_blocking(move || observe(&kube, &k, start))
                .await
                .unwrap_or_else(|e| Check::fail(start, format!("the check panicked: {e}")))
        })
    }
}

fn api_resource(kind: &str) -> Option<ApiResource> {
    Some(match kind {
        "Pod" => ApiResource::erase::<Pod>(&()),
        "Deployment" => ApiResource::erase::<Deployment>(&()),
        "StatefulSet" => ApiResource::erase::<StatefulSet>(&()),
        "DaemonSet" => ApiResource::erase::<DaemonSet>(&()),
        "ReplicaSet" => ApiResource::erase::<ReplicaSet>(&()),
        "Service" => ApiResource::erase::<Service>(&()),
        "Job" => ApiResource::erase::<Job>(&()),
        _ => return None,
    })
}

fn observe(kube: &Kube, k: &K8sSpec, start: Instant) -> Check {
    let ns = k.namespace.clone();
    if let Some(ready) = &k.pods_ready {
        let lp = ListParams::default().labels(&ready.label_selector);
        let pods = match kube.call("list pods", |c| async move {
            Api::<Pod>::namespaced(c, &ns).list(&lp).await
        }) {
            Ok(l) => l.items,
            Err(e) => return Check::fail(start, e.to_string()),
        };
        let total = pods.len();
        let ok = pods
            .iter()
            .filter(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .count();
        let min = ready.min.unwrap_or(1) as usize;
        let detail = format!(
            "{ok} of {total} pods matching {} ready",
            ready.label_selector
        );
        return if total >= min && ok == total {
            Check::new(true, start, detail)
        } else {
            Check::fail(start, format!("{detail} (needs all, at least {min})"))
        };
    }
    let (Some(kind), Some(name)) = (k.resource.as_deref(), k.name.clone()) else {
        return Check::fail(start, "give resource and name, or podsReady");
    };
    let Some(ar) = api_resource(kind) else {
        return Check::fail(start, format!("unknown resource {kind}"));
    };
    let n = name.clone();
    let found = match kube.call(&format!("get {kind}"), |c| async move {
        Api::<DynamicObject>::namespaced_with(c, &ns, &ar)
            .get_opt(&n)
            .await
    }) {
        Ok(f) => f,
        Err(e) => return Check::fail(start, e.to_string()),
    };
    let what = format!("{kind} {}/{name}", k.namespace);
    match (found, k.absent) {
        (None, true) => Check::new(true, start, format!("{what} is absent")),
        (None, false) => Check::fail(start, format!("{what} not found")),
        (Some(_), true) => Check::fail(start, format!("{what} exists")),
        (Some(obj), false) => {
            let Some(pointer) = &k.field else {
                return Check::new(true, start, format!("{what} exists"));
            };
            let doc = serde_json::to_value(&obj).unwrap_or_default();
            match doc.pointer(pointer) {
                None | Some(serde_json::Value::Null) => {
                    Check::fail(start, format!("{what} has no field {pointer}"))
                }
                Some(serde_json::Value::String(s)) => compare(start, s, &k.expect),
                Some(v) => compare(start, &v.to_string(), &k.expect),
            }
        }
    }
}
