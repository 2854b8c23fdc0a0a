//! The delegate's policy: what whoever runs a delegate lets the hub do on its host, whatever a
//! template asks. The operator sets it with `--allow KIND=VALUE` entries; the delegate enforces
//! it and advertises its entries, so the hub refuses at `startRun` what the delegate would
//! refuse, with the same words. Nothing here does I/O: resolving names, programs and processes
//! is the delegate's, which checks each resolved value again with [`Policy::address`],
//! [`Policy::program`] and friends.
//!
//! | entry | allows | when no entry of the kind is given |
//! |---|---|---|
//! | `fault=KIND` | that fault kind | every kind |
//! | `process=NAME` | processes with that exact command name (`/proc/PID/comm`) | every process |
//! | `path=PREFIX` | pid files, io-stress / disk-fill directories and postgres unix sockets under it | every path |
//! | `command=PROGRAM` | command probes, rollbacks and actions running it (`/bin/sh` for `shell:`; `*` for any) | **no program** |
//! | `env=NAME` | probes reading that environment variable of the delegate (`passwordFromEnv`) | **no variable** |
//! | `interface=NAME` | network faults on it | every interface |
//! | `netns=NAME` | network faults in it (`host`: the delegate's own) | every namespace |
//! | `cidr=CIDR` | connections and network faults to addresses inside it | every address except link-local and metadata ones |
//! | `port=P`, `port=LO-HI` | connections and network faults to those ports | every port |
//! | `namespace=NS` | Kubernetes faults and `k8s` probes in that namespace (`*` for any) | **no namespace** |
//! | `k8s-kind=KIND` | Kubernetes faults changing objects of that kind (`Pod`, `Deployment`, `StatefulSet`, `Node`; `node-cordon` changes cluster-scoped nodes, so it needs `k8s-kind=Node` and no `namespace=`; `node-drain` also evicts the nodes' pods, of any namespace: `k8s-kind=Node` and `k8s-kind=Pod`) | **no kind** |
//!
//! Link-local and cloud metadata addresses ([`PROTECTED`]) are refused unless a `cidr=` entry
//! inside them is listed: `cidr=0.0.0.0/0` does not open them.
use crate::{
    faults::{Cidr, FaultSpec, PortRange},
    probes::ProbeKind,
    template::{CommandAction, HttpAction, SpecError},
    Experiment,
};
use std::{fmt, net::IpAddr, path::Path, str::FromStr};

/// How `netns=` names the delegate's own network namespace.
pub const HOST_NETNS: &str = "host";

/// Addresses no connection reaches unless an entry inside them is listed: link-local (where
/// cloud metadata services answer with credentials) and the metadata services' own addresses.
pub const PROTECTED: &[&str] = &[
    "169.254.0.0/16",
    "fe80::/10",
    "fd00:ec2::254/128",
    "100.100.100.200/32",
];

/// Environment variable names never passed to a program a template runs: they change which
/// code the dynamic loader or a shell runs, whatever program was allowed.
const LOADER_ENV: &[&str] = &["LD_", "GCONV_PATH", "BASH_ENV", "ENV", "IFS", "SHELLOPTS"];

/// One `--allow` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    kind: EntryKind,
    value: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EntryKind {
    Fault,
    Process,
    Path,
    Command,
    Env,
    Interface,
    Netns,
    Cidr,
    Port,
    Namespace,
    K8sKind,
}

const KINDS: &str =
    "fault, process, path, command, env, interface, netns, cidr, port, namespace, k8s-kind";

/// The object kinds Kubernetes faults change, as `k8s-kind=` names them.
pub const K8S_OBJECT_KINDS: &[&str] = &["Pod", "Deployment", "StatefulSet", "Node"];

impl FromStr for Entry {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?} is not KIND=VALUE (kinds: {KINDS})"))?;
        let value = v.trim().to_string();
        if value.is_empty() {
            return Err(format!("{s:?}: the value is empty"));
        }
        let kind = match k.trim() {
            "fault" => EntryKind::Fault,
            "process" => EntryKind::Process,
            "path" if value.starts_with('/') => EntryKind::Path,
            "path" => return Err(format!("{s:?}: paths must be absolute")),
            "command" if value == "*" || value.starts_with('/') || !value.contains('/') => {
                EntryKind::Command
            }
            "command" => {
                return Err(format!(
                    "{s:?}: a program is an absolute path, a bare name or *"
                ))
            }
            "env" if valid_env_name(&value) => EntryKind::Env,
            "env" => return Err(format!("{s:?}: not an environment variable name")),
            "interface" => EntryKind::Interface,
            "netns" => EntryKind::Netns,
            "cidr" => {
                value
                    .parse::<Cidr>()
                    .map_err(|e| format!("{s:?}: {}", e.replace('`', "")))?;
                EntryKind::Cidr
            }
            "port" => {
                value
                    .parse::<PortRange>()
                    .map_err(|e| format!("{s:?}: {}", e.replace('`', "")))?;
                EntryKind::Port
            }
            "namespace" => EntryKind::Namespace,
            "k8s-kind" => match K8S_OBJECT_KINDS
                .iter()
                .find(|k| k.eq_ignore_ascii_case(&value))
            {
                // One spelling, so the hub and the delegate compare the same strings.
                Some(k) => {
                    return Ok(Entry {
                        kind: EntryKind::K8sKind,
                        value: k.to_string(),
                    })
                }
                None => {
                    return Err(format!(
                        "{s:?}: known kinds are {}",
                        K8S_OBJECT_KINDS.join(", ")
                    ))
                }
            },
            other => return Err(format!("unknown allow kind {other:?}; known: {KINDS}")),
        };
        Ok(Entry { kind, value })
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = match self.kind {
            EntryKind::Fault => "fault",
            EntryKind::Process => "process",
            EntryKind::Path => "path",
            EntryKind::Command => "command",
            EntryKind::Env => "env",
            EntryKind::Interface => "interface",
            EntryKind::Netns => "netns",
            EntryKind::Cidr => "cidr",
            EntryKind::Port => "port",
            EntryKind::Namespace => "namespace",
            EntryKind::K8sKind => "k8s-kind",
        };
        write!(f, "{k}={}", self.value)
    }
}

fn valid_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Reads an allow-list file: one `KIND=VALUE` per line; blank lines and `#` comments are
/// skipped. An error says `LINE: reason`.
pub fn parse_file(text: &str) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        out.push(
            line.parse::<Entry>()
                .map_err(|e| format!("{}: {e}", i + 1))?,
        );
    }
    Ok(out)
}

/// What a delegate's operator allows. `None` for a dimension that is open because no entry
/// restricts it; commands and environment variables are closed until listed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    entries: Vec<Entry>,
    faults: Option<Vec<String>>,
    processes: Option<Vec<String>>,
    paths: Option<Vec<String>>,
    commands: Vec<String>,
    /// The files absolute `command=` entries resolve to on this host (symlinks followed), set
    /// by the delegate with [`Policy::resolve_programs`]; empty on the hub.
    command_files: Vec<String>,
    env: Vec<String>,
    interfaces: Option<Vec<String>>,
    netns: Option<Vec<String>>,
    cidrs: Option<Vec<Cidr>>,
    ports: Option<Vec<PortRange>>,
    /// Kubernetes namespaces and object kinds: closed until listed, like programs.
    namespaces: Vec<String>,
    k8s_kinds: Vec<String>,
}

/// Who refuses, in messages: `this delegate` on the delegate, `delegate NAME` on the hub.
#[derive(Clone, Copy, Debug)]
pub struct Who<'a>(pub &'a str);

impl Policy {
    /// No entry: faults, processes, paths, interfaces, namespaces and ordinary addresses are
    /// open; no program may run and no environment variable may be read.
    pub fn none() -> Self {
        Self::default()
    }

    pub fn from_entries(entries: &[Entry]) -> Self {
        let mut a = Policy {
            entries: entries.to_vec(),
            ..Policy::default()
        };
        for e in entries {
            let v = e.value.clone();
            match e.kind {
                EntryKind::Fault => a.faults.get_or_insert_with(Vec::new).push(v),
                EntryKind::Process => a.processes.get_or_insert_with(Vec::new).push(v),
                EntryKind::Path => a.paths.get_or_insert_with(Vec::new).push(v),
                EntryKind::Command => a.commands.push(v),
                EntryKind::Env => a.env.push(v),
                EntryKind::Interface => a.interfaces.get_or_insert_with(Vec::new).push(v),
                EntryKind::Netns => a.netns.get_or_insert_with(Vec::new).push(v),
                // Values were checked when the entry was parsed.
                EntryKind::Cidr => {
                    if let Ok(c) = v.parse() {
                        a.cidrs.get_or_insert_with(Vec::new).push(c);
                    }
                }
                EntryKind::Port => {
                    if let Ok(p) = v.parse() {
                        a.ports.get_or_insert_with(Vec::new).push(p);
                    }
                }
                EntryKind::Namespace => a.namespaces.push(v),
                EntryKind::K8sKind => a.k8s_kinds.push(v),
            }
        }
        a
    }

    /// A policy a delegate advertised (its entries as strings); an entry this version cannot
    /// read is an error, so the hub never assumes more than the delegate allows.
    pub fn from_strings<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        let parsed = entries
            .iter()
            .map(|s| s.as_ref().parse::<Entry>())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::from_entries(&parsed))
    }

    /// The entries, as the delegate advertises them.
    pub fn entries(&self) -> Vec<String> {
        self.entries.iter().map(Entry::to_string).collect()
    }

    /// The dimensions no entry restricts, for the start-up warning.
    pub fn open_dimensions(&self) -> Vec<&'static str> {
        [
            ("fault", self.faults.is_none()),
            ("process", self.processes.is_none()),
            ("path", self.paths.is_none()),
            ("interface", self.interfaces.is_none()),
            ("netns", self.netns.is_none()),
            ("cidr", self.cidrs.is_none()),
            ("port", self.ports.is_none()),
        ]
        .into_iter()
        .filter(|(_, open)| *open)
        .map(|(n, _)| n)
        .chain(self.any_program().then_some("command"))
        .collect()
    }

    /// `command=*`: every program may run (an explicit choice the delegate logs).
    pub fn any_program(&self) -> bool {
        self.commands.iter().any(|c| c == "*")
    }

    /// Whether any program at all may run.
    pub fn runs_programs(&self) -> bool {
        !self.commands.is_empty()
    }

    pub fn fault_kind(&self, kind: &str) -> bool {
        allowed(&self.faults, |v| v == kind)
    }

    pub fn process_name(&self, name: &str) -> bool {
        allowed(&self.processes, |v| v == name)
    }

    /// A pid file, a directory a fault writes in, or a unix socket: under a `path=` entry.
    pub fn pid_file(&self, path: &str) -> bool {
        // Compare normalised components so `/run/../etc/x` cannot pass as `/run`.
        let p = Path::new(path);
        if p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return self.paths.is_none();
        }
        allowed(&self.paths, |v| p.starts_with(v))
    }

    /// Records the file each absolute `command=` entry is on this host (`canonical` follows
    /// symlinks), so `/bin/sh` also allows the `sh` found as `/usr/bin/sh`.
    pub fn resolve_programs(&mut self, canonical: impl Fn(&str) -> Option<String>) {
        self.command_files = self
            .commands
            .iter()
            .filter(|c| c.starts_with('/'))
            .filter_map(|c| canonical(c))
            .collect();
    }

    /// Whether a program may run: `argv0` as the template wrote it; `files` the paths it is on
    /// this host (where it was found on the search path, and that path with symlinks
    /// resolved), empty when the caller cannot look (the hub). An entry allows a program by its
    /// exact text or by being one of its files. Without
    /// `files`, a bare `argv0` also matches an absolute entry of that file name; the delegate
    /// then decides on the real file.
    pub fn program(&self, argv0: &str, files: &[String]) -> bool {
        let file_name = |p: &str| {
            Path::new(p)
                .file_name()
                .and_then(|f| f.to_str())
                .map(str::to_string)
        };
        let by_entry = self.commands.iter().any(|entry| {
            if entry == "*" || entry == argv0 || files.iter().any(|f| f == entry) {
                return true;
            }
            if entry.starts_with('/') {
                // An absolute entry names one file.
                return files.is_empty()
                    && !argv0.contains('/')
                    && file_name(entry).as_deref() == Some(argv0);
            }
            // A bare-name entry matches only that bare name, which the delegate looks up on its
            // own fixed search path (never the template's PATH).
            false
        });
        by_entry || files.iter().any(|f| self.command_files.contains(f))
    }

    /// Whether a probe may read this environment variable of the delegate.
    pub fn env_name(&self, name: &str) -> bool {
        self.env.iter().any(|v| v == name)
    }

    /// Why a connection to `ip:port` is not allowed; `Ok` when it is.
    pub fn address(&self, ip: IpAddr, port: u16) -> Result<(), String> {
        self.ip(ip)?;
        self.port(port)
    }

    /// Why a connection to `ip` (any port) is not allowed.
    pub fn ip(&self, ip: IpAddr) -> Result<(), String> {
        let ip = ip.to_canonical();
        let c = single(ip);
        if let Some(p) = PROTECTED
            .iter()
            .filter_map(|p| p.parse::<Cidr>().ok())
            .find(|p| p.contains(&c))
        {
            let listed = self
                .cidrs
                .iter()
                .flatten()
                .any(|a| p.contains(a) && a.contains(&c));
            if !listed {
                return Err(format!(
                    "{ip} is a link-local or cloud metadata address ({p}); allowed only with an explicit --allow cidr={ip}/{}",
                    if ip.is_ipv4() { 32 } else { 128 }
                ));
            }
        } else if let Some(cidrs) = &self.cidrs {
            if !cidrs.iter().any(|a| a.contains(&c)) {
                return Err(format!(
                    "{ip} is not inside an allowed CIDR (needs --allow cidr=… covering it)"
                ));
            }
        }
        Ok(())
    }

    /// Why a connection to `port` is not allowed.
    pub fn port(&self, port: u16) -> Result<(), String> {
        let p = PortRange { lo: port, hi: port };
        match &self.ports {
            Some(ports) if !ports.iter().any(|a| a.contains(&p)) => Err(format!(
                "port {port} is not inside an allowed port range (needs --allow port={port})"
            )),
            _ => Ok(()),
        }
    }

    /// Why a host name cannot be checked before it is resolved: never, since the delegate checks
    /// every address it resolves to. An IP literal is checked at once.
    pub fn host(&self, host: &str, port: u16) -> Result<(), String> {
        let h = host.trim_start_matches('[').trim_end_matches(']');
        match h.parse::<IpAddr>() {
            Ok(ip) => self.address(ip, port),
            Err(_) => self.port(port),
        }
    }

    /// Whether Kubernetes faults and `k8s` probes may act in namespace `ns`.
    pub fn k8s_namespace(&self, ns: &str) -> bool {
        self.namespaces.iter().any(|n| n == "*" || n == ns)
    }

    /// Every reason this Kubernetes fault may not touch its cluster, as (reason, the entry that
    /// would allow it); empty when it may, and for other families.
    pub fn k8s_target(&self, spec: &FaultSpec) -> Vec<(String, String)> {
        let Some(k) = spec.k8s() else {
            return Vec::new();
        };
        let mut why = Vec::new();
        // Cluster-scoped objects (nodes) have no namespace: only their kind is checked.
        if let Some(ns) = k.namespace.filter(|ns| !self.k8s_namespace(ns)) {
            why.push((
                format!("namespace {ns} is not allowed"),
                format!("namespace={ns}"),
            ));
        }
        for kind in k.kinds {
            if !self.k8s_kinds.iter().any(|n| n == kind) {
                why.push((
                    format!("Kubernetes kind {kind} is not allowed"),
                    format!("k8s-kind={kind}"),
                ));
            }
        }
        why
    }

    /// Every reason the target of this network fault may not be touched here (interface,
    /// namespace, destinations, ports); empty when it may, and for other families.
    pub fn network_target(&self, spec: &FaultSpec) -> Vec<String> {
        let Some(n) = spec.network() else {
            return Vec::new();
        };
        let mut why = Vec::new();
        if !allowed(&self.interfaces, |v| v == n.target.interface) {
            why.push(format!(
                "interface {} is not allowed (needs --allow interface={})",
                n.target.interface, n.target.interface
            ));
        }
        let ns = n.target.netns.as_deref().unwrap_or(HOST_NETNS);
        if !allowed(&self.netns, |v| v == ns) {
            why.push(format!(
                "network namespace {ns} is not allowed (needs --allow netns={ns})"
            ));
        }
        if let Some(cidrs) = &self.cidrs {
            let all = [Cidr::any(true), Cidr::any(false)];
            let (dests, none) = if n.destinations.is_empty() {
                (&all[..], true)
            } else {
                (n.destinations, false)
            };
            for d in dests {
                if !cidrs.iter().any(|c| c.contains(d)) {
                    why.push(if none {
                        format!("no destinations means every address ({d}), which is not inside an allowed CIDR; list destinations")
                    } else {
                        format!("destination {d} is not inside an allowed CIDR (needs --allow cidr={d})")
                    });
                }
            }
        }
        if let Some(ports) = &self.ports {
            let all = [PortRange::ALL];
            let (wanted, none) = if n.ports.is_empty() {
                (&all[..], true)
            } else {
                (n.ports, false)
            };
            for p in wanted {
                if !ports.iter().any(|a| a.contains(p)) {
                    why.push(if none {
                        "no ports means every port, which is not inside an allowed port range; list ports".to_string()
                    } else {
                        format!("port {p} is not inside an allowed port range (needs --allow port={p})")
                    });
                }
            }
        }
        why
    }

    /// Why the addresses a proxy fault binds or connects to are not allowed; empty when they
    /// are. A host name is allowed only while no `cidr=` entry is given (a proxy resolves its
    /// upstream on every connection, long after this check).
    pub fn endpoints(&self, spec: &FaultSpec) -> Vec<String> {
        let mut why = Vec::new();
        for (role, addr) in spec.endpoints() {
            let Some((host, port)) = addr.rsplit_once(':') else {
                why.push(format!("{role} address {addr} has no port"));
                continue;
            };
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let Ok(port) = port.parse::<u16>() else {
                why.push(format!("{role} port {port} is not a port"));
                continue;
            };
            let ip = if host == "localhost" {
                Some(IpAddr::from([127, 0, 0, 1]))
            } else {
                host.parse::<IpAddr>().ok()
            };
            match ip {
                Some(ip) => {
                    if let Err(e) = self.address(ip, port) {
                        why.push(format!("{role} address {addr}: {e}"));
                    }
                }
                None if self.cidrs.is_some() => why.push(format!(
                    "{role} host {host} must be an IP address while cidr= entries restrict this delegate"
                )),
                None => {
                    if let Err(e) = self.port(port) {
                        why.push(format!("{role} address {addr}: {e}"));
                    }
                }
            }
        }
        why
    }

    /// Every reason this experiment may not run here, each located by its field; empty when it
    /// may. What can only be known on the host (where a name resolves, which file a program is,
    /// which process a pid file names) the delegate checks again when it gets there.
    pub fn check(&self, exp: &Experiment, who: Who<'_>) -> Vec<SpecError> {
        let who = who.0;
        let mut why = Vec::new();
        let mut refuse = |field: String, message: String, entry: Option<String>| {
            let e = SpecError::field(field, format!("{message}: refused by {who}'s allow-list"));
            why.push(match entry {
                Some(entry) => e.hint(format!(
                    "the delegate's operator must allow it: --allow {entry}"
                )),
                None => e,
            });
        };
        for f in exp.faults() {
            let kind = f.spec.kind();
            if !self.fault_kind(kind) {
                refuse(
                    format!("{}.fault", f.path),
                    format!("fault {kind} is not allowed"),
                    Some(format!("fault={kind}")),
                );
            }
            if let Some(p) = f.spec.path() {
                if !self.pid_file(p) {
                    refuse(
                        format!("{}.target.path", f.path),
                        format!("path {p} is not under an allowed path"),
                        Some(format!("path={p}")),
                    );
                }
            }
            for (w, entry) in self.k8s_target(&f.spec) {
                let field = if entry.starts_with("namespace=") {
                    "target.namespace"
                } else {
                    "fault"
                };
                refuse(format!("{}.{field}", f.path), w, Some(entry));
            }
            for w in self
                .network_target(&f.spec)
                .into_iter()
                .chain(self.endpoints(&f.spec))
            {
                refuse(format!("{}.target", f.path), w, None);
            }
            let Some(target) = f.spec.process_target() else {
                continue;
            };
            if let Some(n) = &target.name {
                if !self.process_name(n) {
                    refuse(
                        format!("{}.target.name", f.path),
                        format!("process {n} is not allowed"),
                        Some(format!("process={n}")),
                    );
                }
            }
            if let Some(p) = &target.pid_file {
                if !self.pid_file(p) {
                    refuse(
                        format!("{}.target.pidFile", f.path),
                        format!("pid file {p} is not under an allowed path"),
                        Some(format!("path={p}")),
                    );
                }
            }
        }
        for (at, run, shell, env) in programs(exp) {
            let program = program_of(run, shell);
            if !self.program(&program, &[]) {
                let field = if shell.is_some() { "shell" } else { "run" };
                refuse(
                    format!("{at}.{field}"),
                    format!("program {program} may not run on this host"),
                    Some(format!("command={program}")),
                );
            }
            for name in env.keys().filter(|n| loader_env(n)) {
                refuse(
                    format!("{at}.env.{name}"),
                    format!("{name} changes which code a program runs and is never passed"),
                    None,
                );
            }
        }
        for (i, p) in exp.hypothesis.probes.iter().enumerate() {
            if let Some(ProbeKind::K8s(k)) = p.kind() {
                if !self.k8s_namespace(&k.namespace) {
                    refuse(
                        format!("hypothesis.probes[{i}].k8s.namespace"),
                        format!("namespace {} may not be read", k.namespace),
                        Some(format!("namespace={}", k.namespace)),
                    );
                }
            }
        }
        for (at, var) in env_reads(exp) {
            if !self.env_name(var) {
                refuse(
                    format!("{at}.passwordFromEnv"),
                    format!("environment variable {var} may not be read"),
                    Some(format!("env={var}")),
                );
            }
        }
        for (at, host, port) in destinations(exp) {
            if let Err(e) = self.host(&host, port) {
                refuse(at, format!("connection to {host}:{port}: {e}"), None);
            }
        }
        why
    }
}

/// Every program a template runs: (field, run, shell, env) of command probes and actions.
#[allow(clippy::type_complexity)]
fn programs(
    exp: &Experiment,
) -> Vec<(
    String,
    &[String],
    &Option<String>,
    &std::collections::BTreeMap<String, String>,
)> {
    let mut out = Vec::new();
    for (i, p) in exp.hypothesis.probes.iter().enumerate() {
        if let Some(ProbeKind::Command(c)) = p.kind() {
            out.push((
                format!("hypothesis.probes[{i}].command"),
                &c.run[..],
                &c.shell,
                &c.env,
            ));
        }
    }
    for (at, command, _) in actions(exp) {
        if let Some(c) = command {
            out.push((format!("{at}.command"), &c.run[..], &c.shell, &c.env));
        }
    }
    out
}

/// Every custom action a template runs, with its field: method steps' `action` and `undo`,
/// then rollbacks; each as its program or its request.
pub fn actions(exp: &Experiment) -> Vec<(String, Option<&CommandAction>, Option<&HttpAction>)> {
    let mut out = Vec::new();
    for (i, s) in exp.steps.iter().enumerate() {
        for (part, a) in [("action", &s.action), ("undo", &s.undo)] {
            if let Some(a) = a {
                out.push((
                    format!("steps[{i}].{part}"),
                    a.command.as_ref(),
                    a.http.as_ref(),
                ));
            }
        }
    }
    for (i, r) in exp.rollbacks.iter().enumerate() {
        out.push((
            format!("rollbacks[{i}]"),
            r.command.as_ref(),
            r.http.as_ref(),
        ));
    }
    out
}

/// Every environment variable of the delegate a template reads: (field, name).
fn env_reads(exp: &Experiment) -> Vec<(String, &str)> {
    let mut out = Vec::new();
    for (i, p) in exp.hypothesis.probes.iter().enumerate() {
        let (kind, var) = match p.kind() {
            Some(ProbeKind::Redis(r)) => ("redis", r.password_from_env.as_deref()),
            Some(ProbeKind::Postgres(r)) => ("postgres", r.password_from_env.as_deref()),
            _ => continue,
        };
        if let Some(v) = var {
            out.push((format!("hypothesis.probes[{i}].{kind}"), v));
        }
    }
    out
}

/// Every connection a template's probes and actions open, as written: (field, host, port).
pub fn destinations(exp: &Experiment) -> Vec<(String, String, u16)> {
    let mut out = Vec::new();
    let mut push = |at: String, hp: Option<(String, u16)>| {
        if let Some((h, p)) = hp {
            out.push((at, h, p));
        }
    };
    for (i, p) in exp.hypothesis.probes.iter().enumerate() {
        let at = format!("hypothesis.probes[{i}]");
        match p.kind() {
            Some(ProbeKind::Http(h)) => push(format!("{at}.http.url"), url_host_port(&h.url)),
            Some(ProbeKind::Prometheus(h)) => {
                push(format!("{at}.prometheus.url"), url_host_port(&h.url))
            }
            Some(ProbeKind::Postgres(h)) => {
                push(format!("{at}.postgres.url"), url_host_port(&h.url))
            }
            Some(ProbeKind::Tcp(t)) => push(
                format!("{at}.tcp.address"),
                crate::probes::split_host_port(&t.address).ok(),
            ),
            Some(ProbeKind::Redis(r)) => push(
                format!("{at}.redis.address"),
                crate::probes::split_host_port(&r.address).ok(),
            ),
            _ => {}
        }
    }
    for (at, _, http) in actions(exp) {
        if let Some(h) = http {
            push(format!("{at}.http.url"), url_host_port(&h.url));
        }
    }
    out
}

/// Host and port of an `http(s)://` or `postgres(ql)://` URL (the scheme's default port when
/// none is given); `None` when it has no network host (a postgres unix socket).
pub fn url_host_port(u: &str) -> Option<(String, u16)> {
    let url = url::Url::parse(u).ok()?;
    let host = match url.host()? {
        url::Host::Domain("") => return None,
        url::Host::Domain(d) => d.to_string(),
        url::Host::Ipv4(a) => a.to_string(),
        url::Host::Ipv6(a) => a.to_string(),
    };
    let port = url.port().or(match url.scheme() {
        "http" => Some(80),
        "https" => Some(443),
        "postgres" | "postgresql" => Some(5432),
        _ => None,
    })?;
    Some((host, port))
}

/// Whether a template's environment variable would change which code a program runs.
pub fn loader_env(name: &str) -> bool {
    LOADER_ENV.iter().any(|p| {
        if p.ends_with('_') {
            name.starts_with(p)
        } else {
            name == *p
        }
    })
}

/// The program a command runs: argv\[0\], or `/bin/sh` for a shell script.
pub fn program_of(run: &[String], shell: &Option<String>) -> String {
    match (shell, run.first()) {
        (Some(_), _) => "/bin/sh".into(),
        (None, Some(p)) => p.clone(),
        (None, None) => String::new(),
    }
}

fn single(ip: IpAddr) -> Cidr {
    // An address parses as its own /32 or /128.
    ip.to_string()
        .parse()
        .unwrap_or_else(|_| Cidr::any(ip.is_ipv4()))
}

fn allowed(list: &Option<Vec<String>>, matches: impl Fn(&str) -> bool) -> bool {
    match list {
        None => true,
        Some(l) => l.iter().any(|v| matches(v)),
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let part = |n: &str, l: Option<Vec<String>>| match l {
            None => format!("{n}=any"),
            Some(l) if l.is_empty() => format!("{n}=none"),
            Some(l) => format!("{n}={}", l.join("|")),
        };
        let strings = |l: &Option<Vec<String>>| l.clone();
        write!(
            f,
            "{} {} {} {} {} {} {} {} {}",
            part("fault", strings(&self.faults)),
            part("process", strings(&self.processes)),
            part("path", strings(&self.paths)),
            part("command", Some(self.commands.clone())),
            part("env", Some(self.env.clone())),
            part("interface", strings(&self.interfaces)),
            part("netns", strings(&self.netns)),
            part(
                "cidr",
                self.cidrs
                    .as_ref()
                    .map(|l| l.iter().map(|c| c.to_string()).collect())
            ),
            part(
                "port",
                self.ports
                    .as_ref()
                    .map(|l| l.iter().map(|c| c.to_string()).collect())
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> Policy {
        Policy::from_strings(entries).unwrap()
    }

    fn check(p: &Policy, yaml: &str) -> Vec<String> {
        let exp = crate::parse_template(yaml).unwrap();
        p.check(&exp, Who("this delegate"))
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    const HEAD: &str = "apiVersion: faultline.dev/v1\nkind: Experiment\nmetadata: {name: x}\n";

    #[test]
    fn entries_parse_or_name_the_problem() {
        assert!("fault=process-kill".parse::<Entry>().is_ok());
        assert_eq!(
            "colour=red".parse::<Entry>().unwrap_err(),
            format!("unknown allow kind \"colour\"; known: {KINDS}")
        );
        assert!("path=relative/dir"
            .parse::<Entry>()
            .unwrap_err()
            .contains("absolute"));
        assert!("process=".parse::<Entry>().unwrap_err().contains("empty"));
        assert!("env=A-B".parse::<Entry>().is_err());
        assert!("command=bin/sh".parse::<Entry>().is_err());
        assert!("port=8000-80"
            .parse::<Entry>()
            .unwrap_err()
            .contains("backwards"));
        let p = list(&["env=REDIS_PASSWORD", "command=/usr/bin/curl"]);
        assert_eq!(
            p.entries(),
            vec!["env=REDIS_PASSWORD", "command=/usr/bin/curl"]
        );
        assert_eq!(Policy::from_strings(&p.entries()).unwrap(), p);
    }

    #[test]
    fn commands_and_env_are_closed_until_listed_other_dimensions_open() {
        let none = Policy::none();
        assert!(!none.program("/bin/true", &[]) && !none.runs_programs());
        assert!(!none.env_name("HOME"));
        assert!(none.fault_kind("process-kill") && none.process_name("x"));
        assert!(none.pid_file("/run/x.pid"));
        assert_eq!(
            none.open_dimensions(),
            vec![
                "fault",
                "process",
                "path",
                "interface",
                "netns",
                "cidr",
                "port"
            ]
        );
        let star = list(&["command=*"]);
        assert!(star.program("/bin/sh", &[]) && star.any_program());
        assert!(star.open_dimensions().contains(&"command"));
    }

    #[test]
    fn a_program_is_allowed_by_its_text_its_file_or_a_bare_name() {
        let mut p = list(&["command=/usr/bin/curl", "command=true", "command=/bin/sh"]);
        // The hub: no files known.
        assert!(p.program("/usr/bin/curl", &[]));
        assert!(
            p.program("curl", &[]),
            "a bare name matches the entry's file name"
        );
        assert!(!p.program("/tmp/curl", &[]));
        assert!(p.program("true", &[]));
        assert!(!p.program("/tmp/true", &[]), "a bare entry names no path");
        // The delegate: the file it found, and where its links lead.
        let files = |a: &str, b: &str| vec![a.to_string(), b.to_string()];
        assert!(p.program("curl", &files("/usr/bin/curl", "/usr/bin/curl")));
        assert!(!p.program("curl", &files("/usr/local/bin/curl", "/usr/local/bin/curl")));
        assert!(!p.program("/tmp/evil/true", &files("/tmp/evil/true", "/tmp/evil/true")));
        p.resolve_programs(|c| (c == "/bin/sh").then(|| "/usr/bin/dash".to_string()));
        assert!(p.program("sh", &files("/usr/bin/sh", "/usr/bin/dash")));
        assert!(!p.program("bash", &files("/usr/bin/bash", "/usr/bin/bash")));
    }

    #[test]
    fn addresses_obey_cidr_and_port_and_metadata_needs_its_own_entry() {
        let open = Policy::none();
        assert!(open.address("10.1.2.3".parse().unwrap(), 80).is_ok());
        let e = open
            .address("169.254.169.254".parse().unwrap(), 80)
            .unwrap_err();
        assert!(e.contains("--allow cidr=169.254.169.254/32"), "{e}");
        assert!(open.address("fd00:ec2::254".parse().unwrap(), 80).is_err());
        assert!(open.address("fe80::1".parse().unwrap(), 80).is_err());
        // An IPv4-mapped IPv6 address is the IPv4 address.
        assert!(open
            .address("::ffff:169.254.169.254".parse().unwrap(), 80)
            .is_err());
        let wide = list(&["cidr=0.0.0.0/0"]);
        assert!(wide
            .address("169.254.169.254".parse().unwrap(), 80)
            .is_err());
        let meta = list(&["cidr=169.254.169.254/32"]);
        assert!(meta.address("169.254.169.254".parse().unwrap(), 80).is_ok());
        assert!(meta
            .address("169.254.169.253".parse().unwrap(), 80)
            .is_err());
        let strict = list(&["cidr=10.0.0.0/8", "port=443"]);
        assert!(strict.address("10.9.9.9".parse().unwrap(), 443).is_ok());
        let e = strict.address("10.9.9.9".parse().unwrap(), 80).unwrap_err();
        assert!(e.contains("--allow port=80"), "{e}");
        assert!(strict.address("127.0.0.1".parse().unwrap(), 443).is_err());
        assert!(
            strict.host("db.internal", 443).is_ok(),
            "names are checked once resolved"
        );
        assert!(strict.host("[::1]", 443).is_err());
    }

    #[test]
    fn a_template_is_checked_field_by_field_with_the_entry_it_needs() {
        let yaml = format!(
            r#"{HEAD}hypothesis:
  probes:
    - {{name: a, command: {{shell: "id > /tmp/x"}}}}
    - {{name: b, redis: {{address: "127.0.0.1:6379", passwordFromEnv: MY_SECRET}}}}
    - {{name: c, http: {{url: "http://169.254.169.254/latest/meta-data/"}}}}
    - {{name: d, command: {{run: [/bin/true], env: {{LD_PRELOAD: /tmp/x.so}}}}}}
steps:
  - {{fault: process-kill, target: {{name: postgres}}}}
  - {{fault: process-pause, target: {{pidFile: /etc/shadow}}, duration: 1s}}
rollbacks:
  - command: {{run: [systemctl, restart, x]}}
"#
        );
        let why = check(
            &list(&[
                "fault=process-kill",
                "process=redis-server",
                "path=/run",
                "command=/bin/true",
            ]),
            &yaml,
        );
        let joined = why.join("\n");
        for want in [
            "steps[0].target.name: process postgres is not allowed: refused by this delegate's allow-list (hint: the delegate's operator must allow it: --allow process=postgres)",
            "steps[1].fault: fault process-pause is not allowed",
            "steps[1].target.pidFile: pid file /etc/shadow is not under an allowed path",
            "hypothesis.probes[0].command.shell: program /bin/sh may not run on this host: refused by this delegate's allow-list (hint: the delegate's operator must allow it: --allow command=/bin/sh)",
            "hypothesis.probes[1].redis.passwordFromEnv: environment variable MY_SECRET may not be read",
            "--allow env=MY_SECRET",
            "hypothesis.probes[2].http.url: connection to 169.254.169.254:80: 169.254.169.254 is a link-local or cloud metadata address",
            "hypothesis.probes[3].command.env.LD_PRELOAD: LD_PRELOAD changes which code a program runs",
            "rollbacks[0].command.run: program systemctl may not run on this host",
        ] {
            assert!(joined.contains(want), "missing {want:?} in\n{joined}");
        }
        assert_eq!(why.len(), 8, "{joined}");
    }

    #[test]
    fn action_steps_and_their_undos_need_the_same_entries_as_probes() {
        let yaml = format!(
            r#"{HEAD}hypothesis:
  probes:
    - {{name: a, tcp: {{address: "127.0.0.1:1"}}}}
steps:
  - action: {{command: {{run: [/bin/true]}}}}
    undo: {{command: {{shell: "rm -rf /"}}}}
  - action: {{http: {{url: "http://169.254.169.254/latest/api/token", method: PUT}}}}
    undo: {{http: {{url: "http://10.1.2.3:8474/reset"}}}}
"#
        );
        let why = check(&list(&["command=/bin/true", "cidr=127.0.0.0/8"]), &yaml);
        let joined = why.join("\n");
        for want in [
            "steps[0].undo.command.shell: program /bin/sh may not run on this host",
            "--allow command=/bin/sh",
            "steps[1].action.http.url: connection to 169.254.169.254:80",
            "steps[1].undo.http.url: connection to 10.1.2.3:8474",
        ] {
            assert!(joined.contains(want), "missing {want:?} in\n{joined}");
        }
        assert_eq!(why.len(), 3, "{joined}");
    }

    #[test]
    fn kubernetes_faults_are_closed_until_namespace_and_kind_are_listed() {
        let yaml = format!(
            r#"{HEAD}hypothesis:
  probes:
    - {{name: a, tcp: {{address: "127.0.0.1:1"}}}}
steps:
  - {{fault: pod-delete, target: {{namespace: shop, labelSelector: app=web, count: 1}}}}
  - {{fault: deployment-scale, target: {{namespace: shop, name: web}}, params: {{replicas: 0}}, duration: 1m}}
"#
        );
        let why = check(&Policy::none(), &yaml).join("\n");
        for want in [
            "steps[0].target.namespace: namespace shop is not allowed: refused by this delegate's allow-list (hint: the delegate's operator must allow it: --allow namespace=shop)",
            "steps[0].fault: Kubernetes kind Pod is not allowed: refused by this delegate's allow-list (hint: the delegate's operator must allow it: --allow k8s-kind=Pod)",
            "steps[1].fault: Kubernetes kind Deployment is not allowed",
        ] {
            assert!(why.contains(want), "missing {want:?} in\n{why}");
        }
        let why = check(&list(&["namespace=shop", "k8s-kind=pod"]), &yaml).join("\n");
        assert!(!why.contains("steps[0]"), "{why}");
        assert!(why.contains("--allow k8s-kind=Deployment"), "{why}");
        assert!(check(
            &list(&["namespace=*", "k8s-kind=Pod", "k8s-kind=deployment"]),
            &yaml
        )
        .is_empty());
        // A k8s probe reads only an allowed namespace.
        let probe = format!(
            "{HEAD}hypothesis:\n  probes:\n    - {{name: a, k8s: {{namespace: db, podsReady: {{labelSelector: app=pg}}}}}}\n"
        );
        let why = check(&list(&["namespace=shop"]), &probe).join("\n");
        assert!(
            why.contains("hypothesis.probes[0].k8s.namespace: namespace db may not be read")
                && why.contains("--allow namespace=db"),
            "{why}"
        );
        assert!(check(&list(&["namespace=db"]), &probe).is_empty());
        // One spelling travels to the hub, whatever the operator typed.
        assert_eq!(
            list(&["k8s-kind=statefulset"]).entries(),
            ["k8s-kind=StatefulSet"]
        );
        assert!("k8s-kind=Service"
            .parse::<Entry>()
            .unwrap_err()
            .contains("Pod, Deployment, StatefulSet, Node"));
        // node-cordon: cluster-scoped, so k8s-kind=Node alone allows it; no namespace= asked.
        let cordon = format!(
            "{HEAD}hypothesis:\n  probes:\n    - {{name: a, tcp: {{address: \"127.0.0.1:1\"}}}}\n\
             steps:\n  - {{fault: node-cordon, target: {{names: [n1]}}, duration: 1m}}\n"
        );
        let why = check(&list(&["namespace=shop", "k8s-kind=Pod"]), &cordon).join("\n");
        assert!(
            why.contains("--allow k8s-kind=Node") && !why.contains("namespace="),
            "{why}"
        );
        assert!(check(&list(&["k8s-kind=node"]), &cordon).is_empty());
        // node-drain evicts pods of any namespace: it needs both kinds, still no namespace=.
        let drain = cordon.replace("node-cordon", "node-drain");
        let why = check(&list(&["k8s-kind=Node"]), &drain).join("\n");
        assert!(
            why.contains("--allow k8s-kind=Pod") && !why.contains("namespace="),
            "{why}"
        );
        assert!(check(&list(&["k8s-kind=node", "k8s-kind=pod"]), &drain).is_empty());
    }

    #[test]
    fn directories_and_network_faults_are_checked() {
        let yaml = format!(
            r#"{HEAD}hypothesis:
  probes:
    - {{name: a, tcp: {{address: "127.0.0.1:1"}}}}
steps:
  - {{fault: disk-fill, target: {{path: /var/lib/app}}, params: {{size: 1GiB}}, duration: 1s}}
  - {{fault: network-loss, target: {{interface: eth0}}, duration: 1s, params: {{percent: 5, destinations: [10.1.0.0/16], ports: [5432]}}}}
  - {{fault: network-partition, target: {{interface: eth1, netns: blue}}, duration: 1s, params: {{destinations: [192.168.0.0/16]}}}}
"#
        );
        assert!(check(&Policy::none(), &yaml).is_empty());
        let why = check(
            &list(&[
                "path=/srv",
                "interface=eth0",
                "netns=host",
                "cidr=10.0.0.0/8",
                "cidr=127.0.0.0/8",
                "port=1-6000",
            ]),
            &yaml,
        )
        .join("\n");
        for want in [
            "steps[0].target.path: path /var/lib/app is not under an allowed path",
            "steps[2].target: interface eth1 is not allowed (needs --allow interface=eth1)",
            "steps[2].target: network namespace blue is not allowed",
            "steps[2].target: destination 192.168.0.0/16 is not inside an allowed CIDR",
        ] {
            assert!(why.contains(want), "missing {want:?} in\n{why}");
        }
        assert!(!why.contains("steps[1]"), "{why}");
    }

    #[test]
    fn proxy_addresses_are_checked_by_cidr_and_port() {
        let yaml = format!(
            r#"{HEAD}hypothesis:
  probes:
    - {{name: a, tcp: {{address: "127.0.0.1:15432"}}}}
steps:
  - {{fault: tcp-proxy, target: {{listen: "127.0.0.1:15432", upstream: "10.0.0.5:5432"}}, duration: 1s}}
  - {{fault: http-fault, target: {{listen: "0.0.0.0:18080", upstream: "http://db.internal"}}, duration: 1s}}
"#
        );
        assert!(check(&Policy::none(), &yaml).is_empty());
        let why = check(
            &list(&["cidr=127.0.0.0/8", "cidr=10.0.0.0/24", "port=15000-19000"]),
            &yaml,
        )
        .join("\n");
        for want in [
            "steps[0].target: upstream address 10.0.0.5:5432: port 5432 is not inside an allowed port range",
            "steps[1].target: listen address 0.0.0.0:18080: 0.0.0.0 is not inside an allowed CIDR",
            "steps[1].target: upstream host db.internal must be an IP address",
        ] {
            assert!(why.contains(want), "missing {want:?} in\n{why}");
        }
        assert!(check(&list(&["port=1-65535"]), &yaml).is_empty());
    }

    #[test]
    fn an_allow_file_is_read_line_by_line() {
        let text =
            "# who may be touched\nfault=process-kill\n\nprocess=redis-server  # the cache\n";
        let entries = parse_file(text).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(
            Policy::from_entries(&entries).to_string(),
            list(&["fault=process-kill", "process=redis-server"]).to_string()
        );
        let err = parse_file("fault=process-kill\nbogus\n").unwrap_err();
        assert!(err.starts_with("2: "), "{err}");
    }

    #[test]
    fn urls_give_their_host_and_default_port() {
        assert_eq!(url_host_port("http://a.b/x"), Some(("a.b".into(), 80)));
        assert_eq!(
            url_host_port("https://[::1]:8443/"),
            Some(("::1".into(), 8443))
        );
        assert_eq!(
            url_host_port("postgres://u@10.0.0.1/db"),
            Some(("10.0.0.1".into(), 5432))
        );
        assert_eq!(url_host_port("postgres:///db?host=/run/postgresql"), None);
        // A decimal IPv4 host is the address it means.
        assert_eq!(
            url_host_port("http://2852039166/"),
            Some(("169.254.169.254".into(), 80))
        );
    }
}
