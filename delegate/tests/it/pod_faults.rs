//! The pod-scoped faults (`pod-network-*`, `pod-cpu-stress`, `pod-process-kill`) against a pod
//! made of the real kernel parts a kubelet would make, since no kubelet runs here: processes in
//! a real network namespace (network.rs's pair A–B joined by a veth, A's end playing the pod's
//! interface), placed in real cgroups whose path carries a container id as containerd's
//! `cri-containerd-<id>.scope` does. FakeKubeApi (the fake API server) reports the pod on the
//! delegate's node with that container id.
use crate::fake_kube::{FakeKubeApi, FakePod};
use crate::kubernetes::{allow, connect};
use crate::network::Net;
use faultline_delegate::{
    containers,
    faults::{stress, FaultError, Faults, RunCtx},
    journal::Journal,
};
use faultline_experiment::faults::FaultSpec;
use std::{
    path::{Path, PathBuf},
    process::{Child, Command},
    time::Duration,
};

/// Cgroups named as containerd names a container's, beside this test process's own.
struct FakeContainer {
    id: String,
    dirs: Vec<PathBuf>,
}

impl FakeContainer {
    fn new() -> FakeContainer {
        let id: String = (0..64)
            .map(|_| char::from_digit(rand::random::<u32>() % 16, 16).unwrap())
            .collect();
        let dirs: Vec<PathBuf> = containers::cgroup_procs(std::process::id() as i32)
            .iter()
            .map(|f| {
                f.parent()
                    .unwrap()
                    .join(format!("cri-containerd-{id}.scope"))
            })
            .collect();
        for d in &dirs {
            std::fs::create_dir(d).unwrap();
            // A v1 cpuset takes no task until it has CPUs and memory nodes, as a runtime sets.
            for f in ["cpuset.cpus", "cpuset.mems"] {
                if d.join(f).exists() {
                    let v = std::fs::read_to_string(d.parent().unwrap().join(f)).unwrap();
                    std::fs::write(d.join(f), v.trim()).unwrap();
                }
            }
        }
        assert!(!dirs.is_empty());
        FakeContainer { id, dirs }
    }

    /// Puts a process in the container.
    fn add(&self, pid: u32) {
        for d in &self.dirs {
            std::fs::write(d.join("cgroup.procs"), pid.to_string()).unwrap();
        }
    }
}

impl Drop for FakeContainer {
    fn drop(&mut self) {
        for d in &self.dirs {
            // Whatever is left goes back to the parent, then the cgroup can go.
            let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
            for p in procs.lines() {
                let _ = std::fs::write(d.parent().unwrap().join("cgroup.procs"), p);
            }
            let _ = std::fs::remove_dir(d);
        }
    }
}

fn spec(step: &str) -> FaultSpec {
    let step: faultline_experiment::template::FaultStep = serde_norway::from_str(step).unwrap();
    step.fault_spec("steps[0]").unwrap()
}

fn ctx(step: usize) -> RunCtx<'static> {
    RunCtx {
        run_id: "5e7a9b1c-pod",
        step,
    }
}

/// A delegate's faults on node `node-a` of the fake cluster.
fn faults(api: &FakeKubeApi, dir: &Path) -> Faults {
    Faults::with_allow(allow(&["namespace=shop", "k8s-kind=Pod"]))
        .with_kube(Some(connect(&api.kubeconfig(dir))))
        .with_worker_exe(env!("CARGO_BIN_EXE_faultline-delegate"))
}

fn pod(id: &str, node: &str) -> FakePod {
    let mut p = FakePod::new(&[("app", "web")]).on(node);
    p.container_id = Some(id.to_string());
    p
}

/// The namespace names attached for step `step` of the tests' run.
fn attached(step: usize) -> Vec<String> {
    let prefix = format!("fl-5e7a9b1c-{step}-");
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn pod_network_partition_acts_in_the_pods_namespace_on_its_node_only() {
    let dir = tempfile::tempdir().unwrap();
    let net = Net::new();
    let _b = net.serve(&net.b, &["listen", "8080"]);
    let server = net.serve(&net.a, &["listen", "7070"]);
    let c = FakeContainer::new();
    c.add(server.child.id());
    assert_eq!(
        containers::init_pid(&c.id).unwrap(),
        server.child.id() as i32
    );

    let api = FakeKubeApi::start();
    api.put_pod("shop", "web-1", pod(&c.id, "node-a"));
    api.put_pod("shop", "web-2", pod("ab12cd34ef56ab12cd34ef56", "node-b"));
    let f = faults(&api, dir.path());
    assert!(f
        .capabilities()
        .contains(&"pod-network-partition".to_string()));
    let journal = Journal::open(&dir.path().join("journal")).unwrap();
    let before = net.state();
    assert!(net.connects(&net.a, "10.9.0.2", 8080, None));

    let s = spec(&format!(
        "{{fault: pod-network-partition, target: {{namespace: shop, labelSelector: app=web, interface: {}}}, params: {{destinations: [10.9.0.2/32]}}, duration: 10s}}",
        net.va
    ));
    // A dry run's plan leaves no namespace name behind.
    f.plan(&s, ctx(0)).unwrap();
    assert!(attached(0).is_empty());
    let applied = f.inject(&journal, &s, ctx(0)).unwrap();
    let pid = server.child.id();
    assert!(
        applied.detail.starts_with(&format!(
            "in 1 of 2 matching pods on node node-a: pod web-1 (container app, pid {pid}, netns fl-5e7a9b1c-0-0): "
        )),
        "{}",
        applied.detail
    );
    assert_eq!(attached(0), ["fl-5e7a9b1c-0-0"]);
    // Inside the pod's namespace: the partitioned address is cut, the other one is not.
    assert!(!net.connects(&net.a, "10.9.0.2", 8080, None));
    assert!(net.connects(&net.a, "10.9.0.3", 8080, None));

    let undone = f.revert(&journal, &applied).unwrap();
    assert!(undone.starts_with("pod web-1: "), "{undone}");
    assert!(net.connects(&net.a, "10.9.0.2", 8080, None));
    assert_eq!(net.state(), before);
    assert!(attached(0).is_empty());

    // Only pods of other nodes match: refused, naming how many are elsewhere.
    let s = spec(&format!(
        "{{fault: pod-network-loss, target: {{namespace: shop, names: [web-2], interface: {}}}, params: {{percent: 50}}, duration: 10s}}",
        net.va
    ));
    let err = f.inject(&journal, &s, ctx(1)).unwrap_err();
    assert!(matches!(err, FaultError::NoMatch(_)), "{err}");
    assert!(
        err.to_string()
            .contains("no pod in namespace shop on node node-a matches (1 match on other nodes"),
        "{err}"
    );
    assert!(journal.entries().unwrap().is_empty());
}

#[test]
fn a_restarted_delegate_reverts_a_pod_network_fault_from_its_journal() {
    let dir = tempfile::tempdir().unwrap();
    let net = Net::new();
    let _b = net.serve(&net.b, &["listen", "8080"]);
    let server = net.serve(&net.a, &["listen", "7070"]);
    let c = FakeContainer::new();
    c.add(server.child.id());
    let api = FakeKubeApi::start();
    api.put_pod("shop", "web-1", pod(&c.id, "node-a"));
    let before = net.state();
    let path = dir.path().join("journal");
    let s = spec(&format!(
        "{{fault: pod-network-partition, target: {{namespace: shop, names: [web-1], interface: {}}}, params: {{ports: [8080]}}, duration: 10s}}",
        net.va
    ));
    {
        let f = faults(&api, dir.path());
        let journal = Journal::open(&path).unwrap();
        f.inject(&journal, &s, ctx(3)).unwrap();
        assert!(!net.connects(&net.a, "10.9.0.2", 8080, None));
        // The delegate dies here.
    }
    // ...and, restarted in a new container without shared mounts, has lost the name it
    // attached: revert reaches the pod's namespace again through the container.
    assert_eq!(attached(3), ["fl-5e7a9b1c-3-0"]);
    let out = Command::new("ip")
        .args(["netns", "delete", "fl-5e7a9b1c-3-0"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        !net.connects(&net.a, "10.9.0.2", 8080, None),
        "the rules stay in the pod's namespace"
    );
    let f = faults(&api, dir.path());
    let journal = Journal::open(&path).unwrap();
    assert_eq!(journal.recover(&f).unwrap(), 1);
    assert!(net.connects(&net.a, "10.9.0.2", 8080, None));
    assert_eq!(net.state(), before);
    assert!(attached(3).is_empty());
}

fn sleeper() -> Child {
    Command::new("sleep").arg("30").spawn().unwrap()
}

fn cgroup_of(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default()
}

#[test]
fn pod_cpu_stress_workers_run_in_the_containers_cgroups() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = sleeper();
    let c = FakeContainer::new();
    c.add(app.id());
    let api = FakeKubeApi::start();
    api.put_pod("shop", "web-1", pod(&c.id, "node-a"));
    let f = faults(&api, dir.path());
    let journal = Journal::open(&dir.path().join("journal")).unwrap();
    let s = spec(
        "{fault: pod-cpu-stress, target: {namespace: shop, names: [web-1]}, params: {workers: 2, load: 10}, duration: 10s}",
    );
    let applied = f.inject(&journal, &s, ctx(5)).unwrap();
    // A worker's command line shows in /proc a moment after it starts.
    crate::helpers::wait_until(Duration::from_secs(5), || {
        stress::tagged(&stress::tag("5e7a9b1c-pod", 5)).len() == 2
    });
    let workers = stress::tagged(&stress::tag("5e7a9b1c-pod", 5));
    for w in &workers {
        let cg = cgroup_of(w.pid);
        assert!(cg.contains(&c.id), "worker {} is in {cg}", w.pid);
    }
    // Every hierarchy the container is in holds them.
    for d in &c.dirs {
        let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap();
        for w in &workers {
            assert!(
                procs.lines().any(|p| p == w.pid.to_string()),
                "{}",
                d.display()
            );
        }
    }
    let undone = f.revert(&journal, &applied).unwrap();
    assert!(undone.contains("stopped 2 CPU stress workers"), "{undone}");
    assert!(stress::tagged(&stress::tag("5e7a9b1c-pod", 5)).is_empty());
    let _ = app.kill();
    let _ = app.wait();
}

#[test]
fn pod_process_kill_signals_only_the_named_processes_in_the_container() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = Command::new("python3")
        .args(["-c", "import time; time.sleep(30)"])
        .spawn()
        .unwrap();
    let c = FakeContainer::new();
    c.add(app.id());
    let mut inside = sleeper();
    c.add(inside.id());
    let mut outside = sleeper();
    let api = FakeKubeApi::start();
    api.put_pod("shop", "web-1", pod(&c.id, "node-a"));
    let f = faults(&api, dir.path());
    let journal = Journal::open(&dir.path().join("journal")).unwrap();

    let s = spec(
        "{fault: pod-process-kill, target: {namespace: shop, names: [web-1], process: sleep}, params: {signal: KILL}}",
    );
    let applied = f.inject(&journal, &s, ctx(7)).unwrap();
    assert!(
        applied.detail.contains(&format!("pid {}", app.id())),
        "{}",
        applied.detail
    );
    let status = inside.wait().unwrap();
    assert!(!status.success(), "the sleep in the container was killed");
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        outside.try_wait().unwrap().is_none(),
        "the sleep outside lives"
    );
    assert!(
        app.try_wait().unwrap().is_none(),
        "the container's init lives"
    );
    f.revert(&journal, &applied).unwrap();

    // A name with no process in the container is refused, naming it.
    let s = spec(
        "{fault: pod-process-kill, target: {namespace: shop, names: [web-1], process: nginx}}",
    );
    let err = f.inject(&journal, &s, ctx(8)).unwrap_err();
    assert!(
        err.to_string()
            .contains("no process named nginx in container app of pod web-1"),
        "{err}"
    );
    for mut p in [app, outside] {
        let _ = p.kill();
        let _ = p.wait();
    }
}
