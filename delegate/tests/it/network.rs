//! Kernel network faults against real network namespaces: each test makes two namespaces joined
//! by a veth pair (A: 10.9.0.1 and fd09::1; B: 10.9.0.2, 10.9.0.3 and fd09::2), deleted on drop
//! even when the test panics, runs real servers and clients inside them (a small python3 tool),
//! and injects faults into A through the real registry and journal.
use faultline_delegate::{
    allow::{AllowList, Entry},
    faults::{network_tc::netem_support, Applied, FaultError, Faults, RunCtx},
    journal::Journal,
};
use faultline_experiment::faults::FaultSpec;
use std::time::Duration;
use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Output, Stdio},
    sync::atomic::{AtomicUsize, Ordering},
};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The test tool run inside the namespaces. Every mode is bounded by socket timeouts.
const TOOL: &str = r#"
import socket, sys, time, json, select
mode = sys.argv[1]
def fam(h): return socket.AF_INET6 if ':' in h else socket.AF_INET
if mode == 'listen':
    socks = []
    for p in sys.argv[2:]:
        s = socket.socket(socket.AF_INET6)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(('::', int(p))); s.listen(128); socks.append(s)
    print('ready', flush=True)
    end = time.time() + 60
    while time.time() < end:
        r, _, _ = select.select(socks, [], [], 1)
        for s in r: s.accept()[0].close()
elif mode == 'connect':
    h, p = sys.argv[2], int(sys.argv[3])
    src = (sys.argv[4], 0) if len(sys.argv) > 4 else None
    try:
        socket.create_connection((h, p), timeout=0.7, source_address=src).close(); sys.exit(0)
    except OSError:
        sys.exit(1)
elif mode == 'udprecv':
    socks = []
    for p in sys.argv[2:]:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.bind(('0.0.0.0', int(p))); socks.append(s)
    counts = {p: 0 for p in sys.argv[2:]}
    print('ready', flush=True)
    end, last = time.time() + 20, None
    while time.time() < end and (last is None or time.time() - last < 1.0):
        r, _, _ = select.select(socks, [], [], 0.2)
        for s in r:
            s.recv(2048); counts[str(s.getsockname()[1])] += 1; last = time.time()
    print(json.dumps(counts), flush=True)
elif mode == 'udpsend':
    h, n = sys.argv[2], int(sys.argv[3])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(n):
        for p in sys.argv[4:]:
            # A local drop in postrouting shows up as EPERM: the datagram is lost, go on.
            try: s.sendto(b'x' * 64, (h, int(p)))
            except PermissionError: pass
        time.sleep(0.0005)
elif mode == 'sink':
    s = socket.socket(socket.AF_INET6)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(('::', int(sys.argv[2]))); s.listen(1); s.settimeout(20)
    print('ready', flush=True)
    c, _ = s.accept(); c.settimeout(20)
    n, t0 = 0, None
    while True:
        b = c.recv(65536)
        if not b: break
        if t0 is None: t0 = time.time()
        n += len(b)
    print(json.dumps({'bytes': n, 'secs': time.time() - t0}), flush=True)
elif mode == 'source':
    h, p, n = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    c = socket.create_connection((h, p), timeout=20)
    c.sendall(b'x' * n); c.close()
"#;

/// Two namespaces joined by a veth pair; both deleted on drop.
pub(crate) struct Net {
    pub(crate) a: String,
    pub(crate) b: String,
    /// A's end of the pair (the interface the faults act on).
    pub(crate) va: String,
    tool: tempfile::TempPath,
}

impl Net {
    pub(crate) fn new() -> Net {
        let tag = format!(
            "{}x{}",
            std::process::id() % 100_000,
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let tool = tempfile::Builder::new()
            .suffix(".py")
            .tempfile()
            .unwrap()
            .into_temp_path();
        std::fs::write(&tool, TOOL).unwrap();
        let net = Net {
            a: format!("fltna{tag}"),
            b: format!("fltnb{tag}"),
            va: format!("fva{tag}"),
            tool,
        };
        let vb = format!("fvb{tag}");
        let (a, b, va) = (net.a.as_str(), net.b.as_str(), net.va.as_str());
        sh(&["ip", "netns", "add", a]);
        sh(&["ip", "netns", "add", b]);
        sh(&[
            "ip", "link", "add", va, "netns", a, "type", "veth", "peer", "name", &vb, "netns", b,
        ]);
        for (ns, dev, addrs) in [
            (a, va, &["10.9.0.1/24", "fd09::1/64"][..]),
            (
                b,
                vb.as_str(),
                &["10.9.0.2/24", "10.9.0.3/24", "fd09::2/64"][..],
            ),
        ] {
            for addr in addrs {
                let mut args = vec!["ip", "-n", ns, "addr", "add", addr, "dev", dev];
                if addr.contains(':') {
                    args.push("nodad");
                }
                sh(&args);
            }
            sh(&["ip", "-n", ns, "link", "set", dev, "up"]);
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        net
    }

    fn tool(&self, ns: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, "python3", "-u"])
            .arg(&self.tool)
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// Starts a tool mode that prints `ready` first; killed on drop.
    pub(crate) fn serve(&self, ns: &str, args: &[&str]) -> Server {
        let mut child = self.tool(ns, args).stdout(Stdio::piped()).spawn().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "{args:?} did not start");
        Server { child, out }
    }

    /// Whether a TCP connection from `ns` (optionally from address `src`) succeeds within 0.7s.
    pub(crate) fn connects(&self, ns: &str, host: &str, port: u16, src: Option<&str>) -> bool {
        let port = port.to_string();
        let mut args = vec!["connect", host, &port];
        args.extend(src);
        self.tool(ns, &args).status().unwrap().success()
    }

    /// What A's namespace holds: its nftables ruleset and A's qdiscs (without packet counts).
    pub(crate) fn state(&self) -> (String, String) {
        let qdiscs = sh(&["tc", "-n", &self.a, "qdisc", "show", "dev", &self.va]);
        let counts = regex::Regex::new(r"direct_packets_stat \d+ ").unwrap();
        (
            sh(&["ip", "netns", "exec", &self.a, "nft", "list", "ruleset"]),
            counts.replace_all(&qdiscs, "").into_owned(),
        )
    }

    fn spec(&self, kind: &str, params: &str) -> FaultSpec {
        let yaml = format!(
            "{{fault: {kind}, target: {{interface: {}, netns: {}}}, duration: 10s, params: {params}}}",
            self.va, self.a
        );
        let step: faultline_experiment::template::FaultStep =
            serde_norway::from_str(&yaml).unwrap();
        step.fault_spec("steps[0]").unwrap()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

pub(crate) struct Server {
    pub(crate) child: Child,
    out: BufReader<std::process::ChildStdout>,
}

impl Server {
    /// The JSON line the mode prints when it ends (bounded by its own timeouts).
    fn result(mut self) -> serde_json::Value {
        let mut line = String::new();
        self.out.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sh(args: &[&str]) -> String {
    let o: Output = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ctx(step: usize) -> RunCtx<'static> {
    RunCtx {
        run_id: "9f1c2d3e-net",
        step,
    }
}

struct Setup {
    faults: Faults,
    journal: Journal,
    _dir: tempfile::TempDir,
}

fn setup(allow: &[&str]) -> Setup {
    crate::helpers::init_logs();
    let dir = tempfile::tempdir().unwrap();
    let entries: Vec<Entry> = allow.iter().map(|s| s.parse().unwrap()).collect();
    Setup {
        faults: Faults::with_allow(AllowList::from_entries(&entries)),
        journal: Journal::open(dir.path()).unwrap(),
        _dir: dir,
    }
}

impl Setup {
    fn inject(&self, spec: &FaultSpec, step: usize) -> Result<Applied, FaultError> {
        self.faults.inject(&self.journal, spec, ctx(step))
    }
}

#[test]
fn loss_drops_about_the_asked_share_only_on_the_given_port_and_reverts_cleanly() {
    let net = Net::new();
    let s = setup(&[]);
    let before = net.state();
    let spec = net.spec(
        "network-loss",
        "{percent: 50, destinations: [10.9.0.0/24], ports: [9000]}",
    );
    let a = s.inject(&spec, 0).unwrap();
    assert!(
        a.detail.starts_with(&format!(
            "drop 50% of packets leaving {} in network namespace {} to 10.9.0.0/24 port 9000 (tcp, udp)",
            net.va, net.a
        )),
        "{}",
        a.detail
    );
    assert_ne!(net.state(), before, "the fault changed nothing");
    let recv = net.serve(&net.b, &["udprecv", "9000", "9001"]);
    let sent = net
        .tool(&net.a, &["udpsend", "10.9.0.2", "400", "9000", "9001"])
        .status()
        .unwrap();
    assert!(sent.success());
    let counts = recv.result();
    let (lossy, clean) = (
        counts["9000"].as_u64().unwrap(),
        counts["9001"].as_u64().unwrap(),
    );
    println!("network-loss 50%: {lossy}/400 arrived on the faulted port, {clean}/400 on the other");
    assert!((140..=260).contains(&lossy), "{lossy} of 400 arrived");
    assert!(clean >= 396, "{clean} of 400 arrived on the unfaulted port");
    let detail = s.faults.revert(&s.journal, &a).unwrap();
    assert!(detail.contains("dropped"), "{detail}");
    assert_eq!(net.state(), before, "revert left something behind");
    assert!(s.journal.entries().unwrap().is_empty());
    // Reverting again (e.g. recovery after a crash during revert) is fine.
    assert!(s.faults.revert(&s.journal, &a).unwrap().contains("gone"));
}

#[test]
fn partition_blocks_both_directions_only_for_its_destination() {
    let net = Net::new();
    let s = setup(&[]);
    let _b = net.serve(&net.b, &["listen", "8080", "8081"]);
    let _a = net.serve(&net.a, &["listen", "7070"]);
    let before = net.state();
    assert!(net.connects(&net.a, "10.9.0.2", 8080, None));
    let spec = net.spec(
        "network-partition",
        "{destinations: [10.9.0.2/32, \"fd09::2\"]}",
    );
    let a = s.inject(&spec, 1).unwrap();
    // A -> B: the partitioned addresses, v4 and v6, are cut; B's other address is not.
    assert!(!net.connects(&net.a, "10.9.0.2", 8080, None));
    assert!(!net.connects(&net.a, "fd09::2", 8080, None));
    assert!(net.connects(&net.a, "10.9.0.3", 8080, None));
    // B -> A: from the partitioned address cut, from the other one fine.
    assert!(!net.connects(&net.b, "10.9.0.1", 7070, Some("10.9.0.2")));
    assert!(net.connects(&net.b, "10.9.0.1", 7070, Some("10.9.0.3")));
    s.faults.revert(&s.journal, &a).unwrap();
    assert!(net.connects(&net.a, "10.9.0.2", 8080, None));
    assert!(net.connects(&net.b, "10.9.0.1", 7070, Some("10.9.0.2")));
    assert_eq!(net.state(), before);

    // Narrowed to a port: only that port of that destination is cut.
    let spec = net.spec(
        "network-partition",
        "{destinations: [10.9.0.2], ports: [\"8080-8080\"]}",
    );
    let a = s.inject(&spec, 2).unwrap();
    assert!(!net.connects(&net.a, "10.9.0.2", 8080, None));
    assert!(net.connects(&net.a, "10.9.0.2", 8081, None));
    assert!(net.connects(&net.a, "10.9.0.3", 8080, None));
    s.faults.revert(&s.journal, &a).unwrap();
    assert_eq!(net.state(), before);
}

/// Sends `bytes` from A to B's `host:port` and returns the rate B saw, in bits per second.
fn transfer(net: &Net, host: &str, port: u16, bytes: usize) -> f64 {
    let p = port.to_string();
    let sink = net.serve(&net.b, &["sink", &p]);
    let ok = net
        .tool(&net.a, &["source", host, &p, &bytes.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let r = sink.result();
    assert_eq!(r["bytes"].as_u64(), Some(bytes as u64));
    bytes as f64 * 8.0 / r["secs"].as_f64().unwrap()
}

#[test]
fn bandwidth_limits_a_transfer_to_the_asked_rate() {
    let net = Net::new();
    let s = setup(&[]);
    let before = net.state();
    let a = s
        .inject(&net.spec("network-bandwidth", "{rate: 8mbit}"), 0)
        .unwrap();
    assert!(a.detail.contains("tc root qdisc tbf"), "{}", a.detail);
    let rate = transfer(&net, "10.9.0.2", 5001, 1 << 20);
    println!(
        "network-bandwidth 8mbit (tbf): measured {:.2} mbit/s",
        rate / 1e6
    );
    assert!(
        (5.6e6..=10.4e6).contains(&rate),
        "{:.2} mbit/s, asked 8",
        rate / 1e6
    );
    s.faults.revert(&s.journal, &a).unwrap();
    assert_eq!(net.state(), before);
}

#[test]
fn bandwidth_narrowed_to_a_destination_port_leaves_other_traffic_fast() {
    let net = Net::new();
    let s = setup(&[]);
    let before = net.state();
    let a = s
        .inject(
            &net.spec(
                "network-bandwidth",
                "{rate: 8mbit, destinations: [10.9.0.2/32], ports: [\"5000-5001\"]}",
            ),
            0,
        )
        .unwrap();
    assert!(a.detail.contains("tc root qdisc htb"), "{}", a.detail);
    let limited = transfer(&net, "10.9.0.2", 5001, 1 << 20);
    let other = transfer(&net, "10.9.0.3", 5001, 1 << 20);
    println!(
        "network-bandwidth 8mbit (htb, narrowed): {:.2} mbit/s matched, {:.2} mbit/s other",
        limited / 1e6,
        other / 1e6
    );
    assert!(
        (5.6e6..=10.4e6).contains(&limited),
        "{:.2} mbit/s",
        limited / 1e6
    );
    assert!(other > 3.0 * limited, "{:.2} mbit/s", other / 1e6);
    s.faults.revert(&s.journal, &a).unwrap();
    assert_eq!(net.state(), before);
}

#[test]
fn an_interface_with_its_own_root_qdisc_is_refused_and_left_alone() {
    let net = Net::new();
    let s = setup(&[]);
    sh(&[
        "tc", "-n", &net.a, "qdisc", "add", "dev", &net.va, "root", "handle", "1:", "htb",
    ]);
    let before = net.state();
    let e = s
        .inject(&net.spec("network-bandwidth", "{rate: 1mbit}"), 0)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("already has a root qdisc (htb, handle 1:)"),
        "{e}"
    );
    assert_eq!(net.state(), before);
    assert!(s.journal.entries().unwrap().is_empty());
}

#[test]
fn journal_recovery_after_a_crash_removes_exactly_what_was_added() {
    let net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    // Something of someone else's in the same namespace must survive.
    sh(&[
        "ip", "netns", "exec", &net.a, "nft", "add", "table", "inet", "theirs",
    ]);
    let before = net.state();
    {
        let faults = Faults::new();
        let journal = Journal::open(dir.path()).unwrap();
        faults
            .inject(&journal, &net.spec("network-loss", "{percent: 10}"), ctx(0))
            .unwrap();
        faults
            .inject(
                &journal,
                &net.spec("network-partition", "{ports: [80]}"),
                ctx(1),
            )
            .unwrap();
        faults
            .inject(
                &journal,
                &net.spec("network-bandwidth", "{rate: 1mbit}"),
                ctx(2),
            )
            .unwrap();
        assert_eq!(journal.entries().unwrap().len(), 3);
        // The delegate "crashes" here.
    }
    let (rules, qdiscs) = net.state();
    assert_eq!(rules.matches("table inet faultline_9f1c2d3e_").count(), 2);
    assert!(qdiscs.contains("qdisc tbf"), "{qdiscs}");
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.recover(&Faults::new()).unwrap(), 3);
    assert!(journal.entries().unwrap().is_empty());
    assert_eq!(net.state(), before);
}

#[test]
fn recovery_when_the_namespace_is_gone_just_clears_the_entry() {
    let net = Net::new();
    let s = setup(&[]);
    s.inject(&net.spec("network-loss", "{percent: 10}"), 0)
        .unwrap();
    s.inject(&net.spec("network-bandwidth", "{rate: 1mbit}"), 1)
        .unwrap();
    let (a, b) = (net.a.clone(), net.b.clone());
    drop(net);
    assert!(!std::path::Path::new("/run/netns").join(&a).exists());
    assert!(!std::path::Path::new("/run/netns").join(&b).exists());
    assert_eq!(s.journal.recover(&s.faults).unwrap(), 2);
    assert!(s.journal.entries().unwrap().is_empty());
}

#[test]
fn bad_targets_are_refused_at_plan_time_with_the_reason() {
    let net = Net::new();
    let s = setup(&[]);
    let yaml = |ns: &str, iface: &str| {
        format!("{{fault: network-loss, target: {{interface: {iface}, netns: {ns}}}, duration: 1s, params: {{percent: 5}}}}")
    };
    let spec = |y: String| {
        serde_norway::from_str::<faultline_experiment::template::FaultStep>(&y)
            .unwrap()
            .fault_spec("steps[0]")
            .unwrap()
    };
    let e = s
        .inject(&spec(yaml("fltnope-none", "eth0")), 0)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("network namespace fltnope-none does not exist"),
        "{e}"
    );
    let e = s.inject(&spec(yaml(&net.a, "nosuch0")), 0).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "interface nosuch0 does not exist in network namespace {}",
            net.a
        )
    );
    assert!(s.journal.entries().unwrap().is_empty());
}

#[test]
fn the_allow_list_refuses_interfaces_cidrs_and_ports_it_does_not_list() {
    let net = Net::new();
    let before = net.state();
    let iface = format!("interface={}", net.va);
    let netns = format!("netns={}", net.a);
    let s = setup(&[&iface, &netns, "cidr=10.9.0.0/24", "port=9000-9100"]);
    let ok = net.spec(
        "network-loss",
        "{percent: 5, destinations: [10.9.0.2], ports: [9000, \"9050-9060\"]}",
    );
    let a = s.inject(&ok, 0).unwrap();
    s.faults.revert(&s.journal, &a).unwrap();
    for (params, why) in [
        (
            "{percent: 5, destinations: [10.9.1.0/24], ports: [9000]}",
            "destination 10.9.1.0/24 is not inside an allowed CIDR",
        ),
        (
            "{percent: 5, ports: [9000]}",
            "no destinations means every address (0.0.0.0/0)",
        ),
        (
            "{percent: 5, destinations: [10.9.0.2], ports: [\"9000-9200\"]}",
            "port 9000-9200 is not inside an allowed port range",
        ),
        (
            "{percent: 5, destinations: [10.9.0.2]}",
            "no ports means every port",
        ),
    ] {
        let e = s.inject(&net.spec("network-loss", params), 1).unwrap_err();
        assert!(matches!(e, FaultError::NotAllowed(_)), "{e}");
        assert!(e.to_string().contains(why), "{e}");
    }
    let other = setup(&["interface=eth9", "netns=host"]);
    let e = other.inject(&ok, 0).unwrap_err().to_string();
    assert!(
        e.contains(&format!("interface {} is not allowed", net.va)),
        "{e}"
    );
    let e = setup(&["netns=host"])
        .inject(&ok, 0)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("network namespace {} is not allowed", net.a)),
        "{e}"
    );
    assert_eq!(net.state(), before, "a refused fault changed something");
    // Entries that do not parse name themselves.
    let e = "cidr=10.0.0.0/40".parse::<Entry>().unwrap_err();
    assert!(
        e.starts_with("\"cidr=10.0.0.0/40\": ") && e.contains("0-32"),
        "{e}"
    );
    let e = "port=70000".parse::<Entry>().unwrap_err();
    assert!(e.starts_with("\"port=70000\": "), "{e}");
}

#[test]
fn netem_kinds_are_refused_with_a_hint_when_the_kernel_lacks_netem() {
    let net = Net::new();
    let s = setup(&[]);
    let spec = net.spec("network-latency", "{latency: 100ms, jitter: 10ms}");
    match netem_support() {
        Err(why) => {
            println!("skipped netem behaviour: this kernel has no netem ({why}); checking the refusal instead");
            for kind in faultline_experiment::faults::NETEM_KINDS {
                assert!(
                    !s.faults.capabilities().iter().any(|k| k == kind),
                    "{kind} advertised"
                );
            }
            assert!(s.faults.capabilities().iter().any(|k| k == "network-loss"));
            let e = s.inject(&spec, 0).unwrap_err().to_string();
            assert!(
                e.contains("network-latency needs the kernel's netem qdisc"),
                "{e}"
            );
            assert!(e.contains("tcp-proxy") && e.contains("http-fault"), "{e}");
            assert!(s.journal.entries().unwrap().is_empty());
        }
        Ok(()) => {
            let before = net.state();
            let a = s.inject(&spec, 0).unwrap();
            assert!(net.state().1.contains("netem"), "{:?}", net.state());
            let narrowed = net.spec("network-corrupt", "{percent: 5, destinations: [10.9.0.2]}");
            assert!(s
                .inject(&narrowed, 1)
                .unwrap_err()
                .to_string()
                .contains("already has a root qdisc"));
            s.faults.revert(&s.journal, &a).unwrap();
            assert_eq!(net.state(), before);
            let b = s.inject(&narrowed, 1).unwrap();
            assert!(net.state().1.contains("prio"));
            s.faults.revert(&s.journal, &b).unwrap();
            assert_eq!(net.state(), before);
        }
    }
}

#[test]
fn ingress_loss_drops_arriving_packets_only() {
    let net = Net::new();
    let s = setup(&[]);
    let spec = net.spec(
        "network-loss",
        "{percent: 50, direction: ingress, destinations: [10.9.0.2]}",
    );
    let a = s.inject(&spec, 0).unwrap();
    assert!(a.detail.contains("arriving on"), "{}", a.detail);
    // B -> A arrives through the fault; A -> B leaves untouched.
    let into_a = net.serve(&net.a, &["udprecv", "9000"]);
    let into_b = net.serve(&net.b, &["udprecv", "9000"]);
    assert!(net
        .tool(&net.b, &["udpsend", "10.9.0.1", "400", "9000"])
        .status()
        .unwrap()
        .success());
    assert!(net
        .tool(&net.a, &["udpsend", "10.9.0.2", "400", "9000"])
        .status()
        .unwrap()
        .success());
    let (arrived_a, arrived_b) = (
        into_a.result()["9000"].as_u64().unwrap(),
        into_b.result()["9000"].as_u64().unwrap(),
    );
    println!("network-loss 50% ingress: {arrived_a}/400 arrived in A, {arrived_b}/400 in B");
    assert!((140..=260).contains(&arrived_a), "{arrived_a} of 400");
    assert!(arrived_b >= 396, "{arrived_b} of 400");
    s.faults.revert(&s.journal, &a).unwrap();
}

/// A whole run through the executor, on an interface of the delegate's own namespace: the
/// onChaos TCP probe fails while the partition holds and the fault is reverted at its end.
#[tokio::test]
async fn a_run_partitions_a_host_interface_for_its_duration() {
    use faultline_delegate::{
        executor::{Executor, RunRequest},
        outbox::Outbox,
    };
    use faultline_experiment::events::{self, FaultEvent, ProbeCheck};
    use std::sync::Arc;

    crate::helpers::init_logs();
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let tag = format!("{}x{n}", std::process::id() % 100_000);
    let subnet = (std::process::id() as usize * 7 + n) % 250;
    // B's namespace, joined to the delegate's namespace by a veth pair (deleted with B).
    let b = Net {
        a: format!("fltnh{tag}"),
        b: format!("fltnb{tag}"),
        va: format!("fvh{tag}"),
        tool: {
            let t = tempfile::Builder::new()
                .suffix(".py")
                .tempfile()
                .unwrap()
                .into_temp_path();
            std::fs::write(&t, TOOL).unwrap();
            t
        },
    };
    let (host_if, vb) = (b.va.clone(), format!("fvb{tag}"));
    sh(&["ip", "netns", "add", &b.b]);
    sh(&[
        "ip", "link", "add", &host_if, "type", "veth", "peer", "name", &vb, "netns", &b.b,
    ]);
    let (host_ip, b_ip) = (format!("10.213.{subnet}.1"), format!("10.213.{subnet}.2"));
    sh(&[
        "ip",
        "addr",
        "add",
        &format!("{host_ip}/24"),
        "dev",
        &host_if,
    ]);
    sh(&["ip", "link", "set", &host_if, "up"]);
    sh(&[
        "ip",
        "-n",
        &b.b,
        "addr",
        "add",
        &format!("{b_ip}/24"),
        "dev",
        &vb,
    ]);
    sh(&["ip", "-n", &b.b, "link", "set", &vb, "up"]);
    let _server = b.serve(&b.b, &["listen", "8080"]);

    let dir = tempfile::tempdir().unwrap();
    let outbox = Arc::new(Outbox::open(&dir.path().join("runs")).unwrap());
    let journal = Arc::new(Journal::open(&dir.path().join("journal")).unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::mem::forget(rx);
    let exec = Executor::new(
        outbox.clone(),
        journal.clone(),
        Arc::new(Faults::new()),
        Arc::new(crate::helpers::probes(&[])),
        tx,
    );
    let yaml = format!(
        "apiVersion: faultline.dev/v1\nkind: Experiment\nmetadata: {{name: net}}\nhypothesis:\n  recoverWithin: 3s\n  probes:\n    - {{name: b, tcp: {{address: \"{b_ip}:8080\"}}, mode: onChaos, interval: 100ms, timeout: 300ms}}\nsteps:\n  - {{fault: network-partition, target: {{interface: {host_if}}}, params: {{destinations: [{b_ip}]}}, duration: 1s}}\n"
    );
    exec.start(RunRequest {
        project: String::new(),
        run_id: "run-net-host".into(),
        template_name: "net".into(),
        template_version: 1,
        spec: faultline_experiment::parse_template(&yaml).unwrap(),
        dry_run: false,
    })
    .unwrap();
    tokio::time::timeout(Duration::from_secs(20), exec.wait("run-net-host"))
        .await
        .expect("the run ends");
    let evs = outbox.history("run-net-host").unwrap();
    let of = |kind: &str| -> Vec<serde_json::Value> {
        evs.iter()
            .filter(|e| e.kind == kind)
            .map(|e| serde_json::from_str(&e.payload_json).unwrap())
            .collect()
    };
    let applied: FaultEvent = serde_json::from_value(of(events::FAULT_APPLIED)[0].clone()).unwrap();
    assert!(
        applied.detail.starts_with(&format!(
            "drop all packets on {host_if} to and from {b_ip}/32"
        )),
        "{}",
        applied.detail
    );
    let reverted: FaultEvent =
        serde_json::from_value(of(events::FAULT_REVERTED)[0].clone()).unwrap();
    assert!(
        reverted.detail.contains("removed nftables table"),
        "{}",
        reverted.detail
    );
    let checks: Vec<ProbeCheck> = of(events::PROBE_CHECK)
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect();
    assert!(
        !checks.is_empty() && checks.iter().all(|c| !c.ok),
        "{checks:?}"
    );
    assert!(journal.entries().unwrap().is_empty());
    let rules = sh(&["nft", "list", "ruleset"]);
    assert!(!rules.contains(&host_if), "left behind: {rules}");
    // The server answers again.
    assert!(std::net::TcpStream::connect_timeout(
        &format!("{b_ip}:8080").parse().unwrap(),
        Duration::from_secs(1)
    )
    .is_ok());
    // The host end of the pair goes with B's namespace; make sure.
    let _ = Command::new("ip").args(["link", "del", &host_if]).output();
}

/// A dry run plans (allow-list and target checks included) and lists exact targets, and
/// changes nothing in the namespace.
#[tokio::test]
async fn a_dry_run_lists_the_targets_and_changes_nothing() {
    use faultline_delegate::{
        executor::{Executor, RunRequest},
        outbox::Outbox,
    };
    use faultline_experiment::events::{self, FaultEvent};
    use std::sync::Arc;

    let net = Net::new();
    let before = net.state();
    let dir = tempfile::tempdir().unwrap();
    let outbox = Arc::new(Outbox::open(&dir.path().join("runs")).unwrap());
    let journal = Arc::new(Journal::open(&dir.path().join("journal")).unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::mem::forget(rx);
    let exec = Executor::new(
        outbox.clone(),
        journal.clone(),
        Arc::new(Faults::new()),
        Arc::new(crate::helpers::probes(&[])),
        tx,
    );
    let yaml = format!(
        "apiVersion: faultline.dev/v1\nkind: Experiment\nmetadata: {{name: dry}}\nhypothesis:\n  probes:\n    - {{name: b, tcp: {{address: \"10.9.0.2:1\", expect: closed}}}}\nsteps:\n  - {{fault: network-loss, target: {{interface: {va}, netns: {a}}}, params: {{percent: 20, direction: both, destinations: [10.9.0.2]}}, duration: 5s}}\n  - {{fault: network-bandwidth, target: {{interface: {va}, netns: {a}}}, params: {{rate: 2mbit, ports: [\"8000-8080\"]}}, duration: 5s}}\n",
        va = net.va,
        a = net.a
    );
    exec.start(RunRequest {
        project: String::new(),
        run_id: "run-net-dry".into(),
        template_name: "dry".into(),
        template_version: 1,
        spec: faultline_experiment::parse_template(&yaml).unwrap(),
        dry_run: true,
    })
    .unwrap();
    tokio::time::timeout(Duration::from_secs(20), exec.wait("run-net-dry"))
        .await
        .expect("the dry run ends");
    let planned: Vec<FaultEvent> = outbox
        .history("run-net-dry")
        .unwrap()
        .iter()
        .filter(|e| e.kind == events::FAULT_PLANNED)
        .map(|e| serde_json::from_str(&e.payload_json).unwrap())
        .collect();
    assert_eq!(planned.len(), 2, "{planned:?}");
    let target = format!("{} in network namespace {}", net.va, net.a);
    assert!(
        planned[0].detail.starts_with(&format!(
            "drop 20% of packets leaving or arriving on {target} to/from 10.9.0.2/32 (nftables table inet faultline_runnetdr_0_"
        )),
        "{}",
        planned[0].detail
    );
    assert!(
        planned[1].detail.starts_with(&format!(
            "limit egress of {target} to 2mbit ports 8000-8080 (tcp, udp) (tc root qdisc htb "
        )),
        "{}",
        planned[1].detail
    );
    assert_eq!(net.state(), before, "a dry run changed something");
    assert!(journal.entries().unwrap().is_empty());
}
