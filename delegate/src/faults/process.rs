//! Process targets, shared by the process faults: resolving a pid file or an exact command name
//! through /proc, the safety rules (never pid 1, never the delegate itself), and signalling a
//! process only while it is still the same process that was resolved.
use super::FaultError;
use faultline_spec::faults::ProcessTarget;
use nix::{
    errno::Errno,
    sys::signal::{kill, Signal},
    unistd::Pid,
};
use serde::{Deserialize, Serialize};
use std::fs;

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
        let text = fs::read_to_string(path).map_err(|e| pid_err(e.to_string().to_lowercase()))?;
        let pid: i32 = text
            .trim()
            .parse()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| pid_err(format!("{:?} is not a pid", text.trim())))?;
        guard(pid)?;
        let st = stat(pid)
            .filter(|s| s.state != 'Z')
            .ok_or(FaultError::NoSuchPid(pid))?;
        let p = ProcRef {
            pid,
            start_time: st.start_time,
        };
        return Ok((vec![p], format!("pid file {path} (pid {pid})")));
    }
    let Some(name) = &target.name else {
        return Err(FaultError::NoProcessNamed(String::new()));
    };
    let mut found = Vec::new();
    let entries = fs::read_dir("/proc").map_err(|_| FaultError::NoProcessNamed(name.clone()))?;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(comm) = fs::read_to_string(entry.path().join("comm")) else {
            continue;
        };
        if comm.trim_end_matches('\n') != name {
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
        return Err(FaultError::NoProcessNamed(name.clone()));
    }
    found.sort_by_key(|p| p.pid);
    let pids: Vec<String> = found.iter().map(|p| p.pid.to_string()).collect();
    let label = if found.len() == 1 { "pid" } else { "pids" };
    Ok((
        found,
        format!("process {name} ({label} {})", pids.join(", ")),
    ))
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

pub fn nix_signal(s: faultline_spec::faults::Signal) -> Signal {
    use faultline_spec::faults::Signal as S;
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
            pid_file: None,
            name: Some("no-such-proc-x".into()),
        };
        assert_eq!(
            resolve(&t).unwrap_err().to_string(),
            "no process named no-such-proc-x"
        );
    }
}
