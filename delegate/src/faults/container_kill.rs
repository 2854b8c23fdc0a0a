//! `container-kill`: restarts a container of the target pods by signalling its main process
//! from inside the container, through the pod's `exec` (the API's WebSocket exec, as `kubectl
//! exec`): `/bin/sh -c 'kill -TERM 1'`, else the image's own `kill -TERM 1`. The container's
//! init exits and the kubelet restarts it (its `restartCount` rises).
//!
//! Mechanisms, in order; the plan's `detail` names the one used:
//! 1. a shell in the image: `/bin/sh -c 'kill -SIG 1'` (the shell's builtin `kill`);
//! 2. a `kill` binary in the image: `kill -SIG 1`.
//!
//! An image with neither (distroless, scratch) cannot be reached this way: the fault is refused
//! with the reason and what the exec answered. So is a signal the process ignores: an init
//! without a handler for it does not die (the kernel ignores SIGKILL sent to a namespace's init
//! from inside, so the template refuses `KILL`); the outcome after the watch says whether each
//! container restarted.
//!
//! Nothing to revert: the kubelet restarts the container, and the step watches for recovery.
use super::{pod_delete, Applied, Fault, FaultError, RunCtx};
use crate::k8s::{Kube, KubeError};
use faultline_experiment::faults::FaultSpec;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::io::AsyncReadExt;

/// Most bytes of the command's stderr kept for an error.
const STDERR_LIMIT: u64 = 2048;

pub struct ContainerKill {
    kube: Option<Arc<Kube>>,
}

impl ContainerKill {
    pub fn new(kube: Option<Arc<Kube>>) -> Self {
        ContainerKill { kube }
    }

    fn kube(&self) -> Result<&Kube, FaultError> {
        self.kube
            .as_deref()
            .ok_or(FaultError::Kube(KubeError::NotConfigured))
    }
}

/// One container to restart, as planned.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Target {
    pod: String,
    container: String,
    /// Its `restartCount` when planned, to tell afterwards whether it restarted.
    restarts: i32,
}

/// What the journal keeps in `Applied.data`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    namespace: String,
    signal: String,
    targets: Vec<Target>,
}

fn data(a: &Applied) -> Result<Data, FaultError> {
    serde_json::from_value(a.data.clone())
        .map_err(|e| FaultError::Unsupported(format!("{} record: {e}", a.kind)))
}

/// The container's restart count now (`None`: no status for it yet).
fn restarts(pod: &Pod, container: &str) -> Option<i32> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|s| s.name == container)
        .map(|s| s.restart_count)
}

/// What one exec of a command did.
enum Exec {
    /// The command ran and succeeded.
    Done,
    /// The image has no such executable.
    Missing(String),
    /// The command ran and failed, or the runtime refused it otherwise.
    Failed(String),
}

/// Whether a runtime's exec failure says the executable is not in the image.
fn missing_executable(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("executable file not found") || m.contains("no such file or directory")
}

async fn exec(
    c: kube::Client,
    ns: String,
    pod: String,
    container: String,
    command: Vec<String>,
) -> Result<Exec, kube::Error> {
    let ap = AttachParams::default()
        .container(container)
        .stdin(false)
        .stdout(true)
        .stderr(true);
    let mut attached = Api::<Pod>::namespaced(c, &ns)
        .exec(&pod, command, &ap)
        .await?;
    let mut stderr = String::new();
    if let Some(e) = attached.stderr() {
        let _ = e.take(STDERR_LIMIT).read_to_string(&mut stderr).await;
    }
    let status = match attached.take_status() {
        Some(s) => s.await,
        None => None,
    };
    let _ = attached.join().await;
    let Some(status) = status else {
        return Ok(Exec::Done);
    };
    if status.status.as_deref() == Some("Success") {
        return Ok(Exec::Done);
    }
    let message = status
        .message
        .clone()
        .unwrap_or_else(|| format!("{:?}", status.reason));
    if missing_executable(&message) {
        return Ok(Exec::Missing(message));
    }
    let mut why = message;
    if !stderr.trim().is_empty() {
        why.push_str(&format!(" (stderr: {})", stderr.trim()));
    }
    Ok(Exec::Failed(why))
}

impl Fault for ContainerKill {
    fn kind(&self) -> &'static str {
        "container-kill"
    }

    fn revertible(&self, _: &Applied) -> bool {
        false
    }

    fn available(&self) -> bool {
        self.kube.as_ref().is_some_and(|k| k.cluster().is_some())
    }

    fn plan(&self, spec: &FaultSpec, ctx: RunCtx<'_>) -> Result<Applied, FaultError> {
        let FaultSpec::ContainerKill { target, params } = spec else {
            return Err(FaultError::WrongSpec {
                kind: self.kind(),
                given: spec.kind(),
            });
        };
        let kube = self.kube()?;
        let (mut pods, matched) = pod_delete::select(kube, target)?;
        pods.sort();
        if pods.is_empty() {
            return Err(FaultError::NoMatch(format!(
                "no pod {}",
                pod_delete::what(target)
            )));
        }
        let mut targets = Vec::new();
        for name in &pods {
            let (ns, n) = (target.namespace.clone(), name.clone());
            let Some(pod) = kube.call(&format!("get pod {name}"), |c| async move {
                Api::<Pod>::namespaced(c, &ns).get_opt(&n).await
            })?
            else {
                continue;
            };
            let names: Vec<String> = pod
                .spec
                .iter()
                .flat_map(|s| s.containers.iter().map(|c| c.name.clone()))
                .collect();
            let container = match &params.container {
                Some(c) if names.contains(c) => c.clone(),
                Some(c) => {
                    return Err(FaultError::NoMatch(format!(
                        "pod {name} has no container named {c} (it has: {})",
                        names.join(", ")
                    )))
                }
                None => names
                    .first()
                    .cloned()
                    .ok_or_else(|| FaultError::NoMatch(format!("pod {name} has no container")))?,
            };
            targets.push(Target {
                pod: name.clone(),
                restarts: restarts(&pod, &container).unwrap_or(0),
                container,
            });
        }
        let signal = params.signal_name().to_string();
        let containers: Vec<String> = targets
            .iter()
            .map(|t| format!("{}/{}", t.pod, t.container))
            .collect();
        let detail = format!(
            "restart {} of {matched} pods' containers {} ({}): kill -{signal} 1 through the pod's exec (/bin/sh, else the image's kill)",
            targets.len(),
            pod_delete::what(target),
            containers.join(", ")
        );
        let d = Data {
            namespace: target.namespace.clone(),
            signal,
            targets,
        };
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
        let inline = format!("kill -{} 1", d.signal);
        let commands: [Vec<String>; 2] = [
            vec!["/bin/sh".into(), "-c".into(), inline],
            vec!["kill".into(), format!("-{}", d.signal), "1".into()],
        ];
        for t in &d.targets {
            let mut missing = Vec::new();
            let mut done = false;
            for cmd in &commands {
                let (ns, pod, container, cmd) = (
                    d.namespace.clone(),
                    t.pod.clone(),
                    t.container.clone(),
                    cmd.clone(),
                );
                let what = format!("exec in pod {} container {}", t.pod, t.container);
                match kube.call(&what, |c| exec(c, ns, pod, container, cmd))? {
                    Exec::Done => {
                        tracing::info!(pod = %t.pod, container = %t.container, signal = %d.signal, "container-kill: signalled the container's init");
                        done = true;
                        break;
                    }
                    Exec::Missing(m) => missing.push(m),
                    Exec::Failed(why) => {
                        return Err(FaultError::Refused(format!(
                            "container {} of pod {} could not be signalled: {why}",
                            t.container, t.pod
                        )))
                    }
                }
            }
            if !done {
                return Err(FaultError::Refused(format!(
                    "container {} of pod {} has neither /bin/sh nor kill in its image, so container-kill cannot signal it through exec (the exec answered: {})",
                    t.container,
                    t.pod,
                    missing.join("; ")
                )));
            }
        }
        Ok(())
    }

    fn revert(&self, _: &Applied) -> Result<String, FaultError> {
        Ok("nothing to undo: the kubelet restarts the container".into())
    }

    fn outcome(&self, applied: &Applied) -> Option<String> {
        let d = data(applied).ok()?;
        let kube = self.kube().ok()?;
        let mut restarted = Vec::new();
        let mut not = Vec::new();
        for t in &d.targets {
            let (ns, n) = (d.namespace.clone(), t.pod.clone());
            let now = kube
                .call("get pod", |c| async move {
                    Api::<Pod>::namespaced(c, &ns).get_opt(&n).await
                })
                .ok()
                .flatten()
                .and_then(|p| restarts(&p, &t.container));
            match now {
                Some(r) if r > t.restarts => {
                    restarted.push(format!("{}/{} ({} → {r})", t.pod, t.container, t.restarts))
                }
                Some(r) => not.push(format!("{}/{} (restartCount {r})", t.pod, t.container)),
                None => not.push(format!("{}/{} (gone)", t.pod, t.container)),
            }
        }
        let mut out = format!(
            "restarted {} of {} containers",
            restarted.len(),
            d.targets.len()
        );
        if !restarted.is_empty() {
            out.push_str(&format!(": {}", restarted.join(", ")));
        }
        if !not.is_empty() {
            out.push_str(&format!("; not restarted: {}", not.join(", ")));
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_missing_executable_is_told_from_other_failures() {
        assert!(super::missing_executable(
            "OCI runtime exec failed: exec failed: unable to start container process: exec: \"/bin/sh\": stat /bin/sh: no such file or directory: unknown"
        ));
        assert!(super::missing_executable(
            "exec: \"kill\": executable file not found in $PATH: unknown"
        ));
        assert!(!super::missing_executable(
            "command terminated with non-zero exit code: error executing command [kill -TERM 1], exit code 1"
        ));
    }
}
