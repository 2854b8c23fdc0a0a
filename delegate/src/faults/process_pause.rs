//! `process-stop` (and its older name `process-pause`, same behaviour): SIGSTOP the processes
//! matching the target (all, or `count` / `percentage` of them picked at random) for the step's
//! duration; revert sends SIGCONT (a process that has exited meanwhile is fine), so a stopped
//! process is never left stopped, also after a delegate restart (journal recovery).
use super::{process, Applied, Fault, FaultError, RunCtx};
use faultline_experiment::faults::FaultSpec;
use nix::sys::signal::Signal;

pub struct ProcessPause {
    kind: &'static str,
}

impl ProcessPause {
    /// `process-stop`.
    pub fn stop() -> Self {
        ProcessPause {
            kind: "process-stop",
        }
    }

    /// `process-pause`, the older name.
    pub fn pause() -> Self {
        ProcessPause {
            kind: "process-pause",
        }
    }
}

impl Fault for ProcessPause {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn revertible(&self, _: &Applied) -> bool {
        true
    }

    fn plan(&self, spec: &FaultSpec, ctx: RunCtx<'_>) -> Result<Applied, FaultError> {
        let (FaultSpec::ProcessPause { target, params }
        | FaultSpec::ProcessStop { target, params }) = spec
        else {
            return Err(FaultError::WrongSpec {
                kind: self.kind(),
                given: spec.kind(),
            });
        };
        let (found, what) = process::resolve(target)?;
        let (processes, what) = process::pick(found, &what, params.pick(), params.pick);
        Ok(Applied {
            processes,
            signal: Some(Signal::SIGSTOP.as_str().into()),
            ..Applied::new(
                ctx,
                self.kind(),
                format!("SIGSTOP to {what}"),
                serde_json::Value::Null,
            )
        })
    }

    fn apply(&self, plan: &Applied) -> Result<(), FaultError> {
        let mut sent = 0;
        for p in &plan.processes {
            if process::signal(p, Signal::SIGSTOP)? {
                sent += 1;
            }
        }
        if sent == 0 {
            return Err(FaultError::NoSuchPid(
                plan.processes.first().map(|p| p.pid).unwrap_or(0),
            ));
        }
        Ok(())
    }

    fn revert(&self, applied: &Applied) -> Result<String, FaultError> {
        let mut first_err = None;
        let mut resumed = Vec::new();
        for p in &applied.processes {
            // Keep going: one stubborn process must not leave the others stopped.
            match process::signal(p, Signal::SIGCONT) {
                Ok(true) => resumed.push(p.pid.to_string()),
                Ok(false) => {}
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        Ok(if resumed.is_empty() {
            "nothing to resume: the stopped processes are gone".into()
        } else {
            format!("sent SIGCONT to pid {}", resumed.join(", "))
        })
    }
}
