//! Fault injection: the [`Fault`] trait every fault kind implements, the serializable [`Applied`]
//! record the journal stores, and the [`Faults`] registry from kind name to implementation.
//!
//! Adding a kind means one new file here and one line in [`Faults::new`]. The registry also
//! enforces the one ordering rule that matters: a fault is journaled (fsynced) before it is
//! applied, and its journal entry goes only once it is reverted.
use crate::{allow::AllowList, journal::Journal};
use faultline_experiment::faults::FaultSpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub mod container_kill;
pub mod cpu_stress;
pub mod disk_fill;
pub mod http_fault;
pub mod http_proxy;
pub mod io_stress;
pub mod memory_stress;
pub mod network;
pub mod network_nft;
pub mod network_tc;
pub mod node_cordon;
pub mod node_drain;
pub mod pod_delete;
pub mod pod_scoped;
mod process;
pub mod process_kill;
pub mod process_pause;
pub mod scale;
pub mod stress;
pub mod stress_worker;
pub mod tcp_proxy;

pub use process::ProcRef;

/// Which run and step a fault belongs to.
#[derive(Clone, Copy, Debug)]
pub struct RunCtx<'a> {
    pub run_id: &'a str,
    pub step: usize,
}

/// A fault as resolved and applied: everything a revert needs, even after a restart.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Applied {
    pub run_id: String,
    pub step: usize,
    /// Fault kind, e.g. `process-pause`; picks the implementation that reverts it.
    pub kind: String,
    /// One line for humans, used as the `fault.applied` detail.
    pub detail: String,
    /// Target processes, with start times so a reused pid is never signalled by mistake.
    #[serde(default)]
    pub processes: Vec<ProcRef>,
    /// Signal name for process faults, e.g. `SIGKILL`.
    #[serde(default)]
    pub signal: Option<String>,
    /// Anything else a kind needs to revert (its own shape, e.g. the rule handles it added).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub data: serde_json::Value,
    pub at_ms: i64,
}

impl Applied {
    /// The record of a fault of `kind` in the run and step of `ctx`, stamped now, with the
    /// kind's own revert `data` and no processes or signal.
    pub fn new(ctx: RunCtx<'_>, kind: &str, detail: String, data: serde_json::Value) -> Self {
        Applied {
            run_id: ctx.run_id.to_string(),
            step: ctx.step,
            kind: kind.into(),
            detail,
            processes: Vec::new(),
            signal: None,
            data,
            at_ms: crate::now_ms(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    #[error("no process named {0}")]
    NoProcessNamed(String),
    #[error("pid file {path}: {reason}")]
    PidFile { path: String, reason: String },
    #[error("no process with pid {0}")]
    NoSuchPid(i32),
    #[error("refusing to target pid {pid} ({why})")]
    Forbidden { pid: i32, why: &'static str },
    #[error("cannot send {signal} to pid {pid}: {errno}")]
    Signal {
        pid: i32,
        signal: &'static str,
        errno: nix::errno::Errno,
    },
    #[error("fault kind {0} is not supported by this delegate")]
    Unsupported(String),
    #[error("{kind} cannot act on a {given} spec")]
    WrongSpec {
        kind: &'static str,
        given: &'static str,
    },
    #[error("{0}")]
    NotAllowed(String),
    /// The targets are there, but acting on them would do harm the template did not ask for.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Proxy(#[from] crate::proxy::ProxyError),
    #[error("cannot write the fault journal: {0:#}")]
    Journal(anyhow::Error),
    #[error(transparent)]
    Net(#[from] network::NetError),
    #[error(transparent)]
    Http(#[from] http_fault::HttpFaultError),
    #[error("no process matches {0}")]
    NoMatch(String),
    #[error("no user named {0} on this host")]
    NoUser(String),
    #[error(transparent)]
    Stress(#[from] stress::StressError),
    #[error(transparent)]
    Kube(#[from] crate::k8s::KubeError),
}

/// One fault kind. Implementations are synchronous (they read /proc, send signals, start worker
/// processes, write files), which also means an applied fault can never be half-recorded by a
/// cancelled task.
pub trait Fault: Send + Sync {
    fn kind(&self) -> &'static str;

    /// Whether the fault is held until `revert` undoes it (a one-shot kill cannot be undone and
    /// ends when applied; the step watches for recovery; a repeated kill is held).
    fn revertible(&self, applied: &Applied) -> bool;

    /// Whether this host can run the kind at all (e.g. the kernel has netem); kinds that cannot
    /// are not advertised to the hub.
    fn available(&self) -> bool {
        true
    }

    /// Resolves the targets. Nothing changes yet: the result is journaled before [`Fault::apply`].
    fn plan(&self, spec: &FaultSpec, ctx: RunCtx<'_>) -> Result<Applied, FaultError>;

    fn apply(&self, plan: &Applied) -> Result<(), FaultError>;

    /// Undoes `apply` and says what it did; must succeed when the targets are already gone.
    fn revert(&self, applied: &Applied) -> Result<String, FaultError>;

    /// For a fault that is not undone: what became of its targets once the step's watch is
    /// over (e.g. whether each container restarted), for the `fault.ended` event.
    fn outcome(&self, _applied: &Applied) -> Option<String> {
        None
    }
}

/// Kind name -> implementation.
pub struct Faults {
    kinds: BTreeMap<&'static str, Box<dyn Fault>>,
    allow: AllowList,
    /// The cluster of the Kubernetes kinds, if any.
    kube: Option<std::sync::Arc<crate::k8s::Kube>>,
    /// The resource faults' worker processes.
    workers: std::sync::Arc<stress::Workers>,
}

impl Default for Faults {
    fn default() -> Self {
        Self::new()
    }
}

impl Faults {
    /// Every kind, no fault restricted (tests, and a delegate without `--allow`).
    pub fn new() -> Self {
        Self::with_allow(AllowList::none())
    }

    pub fn with_allow(allow: AllowList) -> Self {
        let mut f = Faults {
            kinds: BTreeMap::new(),
            allow,
            kube: None,
            workers: std::sync::Arc::new(stress::Workers::new("/proc/self/exe".into())),
        };
        f.register(process_kill::ProcessKill::new(f.allow.clone()));
        f.register(process_pause::ProcessPause::pause());
        f.register(process_pause::ProcessPause::stop());
        f.register(disk_fill::DiskFill);
        f.register(network_nft::NetworkLoss);
        f.register(network_nft::NetworkPartition);
        f.register(network_tc::NetworkBandwidth);
        for &kind in faultline_experiment::faults::NETEM_KINDS {
            f.register(network_tc::Netem { kind });
        }
        f.register(http_fault::HttpFault::default());
        f.register(tcp_proxy::TcpProxy);
        f.with_worker_exe("/proc/self/exe")
    }

    /// The Kubernetes kinds act on this cluster (none: they are not advertised and refuse to
    /// plan; journalled ones are reverted once a cluster is configured again).
    pub fn with_kube(mut self, kube: Option<std::sync::Arc<crate::k8s::Kube>>) -> Self {
        self.kube = kube;
        self.register_kube();
        self
    }

    fn register_kube(&mut self) {
        let kube = self.kube.clone();
        self.register(pod_delete::PodDelete::new(kube.clone()));
        self.register(container_kill::ContainerKill::new(kube.clone()));
        self.register(scale::Scale::new(scale::Workload::Deployment, kube.clone()));
        self.register(scale::Scale::new(
            scale::Workload::StatefulSet,
            kube.clone(),
        ));
        self.register(node_cordon::NodeCordon::new(kube.clone()));
        self.register(node_drain::NodeDrain::new(kube.clone()));
        for &(kind, host) in faultline_experiment::faults::POD_KINDS {
            if let Some(h) = self.host_impl(host) {
                let mut f = pod_scoped::PodScoped::new(kind, h, kube.clone());
                if host.ends_with("-stress") {
                    f = f.with_workers(self.workers.clone());
                }
                self.register(f);
            }
        }
    }

    /// A fresh implementation of a host kind, for a pod-scoped kind to run inside pods.
    fn host_impl(&self, host: &str) -> Option<Box<dyn Fault>> {
        let workers = self.workers.clone();
        Some(match host {
            "network-loss" => Box::new(network_nft::NetworkLoss),
            "network-partition" => Box::new(network_nft::NetworkPartition),
            "network-bandwidth" => Box::new(network_tc::NetworkBandwidth),
            "cpu-stress" => Box::new(cpu_stress::CpuStress { workers }),
            "memory-stress" => Box::new(memory_stress::MemoryStress { workers }),
            // Inside a pod the operator's namespace= entry decides, not the host's process=.
            "process-kill" => Box::new(process_kill::ProcessKill::new(AllowList::none())),
            k => {
                let kind = faultline_experiment::faults::NETEM_KINDS
                    .iter()
                    .find(|n| **n == k)?;
                Box::new(network_tc::Netem { kind })
            }
        })
    }

    /// Resource faults start their workers from `exe`, the delegate binary (tests pass
    /// `CARGO_BIN_EXE_faultline-delegate`; the default `/proc/self/exe` is the running binary).
    pub fn with_worker_exe(mut self, exe: impl Into<std::path::PathBuf>) -> Self {
        let workers = std::sync::Arc::new(stress::Workers::new(exe.into()));
        self.workers = workers.clone();
        self.register(cpu_stress::CpuStress {
            workers: workers.clone(),
        });
        self.register(memory_stress::MemoryStress {
            workers: workers.clone(),
        });
        self.register(io_stress::IoStress { workers });
        self.register_kube();
        self
    }

    fn register(&mut self, fault: impl Fault + 'static) {
        self.kinds.insert(fault.kind(), Box::new(fault));
    }

    /// Fault kinds this delegate supports and its allow-list permits, as advertised to the hub.
    pub fn capabilities(&self) -> Vec<String> {
        self.kinds
            .iter()
            .filter(|(k, f)| self.allow.fault_kind(k) && f.available())
            .map(|(k, _)| k.to_string())
            .collect()
    }

    pub fn allow(&self) -> &AllowList {
        &self.allow
    }

    /// The implementation of `kind`, allowed or not: reverting what is journalled must always
    /// work, even after the allow-list changed. [`Faults::inject`] enforces the allow-list.
    pub fn get(&self, kind: &str) -> Result<&dyn Fault, FaultError> {
        self.kinds
            .get(kind)
            .map(|f| f.as_ref())
            .ok_or_else(|| FaultError::Unsupported(kind.to_string()))
    }

    /// Resolves the fault as it would be applied now, allow-list included; changes nothing
    /// (dry runs list the result's `detail`).
    pub fn plan(&self, spec: &FaultSpec, ctx: RunCtx<'_>) -> Result<Applied, FaultError> {
        if !self.allow.fault_kind(spec.kind()) {
            return Err(FaultError::NotAllowed(format!(
                "fault {} is not allowed on this delegate",
                spec.kind()
            )));
        }
        if let Some(why) = self
            .allow
            .network_target(spec)
            .into_iter()
            .chain(self.allow.endpoints(spec))
            .next()
        {
            return Err(FaultError::NotAllowed(why));
        }
        // Before the implementation is asked anything: a Kubernetes fault's plan reads the API.
        if let Some((why, entry)) = self.allow.k8s_target(spec).into_iter().next() {
            return Err(FaultError::NotAllowed(format!(
                "{why} on this delegate (needs --allow {entry})"
            )));
        }
        if let Some(why) = self.upstream_names(spec) {
            return Err(FaultError::NotAllowed(why));
        }
        let fault = self.get(spec.kind())?;
        if let Some(path) = spec.path() {
            // The directory as written, and where it really is (a symlink may lead elsewhere).
            let real = std::fs::canonicalize(path)
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| path.to_string());
            if !self.allow.pid_file(path) || !self.allow.pid_file(&real) {
                return Err(FaultError::NotAllowed(format!(
                    "path {path} is not under an allowed path on this delegate"
                )));
            }
        }
        let plan = fault.plan(spec, ctx)?;
        // A pid file may point anywhere: check what it resolved to, before anything happens.
        for p in &plan.processes {
            let comm = std::fs::read_to_string(format!("/proc/{}/comm", p.pid)).unwrap_or_default();
            let comm = comm.trim_end();
            if !self.allow.process_name(comm) {
                return Err(FaultError::NotAllowed(format!(
                    "process {comm} (pid {}) is not allowed on this delegate",
                    p.pid
                )));
            }
        }
        Ok(plan)
    }

    /// Why a proxy fault's upstream, given by name, may not be reached: every address the name
    /// resolves to now must be allowed (a proxy dials its upstream for each connection, and a
    /// probe through it would otherwise reach what the policy refuses, a metadata address say).
    fn upstream_names(&self, spec: &FaultSpec) -> Option<String> {
        use std::net::{IpAddr, ToSocketAddrs};
        for (role, addr) in spec.endpoints() {
            let Some((host, _)) = addr.rsplit_once(':') else {
                continue;
            };
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if role != "upstream" || host == "localhost" || host.parse::<IpAddr>().is_ok() {
                continue;
            }
            let resolved = match addr.to_socket_addrs() {
                Ok(a) => a,
                Err(e) => return Some(format!("upstream {addr}: cannot resolve {host:?}: {e}")),
            };
            for a in resolved {
                if let Err(e) = self.allow.address(a.ip(), a.port()) {
                    return Some(format!("upstream {addr}: {host}: {e}"));
                }
            }
        }
        None
    }

    /// Plans, journals, then applies. If applying fails, whatever may have been applied is
    /// reverted and the journal entry removed before the error is returned.
    pub fn inject(
        &self,
        journal: &Journal,
        spec: &FaultSpec,
        ctx: RunCtx<'_>,
    ) -> Result<Applied, FaultError> {
        let started = std::time::Instant::now();
        let plan = self.plan(spec, ctx)?;
        let fault = self.get(spec.kind())?;
        journal.record(&plan).map_err(FaultError::Journal)?;
        if let Err(e) = fault.apply(&plan) {
            match fault.revert(&plan) {
                Ok(_) => {
                    if let Err(je) = journal.remove(&plan.run_id, plan.step) {
                        tracing::warn!(run_id = %plan.run_id, step = plan.step, error = %je, "failed to remove journal entry");
                    }
                }
                Err(re) => {
                    tracing::error!(run_id = %plan.run_id, step = plan.step, error = %re, "revert after a failed apply failed; the journal keeps the entry")
                }
            }
            return Err(e);
        }
        crate::metrics::get()
            .fault_apply
            .get_or_create(&crate::metrics::fault_kind(spec.kind()))
            .observe(started.elapsed().as_secs_f64());
        Ok(plan)
    }

    /// Reverts and forgets the journal entry; returns what the revert did. On failure the entry
    /// stays, so the next start retries.
    pub fn revert(&self, journal: &Journal, applied: &Applied) -> Result<String, FaultError> {
        let started = std::time::Instant::now();
        let detail = self.get(&applied.kind)?.revert(applied)?;
        journal
            .remove(&applied.run_id, applied.step)
            .map_err(FaultError::Journal)?;
        crate::metrics::get()
            .fault_revert
            .get_or_create(&crate::metrics::fault_kind(&applied.kind))
            .observe(started.elapsed().as_secs_f64());
        Ok(detail)
    }
}
