//! Typed parameters of each fault kind. The delegate's fault implementations consume these; the
//! hub uses them to reject a bad template before anything runs.
use crate::{template::FaultStep, template::SpecError};
use serde::{de::DeserializeOwned, Serialize};
use std::time::Duration;

mod process;
pub use process::*;
mod proxy;
pub use proxy::*;

/// Fault kinds this version understands.
pub const KINDS: &[&str] = &["process-kill", "process-pause", "tcp-proxy"];

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
    /// SIGSTOP the target for `duration`; revert is SIGCONT.
    #[cfg_attr(feature = "schema", schemars(extend("required" = ["target", "duration"])))]
    ProcessPause {
        target: ProcessTarget,
        params: PauseParams,
    },
    /// A TCP proxy with Toxiproxy's toxics for `duration`: a new proxy (`listen` → `upstream`)
    /// that exists for the step, or toxics added to an existing proxy of the delegate's
    /// Toxiproxy API and removed at the end.
    #[cfg_attr(feature = "schema", schemars(extend("required" = ["target", "duration"])))]
    TcpProxy {
        target: ProxyTarget,
        params: ProxyParams,
    },
}

impl FaultSpec {
    /// Reads the fault of the step at `path` (e.g. `steps[1]` or `steps[2].parallel[0]`).
    pub fn parse(path: &str, step: &FaultStep) -> Result<FaultSpec, SpecError> {
        let at = Field(path);
        match step.fault.as_str() {
            "process-kill" | "process-pause" => process::parse(&at, step),
            "tcp-proxy" => proxy::parse(&at, step),
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
            FaultSpec::TcpProxy { .. } => "tcp-proxy",
        }
    }

    /// Time the step takes beyond its `duration`.
    pub fn extra_time(&self) -> Duration {
        match self {
            FaultSpec::ProcessKill { params, .. } => {
                params.restart_wait.map(|d| d.0).unwrap_or_default()
            }
            _ => Duration::ZERO,
        }
    }

    /// The process target, for the kinds that act on processes (allow-list checks).
    pub fn process_target(&self) -> Option<&ProcessTarget> {
        match self {
            FaultSpec::ProcessKill { target, .. } | FaultSpec::ProcessPause { target, .. } => {
                Some(target)
            }
            FaultSpec::TcpProxy { .. } => None,
        }
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
