//! Typed parameters of each fault kind. The delegate's fault implementations consume these; the
//! hub uses them to reject a bad template before anything runs.
use crate::{template::FaultStep, template::SpecError, Dur};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::time::Duration;

/// Fault kinds this version understands.
pub const KINDS: &[&str] = &["process-kill", "process-pause"];

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
}

/// Which process: exactly one of `pidFile` or `name` (exact command name, as in /proc/PID/comm).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(extend("oneOf" = [
    {"required": ["pidFile"]}, {"required": ["name"]}
])))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProcessTarget {
    /// Path of a file holding the process id, e.g. `/run/web.pid`.
    pub pid_file: Option<String>,
    /// Exact command name (1-15 characters, as in /proc/PID/comm), e.g. `redis-server`.
    #[cfg_attr(feature = "schema", schemars(length(min = 1, max = 15)))]
    pub name: Option<String>,
}

/// `params` of `process-kill`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KillParams {
    /// The signal to send.
    #[serde(default)]
    pub signal: Signal,
    /// Extra time to watch for the process to come back after the kill.
    #[serde(default)]
    pub restart_wait: Option<Dur>,
}

/// `params` of `process-pause`: none.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PauseParams {}

/// The `alias`es of [`Signal`], for its schema.
#[cfg(feature = "schema")]
const SIGNAL_ALIASES: &[&str] = &[
    "SIGKILL", "SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2",
];

/// A signal by name, with or without `SIG`.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(transform = crate::schema::also_accept(SIGNAL_ALIASES)))]
#[serde(rename_all = "UPPERCASE")]
pub enum Signal {
    /// SIGKILL: cannot be caught; the process dies at once (the default).
    #[default]
    #[serde(alias = "SIGKILL")]
    Kill,
    /// SIGTERM: asks the process to shut down cleanly.
    #[serde(alias = "SIGTERM")]
    Term,
    /// SIGINT: as Ctrl-C.
    #[serde(alias = "SIGINT")]
    Int,
    /// SIGHUP: hang-up; many daemons reload on it.
    #[serde(alias = "SIGHUP")]
    Hup,
    /// SIGQUIT: quit with a core dump.
    #[serde(alias = "SIGQUIT")]
    Quit,
    /// SIGUSR1: meaning defined by the program.
    #[serde(alias = "SIGUSR1")]
    Usr1,
    /// SIGUSR2: meaning defined by the program.
    #[serde(alias = "SIGUSR2")]
    Usr2,
}

impl FaultSpec {
    /// Reads the fault of the step at `path` (e.g. `steps[1]` or `steps[2].parallel[0]`).
    pub fn parse(path: &str, step: &FaultStep) -> Result<FaultSpec, SpecError> {
        let at = |f: &str| format!("{path}.{f}");
        if !KINDS.contains(&step.fault.as_str()) {
            let hint = crate::hints::did_you_mean(&step.fault, KINDS)
                .unwrap_or_else(|| format!("known kinds: {}", KINDS.join(", ")));
            return Err(SpecError::field(
                at("fault"),
                format!("unknown fault kind {:?}", step.fault),
            )
            .hint(hint));
        }
        let target: ProcessTarget = typed(&step.target, &at("target"))?;
        match (&target.pid_file, &target.name) {
            (Some(_), None) | (None, Some(_)) => {}
            _ => {
                return Err(
                    SpecError::field(at("target"), "give exactly one of pidFile or name")
                        .hint("e.g. target: {name: redis-server}"),
                )
            }
        }
        if target
            .name
            .as_deref()
            .is_some_and(|n| n.is_empty() || n.len() > 15)
        {
            return Err(SpecError::field(
                at("target.name"),
                "must be the exact command name (1-15 characters, as in /proc/PID/comm)",
            ));
        }
        match step.fault.as_str() {
            "process-kill" => Ok(FaultSpec::ProcessKill {
                target,
                params: typed(&step.params, &at("params"))?,
            }),
            "process-pause" => {
                if step.duration.is_none() {
                    return Err(
                        SpecError::field(at("duration"), "process-pause needs a duration")
                            .hint("add e.g. duration: 10s to the step"),
                    );
                }
                Ok(FaultSpec::ProcessPause {
                    target,
                    params: typed(&step.params, &at("params"))?,
                })
            }
            other => Err(SpecError::field(
                at("fault"),
                format!(
                    "unknown fault kind {other:?}; known kinds: {}",
                    KINDS.join(", ")
                ),
            )),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            FaultSpec::ProcessKill { .. } => "process-kill",
            FaultSpec::ProcessPause { .. } => "process-pause",
        }
    }

    /// Time the step takes beyond its `duration`.
    pub fn extra_time(&self) -> Duration {
        match self {
            FaultSpec::ProcessKill { params, .. } => {
                params.restart_wait.map(|d| d.0).unwrap_or_default()
            }
            FaultSpec::ProcessPause { .. } => Duration::ZERO,
        }
    }
}

/// Reads a JSON value (null = empty object) into `T`, naming the field on error.
fn typed<T: DeserializeOwned>(v: &serde_json::Value, field: &str) -> Result<T, SpecError> {
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
