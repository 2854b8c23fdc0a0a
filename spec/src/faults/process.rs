//! Parameters of the process faults (`process-kill`, `process-pause`): which process, and how.
use super::{need_duration, typed, FaultSpec, Field};
use crate::{template::FaultStep, template::SpecError, Dur};
use serde::{Deserialize, Serialize};

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

pub(super) fn parse(at: &Field<'_>, step: &FaultStep) -> Result<FaultSpec, SpecError> {
    let target: ProcessTarget = typed(&step.target, &at.of("target"))?;
    match (&target.pid_file, &target.name) {
        (Some(_), None) | (None, Some(_)) => {}
        _ => {
            return Err(
                SpecError::field(at.of("target"), "give exactly one of pidFile or name")
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
            at.of("target.name"),
            "must be the exact command name (1-15 characters, as in /proc/PID/comm)",
        ));
    }
    let params = at.of("params");
    if step.fault == "process-pause" {
        need_duration(at, step)?;
        return Ok(FaultSpec::ProcessPause {
            target,
            params: typed(&step.params, &params)?,
        });
    }
    Ok(FaultSpec::ProcessKill {
        target,
        params: typed(&step.params, &params)?,
    })
}
