//! `cpu-stress`: `workers` worker processes (default one per CPU the delegate may use), each
//! busy `load` % of every ~100 ms period, optionally pinned to `cores` (round robin), until
//! revert kills them. Processes rather than threads for the reasons in [`super::stress`]; for
//! CPU load alone threads would do, but one kind of worker keeps one way to stop them, also
//! after a delegate restart.
use super::{
    stress::{tag, StressError, Workers},
    Applied, Fault, FaultError, RunCtx,
};
use faultline_experiment::faults::FaultSpec;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub struct CpuStress {
    pub workers: Arc<Workers>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    tag: String,
    workers: u32,
    load: u32,
    cores: Vec<u16>,
}

/// CPUs the delegate may run on.
fn usable_cpus() -> Vec<usize> {
    match nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) {
        Ok(set) => (0..nix::sched::CpuSet::count())
            .filter(|c| set.is_set(*c).unwrap_or(false))
            .collect(),
        Err(_) => (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect(),
    }
}

impl Fault for CpuStress {
    fn kind(&self) -> &'static str {
        "cpu-stress"
    }

    fn revertible(&self, _: &Applied) -> bool {
        true
    }

    fn plan(&self, spec: &FaultSpec, ctx: RunCtx<'_>) -> Result<Applied, FaultError> {
        let FaultSpec::CpuStress { params } = spec else {
            return Err(FaultError::WrongSpec {
                kind: self.kind(),
                given: spec.kind(),
            });
        };
        let usable = usable_cpus();
        if let Some(c) = params
            .cores
            .iter()
            .find(|c| !usable.contains(&(**c as usize)))
        {
            return Err(StressError::Refused(format!(
                "params.cores: CPU {c} is not available to the delegate (usable: {})",
                usable
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .into());
        }
        let workers = params.workers.unwrap_or(if params.cores.is_empty() {
            usable.len().max(1) as u32
        } else {
            params.cores.len() as u32
        });
        let load = params.load.unwrap_or(100);
        let pinned = if params.cores.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = params.cores.iter().map(|c| c.to_string()).collect();
            format!(", pinned to CPU {}", list.join(", "))
        };
        let data = Data {
            tag: tag(ctx.run_id, ctx.step),
            workers,
            load,
            cores: params.cores.clone(),
        };
        Ok(Applied::new(
            ctx,
            self.kind(),
            format!(
                "{workers} CPU stress worker{} busy {load}% of each 100ms{pinned}",
                if workers == 1 { "" } else { "s" }
            ),
            serde_json::to_value(data).unwrap_or_default(),
        ))
    }

    fn apply(&self, plan: &Applied) -> Result<(), FaultError> {
        let d: Data = serde_json::from_value(plan.data.clone())
            .map_err(|e| StressError::Refused(format!("bad cpu-stress record: {e}")))?;
        for i in 0..d.workers as usize {
            let mut args = vec!["cpu".to_string(), "--load".into(), d.load.to_string()];
            if !d.cores.is_empty() {
                args.extend(["--core".into(), d.cores[i % d.cores.len()].to_string()]);
            }
            self.workers.spawn(&d.tag, &args)?;
        }
        Ok(())
    }

    fn revert(&self, applied: &Applied) -> Result<String, FaultError> {
        let tag = super::stress::tag(&applied.run_id, applied.step);
        let n = self.workers.stop(&tag);
        Ok(format!("stopped {n} CPU stress workers"))
    }
}
