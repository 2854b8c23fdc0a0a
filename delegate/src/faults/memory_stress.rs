//! `memory-stress`: one worker process allocates and touches `size` (or `percent` of
//! MemAvailable), at once or evenly over `ramp`, and holds it until revert kills it (which frees
//! it). The worker, not the delegate, is what the OOM killer takes first (see
//! [`super::stress`]). Planning refuses an amount that would leave less than the safety margin
//! of MemAvailable unless `force`.
use super::{
    stress::{self, human, tag, StressError, Workers},
    Applied, Fault, FaultError, RunCtx,
};
use faultline_experiment::faults::FaultSpec;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub struct MemoryStress {
    pub workers: Arc<Workers>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    tag: String,
    bytes: u64,
    ramp_ms: u64,
}

/// What must stay available: 5 % of the machine's memory and at least 256 MiB.
pub fn margin(total: u64) -> u64 {
    (total / 20).max(256 << 20)
}

impl Fault for MemoryStress {
    fn kind(&self) -> &'static str {
        "memory-stress"
    }

    fn revertible(&self, _: &Applied) -> bool {
        true
    }

    fn plan(&self, spec: &FaultSpec, ctx: RunCtx<'_>) -> Result<Applied, FaultError> {
        let FaultSpec::MemoryStress { params } = spec else {
            return Err(FaultError::WrongSpec {
                kind: self.kind(),
                given: spec.kind(),
            });
        };
        let (total, avail) = stress::memory()?;
        let (bytes, field) = match (params.size, params.percent) {
            (Some(s), _) => (s.0, "params.size"),
            (None, Some(p)) => (avail / 100 * p as u64, "params.percent"),
            (None, None) => {
                return Err(StressError::Refused("params: give size or percent".into()).into())
            }
        };
        let keep = margin(total);
        if !params.force && bytes.saturating_add(keep) > avail {
            return Err(StressError::Refused(format!(
                "{field}: {} would leave {} of {} available memory, less than the safety margin of {}; set force: true to allow it",
                human(bytes),
                human(avail.saturating_sub(bytes)),
                human(avail),
                human(keep)
            ))
            .into());
        }
        let ramp = params
            .ramp
            .map(|r| format!(" over {r}"))
            .unwrap_or_default();
        let data = Data {
            tag: tag(ctx.run_id, ctx.step),
            bytes,
            ramp_ms: params.ramp.map(|r| r.as_millis()).unwrap_or(0),
        };
        Ok(Applied::new(
            ctx,
            self.kind(),
            format!(
                "a worker process allocating {}{ramp} ({} available)",
                human(bytes),
                human(avail)
            ),
            serde_json::to_value(data).unwrap_or_default(),
        ))
    }

    fn apply(&self, plan: &Applied) -> Result<(), FaultError> {
        let d: Data = serde_json::from_value(plan.data.clone())
            .map_err(|e| StressError::Refused(format!("bad memory-stress record: {e}")))?;
        let args = [
            "memory".to_string(),
            "--bytes".into(),
            d.bytes.to_string(),
            "--ramp-ms".into(),
            d.ramp_ms.to_string(),
        ];
        self.workers.spawn(&d.tag, &args)?;
        Ok(())
    }

    fn revert(&self, applied: &Applied) -> Result<String, FaultError> {
        let n = self.workers.stop(&tag(&applied.run_id, applied.step));
        Ok(if n == 0 {
            "nothing to free: the memory worker is gone".into()
        } else {
            "stopped the memory worker; its memory is freed".into()
        })
    }
}
