//! The pod-scoped faults: `pod-network-*`, `pod-cpu-stress`, `pod-memory-stress` and
//! `pod-process-kill`. Each is a host fault kind (`network-loss`, `cpu-stress`, ...) run inside
//! the target pods: in the pod's network namespace, in its container's cgroups, on its
//! container's processes. Only a delegate on the pod's node can do that (a privileged
//! DaemonSet); it acts on the matching pods of its own node.
//!
//! A step gives the pods as `pod-delete` does, plus what inside them: `interface` (network
//! kinds, default `eth0`), `container` (default the first) and `process` (`pod-process-kill`).
//! Its `params` are exactly the host kind's, validated by the host kind's own parser, so the
//! two never drift apart: [`host_step`] builds the host kind's step and [`FaultSpec::host`] gives
//! the host fault the delegate runs in the pod.
use super::{FaultSpec, Field, KillParams, NetworkTarget, PodTarget, ProcessTarget};
use crate::{template::FaultStep, template::SpecError};
use serde::{Deserialize, Serialize};

/// The pod-scoped kinds, each with the host kind it runs inside the pod.
pub const POD_KINDS: &[(&str, &str)] = &[
    ("pod-network-loss", "network-loss"),
    ("pod-network-partition", "network-partition"),
    ("pod-network-bandwidth", "network-bandwidth"),
    ("pod-network-latency", "network-latency"),
    ("pod-network-corrupt", "network-corrupt"),
    ("pod-network-duplicate", "network-duplicate"),
    ("pod-network-reorder", "network-reorder"),
    ("pod-cpu-stress", "cpu-stress"),
    ("pod-memory-stress", "memory-stress"),
    ("pod-process-kill", "process-kill"),
];

/// The interface a pod network fault acts on unless told.
pub const DEFAULT_POD_INTERFACE: &str = "eth0";

/// The pods of a pod-scoped fault, and what inside them.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(extend("required" = ["namespace"])))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PodScopeTarget {
    /// The namespace of the pods (the allow-list must list it: `namespace=NS`).
    pub namespace: String,
    /// A label selector, as `kubectl -l` takes it, e.g. `app=web`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
    /// A field selector, e.g. `status.phase=Running`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_selector: Option<String>,
    /// These pods by name (not with the selectors).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// Act on this many of the matching pods on the delegate's node, picked at random.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub count: Option<u32>,
    /// Act on this share of the matching pods on the delegate's node (1-100, rounded up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 100)))]
    pub percentage: Option<u32>,
    /// The container whose cgroups (stress) or processes (process-kill) are acted on; default
    /// the pod's first. Network kinds act on the pod's network namespace, which its containers
    /// share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// `pod-network-*`: the interface inside the pod (default `eth0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// `pod-process-kill`: the process name inside the container, as /proc/PID/comm shows it
    /// (1-15 characters), e.g. `nginx`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
}

impl PodScopeTarget {
    /// The pods, as `pod-delete` selects them.
    pub fn pods(&self) -> PodTarget {
        PodTarget {
            namespace: self.namespace.clone(),
            label_selector: self.label_selector.clone(),
            field_selector: self.field_selector.clone(),
            names: self.names.clone(),
            count: self.count,
            percentage: self.percentage,
        }
    }

    pub fn interface(&self) -> &str {
        self.interface.as_deref().unwrap_or(DEFAULT_POD_INTERFACE)
    }
}

/// The host kind a pod-scoped kind runs inside the pod.
pub fn host_kind(kind: &str) -> Option<&'static str> {
    POD_KINDS.iter().find(|(k, _)| *k == kind).map(|(_, h)| *h)
}

/// The host kind's step for a pod-scoped step: its `params` and `duration`, and a target the
/// host parser accepts (the pod's interface, or its process by name).
fn host_step(step: &FaultStep, host: &str, t: &PodScopeTarget) -> FaultStep {
    let mut h = step.clone();
    h.fault = host.to_string();
    h.target = if host.starts_with("network-") {
        serde_json::json!({"interface": t.interface()})
    } else if host == "process-kill" {
        serde_json::json!({"name": t.process})
    } else {
        serde_json::Value::Null
    };
    h
}

/// Reads a pod-scoped step: the pod target checked here, `params` and `duration` by the host
/// kind's parser (its errors name the same `params.*` fields).
pub(super) fn parse(
    at: &Field<'_>,
    step: &FaultStep,
    pods: impl Fn(&Field<'_>, &PodTarget) -> Result<(), SpecError>,
) -> Result<FaultSpec, SpecError> {
    let Some(host) = host_kind(&step.fault) else {
        return Err(SpecError::field(at.of("fault"), "not a pod-scoped kind"));
    };
    let target: PodScopeTarget = super::typed(&step.target, &at.of("target"))?;
    pods(at, &target.pods())?;
    let network = host.starts_with("network-");
    if let Some(i) = &target.interface {
        if !network {
            return Err(SpecError::field(
                at.of("target.interface"),
                format!(
                    "only the pod-network-* kinds take an interface, not {}",
                    step.fault
                ),
            ));
        }
        let ok = !i.is_empty()
            && i.len() <= 15
            && i.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            return Err(SpecError::field(
                at.of("target.interface"),
                "must be an interface name (1-15 letters, digits, '-', '_' or '.')",
            ));
        }
    }
    if let Some(c) = &target.container {
        if network {
            return Err(SpecError::field(
                at.of("target.container"),
                "a pod's containers share its network namespace: pod-network-* takes no container",
            ));
        }
        if c.is_empty() || c.len() > 63 {
            return Err(SpecError::field(
                at.of("target.container"),
                "must be a container name (1-63 characters)",
            ));
        }
    }
    match (host == "process-kill", &target.process) {
        (true, None) => {
            return Err(SpecError::field(
                at.of("target.process"),
                "pod-process-kill needs the process name inside the container",
            )
            .hint("e.g. target: {namespace: shop, labelSelector: app=web, process: nginx}"))
        }
        (false, Some(_)) => {
            return Err(SpecError::field(
                at.of("target.process"),
                format!("only pod-process-kill takes a process, not {}", step.fault),
            ))
        }
        _ => {}
    }
    if let Some(p) = &target.process {
        if p.is_empty() || p.len() > 15 || p.contains('/') {
            return Err(SpecError::field(
                at.of("target.process"),
                "must be the exact command name (1-15 characters, as in /proc/PID/comm)",
            ));
        }
    }
    // The host target is made here from fields checked above: its errors can only be about
    // `params` and `duration`, which keep their names.
    let spec = FaultSpec::parse(at.0, &host_step(step, host, &target))?;
    Ok(match spec {
        FaultSpec::NetworkLoss { params, .. } => FaultSpec::PodNetworkLoss { target, params },
        FaultSpec::NetworkPartition { params, .. } => {
            FaultSpec::PodNetworkPartition { target, params }
        }
        FaultSpec::NetworkBandwidth { params, .. } => {
            FaultSpec::PodNetworkBandwidth { target, params }
        }
        FaultSpec::NetworkLatency { params, .. } => FaultSpec::PodNetworkLatency { target, params },
        FaultSpec::NetworkCorrupt { params, .. } => FaultSpec::PodNetworkCorrupt { target, params },
        FaultSpec::NetworkDuplicate { params, .. } => {
            FaultSpec::PodNetworkDuplicate { target, params }
        }
        FaultSpec::NetworkReorder { params, .. } => FaultSpec::PodNetworkReorder { target, params },
        FaultSpec::CpuStress { params } => FaultSpec::PodCpuStress { target, params },
        FaultSpec::MemoryStress { params } => FaultSpec::PodMemoryStress { target, params },
        FaultSpec::ProcessKill { params, .. } => FaultSpec::PodProcessKill { target, params },
        other => {
            return Err(SpecError::field(
                at.of("fault"),
                format!("{} has no pod-scoped form", other.kind()),
            ))
        }
    })
}

impl FaultSpec {
    /// A pod-scoped fault's pods and what inside them.
    pub fn pod_scope(&self) -> Option<&PodScopeTarget> {
        match self {
            FaultSpec::PodNetworkLoss { target, .. }
            | FaultSpec::PodNetworkPartition { target, .. }
            | FaultSpec::PodNetworkBandwidth { target, .. }
            | FaultSpec::PodNetworkLatency { target, .. }
            | FaultSpec::PodNetworkCorrupt { target, .. }
            | FaultSpec::PodNetworkDuplicate { target, .. }
            | FaultSpec::PodNetworkReorder { target, .. }
            | FaultSpec::PodCpuStress { target, .. }
            | FaultSpec::PodMemoryStress { target, .. }
            | FaultSpec::PodProcessKill { target, .. } => Some(target),
            _ => None,
        }
    }

    /// The host fault a pod-scoped fault runs inside one pod: network kinds in the network
    /// namespace named `netns` (attached by the delegate), on the target's interface; stress
    /// kinds as they are (the delegate moves their workers into the container's cgroups); the
    /// process kill on the process `pid` the delegate found in the container.
    pub fn host(&self, netns: Option<&str>, pid: Option<i32>) -> Option<FaultSpec> {
        let net = |t: &PodScopeTarget| NetworkTarget {
            interface: t.interface().to_string(),
            netns: netns.map(str::to_string),
        };
        Some(match self {
            FaultSpec::PodNetworkLoss { target, params } => FaultSpec::NetworkLoss {
                target: net(target),
                params: params.clone(),
            },
            FaultSpec::PodNetworkPartition { target, params } => FaultSpec::NetworkPartition {
                target: net(target),
                params: params.clone(),
            },
            FaultSpec::PodNetworkBandwidth { target, params } => FaultSpec::NetworkBandwidth {
                target: net(target),
                params: params.clone(),
            },
            FaultSpec::PodNetworkLatency { target, params } => FaultSpec::NetworkLatency {
                target: net(target),
                params: params.clone(),
            },
            FaultSpec::PodNetworkCorrupt { target, params } => FaultSpec::NetworkCorrupt {
                target: net(target),
                params: params.clone(),
            },
            FaultSpec::PodNetworkDuplicate { target, params } => FaultSpec::NetworkDuplicate {
                target: net(target),
                params: params.clone(),
            },
            FaultSpec::PodNetworkReorder { target, params } => FaultSpec::NetworkReorder {
                target: net(target),
                params: params.clone(),
            },
            FaultSpec::PodCpuStress { params, .. } => FaultSpec::CpuStress {
                params: params.clone(),
            },
            FaultSpec::PodMemoryStress { params, .. } => FaultSpec::MemoryStress {
                params: params.clone(),
            },
            FaultSpec::PodProcessKill { params, .. } => FaultSpec::ProcessKill {
                target: ProcessTarget {
                    pid,
                    ..ProcessTarget::default()
                },
                // One process per host fault: the delegate picks them in the container.
                params: KillParams {
                    count: None,
                    percentage: None,
                    ..params.clone()
                },
            },
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(step: &str) -> Result<FaultSpec, String> {
        let yaml = format!(
            "apiVersion: faultline.dev/v1\nkind: Experiment\nmetadata: {{name: x}}\n\
             hypothesis:\n  probes:\n    - {{name: a, tcp: {{address: \"127.0.0.1:1\"}}}}\n\
             steps:\n  - {step}\n"
        );
        crate::parse_template(&yaml)
            .map(|e| e.faults().into_iter().next().unwrap().spec)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn pod_kinds_take_the_host_kinds_params_and_run_them_inside_the_pod() {
        let s = parse("{fault: pod-network-loss, target: {namespace: shop, labelSelector: app=web}, params: {percent: 30, ports: [5432]}, duration: 1m}").unwrap();
        assert_eq!(s.kind(), "pod-network-loss");
        assert_eq!(s.k8s().unwrap().kinds, ["Pod"]);
        assert_eq!(s.k8s().unwrap().namespace, Some("shop"));
        let FaultSpec::NetworkLoss { target, params } = s.host(Some("fl-x"), None).unwrap() else {
            panic!()
        };
        assert_eq!(target.interface, "eth0");
        assert_eq!(target.netns.as_deref(), Some("fl-x"));
        assert_eq!(params.ports.len(), 1);

        let s = parse("{fault: pod-cpu-stress, target: {namespace: shop, names: [web-1], container: app}, params: {workers: 1, load: 50}, duration: 30s}").unwrap();
        assert_eq!(s.pod_scope().unwrap().container.as_deref(), Some("app"));
        assert!(matches!(
            s.host(None, None),
            Some(FaultSpec::CpuStress { .. })
        ));

        let s = parse("{fault: pod-process-kill, target: {namespace: shop, names: [web-1], process: nginx}, params: {signal: TERM, count: 1}}").unwrap();
        let Some(FaultSpec::ProcessKill { target, params }) = s.host(None, Some(42)) else {
            panic!()
        };
        assert_eq!(target.pid, Some(42));
        assert_eq!(
            params.count, None,
            "one host kill per process the delegate picked"
        );
        // The pod kind's own pick is kept for the delegate.
        assert!(
            matches!(s, FaultSpec::PodProcessKill { ref params, .. } if params.count == Some(1))
        );
    }

    #[test]
    fn pod_kinds_name_the_field_at_fault() {
        for (step, want) in [
            ("{fault: pod-network-loss, target: {namespace: shop, labelSelector: a=b}, params: {percent: 300}, duration: 1s}", "steps[0].params.percent"),
            ("{fault: pod-network-loss, target: {namespace: shop, labelSelector: a=b}, params: {percent: 3}}", "needs a duration"),
            ("{fault: pod-network-partition, target: {namespace: shop, labelSelector: a=b}, params: {}, duration: 1s}", "destinations, ports or both"),
            ("{fault: pod-network-loss, target: {namespace: shop, labelSelector: a=b, container: app}, params: {percent: 3}, duration: 1s}", "steps[0].target.container"),
            ("{fault: pod-network-loss, target: {namespace: shop, labelSelector: a=b, interface: \"eth 0\"}, params: {percent: 3}, duration: 1s}", "steps[0].target.interface"),
            ("{fault: pod-cpu-stress, target: {namespace: shop, labelSelector: a=b, interface: eth0}, duration: 1s}", "steps[0].target.interface"),
            ("{fault: pod-cpu-stress, target: {namespace: shop}, duration: 1s}", "or names"),
            ("{fault: pod-cpu-stress, target: {namespace: Shop, names: [a]}, duration: 1s}", "steps[0].target.namespace"),
            ("{fault: pod-process-kill, target: {namespace: shop, names: [a]}}", "steps[0].target.process"),
            ("{fault: pod-process-kill, target: {namespace: shop, names: [a], process: a-very-long-process-name}}", "steps[0].target.process"),
            ("{fault: pod-memory-stress, target: {namespace: shop, names: [a], process: x}, params: {size: 10MiB}, duration: 1s}", "only pod-process-kill"),
            ("{fault: pod-memory-stress, target: {namespace: shop, names: [a], pod: x}, params: {size: 10MiB}, duration: 1s}", "unknown field"),
        ] {
            let e = parse(step).unwrap_err();
            assert!(e.contains(want), "{step}: {e}");
        }
    }
}
