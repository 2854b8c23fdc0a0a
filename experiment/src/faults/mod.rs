//! Typed parameters of each fault kind. The delegate's fault implementations consume these; the
//! hub uses them to reject a bad template before anything runs.
use crate::{template::FaultStep, template::SpecError};
use serde::{de::DeserializeOwned, Serialize};
use std::time::Duration;

mod http;
mod network;
mod process;
pub use http::*;
pub use network::*;
pub use process::*;
mod proxy;
pub use proxy::*;
mod size;
pub use size::{ByteSize, PATTERN as SIZE_PATTERN};
mod stress;
pub use stress::*;
mod kubernetes;
pub use kubernetes::*;
mod pods;
pub use pods::{host_kind, PodScopeTarget, DEFAULT_POD_INTERFACE, POD_KINDS};

/// Fault kinds this version understands.
pub const KINDS: &[&str] = &[
    "process-kill",
    "process-stop",
    "process-pause",
    "cpu-stress",
    "memory-stress",
    "io-stress",
    "disk-fill",
    "network-loss",
    "network-partition",
    "network-bandwidth",
    "network-latency",
    "network-corrupt",
    "network-duplicate",
    "network-reorder",
    "http-fault",
    "tcp-proxy",
    "pod-delete",
    "deployment-scale",
    "statefulset-scale",
    "node-cordon",
    "node-drain",
    "container-kill",
    "pod-network-loss",
    "pod-network-partition",
    "pod-network-bandwidth",
    "pod-network-latency",
    "pod-network-corrupt",
    "pod-network-duplicate",
    "pod-network-reorder",
    "pod-cpu-stress",
    "pod-memory-stress",
    "pod-process-kill",
];

/// The typed fault of a step. Its schema (feature `schema`) describes each kind's `target` and
/// `params` in the template; `required` there lists what a template step of the kind must give.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum FaultSpec {
    /// Send a signal (default KILL) to the target process; not revertible, so the step watches
    /// for `restartWait` (or `duration`) while the supervisor brings it back.
    #[cfg_attr(feature = "schema", schemars(extend("required" = ["target"])))]
    ProcessKill {
        target: ProcessTarget,
        params: KillParams,
    },
    /// The older name of `process-stop`, still accepted: SIGSTOP the target for `duration`;
    /// revert is SIGCONT.
    #[cfg_attr(feature = "schema", schemars(extend("required" = ["target", "duration"])))]
    ProcessPause {
        target: ProcessTarget,
        params: PauseParams,
    },
    /// Drop a share of the packets on an interface (nftables), optionally only to/from some
    /// destinations and ports.
    #[cfg_attr(feature = "schema", schemars(extend("required" = ["target", "params", "duration"])))]
    NetworkLoss {
        target: NetworkTarget,
        params: LossParams,
    },
    /// Drop all traffic to and from some destinations and/or ports, both ways (nftables).
    #[cfg_attr(feature = "schema", schemars(extend("required" = ["target", "params", "duration"])))]
    NetworkPartition {
        target: NetworkTarget,
        params: PartitionParams,
    },
    /// Limit the egress rate of an interface (tc tbf, or htb when narrowed to destinations/ports).
    #[cfg_attr(feature = "schema", schemars(extend("required" = ["target", "params", "duration"])))]
    NetworkBandwidth {
        target: NetworkTarget,
        params: BandwidthParams,
    },
    /// Delay egress packets (tc netem; needs the kernel's sch_netem).
    #[cfg_attr(feature = "schema", schemars(extend("required" = ["target", "params", "duration"])))]
    NetworkLatency {
        target: NetworkTarget,
        params: LatencyParams,
    },
    /// Corrupt a share of the egress packets (tc netem; needs the kernel's sch_netem).
    #[cfg_attr(feature = "schema", schemars(extend("required" = ["target", "params", "duration"])))]
    NetworkCorrupt {
        target: NetworkTarget,
        params: NetemShareParams,
    },
    /// Duplicate a share of the egress packets (tc netem; needs the kernel's sch_netem).
    #[cfg_attr(feature = "schema", schemars(extend("required" = ["target", "params", "duration"])))]
    NetworkDuplicate {
        target: NetworkTarget,
        params: NetemShareParams,
    },
    /// Reorder egress packets (tc netem; needs the kernel's sch_netem).
    #[cfg_attr(feature = "schema", schemars(extend("required" = ["target", "params", "duration"])))]
    NetworkReorder {
        target: NetworkTarget,
        params: ReorderParams,
    },
    /// Run an HTTP/1.1 reverse proxy on `target.listen` in front of `target.upstream` for
    /// `duration`, acting on requests by `params.rules` (abort, delay, reset, rewrite); requests
    /// no rule takes pass unchanged. Revert stops it and closes its connections.
    #[cfg_attr(feature = "schema", schemars(extend("required" = ["target", "duration"])))]
    HttpFault {
        target: HttpProxyTarget,
        params: HttpFaultParams,
    },
    /// SIGSTOP the target (all matches, or `count` / `percentage` of them) for `duration`;
    /// revert is SIGCONT, so a stopped process is never left stopped.
    #[cfg_attr(feature = "schema", schemars(extend("required" = ["target", "duration"])))]
    ProcessStop {
        target: ProcessTarget,
        params: StopParams,
    },
    /// Keep CPUs busy for `duration`: `workers` processes, each busy `load` % of the time,
    /// optionally pinned to `cores`.
    #[cfg_attr(feature = "schema", schemars(extend("required" = ["duration"])))]
    CpuStress { params: CpuParams },
    /// Allocate and touch `size` (or `percent` of MemAvailable) in a worker process for
    /// `duration`; freed on revert. Refused when too little memory would be left, unless
    /// `force`.
    #[cfg_attr(feature = "schema", schemars(extend("required" = ["params", "duration"])))]
    MemoryStress { params: MemoryParams },
    /// Write load under the directory `target.path` for `duration`: `workers` writers of
    /// `blockSize` blocks, optionally fsynced; their files are deleted on revert.
    #[cfg_attr(feature = "schema", schemars(extend("required" = ["target", "duration"])))]
    IoStress {
        target: PathTarget,
        params: IoParams,
    },
    /// Fill the filesystem holding `target.path` to `fillPercent` % used (or by `size`) with
    /// one file, deleted on revert. Refused beyond a safety margin unless `force`.
    #[cfg_attr(feature = "schema", schemars(extend("required" = ["target", "params", "duration"])))]
    DiskFill {
        target: PathTarget,
        params: DiskFillParams,
    },
    /// A TCP proxy with Toxiproxy's toxics for `duration`: a new proxy (`listen` → `upstream`)
    /// that exists for the step, or toxics added to an existing proxy of the delegate's
    /// Toxiproxy API and removed at the end.
    #[cfg_attr(feature = "schema", schemars(extend("required" = ["target", "duration"])))]
    TcpProxy {
        target: ProxyTarget,
        params: ProxyParams,
    },
    /// Delete the target pods (all matches, or `count` / `percentage` of them) through the
    /// Kubernetes API, with their grace period or `force`; once, or again every `interval` for
    /// `duration`. Nothing to revert: the pods' controller replaces them.
    #[cfg_attr(feature = "schema", schemars(extend("required" = ["target"])))]
    PodDelete {
        target: PodTarget,
        params: PodDeleteParams,
    },
    /// Scale a Deployment to `params.replicas` for `duration`; the original count is journalled
    /// first and restored on revert (also by a restarted delegate).
    #[cfg_attr(feature = "schema", schemars(extend("required" = ["target", "params", "duration"])))]
    DeploymentScale {
        target: WorkloadTarget,
        params: ScaleParams,
    },
    /// Scale a StatefulSet to `params.replicas` for `duration`; the original count is journalled
    /// first and restored on revert (also by a restarted delegate).
    #[cfg_attr(feature = "schema", schemars(extend("required" = ["target", "params", "duration"])))]
    StatefulsetScale {
        target: WorkloadTarget,
        params: ScaleParams,
    },
    /// Mark the target nodes unschedulable (`spec.unschedulable: true`) for `duration`. Which
    /// of them were schedulable is journalled first; revert (also by a restarted delegate)
    /// uncordons only those, never a node that was cordoned already.
    #[cfg_attr(feature = "schema", schemars(extend("required" = ["target", "duration"])))]
    NodeCordon { target: NodeTarget },
    /// Cordon the target nodes, then evict their pods through the Eviction API for `duration`,
    /// as `kubectl drain` does: PodDisruptionBudgets are honoured (a 429 is retried until the
    /// step ends), DaemonSet and mirror pods stay. Revert uncordons the nodes it cordoned; the
    /// evicted pods' controllers place them elsewhere.
    #[cfg_attr(feature = "schema", schemars(extend("required" = ["target", "duration"])))]
    NodeDrain {
        target: NodeTarget,
        params: NodeDrainParams,
    },
    /// Restart a container of the target pods by signalling its main process (`kill 1` run by
    /// the pod's exec); refused, with the reason, where the image has no shell or `kill`. Not
    /// undone: the kubelet restarts the container; the step watches for `restartWait`.
    #[cfg_attr(feature = "schema", schemars(extend("required" = ["target"])))]
    ContainerKill {
        target: PodTarget,
        params: ContainerKillParams,
    },
    /// `network-loss` inside the target pods' network namespace (on `target.interface`,
    /// default `eth0`); needs a delegate on the pods' node (privileged DaemonSet).
    #[cfg_attr(feature = "schema", schemars(extend("required" = ["target", "params", "duration"])))]
    PodNetworkLoss {
        target: PodScopeTarget,
        params: LossParams,
    },
    /// `network-partition` inside the target pods' network namespace.
    #[cfg_attr(feature = "schema", schemars(extend("required" = ["target", "params", "duration"])))]
    PodNetworkPartition {
        target: PodScopeTarget,
        params: PartitionParams,
    },
    /// `network-bandwidth` inside the target pods' network namespace.
    #[cfg_attr(feature = "schema", schemars(extend("required" = ["target", "params", "duration"])))]
    PodNetworkBandwidth {
        target: PodScopeTarget,
        params: BandwidthParams,
    },
    /// `network-latency` inside the target pods' network namespace (tc netem).
    #[cfg_attr(feature = "schema", schemars(extend("required" = ["target", "params", "duration"])))]
    PodNetworkLatency {
        target: PodScopeTarget,
        params: LatencyParams,
    },
    /// `network-corrupt` inside the target pods' network namespace (tc netem).
    #[cfg_attr(feature = "schema", schemars(extend("required" = ["target", "params", "duration"])))]
    PodNetworkCorrupt {
        target: PodScopeTarget,
        params: NetemShareParams,
    },
    /// `network-duplicate` inside the target pods' network namespace (tc netem).
    #[cfg_attr(feature = "schema", schemars(extend("required" = ["target", "params", "duration"])))]
    PodNetworkDuplicate {
        target: PodScopeTarget,
        params: NetemShareParams,
    },
    /// `network-reorder` inside the target pods' network namespace (tc netem).
    #[cfg_attr(feature = "schema", schemars(extend("required" = ["target", "params", "duration"])))]
    PodNetworkReorder {
        target: PodScopeTarget,
        params: ReorderParams,
    },
    /// `cpu-stress` whose workers run in the target container's cgroups, so they share its CPU
    /// limit.
    #[cfg_attr(feature = "schema", schemars(extend("required" = ["target", "duration"])))]
    PodCpuStress {
        target: PodScopeTarget,
        params: CpuParams,
    },
    /// `memory-stress` whose worker runs in the target container's cgroups, so it counts against
    /// the container's memory limit (and is the first the OOM killer takes there).
    #[cfg_attr(feature = "schema", schemars(extend("required" = ["target", "params", "duration"])))]
    PodMemoryStress {
        target: PodScopeTarget,
        params: MemoryParams,
    },
    /// `process-kill` of the processes named `target.process` inside the target container.
    #[cfg_attr(feature = "schema", schemars(extend("required" = ["target"])))]
    PodProcessKill {
        target: PodScopeTarget,
        params: KillParams,
    },
}

impl FaultSpec {
    /// Reads the fault of the step at `path` (e.g. `steps[1]` or `steps[2].parallel[0]`).
    pub fn parse(path: &str, step: &FaultStep) -> Result<FaultSpec, SpecError> {
        let at = Field(path);
        match step.fault.as_str() {
            k if k.starts_with("network-") && KINDS.contains(&k) => network::parse(&at, step),
            "http-fault" => http::parse(&at, step),
            "process-kill" | "process-pause" | "process-stop" => process::parse(&at, step),
            "cpu-stress" | "memory-stress" | "io-stress" | "disk-fill" => stress::parse(&at, step),
            "tcp-proxy" => proxy::parse(&at, step),
            k if host_kind(k).is_some() => pods::parse(&at, step, kubernetes::check_pods),
            k if K8S_KINDS.contains(&k) => kubernetes::parse(&at, step),
            other => {
                let hint = crate::hints::did_you_mean(other, KINDS)
                    .unwrap_or_else(|| format!("known kinds: {}", KINDS.join(", ")));
                Err(
                    SpecError::field(at.of("fault"), format!("unknown fault kind {other:?}"))
                        .hint(hint),
                )
            }
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            FaultSpec::ProcessKill { .. } => "process-kill",
            FaultSpec::ProcessPause { .. } => "process-pause",
            FaultSpec::NetworkLoss { .. } => "network-loss",
            FaultSpec::NetworkPartition { .. } => "network-partition",
            FaultSpec::NetworkBandwidth { .. } => "network-bandwidth",
            FaultSpec::NetworkLatency { .. } => "network-latency",
            FaultSpec::NetworkCorrupt { .. } => "network-corrupt",
            FaultSpec::NetworkDuplicate { .. } => "network-duplicate",
            FaultSpec::NetworkReorder { .. } => "network-reorder",
            FaultSpec::HttpFault { .. } => "http-fault",
            FaultSpec::ProcessStop { .. } => "process-stop",
            FaultSpec::CpuStress { .. } => "cpu-stress",
            FaultSpec::MemoryStress { .. } => "memory-stress",
            FaultSpec::IoStress { .. } => "io-stress",
            FaultSpec::DiskFill { .. } => "disk-fill",
            FaultSpec::TcpProxy { .. } => "tcp-proxy",
            FaultSpec::PodDelete { .. } => "pod-delete",
            FaultSpec::DeploymentScale { .. } => "deployment-scale",
            FaultSpec::StatefulsetScale { .. } => "statefulset-scale",
            FaultSpec::NodeCordon { .. } => "node-cordon",
            FaultSpec::NodeDrain { .. } => "node-drain",
            FaultSpec::ContainerKill { .. } => "container-kill",
            FaultSpec::PodNetworkLoss { .. } => "pod-network-loss",
            FaultSpec::PodNetworkPartition { .. } => "pod-network-partition",
            FaultSpec::PodNetworkBandwidth { .. } => "pod-network-bandwidth",
            FaultSpec::PodNetworkLatency { .. } => "pod-network-latency",
            FaultSpec::PodNetworkCorrupt { .. } => "pod-network-corrupt",
            FaultSpec::PodNetworkDuplicate { .. } => "pod-network-duplicate",
            FaultSpec::PodNetworkReorder { .. } => "pod-network-reorder",
            FaultSpec::PodCpuStress { .. } => "pod-cpu-stress",
            FaultSpec::PodMemoryStress { .. } => "pod-memory-stress",
            FaultSpec::PodProcessKill { .. } => "pod-process-kill",
        }
    }

    /// Time the step takes beyond its `duration`.
    pub fn extra_time(&self) -> Duration {
        match self {
            FaultSpec::ProcessKill { params, .. } => {
                params.restart_wait.map(|d| d.0).unwrap_or_default()
            }
            FaultSpec::ContainerKill { params, .. } => {
                params.restart_wait.map(|d| d.0).unwrap_or_default()
            }
            FaultSpec::PodProcessKill { params, .. } => {
                params.restart_wait.map(|d| d.0).unwrap_or_default()
            }
            _ => Duration::ZERO,
        }
    }

    /// The process target, for the kinds that act on processes (allow-list checks).
    pub fn process_target(&self) -> Option<&ProcessTarget> {
        match self {
            FaultSpec::ProcessKill { target, .. }
            | FaultSpec::ProcessPause { target, .. }
            | FaultSpec::ProcessStop { target, .. } => Some(target),
            _ => None,
        }
    }

    /// Network addresses a proxy kind binds (`listen`) or connects to (`upstream`), as
    /// `(role, HOST:PORT)`, for the allow-list's `cidr=` and `port=` entries.
    pub fn endpoints(&self) -> Vec<(&'static str, String)> {
        match self {
            FaultSpec::TcpProxy { target, .. } => {
                [("listen", &target.listen), ("upstream", &target.upstream)]
                    .into_iter()
                    .filter_map(|(role, a)| a.clone().map(|a| (role, a)))
                    .collect()
            }
            FaultSpec::HttpFault { target, .. } => {
                let up = target.upstream.trim_start_matches("http://");
                let up = up.split('/').next().unwrap_or(up);
                // `host`, `[v6]` or `1.2.3.4` have no port: HTTP's default applies.
                let has_port = up.rsplit_once(':').is_some_and(|(h, p)| {
                    p.parse::<u16>().is_ok() && (!h.contains(':') || h.ends_with(']'))
                });
                let up = if has_port {
                    up.to_string()
                } else {
                    format!("{up}:80")
                };
                vec![("listen", target.listen.clone()), ("upstream", up)]
            }
            _ => Vec::new(),
        }
    }

    /// The directory a kind writes under, for the kinds that write files (allow-list checks).
    pub fn path(&self) -> Option<&str> {
        match self {
            FaultSpec::IoStress { target, .. } | FaultSpec::DiskFill { target, .. } => {
                Some(&target.path)
            }
            _ => None,
        }
    }

    /// Interface, namespace, destinations and ports, for the kinds that act on the network.
    pub fn network(&self) -> Option<NetworkScope<'_>> {
        network::scope(self)
    }

    /// Namespace and object kind, for the kinds that act on a Kubernetes cluster.
    pub fn k8s(&self) -> Option<K8sScope<'_>> {
        kubernetes::scope(self)
    }
}

/// The path of a step, to name its fields in errors: `at.of("target")` is `steps[1].target`.
pub(crate) struct Field<'a>(pub &'a str);

impl Field<'_> {
    pub fn of(&self, f: &str) -> String {
        format!("{}.{f}", self.0)
    }
}

/// Fails with a hint when a step that needs a duration has none.
pub(crate) fn need_duration(at: &Field<'_>, step: &FaultStep) -> Result<(), SpecError> {
    if step.duration.is_none() {
        return Err(SpecError::field(
            at.of("duration"),
            format!("{} needs a duration", step.fault),
        )
        .hint("add e.g. duration: 10s to the step"));
    }
    Ok(())
}

/// Reads a JSON value (null = empty object) into `T`, naming the field on error.
pub(crate) fn typed<T: DeserializeOwned>(
    v: &serde_json::Value,
    field: &str,
) -> Result<T, SpecError> {
    let v = if v.is_null() {
        serde_json::Value::Object(Default::default())
    } else {
        v.clone()
    };
    serde_json::from_value(v.clone()).map_err(|e| {
        let msg = e.to_string();
        let quoted = msg.split('`').nth(1).unwrap_or_default();
        // serde_json gives no inner path: name the key that was unknown, or whose value was.
        let key = if msg.starts_with("unknown field") {
            Some(quoted.to_string())
        } else {
            v.as_object().and_then(|o| {
                o.iter()
                    .find(|(_, val)| val.as_str() == Some(quoted))
                    .map(|(k, _)| k.clone())
            })
        };
        let field = key
            .map(|k| format!("{field}.{k}"))
            .unwrap_or_else(|| field.to_string());
        SpecError::field(field, msg)
    })
}
