//! A container on this node, as the kernel sees it: its processes (found through the container
//! id in their cgroup paths: containerd's `cri-containerd-<id>.scope`, CRI-O's `crio-<id>`,
//! cgroupfs's `/kubepods/.../<id>`), its init process, its cgroups, and its network namespace
//! attached under a name (`ip netns attach`), so the host fault modules can act inside it.
//!
//! This needs the delegate on the pod's node with the host's view of processes and cgroups: a
//! privileged DaemonSet with `hostPID: true` and the host's `/sys/fs/cgroup` and `/run/netns`
//! (the Helm chart's `mode: daemonset`). Used by `faults/pod_scoped.rs`.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
};

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("container {id} has no process on this node (is the delegate on the pod's node, with hostPID: true?)")]
    NoProcess { id: String },
    #[error("cannot move pid {pid} into the cgroups of the container: {reason}")]
    Cgroup { pid: i32, reason: String },
    #[error("cannot attach the network namespace of pid {pid} as {name}: {reason}")]
    Netns {
        name: String,
        pid: i32,
        reason: String,
    },
}

/// The id in a container status's `containerID` (`containerd://0f3a…` → `0f3a…`); `None` for
/// an empty or malformed one (a container not started yet).
pub fn runtime_id(container_id: &str) -> Option<&str> {
    let id = container_id
        .rsplit_once("://")
        .map_or(container_id, |(_, id)| id);
    (id.len() >= 12 && id.chars().all(|c| c.is_ascii_hexdigit())).then_some(id)
}

fn pids() -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// Whether `pid`'s cgroup paths name the container `id`.
fn in_container(pid: i32, id: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup")).is_ok_and(|c| c.contains(id))
}

fn parent(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`: the comm may hold spaces and parentheses.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The processes of container `id`, as host pids.
pub fn processes(id: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut out: Vec<i32> = pids()
        .into_iter()
        .filter(|&p| p != me && in_container(p, id))
        .collect();
    out.sort();
    out
}

/// The container's init: its process whose parent is outside it (the runtime's shim).
pub fn init_pid(id: &str) -> Result<i32, ContainerError> {
    let procs = processes(id);
    procs
        .iter()
        .copied()
        .find(|&p| parent(p).is_none_or(|pp| !procs.contains(&pp)))
        .ok_or_else(|| ContainerError::NoProcess { id: id.into() })
}

/// cgroup mount points: v1 by the controllers of each hierarchy (`cpu`, `memory`,
/// `name=systemd`), and the v2 (unified) one.
fn mounts() -> (BTreeMap<String, PathBuf>, Option<PathBuf>) {
    let mut v1 = BTreeMap::new();
    let mut v2 = None;
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return (v1, v2);
    };
    for line in info.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mount = left.split_whitespace().nth(4).map(PathBuf::from);
        let mut r = right.split_whitespace();
        let (fstype, _source, opts) = (r.next(), r.next(), r.next().unwrap_or_default());
        match (fstype, mount) {
            (Some("cgroup2"), Some(m)) => v2 = v2.or(Some(m)),
            (Some("cgroup"), Some(m)) => {
                let ctrls: Vec<&str> = opts
                    .split(',')
                    .filter(|o| !matches!(*o, "rw" | "ro") && !o.starts_with("relatime"))
                    .filter(|o| !o.contains('=') || o.starts_with("name="))
                    .collect();
                v1.insert(ctrls.join(","), m);
            }
            _ => {}
        }
    }
    (v1, v2)
}

/// The `cgroup.procs` files of every cgroup `pid` is in.
pub fn cgroup_procs(pid: i32) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return Vec::new();
    };
    let (v1, v2) = mounts();
    let mut out = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next(), parts.next(), parts.next());
        let (Some(ctrls), Some(path)) = (ctrls, path) else {
            continue;
        };
        let base = if ctrls.is_empty() {
            v2.clone()
        } else {
            v1.iter()
                .find(|(k, _)| {
                    let have: Vec<&str> = k.split(',').collect();
                    ctrls.split(',').all(|c| have.contains(&c))
                })
                .map(|(_, m)| m.clone())
        };
        if let Some(base) = base {
            let file = base.join(path.trim_start_matches('/')).join("cgroup.procs");
            if file.exists() {
                out.push(file);
            }
        }
    }
    out
}

/// The `cgroup.procs` files of container `id`: in every cgroup hierarchy mounted here, the
/// directories whose name holds the id (`cri-containerd-<id>.scope`, `crio-<id>.scope`,
/// `.../<id>`), searched a few levels deep. Found by name, not through `/proc/PID/cgroup`,
/// whose paths are relative to the reader's cgroup namespace (`/../../kubepods/...` in a pod).
pub fn container_cgroups(id: &str) -> Vec<PathBuf> {
    let (v1, v2) = mounts();
    let mut roots: Vec<PathBuf> = v1.into_values().collect();
    roots.extend(v2);
    roots.sort();
    roots.dedup();
    let mut out = Vec::new();
    for root in roots {
        find(&root, id, 0, &mut out);
    }
    out
}

/// Depth-first search for directories named after `id`, at most 10 levels down.
fn find(dir: &Path, id: &str, depth: usize, out: &mut Vec<PathBuf>) {
    if depth > 10 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = e.path();
        if e.file_name().to_string_lossy().contains(id) {
            let procs = path.join("cgroup.procs");
            if procs.exists() {
                out.push(procs);
            }
        } else {
            find(&path, id, depth + 1, out);
        }
    }
}

/// Moves `pid` into every cgroup of container `id` (the container's CPU and memory limits
/// then apply to it); returns how many it joined.
pub fn join(pid: i32, id: &str) -> Result<usize, ContainerError> {
    let files = container_cgroups(id);
    if files.is_empty() {
        return Err(ContainerError::Cgroup {
            pid,
            reason: format!(
                "no cgroup of container {id} under this delegate's cgroup mounts (a DaemonSet needs the host's /sys/fs/cgroup)"
            ),
        });
    }
    for f in &files {
        std::fs::write(f, pid.to_string()).map_err(|e| ContainerError::Cgroup {
            pid,
            reason: format!("{}: {e}", f.display()),
        })?;
    }
    Ok(files.len())
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// Makes the network namespace of `pid` reachable as `/run/netns/NAME` (a bind mount that
/// outlives the process, so a revert reaches it even after the container restarted).
pub fn attach_netns(name: &str, pid: i32) -> Result<(), ContainerError> {
    if Path::new("/run/netns").join(name).exists() {
        return Ok(());
    }
    ip(&["netns", "attach", name, &pid.to_string()]).map_err(|reason| ContainerError::Netns {
        name: name.into(),
        pid,
        reason,
    })
}

/// Removes the name (the namespace itself lives on with its pod).
pub fn detach_netns(name: &str) {
    if Path::new("/run/netns").join(name).exists() {
        if let Err(e) = ip(&["netns", "delete", name]) {
            tracing::warn!(netns = %name, error = %e, "cannot remove an attached network namespace name");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn runtime_ids_are_read_from_container_statuses() {
        let id = "0f3a9c2b7d1e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f90";
        assert_eq!(super::runtime_id(&format!("containerd://{id}")), Some(id));
        assert_eq!(super::runtime_id(&format!("cri-o://{id}")), Some(id));
        assert_eq!(super::runtime_id(""), None);
        assert_eq!(super::runtime_id("containerd://../../etc"), None);
    }

    #[test]
    fn this_process_has_reachable_cgroups() {
        // Whatever the host's layout (v1, v2 or both), our own cgroups resolve to files.
        let mine = super::cgroup_procs(std::process::id() as i32);
        assert!(!mine.is_empty());
        assert!(mine.iter().all(|f| f.ends_with("cgroup.procs")));
    }
}
