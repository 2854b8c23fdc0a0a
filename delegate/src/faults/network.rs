//! What the kernel network faults share: running `ip`, `nft` and `tc` as child processes (in the
//! target's network namespace, with a timeout and bounded, captured output), checking that the
//! namespace and interface exist, the [`NetData`] each kind journals to revert exactly what it
//! added, and [`NetError`].
//!
//! The kinds live in `network_nft.rs` (loss, partition: one nftables table per fault) and
//! `network_tc.rs` (bandwidth and the netem kinds: one root qdisc per fault, with its own handle).
//! This module decides nothing about which packets are hit.
use faultline_experiment::faults::{Cidr, NetworkScope, NetworkTarget, PortRange};
use serde::{Deserialize, Serialize};
use std::{
    io::{Read, Write},
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// Longest a single `ip` / `nft` / `tc` call may take before it is killed.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes kept of a command's stdout (and of its stderr).
pub const MAX_OUTPUT: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("network namespace {0} does not exist (no /run/netns/{0})")]
    NoNetns(String),
    #[error("interface {interface} does not exist{}", in_ns(.netns))]
    NoInterface {
        interface: String,
        netns: Option<String>,
    },
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("`{command}` did not finish within {}s and was killed", CMD_TIMEOUT.as_secs())]
    Timeout { command: String },
    #[error("`{command}` failed: {stderr}")]
    Failed { command: String, stderr: String },
    #[error("{0}")]
    Refused(String),
    #[error("the journal entry of this {kind} fault is unreadable: {reason}")]
    BadData { kind: String, reason: String },
}

fn in_ns(netns: &Option<String>) -> String {
    netns
        .as_ref()
        .map(|n| format!(" in network namespace {n}"))
        .unwrap_or_default()
}

/// What a network fault journals (as [`Applied::data`](super::Applied)) to undo exactly itself.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NetData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
    pub interface: String,
    /// nftables kinds: the `inet` table added (unique per fault).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// tc kinds: the root qdisc added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qdisc: Option<QdiscRef>,
    /// What apply feeds to `nft -f -` or `tc -batch -`, fixed at plan time (a dry run can show
    /// it, and the journal says exactly what was applied).
    #[serde(default)]
    pub script: String,
}

/// A root qdisc this delegate added: its handle (`8abc:`) and kind (`tbf`, `htb`, `netem`,
/// `prio`); revert deletes the root only when both still match.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct QdiscRef {
    pub handle: String,
    pub kind: String,
}

impl NetData {
    pub fn from_value(kind: &str, v: &serde_json::Value) -> Result<NetData, NetError> {
        serde_json::from_value(v.clone()).map_err(|e| NetError::BadData {
            kind: kind.into(),
            reason: e.to_string(),
        })
    }

    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("NetData serializes")
    }

    pub fn netns_exists(&self) -> bool {
        self.netns
            .as_deref()
            .is_none_or(|n| Path::new("/run/netns").join(n).exists())
    }
}

/// Output of a finished command.
pub struct Output {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `program args` inside `netns` (when given), feeding `stdin`, bounded by [`CMD_TIMEOUT`].
/// `ip` and `tc` take `-n NS`; anything else is started from a short-lived thread that joined
/// the namespace first (children inherit it), which costs far less than `ip netns exec`.
pub fn run(
    netns: Option<&str>,
    program: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<Output, NetError> {
    let mut argv: Vec<&str> = Vec::new();
    let mut join = None;
    match (netns, program) {
        (Some(ns), "ip" | "tc") => argv.extend([program, "-n", ns]),
        (Some(ns), _) => {
            join = Some(ns);
            argv.push(program);
        }
        (None, _) => argv.push(program),
    }
    argv.extend_from_slice(args);
    let command = match join {
        Some(ns) => format!("(in network namespace {ns}) {}", argv.join(" ")),
        None => argv.join(" "),
    };
    let mut cmd = Command::new(argv[0]);
    cmd.args(&argv[1..])
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let spawned = match join {
        None => cmd.spawn(),
        Some(ns) => spawn_in(ns, cmd),
    };
    let mut child = spawned.map_err(|source| NetError::Spawn {
        program: argv[0].into(),
        source,
    })?;
    if let (Some(text), Some(mut w)) = (stdin, child.stdin.take()) {
        // Scripts are small (a few KiB); a broken pipe shows up as the command's own error.
        let _ = w.write_all(text.as_bytes());
    }
    let reader = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(r) = r {
                let _ = r.take(MAX_OUTPUT).read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if started.elapsed() > CMD_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(NetError::Timeout { command });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(1)),
            Err(source) => {
                return Err(NetError::Spawn {
                    program: argv[0].into(),
                    source,
                })
            }
        }
    };
    Ok(Output {
        ok: status.success(),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default().trim().to_string(),
    })
}

/// Spawns `cmd` inside network namespace `ns`: a thread joins it (namespaces are per thread)
/// and forks from there; the thread ends, the delegate's own threads never move.
fn spawn_in(ns: &str, mut cmd: Command) -> std::io::Result<std::process::Child> {
    let handle = std::fs::File::open(Path::new("/run/netns").join(ns))?;
    std::thread::scope(|s| {
        s.spawn(move || {
            nix::sched::setns(&handle, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(std::io::Error::from)?;
            cmd.spawn()
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the spawning thread panicked")))
    })
}

/// [`run`], failing with the command's stderr when it exits non-zero.
pub fn run_ok(
    netns: Option<&str>,
    program: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String, NetError> {
    let o = run(netns, program, args, stdin)?;
    if o.ok {
        Ok(o.stdout)
    } else {
        let mut command = vec![program];
        command.extend_from_slice(args);
        Err(NetError::Failed {
            command: command.join(" "),
            stderr: o.stderr,
        })
    }
}

/// Checks that the namespace and the interface exist (reads only).
pub fn check_target(t: &NetworkTarget) -> Result<(), NetError> {
    if let Some(ns) = &t.netns {
        if !Path::new("/run/netns").join(ns).exists() {
            return Err(NetError::NoNetns(ns.clone()));
        }
    }
    let o = run(
        t.netns.as_deref(),
        "ip",
        &["link", "show", "dev", &t.interface],
        None,
    )?;
    if !o.ok {
        return Err(NetError::NoInterface {
            interface: t.interface.clone(),
            netns: t.netns.clone(),
        });
    }
    Ok(())
}

/// `eth0`, `veth1 in netns blue`: the target for details.
pub fn describe_target(t: &NetworkTarget) -> String {
    format!("{}{}", t.interface, in_ns(&t.netns))
}

/// ` to 10.0.0.0/8, fd00::/8 port 80, 8000-8080`: the remote ends, for details.
pub fn describe_scope(s: &NetworkScope<'_>, towards: &str) -> String {
    let mut out = String::new();
    if !s.destinations.is_empty() {
        let towards = if towards.is_empty() {
            String::new()
        } else {
            format!(" {towards}")
        };
        out += &format!("{towards} {}", join(s.destinations));
    }
    if !s.ports.is_empty() {
        let what = if s.ports.len() == 1 && s.ports[0].lo == s.ports[0].hi {
            "port"
        } else {
            "ports"
        };
        out += &format!(" {what} {} (tcp, udp)", join(s.ports));
    }
    out
}

pub fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Destinations split by family; `None` for a family means "not matched at all".
pub fn by_family(destinations: &[Cidr]) -> Vec<(bool, Vec<Cidr>)> {
    if destinations.is_empty() {
        return Vec::new();
    }
    let (v4, v6): (Vec<Cidr>, Vec<Cidr>) = destinations.iter().partition(|c| c.is_v4());
    [(true, v4), (false, v6)]
        .into_iter()
        .filter(|(_, l)| !l.is_empty())
        .collect()
}

/// A port range as u32 `value/mask` pairs that together match exactly the range.
pub fn port_masks(r: PortRange) -> Vec<(u16, u16)> {
    let mut out = Vec::new();
    let (mut lo, hi) = (r.lo as u32, r.hi as u32);
    while lo <= hi {
        // The largest aligned block starting at `lo` that stays within the range.
        let mut size = 1u32;
        while lo % (size * 2) == 0 && lo + size * 2 - 1 <= hi && size < 65536 {
            size *= 2;
        }
        out.push((lo as u16, (!(size - 1) & 0xffff) as u16));
        lo += size;
    }
    out
}

/// A short, stable, file-name-safe tag of a run for resource names: its first 8 letters/digits.
pub fn run_tag(run_id: &str) -> String {
    run_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(8)
        .collect::<String>()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_masks_cover_exactly_the_range() {
        for (lo, hi) in [(80, 80), (8000, 8080), (1, 65535), (1024, 2047), (3, 17)] {
            let masks = port_masks(PortRange { lo, hi });
            for p in 1..=65535u32 {
                let hit = masks.iter().any(|(v, m)| (p as u16) & m == *v);
                assert_eq!(hit, (lo as u32..=hi as u32).contains(&p), "{lo}-{hi}: {p}");
            }
        }
        assert_eq!(port_masks(PortRange { lo: 80, hi: 80 }), vec![(80, 0xffff)]);
    }

    #[test]
    fn run_tags_are_short_and_safe() {
        assert_eq!(run_tag("0f3A-9b21-77cd"), "0f3a9b21");
        assert_eq!(run_tag("r-1"), "r1");
    }
}
