//! Apply and revert latency of the kernel network faults (`network-loss`, `network-partition`,
//! `network-bandwidth`), each on a veth inside a network namespace the bench creates and deletes.
//!
//! `cargo bench -p faultline-delegate --bench faults_network` (as root; `ITERATIONS=200` for
//! more samples). Prints p50/p99 of plan, apply and revert per kind.
use faultline_delegate::faults::{Faults, RunCtx};
use faultline_experiment::{faults::FaultSpec, template::FaultStep};
use std::{
    process::Command,
    time::{Duration, Instant},
};

/// The namespace, deleted on drop.
struct Ns(String);

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn sh(args: &[&str]) {
    let o = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn main() {
    let iterations: usize = std::env::var("ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60)
        .max(50);
    let ns = Ns(format!("fltbench{}", std::process::id()));
    sh(&["ip", "netns", "add", &ns.0]);
    sh(&[
        "ip", "-n", &ns.0, "link", "add", "bench0", "type", "veth", "peer", "name", "bench1",
    ]);
    sh(&["ip", "-n", &ns.0, "link", "set", "bench0", "up"]);
    sh(&["ip", "-n", &ns.0, "link", "set", "bench1", "up"]);
    let faults = Faults::new();
    let cases = [
        (
            "network-loss",
            "{percent: 30, destinations: [10.0.0.0/8, \"fd00::/8\"], ports: [80, \"8000-8080\"]}",
        ),
        ("network-partition", "{destinations: [10.1.0.0/16]}"),
        ("network-bandwidth", "{rate: 10mbit}"),
        (
            "network-bandwidth",
            "{rate: 10mbit, destinations: [10.1.0.0/16], ports: [\"8000-8080\"]}",
        ),
    ];
    println!(
        "faults_network: {iterations} iterations each, namespace {}, interface bench0 (ms)",
        ns.0
    );
    println!(
        "{:<40} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "kind", "plan p50", "plan p99", "apply p50", "apply p99", "revert p50", "revert p99"
    );
    for (kind, params) in cases {
        let yaml = format!(
            "{{fault: {kind}, target: {{interface: bench0, netns: {}}}, duration: 1s, params: {params}}}",
            ns.0
        );
        let step: FaultStep = serde_norway::from_str(&yaml).unwrap();
        let spec: FaultSpec = step.fault_spec("steps[0]").unwrap();
        let fault = faults.get(kind).unwrap();
        let (mut plan, mut apply, mut revert) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..iterations {
            let ctx = RunCtx {
                run_id: "bench",
                step: i,
            };
            let t = Instant::now();
            let p = fault.plan(&spec, ctx).unwrap();
            plan.push(t.elapsed());
            let t = Instant::now();
            fault.apply(&p).unwrap();
            apply.push(t.elapsed());
            let t = Instant::now();
            fault.revert(&p).unwrap();
            revert.push(t.elapsed());
        }
        for v in [&mut plan, &mut apply, &mut revert] {
            v.sort();
        }
        let label = if params.contains("destinations") && kind == "network-bandwidth" {
            format!("{kind} (htb + u32, narrowed)")
        } else if kind == "network-bandwidth" {
            format!("{kind} (tbf)")
        } else {
            kind.to_string()
        };
        println!(
            "{:<40} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            label,
            ms(pct(&plan, 0.5)),
            ms(pct(&plan, 0.99)),
            ms(pct(&apply, 0.5)),
            ms(pct(&apply, 0.99)),
            ms(pct(&revert, 0.5)),
            ms(pct(&revert, 0.99)),
        );
    }
}
