//! Process targets, shared by the process faults: resolving a pid, a pid file, an exact command
//! name or a command-line regex through /proc (narrowed to an effective user), picking `count` /
//! `percentage` of the matches at random or the oldest / newest by start time, the safety rules (never pid 1, never the delegate itself), and signalling a
//! process only while it is still the same process that was resolved.
use super::FaultError;
use faultline_experiment::faults::{Pick, PickOrder, ProcessTarget};
use nix::{
    errno::Errno,
    sys::signal::{kill, Signal},
    unistd::Pid,
};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use std::{fs, io::Read, path::Path};

/// One process, named so that a recycled pid does not match.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ProcRef {
    pub pid: i32,
    /// Start time in clock ticks after boot (field 22 of /proc/PID/stat).
    pub start_time: u64,
}

/// The parts of /proc/PID/stat the faults need.
#[derive(Clone, Copy, Debug)]
pub struct Stat {
    /// R, S, D, T, Z, ...
    pub state: char,
    pub start_time: u64,
}

/// Reads /proc/PID/stat; `None` when the process does not exist (or the file is unreadable).
pub fn stat(pid: i32) -> Option<Stat> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may itself contain ')' or spaces.
    let rest = &s[s.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let start_time = fields.nth(18)?.parse().ok()?;
    Some(Stat { state, start_time })
}

/// Resolves the target to live (non-zombie) processes and a one-line description.
pub fn resolve(target: &ProcessTarget) -> Result<(Vec<ProcRef>, String), FaultError> {
    if let Some(path) = &target.pid_file {
        let pid_err = |reason: String| FaultError::PidFile {
            path: path.clone(),
            reason,
        };
        let text = read_limited(path, 64).map_err(|e| pid_err(e.to_string().to_lowercase()))?;
        let pid: i32 = text
            .trim()
            .parse()
            .ok()
            .filter(|p| *p > 0)
            // Never the content: a pid file may point at any file on the host.
            .ok_or_else(|| pid_err("does not hold a pid".into()))?;
        let p = one(pid)?;
        return Ok((vec![p], format!("pid file {path} (pid {pid})")));
    }
    if let Some(pid) = target.pid {
        let p = one(pid)?;
        return Ok((vec![p], format!("pid {pid}")));
    }
    let (what, matches): (String, Box<Matcher<'_>>) = match (&target.name, target.command_regex()) {
        (Some(name), _) => (
            format!("process {name}"),
            Box::new(move |_, dir: &Path| {
                fs::read_to_string(dir.join("comm")).is_ok_and(|c| c.trim_end_matches('\n') == name)
            }),
        ),
        (None, Some(Ok(re))) => (
            format!("processes matching command /{}/", re.as_str()),
            Box::new(move |_, dir: &Path| {
                command_line(dir).is_some_and(|c| !c.is_empty() && re.is_match(&c))
            }),
        ),
        (None, Some(Err(e))) => return Err(FaultError::NoMatch(format!("a command {e}"))),
        (None, None) => return Err(FaultError::NoProcessNamed(String::new())),
    };
    let uid = target.user.as_deref().map(uid_of).transpose()?;
    let (what, matches): (String, Box<Matcher<'_>>) = match (&target.user, uid) {
        (Some(user), Some(uid)) => (
            format!("{what} of user {user}"),
            Box::new(move |pid, dir: &Path| effective_uid(dir) == Some(uid) && matches(pid, dir)),
        ),
        _ => (what, matches),
    };
    let none = || match (&target.name, &target.user) {
        (Some(n), None) => FaultError::NoProcessNamed(n.clone()),
        _ => FaultError::NoMatch(what.clone()),
    };
    let mut found = Vec::new();
    let entries = fs::read_dir("/proc").map_err(|_| none())?;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if !matches(pid, &entry.path()) {
            continue;
        }
        let Some(st) = stat(pid) else { continue };
        if st.state == 'Z' {
            continue;
        }
        guard(pid)?;
        found.push(ProcRef {
            pid,
            start_time: st.start_time,
        });
    }
    if found.is_empty() {
        return Err(none());
    }
    found.sort_by_key(|p| p.pid);
    Ok((found, what))
}

/// A user name or numeric uid as a uid.
fn uid_of(user: &str) -> Result<u32, FaultError> {
    if let Ok(uid) = user.parse::<u32>() {
        return Ok(uid);
    }
    match nix::unistd::User::from_name(user) {
        Ok(Some(u)) => Ok(u.uid.as_raw()),
        _ => Err(FaultError::NoUser(user.to_string())),
    }
}

/// The effective uid of a process: the second field of `Uid:` in /proc/PID/status.
pub fn effective_uid(dir: &Path) -> Option<u32> {
    let status = fs::read_to_string(dir.join("status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Whether the process with this pid and /proc directory is a target.
type Matcher<'a> = dyn Fn(i32, &Path) -> bool + 'a;

/// A single live process by pid.
fn one(pid: i32) -> Result<ProcRef, FaultError> {
    guard(pid)?;
    let st = stat(pid)
        .filter(|s| s.state != 'Z')
        .ok_or(FaultError::NoSuchPid(pid))?;
    Ok(ProcRef {
        pid,
        start_time: st.start_time,
    })
}

/// /proc/PID/cmdline with the NULs between arguments as spaces (at most 64 KiB is read).
pub fn command_line(dir: &Path) -> Option<String> {
    let mut buf = Vec::new();
    fs::File::open(dir.join("cmdline"))
        .ok()?
        .take(64 * 1024)
        .read_to_end(&mut buf)
        .ok()?;
    while buf.last() == Some(&0) {
        buf.pop();
    }
    Some(
        String::from_utf8_lossy(&buf)
            .chars()
            .map(|c| if c == '\0' { ' ' } else { c })
            .collect(),
    )
}

/// Reads at most `limit` bytes of a small file (a pid file may point at anything).
fn read_limited(path: &str, limit: u64) -> std::io::Result<String> {
    let mut s = String::new();
    fs::File::open(path)?.take(limit).read_to_string(&mut s)?;
    Ok(s)
}

/// Picks `pick` of `found` in `order` (at random, or the oldest / newest by start time);
/// returns them sorted by pid, and a description such as `process web (pids 10, 12)` or
/// `processes matching ... (2 of 5 picked at random: pids 10, 12)`.
pub fn pick(
    mut found: Vec<ProcRef>,
    what: &str,
    pick: Pick,
    order: PickOrder,
) -> (Vec<ProcRef>, String) {
    let total = found.len();
    let n = pick.how_many(total);
    if n < total {
        match order {
            PickOrder::Random => found.shuffle(&mut rand::rng()),
            // Start times tie at clock-tick resolution; the lower pid is then the older.
            PickOrder::Oldest => found.sort_by_key(|p| (p.start_time, p.pid)),
            PickOrder::Newest => found.sort_by_key(|p| std::cmp::Reverse((p.start_time, p.pid))),
        }
        found.truncate(n);
        found.sort_by_key(|p| p.pid);
    }
    let pids: Vec<String> = found.iter().map(|p| p.pid.to_string()).collect();
    let label = if found.len() == 1 { "pid" } else { "pids" };
    let how = match order {
        PickOrder::Random => "picked at random",
        PickOrder::Oldest => "picked oldest first",
        PickOrder::Newest => "picked newest first",
    };
    let of = if n < total {
        format!("{n} of {total} {how}: ")
    } else {
        String::new()
    };
    if what.starts_with("pid ") {
        return (found, what.to_string());
    }
    let desc = if what.starts_with("pid file") {
        what.to_string()
    } else {
        format!("{what} ({of}{label} {})", pids.join(", "))
    };
    (found, desc)
}

fn guard(pid: i32) -> Result<(), FaultError> {
    if pid == 1 {
        return Err(FaultError::Forbidden { pid, why: "init" });
    }
    if pid == std::process::id() as i32 {
        return Err(FaultError::Forbidden {
            pid,
            why: "the delegate itself",
        });
    }
    Ok(())
}

/// Sends `sig` if the process still exists and is the one resolved. Returns whether it was sent;
/// a process that is gone is not an error.
pub fn signal(p: &ProcRef, sig: Signal) -> Result<bool, FaultError> {
    guard(p.pid)?;
    match stat(p.pid) {
        Some(st) if st.start_time == p.start_time => {}
        _ => return Ok(false),
    }
    match kill(Pid::from_raw(p.pid), sig) {
        Ok(()) => Ok(true),
        Err(Errno::ESRCH) => Ok(false),
        Err(errno) => Err(FaultError::Signal {
            pid: p.pid,
            signal: sig.as_str(),
            errno,
        }),
    }
}

pub fn nix_signal(s: faultline_experiment::faults::Signal) -> Signal {
    use faultline_experiment::faults::Signal as S;
    match s {
        S::Kill => Signal::SIGKILL,
        S::Term => Signal::SIGTERM,
        S::Int => Signal::SIGINT,
        S::Hup => Signal::SIGHUP,
        S::Quit => Signal::SIGQUIT,
        S::Usr1 => Signal::SIGUSR1,
        S::Usr2 => Signal::SIGUSR2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_stat_and_refuses_self_and_init() {
        let me = std::process::id() as i32;
        let st = stat(me).expect("own stat");
        assert!(st.start_time > 0);
        assert!(matches!(guard(1), Err(FaultError::Forbidden { .. })));
        assert!(matches!(guard(me), Err(FaultError::Forbidden { .. })));
        let t = ProcessTarget {
            name: Some("no-such-proc-x".into()),
            ..Default::default()
        };
        assert_eq!(
            resolve(&t).unwrap_err().to_string(),
            "no process named no-such-proc-x"
        );
    }
}
