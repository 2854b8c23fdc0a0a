//! `deployment-scale` and `statefulset-scale`: set a workload's replicas through its `scale`
//! subresource for the step's duration. The plan reads the current count, so the journal holds
//! it before anything changes; revert (also a restarted delegate's journal recovery) writes it
//! back. Each write is a merge patch carrying the `resourceVersion` just read: a 409 Conflict
//! (someone else wrote in between) reads again and retries, a few times.
use super::{Applied, Fault, FaultError, RunCtx};
use crate::k8s::{Kube, KubeError};
use faultline_experiment::faults::{FaultSpec, WorkloadTarget};
use k8s_openapi::api::{
    apps::v1::{Deployment, StatefulSet},
    autoscaling::v1::Scale as ScaleObj,
};
use kube::api::{Api, Patch, PatchParams};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Attempts of one write before a run of 409s is given up.
const CONFLICT_RETRIES: u32 = 5;

/// Which workload kind: one implementation, two kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Workload {
    Deployment,
    StatefulSet,
}

pub struct Scale {
    workload: Workload,
    kube: Option<Arc<Kube>>,
}

impl Scale {
    pub fn new(workload: Workload, kube: Option<Arc<Kube>>) -> Self {
        Scale { workload, kube }
    }

    fn kube(&self) -> Result<&Kube, FaultError> {
        self.kube
            .as_deref()
            .ok_or(FaultError::Kube(KubeError::NotConfigured))
    }
}

/// What the journal keeps in `Applied.data`: enough to restore the count after a restart.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    namespace: String,
    name: String,
    /// The replicas before the fault: what revert restores.
    original: i32,
    /// The replicas the fault sets.
    replicas: i32,
}

fn data(a: &Applied) -> Result<Data, FaultError> {
    serde_json::from_value(a.data.clone())
        .map_err(|e| FaultError::Unsupported(format!("{} record: {e}", a.kind)))
}

impl Workload {
    fn noun(self) -> &'static str {
        match self {
            Workload::Deployment => "deployment",
            Workload::StatefulSet => "statefulset",
        }
    }

    fn get(self, kube: &Kube, ns: &str, name: &str) -> Result<ScaleObj, KubeError> {
        let (ns, name) = (ns.to_string(), name.to_string());
        let what = format!("get {} {ns}/{name} scale", self.noun());
        kube.call(&what, move |c| async move {
            match self {
                Workload::Deployment => {
                    Api::<Deployment>::namespaced(c, &ns).get_scale(&name).await
                }
                Workload::StatefulSet => {
                    Api::<StatefulSet>::namespaced(c, &ns)
                        .get_scale(&name)
                        .await
                }
            }
        })
    }

    fn patch(
        self,
        kube: &Kube,
        ns: &str,
        name: &str,
        body: serde_json::Value,
    ) -> Result<ScaleObj, KubeError> {
        let (ns, name) = (ns.to_string(), name.to_string());
        let what = format!("patch {} {ns}/{name} scale", self.noun());
        kube.call(&what, move |c| async move {
            let (pp, patch) = (PatchParams::default(), Patch::Merge(body));
            match self {
                Workload::Deployment => {
                    Api::<Deployment>::namespaced(c, &ns)
                        .patch_scale(&name, &pp, &patch)
                        .await
                }
                Workload::StatefulSet => {
                    Api::<StatefulSet>::namespaced(c, &ns)
                        .patch_scale(&name, &pp, &patch)
                        .await
                }
            }
        })
    }

    /// Sets the replicas to `to`, guarded by the resourceVersion just read; retries on 409.
    /// Returns the count it found before writing (`None`: already `to`, nothing written).
    fn set(self, kube: &Kube, ns: &str, name: &str, to: i32) -> Result<Option<i32>, KubeError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let now = self.get(kube, ns, name)?;
            let had = now.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
            if had == to {
                return Ok(None);
            }
            let body = serde_json::json!({
                "metadata": {"resourceVersion": now.metadata.resource_version},
                "spec": {"replicas": to},
            });
            match self.patch(kube, ns, name, body) {
                Ok(_) => return Ok(Some(had)),
                Err(e) if e.status() == Some(409) && attempt < CONFLICT_RETRIES => {
                    tracing::debug!(workload = %name, attempt, "scale conflict; reading again")
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Fault for Scale {
    fn kind(&self) -> &'static str {
        match self.workload {
            Workload::Deployment => "deployment-scale",
            Workload::StatefulSet => "statefulset-scale",
        }
    }

    fn revertible(&self, _: &Applied) -> bool {
        true
    }

    fn available(&self) -> bool {
        self.kube.as_ref().is_some_and(|k| k.cluster().is_some())
    }

    fn plan(&self, spec: &FaultSpec, ctx: RunCtx<'_>) -> Result<Applied, FaultError> {
        let (WorkloadTarget { namespace, name }, params) = match (self.workload, spec) {
            (Workload::Deployment, FaultSpec::DeploymentScale { target, params })
            | (Workload::StatefulSet, FaultSpec::StatefulsetScale { target, params }) => {
                (target, params)
            }
            _ => {
                return Err(FaultError::WrongSpec {
                    kind: self.kind(),
                    given: spec.kind(),
                })
            }
        };
        let now = self.workload.get(self.kube()?, namespace, name)?;
        let original = now.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        let replicas = i32::try_from(params.replicas).unwrap_or(i32::MAX);
        let d = Data {
            namespace: namespace.clone(),
            name: name.clone(),
            original,
            replicas,
        };
        Ok(Applied::new(
            ctx,
            self.kind(),
            format!(
                "scale {} {namespace}/{name} from {original} to {replicas} replicas",
                self.workload.noun()
            ),
            serde_json::to_value(d).unwrap_or_default(),
        ))
    }

    fn apply(&self, plan: &Applied) -> Result<(), FaultError> {
        let d = data(plan)?;
        self.workload
            .set(self.kube()?, &d.namespace, &d.name, d.replicas)?;
        Ok(())
    }

    fn revert(&self, applied: &Applied) -> Result<String, FaultError> {
        let d = data(applied)?;
        let noun = self.workload.noun();
        match self
            .workload
            .set(self.kube()?, &d.namespace, &d.name, d.original)
        {
            Ok(Some(had)) => Ok(format!(
                "restored {noun} {}/{} from {had} to {} replicas",
                d.namespace, d.name, d.original
            )),
            Ok(None) => Ok(format!(
                "{noun} {}/{} already has its {} replicas",
                d.namespace, d.name, d.original
            )),
            Err(e) if e.status() == Some(404) => Ok(format!(
                "nothing to restore: {noun} {}/{} is gone",
                d.namespace, d.name
            )),
            Err(e) => Err(e.into()),
        }
    }
}
