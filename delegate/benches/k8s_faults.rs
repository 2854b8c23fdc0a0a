//! Apply and revert times of the Kubernetes faults against the tests' fake API server (no real
//! one can run here), through the real registry: plan (API reads), fsynced journal entry, apply
//! (API writes; for container-kill an exec over a WebSocket); revert, journal entry removed. 50
//! iterations each after a warm-up, plain HTTP on loopback, so this measures the delegate's own
//! cost, not a cluster's. Prints p50 / p99 in milliseconds.
//!
//! Then the delegate's idle resident memory (VmRSS) without and with the Kubernetes module: the
//! real `faultline-delegate` binary connected to the tests' fake hub, once alone and once with
//! `--kubeconfig` naming the fake API server (so it holds the client, its runtime thread and
//! the connection pool), each read after 5 s idle.
//!
//! `cargo bench -p faultline-delegate --bench k8s_faults`
#[allow(dead_code)]
#[path = "../tests/it/fake_hub.rs"]
mod fake_hub;
#[allow(dead_code)]
#[path = "../tests/it/fake_kube.rs"]
mod fake_kube;

use faultline_delegate::{
    allow::{AllowList, Entry},
    faults::{Faults, RunCtx},
    journal::Journal,
    k8s::{Kube, KubeOptions},
};
use faultline_experiment::faults::{
    ContainerKillParams, FaultSpec, NodeDrainParams, NodeTarget, PodDeleteParams, PodTarget,
    ScaleParams, WorkloadTarget,
};
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

const ITERATIONS: usize = 50;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let api = fake_kube::FakeKubeApi::start();
    api.add_workload("deployments", "shop", "web", 3);
    let kube = Kube::connect(&KubeOptions {
        kubeconfig: Some(api.kubeconfig(dir.path())),
        cluster_name: None,
        timeout: Duration::from_secs(5),
        node: None,
    })
    .unwrap()
    .unwrap();
    let entries: Vec<Entry> = [
        "namespace=shop",
        "k8s-kind=Pod",
        "k8s-kind=Deployment",
        "k8s-kind=Node",
    ]
    .iter()
    .map(|e| e.parse().unwrap())
    .collect();
    let faults =
        Faults::with_allow(AllowList::from_entries(&entries)).with_kube(Some(Arc::new(kube)));
    let journal = Journal::open(&dir.path().join("journal")).unwrap();
    let pod_delete = FaultSpec::PodDelete {
        target: PodTarget {
            namespace: "shop".into(),
            label_selector: Some("app=web".into()),
            count: Some(1),
            ..PodTarget::default()
        },
        params: PodDeleteParams::default(),
    };
    let scale = FaultSpec::DeploymentScale {
        target: WorkloadTarget {
            namespace: "shop".into(),
            name: "web".into(),
        },
        params: ScaleParams { replicas: 0 },
    };
    let drain = FaultSpec::NodeDrain {
        target: NodeTarget {
            names: vec!["n1".into()],
            ..NodeTarget::default()
        },
        params: NodeDrainParams::default(),
    };
    let kill = FaultSpec::ContainerKill {
        target: PodTarget {
            namespace: "shop".into(),
            names: vec!["web-0".into()],
            ..PodTarget::default()
        },
        params: ContainerKillParams::default(),
    };
    api.add_node("n1", &[], false);
    println!("| fault | n | apply p50 | apply p99 | revert p50 | revert p99 |");
    println!("|---|---|---|---|---|---|");
    for (label, spec) in [
        ("pod-delete (1 of 3 pods, fake API server)", &pod_delete),
        ("deployment-scale (3 → 0, fake API server)", &scale),
        (
            "node-drain (cordon 1 node; 3 pods evicted in the background)",
            &drain,
        ),
        ("container-kill (1 pod, exec over a WebSocket)", &kill),
    ] {
        let (mut apply, mut revert) = (Vec::new(), Vec::new());
        for i in 0..ITERATIONS + 2 {
            for p in 0..3 {
                api.put_pod(
                    "shop",
                    &format!("web-{p}"),
                    fake_kube::FakePod::new(&[("app", "web")]).on("n1"),
                );
            }
            let run_id = format!("bench-{i}");
            let ctx = RunCtx {
                run_id: &run_id,
                step: 0,
            };
            let t = Instant::now();
            let a = faults.inject(&journal, spec, ctx).unwrap();
            let applied = t.elapsed();
            let t = Instant::now();
            faults.revert(&journal, &a).unwrap();
            let reverted = t.elapsed();
            if i >= 2 {
                apply.push(applied);
                revert.push(reverted);
            }
        }
        apply.sort();
        revert.sort();
        println!(
            "| {label} | {ITERATIONS} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms |",
            percentile(&apply, 0.5),
            percentile(&apply, 0.99),
            percentile(&revert, 0.5),
            percentile(&revert, 0.99)
        );
    }
    drop(faults);
    idle_memory(&api, dir.path());
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The real delegate's VmRSS after 5 s connected and idle, without and with the Kubernetes
/// module (three runs each).
fn idle_memory(api: &fake_kube::FakeKubeApi, dir: &std::path::Path) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let hub = rt.block_on(fake_hub::FakeHub::start(fake_hub::Mode::Normal, None));
    let kubeconfig = api.kubeconfig(dir);
    println!();
    println!("| delegate, idle 5 s after connecting | VmRSS (3 runs) |");
    println!("|---|---|");
    for (label, kube) in [
        ("without a cluster", false),
        ("with --kubeconfig (Kubernetes module on)", true),
    ] {
        let mut rss = Vec::new();
        for i in 0..3 {
            let state = dir.join(format!("state-{kube}-{i}"));
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_faultline-delegate"));
            cmd.args(["--hub", &hub.url(), "--name", "bench-idle", "--state-dir"])
                .arg(&state)
                .env_remove("KUBECONFIG")
                .env("FAULTLINE_DELEGATE_TOKEN", fake_hub::TOKEN)
                .env("FAULTLINE_LOG", "warn")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            if kube {
                cmd.arg("--kubeconfig").arg(&kubeconfig);
            }
            let mut child = cmd.spawn().unwrap();
            std::thread::sleep(Duration::from_secs(5));
            rss.push(rss_kib(child.id()) as f64 / 1024.0);
            let _ = child.kill();
            let _ = child.wait();
        }
        let list: Vec<String> = rss.iter().map(|r| format!("{r:.1} MiB")).collect();
        println!("| {label} | {} |", list.join(", "));
    }
    drop(hub);
}
