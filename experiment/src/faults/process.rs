//! Parameters of the process faults (`process-kill`, `process-stop` and its older name
//! `process-pause`): which processes, how many of them, and how.
use super::{need_duration, typed, FaultSpec, Field};
use crate::{template::FaultStep, template::SpecError, Dur};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Which processes: exactly one of `pid`, `pidFile`, `name` (exact command name, as in
/// /proc/PID/comm) or `command` (a regular expression over the command line), narrowed to one
/// `user` if given.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(extend("oneOf" = [
    {"required": ["pid"]}, {"required": ["pidFile"]}, {"required": ["name"]},
    {"required": ["command"]}
])))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProcessTarget {
    /// A process id, e.g. `4242` (never 1, never the delegate itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 2)))]
    pub pid: Option<i32>,
    /// Path of a file holding the process id, e.g. `/run/web.pid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_file: Option<String>,
    /// Exact command name (1-15 characters, as in /proc/PID/comm), e.g. `redis-server`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(length(min = 1, max = 15)))]
    pub name: Option<String>,
    /// Regular expression matched against the command line (/proc/PID/cmdline, arguments
    /// joined by spaces), e.g. `^python3 .*worker\.py`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub command: Option<String>,
    /// Only processes whose effective user is this one: a user name or a numeric uid, e.g.
    /// `postgres` (with `name` or `command`; as `pkill -u`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub user: Option<String>,
}

/// Regular expressions in `target.command` compile to at most this many bytes.
pub const MAX_COMMAND_REGEX: usize = 64 * 1024;

impl ProcessTarget {
    /// Compiles `command` with the limits the parser checked.
    pub fn command_regex(&self) -> Option<Result<regex::Regex, regex::Error>> {
        self.command.as_deref().map(|c| {
            regex::RegexBuilder::new(c)
                .size_limit(MAX_COMMAND_REGEX)
                .build()
        })
    }
}

/// `params` of `process-kill`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KillParams {
    /// The signal to send.
    #[serde(default)]
    pub signal: Signal,
    /// Extra time to watch for the process to come back after the kill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_wait: Option<Dur>,
    /// Signal only this many of the matching processes, picked at random (not with
    /// `percentage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub count: Option<u32>,
    /// Signal this share of the matching processes (rounded up, at least one), picked at random
    /// (not with `count`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 100)))]
    pub percentage: Option<u32>,
    /// Which matches `count` / `percentage` keep: `random` (default), `oldest` or `newest` by
    /// start time (`count: 1, pick: oldest` is `pkill -o`).
    #[serde(default, skip_serializing_if = "PickOrder::is_random")]
    pub pick: PickOrder,
    /// Repeat the kill this often for the step's `duration` (at least 100ms), finding the
    /// targets again each time, e.g. after a supervisor restarted them. Needs a `duration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Dur>,
}

/// Which of the matching processes `count` / `percentage` keep.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum PickOrder {
    /// Any of them, at random (the default).
    #[default]
    Random,
    /// Those started first (by start time in /proc/PID/stat), as `pkill -o`.
    Oldest,
    /// Those started last, as `pkill -n`.
    Newest,
}

impl PickOrder {
    pub fn is_random(&self) -> bool {
        *self == PickOrder::Random
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            PickOrder::Random => "random",
            PickOrder::Oldest => "oldest",
            PickOrder::Newest => "newest",
        }
    }
}

/// `params` of `process-stop` (and `process-pause`): which of the matching processes.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StopParams {
    /// Stop only this many of the matching processes, picked at random (not with `percentage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub count: Option<u32>,
    /// Stop this share of the matching processes (rounded up, at least one), picked at random
    /// (not with `count`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 100)))]
    pub percentage: Option<u32>,
    /// Which matches `count` / `percentage` keep: `random` (default), `oldest` or `newest` by
    /// start time.
    #[serde(default, skip_serializing_if = "PickOrder::is_random")]
    pub pick: PickOrder,
}

/// `params` of `process-pause`, the older name of `process-stop`.
pub type PauseParams = StopParams;

/// How many of the matching processes a fault acts on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Pick {
    /// Every match.
    #[default]
    All,
    /// This many at most.
    Count(u32),
    /// This share, rounded up, at least one.
    Percentage(u32),
}

impl Pick {
    pub fn of(count: Option<u32>, percentage: Option<u32>) -> Pick {
        match (count, percentage) {
            (Some(c), _) => Pick::Count(c),
            (None, Some(p)) => Pick::Percentage(p),
            (None, None) => Pick::All,
        }
    }

    /// How many of `matches` processes to pick.
    pub fn how_many(self, matches: usize) -> usize {
        match self {
            Pick::All => matches,
            Pick::Count(c) => (c as usize).min(matches),
            Pick::Percentage(p) => (matches * p as usize)
                .div_ceil(100)
                .clamp(1, matches.max(1)),
        }
        .min(matches)
    }
}

impl StopParams {
    pub fn pick(&self) -> Pick {
        Pick::of(self.count, self.percentage)
    }
}

impl KillParams {
    pub fn pick(&self) -> Pick {
        Pick::of(self.count, self.percentage)
    }
}

/// Repeated kills at most this often.
pub const MIN_KILL_INTERVAL: Duration = Duration::from_millis(100);

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

/// Whether `u` can be `target.user`: a user name or a numeric uid (1-32 characters of letters,
/// digits, `.`, `_`, `-` and `$`).
pub fn is_user(u: &str) -> bool {
    !u.is_empty()
        && u.len() <= 32
        && u.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-$".contains(&b))
}

fn target(at: &Field<'_>, step: &FaultStep) -> Result<ProcessTarget, SpecError> {
    let target: ProcessTarget = typed(&step.target, &at.of("target"))?;
    let given = [
        target.pid.is_some(),
        target.pid_file.is_some(),
        target.name.is_some(),
        target.command.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(SpecError::field(
            at.of("target"),
            "give exactly one of pid, pidFile, name or command",
        )
        .hint("e.g. target: {name: redis-server}"));
    }
    if target.pid.is_some_and(|p| p < 2) {
        return Err(SpecError::field(
            at.of("target.pid"),
            "must be a process id above 1 (pid 1 is init, never a target)",
        ));
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
    if let Some(u) = &target.user {
        if target.name.is_none() && target.command.is_none() {
            return Err(SpecError::field(
                at.of("target.user"),
                "narrows a name or command target; a pid or pid file names one process already",
            ));
        }
        if !is_user(u) {
            return Err(SpecError::field(
                at.of("target.user"),
                "must be a user name or a numeric uid",
            ));
        }
    }
    if target.command.as_deref() == Some("") {
        return Err(SpecError::field(
            at.of("target.command"),
            "must be a non-empty regular expression",
        ));
    }
    if let Some(Err(e)) = target.command_regex() {
        return Err(SpecError::field(
            at.of("target.command"),
            format!("invalid regular expression: {e}"),
        )
        .hint("it is matched against the command line, arguments joined by spaces"));
    }
    Ok(target)
}

fn check_pick(
    at: &Field<'_>,
    count: Option<u32>,
    percentage: Option<u32>,
    order: PickOrder,
) -> Result<(), SpecError> {
    if !order.is_random() && count.is_none() && percentage.is_none() {
        return Err(SpecError::field(
            at.of("params.pick"),
            format!(
                "{} chooses which matches count or percentage keep; without them every match is \
                 signalled",
                order.as_str()
            ),
        )
        .hint("add e.g. count: 1"));
    }
    if count.is_some() && percentage.is_some() {
        return Err(SpecError::field(
            at.of("params"),
            "give count or percentage, not both",
        ));
    }
    if count == Some(0) {
        return Err(SpecError::field(
            at.of("params.count"),
            "must be at least 1",
        ));
    }
    if percentage.is_some_and(|p| !(1..=100).contains(&p)) {
        return Err(SpecError::field(
            at.of("params.percentage"),
            "must be between 1 and 100",
        ));
    }
    Ok(())
}

pub(super) fn parse(at: &Field<'_>, step: &FaultStep) -> Result<FaultSpec, SpecError> {
    let target = target(at, step)?;
    let params = at.of("params");
    if step.fault == "process-pause" || step.fault == "process-stop" {
        need_duration(at, step)?;
        let p: StopParams = typed(&step.params, &params)?;
        check_pick(at, p.count, p.percentage, p.pick)?;
        return Ok(if step.fault == "process-pause" {
            FaultSpec::ProcessPause { target, params: p }
        } else {
            FaultSpec::ProcessStop { target, params: p }
        });
    }
    let p: KillParams = typed(&step.params, &params)?;
    check_pick(at, p.count, p.percentage, p.pick)?;
    if let Some(i) = p.interval {
        if i.0 < MIN_KILL_INTERVAL {
            return Err(SpecError::field(
                at.of("params.interval"),
                format!("must be at least {}", Dur(MIN_KILL_INTERVAL)),
            ));
        }
        if step.duration.is_none() {
            return Err(SpecError::field(
                at.of("duration"),
                "a repeated kill (params.interval) needs a duration",
            )
            .hint("add e.g. duration: 30s to the step"));
        }
    }
    Ok(FaultSpec::ProcessKill { target, params: p })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_round_up_and_never_exceed_the_matches() {
        assert_eq!(Pick::All.how_many(7), 7);
        assert_eq!(Pick::Count(3).how_many(7), 3);
        assert_eq!(Pick::Count(9).how_many(7), 7);
        assert_eq!(Pick::Percentage(50).how_many(5), 3);
        assert_eq!(Pick::Percentage(1).how_many(5), 1);
        assert_eq!(Pick::Percentage(100).how_many(5), 5);
        assert_eq!(Pick::Percentage(10).how_many(0), 0);
    }
}
