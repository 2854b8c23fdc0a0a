//! What the resource faults (`cpu-stress`, `memory-stress`, `io-stress`; `disk-fill` uses only
//! the host facts) share: worker processes, the facts about the host they check before
//! anything happens, and their errors.
//!
//! The load comes from worker processes, not from threads of the delegate: the hidden
//! `faultline-delegate stress-worker ...` mode of the delegate's own binary
//! ([`super::stress_worker`]). Why processes:
//! - memory stress in the delegate's process would make the delegate the OOM killer's target;
//!   a worker raises its own `oom_score_adj` to 1000, so it goes first;
//! - a worker cannot outlive the delegate: it asks for SIGKILL when its parent dies
//!   (PR_SET_PDEATHSIG) and also exits when it sees itself re-parented;
//! - a worker is found again after a delegate restart without a pid in the journal: its command
//!   line carries `--tag <run>-<step>`, and the journal entry (written before any worker
//!   starts) names the tag, so revert and journal recovery kill exactly those processes, also
//!   ones started just before a crash;
//! - CPU load and memory use are visible per worker in /proc, where tests measure them.
//!
//! PR_SET_PDEATHSIG fires when the *thread* that spawned the worker ends; faults are applied
//! on the delegate's runtime thread, which lives as long as the delegate.
use super::process::{self, ProcRef};
use nix::sys::signal::Signal;
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

/// Why a resource fault cannot be planned or applied.
#[derive(Debug, thiserror::Error)]
pub enum StressError {
    /// The fault would harm the host (memory or disk safety margin), or asks for what the host
    /// does not have; the message says which field and why.
    #[error("{0}")]
    Refused(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// The first argument that turns the delegate binary into a stress worker.
pub const WORKER_ARG: &str = "stress-worker";

/// Worker processes by tag (`<run>-<step>`), started from the delegate's own binary.
pub struct Workers {
    exe: PathBuf,
    children: Mutex<HashMap<String, Vec<Child>>>,
}

impl Workers {
    /// `exe` is the delegate binary (`/proc/self/exe` in the delegate, which still works after
    /// the file was replaced by an upgrade).
    pub fn new(exe: PathBuf) -> Self {
        Workers {
            exe,
            children: Mutex::new(HashMap::new()),
        }
    }

    /// Starts one worker: `stress-worker --tag TAG --parent PID ARGS...`.
    pub fn spawn(&self, tag: &str, args: &[String]) -> Result<ProcRef, StressError> {
        let child = Command::new(&self.exe)
            .arg(WORKER_ARG)
            .args(["--tag", tag, "--parent", &std::process::id().to_string()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|source| StressError::Io {
                what: format!("failed to start a stress worker ({})", self.exe.display()),
                source,
            })?;
        let pid = child.id() as i32;
        let start_time = process::stat(pid).map(|s| s.start_time).unwrap_or_default();
        self.children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(tag.to_string())
            .or_default()
            .push(child);
        Ok(ProcRef { pid, start_time })
    }

    /// The pids of the workers of `tag` this process started and that still run.
    pub fn running(&self, tag: &str) -> Vec<i32> {
        let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        children
            .get_mut(tag)
            .map(|cs| {
                cs.iter_mut()
                    .filter_map(|c| c.try_wait().ok().flatten().is_none().then(|| c.id() as i32))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Kills every worker of `tag`: those this process started (and reaps them), and any other
    /// process whose command line says it is a worker of `tag` (left by a previous delegate
    /// process). Returns how many were killed, once they are gone.
    pub fn stop(&self, tag: &str) -> usize {
        let mine = self
            .children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(tag)
            .unwrap_or_default();
        let mut killed = 0;
        for mut c in mine {
            if c.try_wait().ok().flatten().is_none() {
                let _ = c.kill();
                killed += 1;
            }
            let _ = c.wait();
        }
        let others = tagged(tag);
        for p in &others {
            if let Ok(true) = process::signal(p, Signal::SIGKILL) {
                killed += 1;
            }
        }
        // A worker's memory and open files are only released once it is gone.
        let deadline = Instant::now() + Duration::from_secs(5);
        while others.iter().any(|p| {
            process::stat(p.pid).is_some_and(|s| s.state != 'Z' && s.start_time == p.start_time)
        }) && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        killed
    }
}

/// Live processes whose command line is `... stress-worker --tag TAG ...`.
pub fn tagged(tag: &str) -> Vec<ProcRef> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == 1 || pid == me {
            continue;
        }
        // Arguments split at NULs: the binary's path may contain spaces.
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let mut args = raw.split(|b| *b == 0).skip(1);
        if args.next() != Some(WORKER_ARG.as_bytes())
            || args.next() != Some(b"--tag".as_slice())
            || args.next() != Some(tag.as_bytes())
        {
            continue;
        }
        if let Some(st) = process::stat(pid).filter(|s| s.state != 'Z') {
            out.push(ProcRef {
                pid,
                start_time: st.start_time,
            });
        }
    }
    out
}

/// The tag of a fault's workers and files.
pub fn tag(run_id: &str, step: usize) -> String {
    format!("{run_id}-{step}")
}

/// MemTotal and MemAvailable from /proc/meminfo, in bytes.
pub fn memory() -> Result<(u64, u64), StressError> {
    let text = std::fs::read_to_string("/proc/meminfo").map_err(|source| StressError::Io {
        what: "failed to read /proc/meminfo".into(),
        source,
    })?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    match (field("MemTotal:"), field("MemAvailable:")) {
        (Some(t), Some(a)) => Ok((t, a)),
        _ => Err(StressError::Refused(
            "/proc/meminfo has no MemTotal or MemAvailable".into(),
        )),
    }
}

/// Space of the filesystem holding a path, in bytes.
#[derive(Clone, Copy, Debug)]
pub struct Space {
    pub total: u64,
    /// Used, as `df` counts it (total - free).
    pub used: u64,
    /// Available to unprivileged users, as `df` counts it.
    pub avail: u64,
}

impl Space {
    pub fn of(path: &Path) -> Result<Space, StressError> {
        let s = nix::sys::statvfs::statvfs(path).map_err(|e| StressError::Io {
            what: format!("failed to read the free space of {}", path.display()),
            source: e.into(),
        })?;
        let bs = s.fragment_size() as u64;
        Ok(Space {
            total: s.blocks() as u64 * bs,
            used: (s.blocks() as u64).saturating_sub(s.blocks_free() as u64) * bs,
            avail: s.blocks_available() as u64 * bs,
        })
    }

    /// Percent used, as `df` shows it: used / (used + avail).
    pub fn used_percent(&self) -> f64 {
        let base = (self.used + self.avail).max(1);
        self.used as f64 * 100.0 / base as f64
    }

    /// What a fill must leave free: 2 % of the filesystem and at least 100 MiB.
    pub fn margin(&self) -> u64 {
        (self.total / 50).max(100 * 1024 * 1024)
    }
}

/// An existing directory that the fault may write under: absolute, no `..`, a directory.
pub fn directory(path: &str, field: &str) -> Result<PathBuf, StressError> {
    let p = Path::new(path);
    match std::fs::metadata(p) {
        Ok(m) if m.is_dir() => Ok(p.to_path_buf()),
        Ok(_) => Err(StressError::Refused(format!(
            "{field}: {path} is not a directory"
        ))),
        Err(e) => Err(StressError::Refused(format!(
            "{field}: {path}: {}",
            e.to_string().to_lowercase()
        ))),
    }
}

/// Removes `path` if it exists; whether it did.
pub fn remove_file(path: &Path) -> Result<bool, StressError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(StressError::Io {
            what: format!("failed to delete {}", path.display()),
            source,
        }),
    }
}

/// Human size, e.g. `1.5 GiB`.
pub fn human(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < units.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}
