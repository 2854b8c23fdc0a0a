//! `process-kill`: sends a signal (default SIGKILL) to every process matching the target. A kill
//! cannot be undone, so revert does nothing; the step then watches the service come back.
use super::{process, Applied, Fault, FaultError, RunCtx};
use faultline_spec::faults::FaultSpec;

pub struct ProcessKill;

impl Fault for ProcessKill {
    fn kind(&self) -> &'static str {
        "process-kill"
    }

    fn revertible(&self) -> bool {
        false
    }

    fn plan(&self, spec: &FaultSpec, ctx: RunCtx<'_>) -> Result<Applied, FaultError> {
        let FaultSpec::ProcessKill { target, params } = spec else {
            return Err(FaultError::WrongSpec {
                kind: self.kind(),
                given: spec.kind(),
            });
        };
        let (processes, what) = process::resolve(target)?;
        let signal = process::nix_signal(params.signal).as_str();
        Ok(Applied {
            run_id: ctx.run_id.to_string(),
            step: ctx.step,
            kind: self.kind().into(),
            detail: format!("sent {signal} to {what}"),
            processes,
            signal: Some(signal.into()),
            data: serde_json::Value::Null,
            at_ms: crate::now_ms(),
        })
    }

    fn apply(&self, plan: &Applied) -> Result<(), FaultError> {
        let sig = plan
            .signal
            .as_deref()
            .and_then(|s| s.parse().ok())
            .unwrap_or(nix::sys::signal::Signal::SIGKILL);
        let mut sent = 0;
        for p in &plan.processes {
            if process::signal(p, sig)? {
                sent += 1;
            }
        }
        if sent == 0 {
            // Everything exited between resolving and signalling.
            return Err(match plan.processes.first() {
                Some(p) => FaultError::NoSuchPid(p.pid),
                None => FaultError::NoSuchPid(0),
            });
        }
        Ok(())
    }

    fn revert(&self, _applied: &Applied) -> Result<String, FaultError> {
        Ok("nothing to undo: a kill cannot be reverted".into())
    }
}
