//! The delegate's allow-list: what whoever runs the delegate lets the hub touch on this host,
//! whatever a template asks. Set with `--allow KIND=VALUE` (repeatable),
//! `FAULTLINE_DELEGATE_ALLOW` (comma-separated) or `--allow-file` (one entry per line):
//!
//! | entry | allows |
//! |---|---|
//! | `fault=KIND` | that fault kind (others are neither advertised nor run) |
//! | `process=NAME` | processes with that exact command name (`/proc/PID/comm`) |
//! | `path=PREFIX` | pid files, and directories io-stress / disk-fill write in, under that directory (or that exact path) |
//! | `command=PROGRAM` | command probes and rollbacks running that program (`/bin/sh` for `shell:`; `*` for any) |
//! | `interface=NAME` | network faults on that interface |
//! | `netns=NAME` | network faults inside that namespace (`netns=host`: the delegate's own) |
//! | `cidr=CIDR` | network faults whose destinations all lie inside listed CIDRs (no destinations means `0.0.0.0/0` and `::/0`); proxy faults (tcp-proxy, http-fault) whose listen and upstream addresses do (a host name then cannot be checked and is refused) |
//! | `port=P` or `port=LO-HI` | network faults whose ports all lie inside listed ranges (no ports means 1-65535); proxy faults whose listen and upstream ports do |
//!
//! A kind of entry that is never given leaves that dimension open (and the delegate says so in
//! its log at start); once one entry of a kind is given, only what is listed is allowed. A run
//! that asks for anything else is refused before anything is applied; a process target is
//! checked again, by the name of the process it resolves to, just before each fault.
use faultline_spec::{
    faults::{Cidr, FaultSpec, PortRange},
    probes::ProbeKind,
    Experiment,
};
use std::{fmt, path::Path, str::FromStr};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList {
    faults: Option<Vec<String>>,
    processes: Option<Vec<String>>,
    paths: Option<Vec<String>>,
    commands: Option<Vec<String>>,
    interfaces: Option<Vec<String>>,
    netns: Option<Vec<String>>,
    cidrs: Option<Vec<Cidr>>,
    ports: Option<Vec<PortRange>>,
}

/// How `netns=` names the delegate's own network namespace.
pub const HOST_NETNS: &str = "host";

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
    Interface,
    Netns,
    Cidr,
    Port,
}

const KINDS: &str = "fault, process, path, command, interface, netns, cidr, port";

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
            "command" => EntryKind::Command,
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
            other => return Err(format!("unknown allow kind {other:?}; known: {KINDS}")),
        };
        Ok(Entry { kind, value })
    }
}

impl AllowList {
    /// Everything allowed: what a delegate without `--allow` does.
    pub fn open() -> Self {
        Self::default()
    }

    pub fn from_entries(entries: &[Entry]) -> Self {
        let mut a = AllowList::default();
        for e in entries {
            // Values were checked when the entry was parsed.
            match e.kind {
                EntryKind::Cidr => {
                    if let Ok(c) = e.value.parse() {
                        a.cidrs.get_or_insert_with(Vec::new).push(c);
                    }
                    continue;
                }
                EntryKind::Port => {
                    if let Ok(p) = e.value.parse() {
                        a.ports.get_or_insert_with(Vec::new).push(p);
                    }
                    continue;
                }
                _ => {}
            }
            let list = match e.kind {
                EntryKind::Fault => &mut a.faults,
                EntryKind::Process => &mut a.processes,
                EntryKind::Path => &mut a.paths,
                EntryKind::Command => &mut a.commands,
                EntryKind::Interface => &mut a.interfaces,
                EntryKind::Netns => &mut a.netns,
                EntryKind::Cidr | EntryKind::Port => unreachable!("handled above"),
            };
            list.get_or_insert_with(Vec::new).push(e.value.clone());
        }
        a
    }

    /// The dimensions no entry restricts, for the start-up warning.
    pub fn open_dimensions(&self) -> Vec<&'static str> {
        [
            ("fault", &self.faults),
            ("process", &self.processes),
            ("path", &self.paths),
            ("command", &self.commands),
            ("interface", &self.interfaces),
            ("netns", &self.netns),
        ]
        .into_iter()
        .filter(|(_, l)| l.is_none())
        .map(|(n, _)| n)
        .chain(self.cidrs.is_none().then_some("cidr"))
        .chain(self.ports.is_none().then_some("port"))
        .collect()
    }

    pub fn fault_kind(&self, kind: &str) -> bool {
        allowed(&self.faults, |v| v == kind)
    }

    pub fn process_name(&self, name: &str) -> bool {
        allowed(&self.processes, |v| v == name)
    }

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

    pub fn program(&self, program: &str) -> bool {
        allowed(&self.commands, |v| v == "*" || v == program)
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
                "interface {} is not allowed on this delegate",
                n.target.interface
            ));
        }
        let ns = n.target.netns.as_deref().unwrap_or(HOST_NETNS);
        if !allowed(&self.netns, |v| v == ns) {
            why.push(format!(
                "network namespace {ns} is not allowed on this delegate"
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
                        format!("destination {d} is not inside an allowed CIDR")
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
                        format!("port {p} is not inside an allowed port range")
                    });
                }
            }
        }
        why
    }

    /// Why the addresses a proxy fault binds or connects to are not allowed (`cidr=` and
    /// `port=` entries); empty when they are. A host name is allowed only while no `cidr=` entry
    /// is given (it cannot be checked before it is resolved).
    pub fn endpoints(&self, spec: &FaultSpec) -> Vec<String> {
        let mut why = Vec::new();
        for (role, addr) in spec.endpoints() {
            let Some((host, port)) = addr.rsplit_once(':') else {
                why.push(format!("{role} address {addr} has no port"));
                continue;
            };
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if let Some(cidrs) = &self.cidrs {
                let ip = if host == "localhost" {
                    Some(std::net::IpAddr::from([127, 0, 0, 1]))
                } else {
                    host.parse::<std::net::IpAddr>().ok()
                };
                match ip.and_then(|ip| Cidr::from_str(&ip.to_string()).ok()) {
                    Some(c) if cidrs.iter().any(|a| a.contains(&c)) => {}
                    Some(_) => why.push(format!(
                        "{role} address {addr} is not inside an allowed CIDR"
                    )),
                    None => why.push(format!(
                        "{role} host {host} must be an IP address while cidr= entries restrict this delegate"
                    )),
                }
            }
            if let Some(ports) = &self.ports {
                match PortRange::from_str(port) {
                    Ok(p) if ports.iter().any(|a| a.contains(&p)) => {}
                    _ => why.push(format!(
                        "{role} port {port} is not inside an allowed port range"
                    )),
                }
            }
        }
        why
    }

    /// Every reason this experiment may not run here; empty when it may.
    pub fn check(&self, exp: &Experiment) -> Vec<String> {
        let mut why = Vec::new();
        for f in exp.faults() {
            let kind = f.spec.kind();
            if !self.fault_kind(kind) {
                why.push(format!(
                    "{}: fault {kind} is not allowed on this delegate",
                    f.path
                ));
            }
            if let Some(p) = f.spec.path() {
                if !self.pid_file(p) {
                    why.push(format!("{}: path {p} is not under an allowed path", f.path));
                }
            }
            for w in self
                .network_target(&f.spec)
                .into_iter()
                .chain(self.endpoints(&f.spec))
            {
                why.push(format!("{}: {w}", f.path));
            }
            let Some(target) = f.spec.process_target() else {
                continue;
            };
            if let Some(n) = &target.name {
                if !self.process_name(n) {
                    why.push(format!(
                        "{}: process {n} is not allowed on this delegate",
                        f.path
                    ));
                }
            }
            if let Some(p) = &target.pid_file {
                if !self.pid_file(p) {
                    why.push(format!(
                        "{}: pid file {p} is not under an allowed path",
                        f.path
                    ));
                }
            }
        }
        for (i, p) in exp.hypothesis.probes.iter().enumerate() {
            if let Some(ProbeKind::Command(c)) = p.kind() {
                let program = program_of(&c.run, &c.shell);
                if !self.program(&program) {
                    why.push(format!(
                        "hypothesis.probes[{i}].command: program {program} is not allowed on this delegate"
                    ));
                }
            }
        }
        for (i, r) in exp.rollbacks.iter().enumerate() {
            if let Some(c) = &r.command {
                let program = program_of(&c.run, &c.shell);
                if !self.program(&program) {
                    why.push(format!(
                        "rollbacks[{i}].command: program {program} is not allowed on this delegate"
                    ));
                }
            }
        }
        why
    }
}

/// The program a command runs: argv[0], or `/bin/sh` for a shell script.
fn program_of(run: &[String], shell: &Option<String>) -> String {
    match (shell, run.first()) {
        (Some(_), _) => "/bin/sh".into(),
        (None, Some(p)) => p.clone(),
        (None, None) => String::new(),
    }
}

fn allowed(list: &Option<Vec<String>>, matches: impl Fn(&str) -> bool) -> bool {
    match list {
        None => true,
        Some(l) => l.iter().any(|v| matches(v)),
    }
}

impl fmt::Display for AllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let part = |n: &str, l: &Option<Vec<String>>| match l {
            None => format!("{n}=any"),
            Some(l) => format!("{n}={}", l.join("|")),
        };
        let typed = |n: &str, l: Option<Vec<String>>| part(n, &l);
        write!(
            f,
            "{} {} {} {} {} {} {} {}",
            part("fault", &self.faults),
            part("process", &self.processes),
            part("path", &self.paths),
            part("command", &self.commands),
            part("interface", &self.interfaces),
            part("netns", &self.netns),
            typed(
                "cidr",
                self.cidrs
                    .as_ref()
                    .map(|l| l.iter().map(|c| c.to_string()).collect())
            ),
            typed(
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

    fn list(entries: &[&str]) -> AllowList {
        let e: Vec<Entry> = entries.iter().map(|s| s.parse().unwrap()).collect();
        AllowList::from_entries(&e)
    }

    #[test]
    fn entries_parse_or_name_the_problem() {
        assert!("fault=process-kill".parse::<Entry>().is_ok());
        assert_eq!(
            "colour=red".parse::<Entry>().unwrap_err(),
            "unknown allow kind \"colour\"; known: fault, process, path, command, interface, netns, cidr, port"
        );
        assert!("path=relative/dir"
            .parse::<Entry>()
            .unwrap_err()
            .contains("absolute"));
        assert!("process=".parse::<Entry>().unwrap_err().contains("empty"));
    }

    #[test]
    fn unlisted_dimensions_stay_open_listed_ones_close() {
        let a = list(&["process=redis-server", "path=/run/app"]);
        assert!(a.fault_kind("process-pause"));
        assert!(a.process_name("redis-server") && !a.process_name("postgres"));
        assert!(a.pid_file("/run/app/web.pid"));
        assert!(
            !a.pid_file("/run/application.pid"),
            "a prefix is a directory, not a string"
        );
        assert!(!a.pid_file("/run/app/../../etc/x.pid"));
        assert!(a.program("anything"));
        assert_eq!(
            a.open_dimensions(),
            vec!["fault", "command", "interface", "netns", "cidr", "port"]
        );
        let c = list(&["command=/usr/bin/curl"]);
        assert!(c.program("/usr/bin/curl") && !c.program("/bin/sh"));
        assert!(list(&["command=*"]).program("/bin/sh"));
    }

    #[test]
    fn directories_of_io_stress_and_disk_fill_are_checked() {
        let yaml = r#"
apiVersion: faultline.dev/v1
kind: Experiment
metadata: {name: x}
hypothesis:
  probes:
    - {name: a, tcp: {address: "127.0.0.1:1"}}
steps:
  - {fault: disk-fill, target: {path: /var/lib/app}, params: {size: 1GiB}, duration: 1s}
  - {fault: io-stress, target: {path: /srv/scratch}, duration: 1s}
"#;
        let exp = faultline_spec::parse_template(yaml).unwrap();
        assert_eq!(
            list(&["path=/srv"]).check(&exp),
            vec!["steps[0]: path /var/lib/app is not under an allowed path"]
        );
    }

    #[test]
    fn a_template_is_checked_field_by_field() {
        let yaml = r#"
apiVersion: faultline.dev/v1
kind: Experiment
metadata: {name: x}
hypothesis:
  probes:
    - {name: a, command: {shell: "curl -f http://x"}}
steps:
  - {fault: process-kill, target: {name: postgres}}
  - {fault: process-pause, target: {pidFile: /etc/app.pid}, duration: 1s}
rollbacks:
  - command: {run: [systemctl, restart, x]}
"#;
        let exp = faultline_spec::parse_template(yaml).unwrap();
        assert!(AllowList::open().check(&exp).is_empty());
        let why = list(&[
            "fault=process-kill",
            "process=redis-server",
            "path=/run",
            "command=/usr/bin/curl",
        ])
        .check(&exp);
        assert_eq!(
            why,
            vec![
                "steps[0]: process postgres is not allowed on this delegate",
                "steps[1]: fault process-pause is not allowed on this delegate",
                "steps[1]: pid file /etc/app.pid is not under an allowed path",
                "hypothesis.probes[0].command: program /bin/sh is not allowed on this delegate",
                "rollbacks[0].command: program systemctl is not allowed on this delegate",
            ]
        );
    }

    #[test]
    fn proxy_addresses_are_checked_by_cidr_and_port() {
        let yaml = r#"
apiVersion: faultline.dev/v1
kind: Experiment
metadata: {name: x}
hypothesis:
  probes:
    - {name: a, tcp: {address: "127.0.0.1:1"}}
steps:
  - {fault: tcp-proxy, target: {listen: "127.0.0.1:15432", upstream: "10.0.0.5:5432"}, duration: 1s}
  - {fault: http-fault, target: {listen: "0.0.0.0:18080", upstream: "http://db.internal"}, duration: 1s}
"#;
        let exp = faultline_spec::parse_template(yaml).unwrap();
        assert!(AllowList::open().check(&exp).is_empty());
        let a = list(&["cidr=127.0.0.0/8", "cidr=10.0.0.0/24", "port=15000-19000"]);
        assert_eq!(
            a.check(&exp),
            vec![
                "steps[0]: upstream port 5432 is not inside an allowed port range",
                "steps[1]: listen address 0.0.0.0:18080 is not inside an allowed CIDR",
                "steps[1]: upstream host db.internal must be an IP address while cidr= entries restrict this delegate",
                "steps[1]: upstream port 80 is not inside an allowed port range",
            ]
        );
        // Ports alone: a host name is fine, its port is not.
        assert_eq!(list(&["port=1-65535"]).check(&exp), Vec::<String>::new());
    }

    #[test]
    fn an_allow_file_is_read_line_by_line() {
        let text =
            "# who may be touched\nfault=process-kill\n\nprocess=redis-server  # the cache\n";
        let entries = parse_file(text).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(
            AllowList::from_entries(&entries).to_string(),
            list(&["fault=process-kill", "process=redis-server"]).to_string()
        );
        let err = parse_file("fault=process-kill\nbogus\n").unwrap_err();
        assert!(err.starts_with("2: "), "{err}");
    }

    #[test]
    fn network_faults_are_checked_by_interface_namespace_cidr_and_port() {
        let yaml = r#"
apiVersion: faultline.dev/v1
kind: Experiment
metadata: {name: x}
hypothesis:
  probes:
    - {name: a, tcp: {address: "127.0.0.1:1"}}
steps:
  - {fault: network-loss, target: {interface: eth0}, duration: 1s, params: {percent: 5, destinations: [10.1.0.0/16], ports: [5432]}}
  - {fault: network-partition, target: {interface: eth1, netns: blue}, duration: 1s, params: {destinations: [192.168.0.0/16]}}
"#;
        let exp = faultline_spec::parse_template(yaml).unwrap();
        assert!(AllowList::open().check(&exp).is_empty());
        let a = list(&[
            "interface=eth0",
            "netns=host",
            "cidr=10.0.0.0/8",
            "port=5000-6000",
        ]);
        assert_eq!(
            a.check(&exp),
            vec![
                "steps[1]: interface eth1 is not allowed on this delegate",
                "steps[1]: network namespace blue is not allowed on this delegate",
                "steps[1]: destination 192.168.0.0/16 is not inside an allowed CIDR",
                "steps[1]: no ports means every port, which is not inside an allowed port range; list ports",
            ]
        );
        assert!("cidr=10.0.0.0/8".parse::<Entry>().is_ok());
        assert!("port=8000-80"
            .parse::<Entry>()
            .unwrap_err()
            .contains("backwards"));
        assert!(
            a.to_string().contains("cidr=10.0.0.0/8 port=5000-6000"),
            "{a}"
        );
    }
}
