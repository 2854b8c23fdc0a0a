//! Apply and revert times of the Kubernetes faults against the tests' fake API server (no real
//! one can run here), through the real registry: plan (API reads), fsynced journal entry, apply
//! (API writes); revert, journal entry removed. 50 iterations each after a warm-up, plain HTTP on
//! loopback, so this measures the delegate's own cost, not a cluster's. Prints p50 / p99 in
//! milliseconds.
//!
//! `cargo bench -p faultline-delegate --bench k8s_faults`
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
    FaultSpec, PodDeleteParams, PodTarget, ScaleParams, WorkloadTarget,
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
    let entries: Vec<Entry> = ["namespace=shop", "k8s-kind=Pod", "k8s-kind=Deployment"]
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
    println!("| fault | n | apply p50 | apply p99 | revert p50 | revert p99 |");
    println!("|---|---|---|---|---|---|");
    for (label, spec) in [
        ("pod-delete (1 of 3 pods, fake API server)", &pod_delete),
        ("deployment-scale (3 → 0, fake API server)", &scale),
    ] {
        let (mut apply, mut revert) = (Vec::new(), Vec::new());
        for i in 0..ITERATIONS + 2 {
            for p in 0..3 {
                api.add_pod("shop", &format!("web-{p}"), &[("app", "web")]);
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
}
