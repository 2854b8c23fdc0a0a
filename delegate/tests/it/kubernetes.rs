//! The Kubernetes faults against FakeKubeApi (a fake API server, since no real one can run
//! here): what is advertised and when, the allow-list's refusal before any request, pod-delete,
//! the scale faults with their revert, a 409 retried, and a delegate killed mid-scale whose
//! restart restores the replicas from its journal; node-cordon with its revert (only the
//! nodes it cordoned) and its journal recovery; node-drain through the Eviction API with a
//! PodDisruptionBudget's 429s retried, a watch following the evicted pods, its refusals and
//! its journal recovery; container-kill through the pod's exec (a WebSocket), by shell, by the
//! image's kill, or refused for an image with neither.
use crate::fake_hub::{FakeHub, Mode, TOKEN};
use crate::fake_kube::{FakeKubeApi, FakePod, Image};
use crate::helpers::{wait_until, HttpServer};
use faultline_delegate::{
    allow::{AllowList, Entry},
    faults::{FaultError, Faults, RunCtx},
    journal::Journal,
    k8s::{Kube, KubeOptions},
};
use faultline_experiment::faults::{
    ContainerKillParams, FaultSpec, NodeDrainParams, NodeTarget, PodDeleteParams, PodTarget,
    ScaleParams, WorkloadTarget,
};
use faultline_proto::v1 as pb;
use std::{
    path::Path,
    process::{Command, Stdio},
    sync::Arc,
    time::Duration,
};

const K8S_KINDS: [&str; 6] = [
    "container-kill",
    "deployment-scale",
    "node-cordon",
    "node-drain",
    "pod-delete",
    "statefulset-scale",
];

pub(crate) fn connect(kubeconfig: &Path) -> Arc<Kube> {
    let opts = KubeOptions {
        kubeconfig: Some(kubeconfig.to_path_buf()),
        cluster_name: None,
        timeout: Duration::from_secs(3),
        node: Some("node-a".into()),
    };
    Arc::new(
        Kube::connect(&opts)
            .unwrap()
            .expect("a kubeconfig was given"),
    )
}

pub(crate) fn allow(entries: &[&str]) -> AllowList {
    let e: Vec<Entry> = entries.iter().map(|e| e.parse().unwrap()).collect();
    AllowList::from_entries(&e)
}

fn faults(api: &FakeKubeApi, dir: &Path, entries: &[&str]) -> Faults {
    Faults::with_allow(allow(entries)).with_kube(Some(connect(&api.kubeconfig(dir))))
}

fn ctx(step: usize) -> RunCtx<'static> {
    RunCtx {
        run_id: "run-k8s",
        step,
    }
}

fn deployment_scale(name: &str, replicas: u32) -> FaultSpec {
    FaultSpec::DeploymentScale {
        target: WorkloadTarget {
            namespace: "shop".into(),
            name: name.into(),
        },
        params: ScaleParams { replicas },
    }
}

fn node_cordon(target: NodeTarget) -> FaultSpec {
    FaultSpec::NodeCordon { target }
}

#[test]
fn kinds_are_advertised_only_when_the_api_answers() {
    let dir = tempfile::tempdir().unwrap();
    let api = FakeKubeApi::start();
    let kube = connect(&api.kubeconfig(dir.path()));
    let cluster = kube.cluster().expect("the fake API answered /version");
    assert_eq!(cluster.name, "fake");
    assert_eq!(cluster.version, "v1.33.0-fake");
    let caps = Faults::new().with_kube(Some(kube)).capabilities();
    for k in K8S_KINDS {
        assert!(caps.contains(&k.to_string()), "{k} missing from {caps:?}");
    }

    // A cluster that does not answer: the client is kept (to revert what is journalled) but
    // nothing is advertised.
    let gone = FakeKubeApi::start();
    let sub = dir.path().join("gone");
    std::fs::create_dir(&sub).unwrap();
    let path = gone.kubeconfig(&sub);
    drop(gone);
    std::thread::sleep(Duration::from_millis(100));
    let kube = Kube::connect(&KubeOptions {
        kubeconfig: Some(path),
        cluster_name: Some("prod".into()),
        timeout: Duration::from_secs(1),
        node: None,
    })
    .unwrap()
    .unwrap();
    assert!(kube.cluster().is_none());
    let caps = Faults::new().with_kube(Some(Arc::new(kube))).capabilities();
    assert!(
        !caps.iter().any(|k| K8S_KINDS.contains(&k.as_str())),
        "{caps:?}"
    );
    // No cluster at all.
    let caps = Faults::new().capabilities();
    assert!(
        !caps.iter().any(|k| K8S_KINDS.contains(&k.as_str())),
        "{caps:?}"
    );
}

#[test]
fn the_allow_list_refuses_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let api = FakeKubeApi::start();
    api.add_pod("shop", "web-1", &[("app", "web")]);
    api.add_workload("deployments", "shop", "web", 3);
    let journal = Journal::open(&dir.path().join("journal")).unwrap();
    let pod_delete = FaultSpec::PodDelete {
        target: PodTarget {
            namespace: "shop".into(),
            label_selector: Some("app=web".into()),
            ..PodTarget::default()
        },
        params: PodDeleteParams::default(),
    };
    for (entries, spec, needed) in [
        // No entry at all: Kubernetes is closed.
        (&[][..], &pod_delete, "namespace=shop"),
        (&["k8s-kind=Pod"][..], &pod_delete, "namespace=shop"),
        (&["namespace=shop"][..], &pod_delete, "k8s-kind=Pod"),
        (
            &["namespace=shop", "k8s-kind=Pod"][..],
            &deployment_scale("web", 0),
            "k8s-kind=Deployment",
        ),
        (
            &["namespace=other", "k8s-kind=Deployment"][..],
            &deployment_scale("web", 0),
            "namespace=shop",
        ),
    ] {
        let f = faults(&api, dir.path(), entries);
        match f.inject(&journal, spec, ctx(0)) {
            Err(FaultError::NotAllowed(why)) => {
                assert!(
                    why.contains(&format!("--allow {needed}")),
                    "{entries:?}: {why}"
                )
            }
            other => panic!("{entries:?}: expected a refusal, got {other:?}"),
        }
    }
    assert!(
        api.object_requests().is_empty(),
        "the refused faults reached the API: {:?}",
        api.object_requests()
    );
    assert_eq!(api.pods("shop"), ["web-1"]);
    assert_eq!(api.replicas("deployments", "shop", "web"), 3);
    assert!(journal.entries().unwrap().is_empty());
}

#[test]
fn pod_delete_deletes_the_selected_count() {
    let dir = tempfile::tempdir().unwrap();
    let api = FakeKubeApi::start();
    for i in 0..5 {
        api.add_pod("shop", &format!("web-{i}"), &[("app", "web")]);
    }
    api.add_pod("shop", "db-0", &[("app", "db")]);
    api.add_pod("other", "web-x", &[("app", "web")]);
    let f = faults(&api, dir.path(), &["namespace=shop", "k8s-kind=Pod"]);
    let journal = Journal::open(&dir.path().join("journal")).unwrap();
    let spec = FaultSpec::PodDelete {
        target: PodTarget {
            namespace: "shop".into(),
            label_selector: Some("app=web".into()),
            field_selector: Some("status.phase=Running".into()),
            count: Some(2),
            ..PodTarget::default()
        },
        params: PodDeleteParams {
            force: true,
            ..PodDeleteParams::default()
        },
    };
    let applied = f.inject(&journal, &spec, ctx(1)).unwrap();
    assert!(
        applied.detail.starts_with("delete 2 of 5 pods"),
        "{}",
        applied.detail
    );
    let left = api.pods("shop");
    assert_eq!(left.len(), 4, "{left:?}");
    assert!(left.contains(&"db-0".to_string()));
    assert_eq!(api.pods("other"), ["web-x"]);
    let deletes: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .collect();
    assert_eq!(deletes.len(), 2);
    for d in &deletes {
        let body: serde_json::Value = serde_json::from_str(&d.body).unwrap();
        assert_eq!(
            body["gracePeriodSeconds"], 0,
            "force is grace period 0: {}",
            d.body
        );
    }
    let list = api
        .requests()
        .into_iter()
        .find(|r| r.method == "GET" && r.uri.contains("/pods?"))
        .unwrap();
    assert!(
        list.uri.contains("labelSelector=app%3Dweb")
            && list.uri.contains("fieldSelector=status.phase%3DRunning"),
        "{}",
        list.uri
    );
    // Nothing to revert: a deletion is not undone.
    assert!(!f.get("pod-delete").unwrap().revertible(&applied));
    let undone = f.revert(&journal, &applied).unwrap();
    assert!(undone.contains("nothing to undo"), "{undone}");
    assert!(journal.entries().unwrap().is_empty());

    // By name, half of them (rounded up): one of the two named.
    let spec = FaultSpec::PodDelete {
        target: PodTarget {
            namespace: "shop".into(),
            names: vec!["db-0".into(), "gone".into()],
            percentage: Some(50),
            ..PodTarget::default()
        },
        params: PodDeleteParams::default(),
    };
    let applied = f.inject(&journal, &spec, ctx(2)).unwrap();
    assert!(applied.detail.contains("(db-0)"), "{}", applied.detail);
    assert!(!api.pods("shop").contains(&"db-0".to_string()));
}

#[test]
fn node_cordon_is_refused_without_k8s_kind_node_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let api = FakeKubeApi::start();
    api.add_node("n1", &[("pool", "batch")], false);
    let journal = Journal::open(&dir.path().join("journal")).unwrap();
    let spec = node_cordon(NodeTarget {
        names: vec!["n1".into()],
        ..NodeTarget::default()
    });
    for entries in [
        &[][..],
        &["namespace=*", "k8s-kind=Pod", "k8s-kind=Deployment"][..],
        &["k8s-kind=Node", "fault=pod-delete"][..],
    ] {
        let f = faults(&api, dir.path(), entries);
        match f.inject(&journal, &spec, ctx(0)) {
            Err(FaultError::NotAllowed(why)) => {
                let needed = if entries.contains(&"k8s-kind=Node") {
                    "fault node-cordon is not allowed"
                } else {
                    "--allow k8s-kind=Node"
                };
                assert!(why.contains(needed), "{entries:?}: {why}");
                // Nodes are cluster-scoped: no namespace= is asked for.
                assert!(!why.contains("namespace="), "{entries:?}: {why}");
            }
            other => panic!("{entries:?}: expected a refusal, got {other:?}"),
        }
    }
    assert!(
        api.object_requests().is_empty(),
        "the refused fault reached the API: {:?}",
        api.object_requests()
    );
    assert!(api.cordoned().is_empty());
    assert!(journal.entries().unwrap().is_empty());
    // k8s-kind=Node alone (no namespace=) allows it.
    let f = faults(&api, dir.path(), &["k8s-kind=Node"]);
    let applied = f.inject(&journal, &spec, ctx(0)).unwrap();
    assert_eq!(api.cordoned(), ["n1"]);
    f.revert(&journal, &applied).unwrap();
    assert!(api.cordoned().is_empty());
}

#[test]
fn node_cordon_applies_and_uncordons_only_what_it_cordoned() {
    let dir = tempfile::tempdir().unwrap();
    let api = FakeKubeApi::start();
    api.add_node("a1", &[("pool", "batch")], false);
    api.add_node("a2", &[("pool", "batch")], false);
    api.add_node("a3", &[("pool", "batch")], true);
    api.add_node("w1", &[("pool", "web")], false);
    let f = faults(&api, dir.path(), &["k8s-kind=Node"]);
    let journal = Journal::open(&dir.path().join("journal")).unwrap();

    let by_label = node_cordon(NodeTarget {
        label_selector: Some("pool=batch".into()),
        ..NodeTarget::default()
    });
    let applied = f.inject(&journal, &by_label, ctx(0)).unwrap();
    assert_eq!(
        applied.detail,
        "cordon 2 of 3 nodes matching labels pool=batch (a1, a2); left alone, cordoned already: a3"
    );
    assert_eq!(api.cordoned(), ["a1", "a2", "a3"]);
    // Which nodes were schedulable was journalled before the change.
    let entry = &journal.entries().unwrap()[0];
    assert_eq!(entry.data["nodes"], serde_json::json!(["a1", "a2"]));
    assert_eq!(entry.data["already"], serde_json::json!(["a3"]));
    for r in api.requests().into_iter().filter(|r| r.method == "PATCH") {
        assert!(r.uri.starts_with("/api/v1/nodes/a"), "{}", r.uri);
        assert!(
            r.body.contains("\"unschedulable\":true") && r.body.contains("resourceVersion"),
            "{}",
            r.body
        );
    }

    let undone = f.revert(&journal, &applied).unwrap();
    assert_eq!(undone, "uncordoned a1, a2");
    // a3 was cordoned before the fault: it stays so.
    assert_eq!(api.cordoned(), ["a3"]);
    assert!(!api.unschedulable("w1"));
    assert!(journal.entries().unwrap().is_empty());

    // By name with a count: one of the two schedulable named ones; the cordoned one is
    // never picked.
    let by_name = node_cordon(NodeTarget {
        names: vec!["a3".into(), "w1".into(), "a1".into()],
        count: Some(1),
        ..NodeTarget::default()
    });
    let applied = f.inject(&journal, &by_name, ctx(1)).unwrap();
    let cordoned = api.cordoned();
    assert_eq!(cordoned.len(), 2, "{cordoned:?}");
    assert!(cordoned.contains(&"a3".to_string()));
    f.revert(&journal, &applied).unwrap();
    assert_eq!(api.cordoned(), ["a3"]);

    // Nothing schedulable matches: refused, nothing journalled.
    let none = node_cordon(NodeTarget {
        names: vec!["a3".into(), "gone".into()],
        ..NodeTarget::default()
    });
    let err = f.inject(&journal, &none, ctx(2)).unwrap_err();
    assert!(matches!(err, FaultError::NoMatch(_)), "{err}");
    assert!(journal.entries().unwrap().is_empty());
    assert_eq!(api.cordoned(), ["a3"]);
}

#[test]
fn a_restarted_delegate_uncordons_from_its_journal() {
    let dir = tempfile::tempdir().unwrap();
    let api = FakeKubeApi::start();
    api.add_node("n1", &[], false);
    api.add_node("n2", &[], true);
    let path = dir.path().join("journal");
    {
        let f = faults(&api, dir.path(), &["k8s-kind=Node"]);
        let journal = Journal::open(&path).unwrap();
        let spec = node_cordon(NodeTarget {
            names: vec!["n1".into(), "n2".into()],
            ..NodeTarget::default()
        });
        f.inject(&journal, &spec, ctx(0)).unwrap();
        assert_eq!(api.cordoned(), ["n1", "n2"]);
        // The delegate dies here without reverting.
    }
    let journal = Journal::open(&path).unwrap();
    assert_eq!(journal.entries().unwrap().len(), 1);
    let f = faults(&api, dir.path(), &["k8s-kind=Node"]);
    assert_eq!(journal.recover(&f).unwrap(), 1);
    // n1 is uncordoned; n2 was cordoned before and stays so.
    assert_eq!(api.cordoned(), ["n2"]);
    assert!(journal.entries().unwrap().is_empty());
}

#[test]
fn deployment_and_statefulset_scale_apply_and_restore() {
    let dir = tempfile::tempdir().unwrap();
    let api = FakeKubeApi::start();
    api.add_workload("deployments", "shop", "web", 3);
    api.add_workload("statefulsets", "shop", "db", 2);
    let f = faults(
        &api,
        dir.path(),
        &[
            "namespace=shop",
            "k8s-kind=Deployment",
            "k8s-kind=StatefulSet",
        ],
    );
    let journal = Journal::open(&dir.path().join("journal")).unwrap();

    let applied = f
        .inject(&journal, &deployment_scale("web", 0), ctx(0))
        .unwrap();
    assert_eq!(
        applied.detail,
        "scale deployment shop/web from 3 to 0 replicas"
    );
    assert_eq!(api.replicas("deployments", "shop", "web"), 0);
    // The original count was journalled before the change.
    let entry = &journal.entries().unwrap()[0];
    assert_eq!(entry.data["original"], 3);

    let sts = FaultSpec::StatefulsetScale {
        target: WorkloadTarget {
            namespace: "shop".into(),
            name: "db".into(),
        },
        params: ScaleParams { replicas: 5 },
    };
    let applied_sts = f.inject(&journal, &sts, ctx(1)).unwrap();
    assert_eq!(api.replicas("statefulsets", "shop", "db"), 5);

    let undone = f.revert(&journal, &applied).unwrap();
    assert_eq!(undone, "restored deployment shop/web from 0 to 3 replicas");
    assert_eq!(api.replicas("deployments", "shop", "web"), 3);
    f.revert(&journal, &applied_sts).unwrap();
    assert_eq!(api.replicas("statefulsets", "shop", "db"), 2);
    assert!(journal.entries().unwrap().is_empty());

    // A workload that is not there: nothing is journalled.
    let err = f
        .inject(&journal, &deployment_scale("nope", 1), ctx(2))
        .unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
    assert!(journal.entries().unwrap().is_empty());
}

#[test]
fn a_conflict_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let api = FakeKubeApi::start();
    api.add_workload("deployments", "shop", "web", 3);
    let f = faults(&api, dir.path(), &["namespace=*", "k8s-kind=Deployment"]);
    let journal = Journal::open(&dir.path().join("journal")).unwrap();
    api.state.lock().unwrap().conflicts = 2;
    let applied = f
        .inject(&journal, &deployment_scale("web", 1), ctx(0))
        .unwrap();
    assert_eq!(api.replicas("deployments", "shop", "web"), 1);
    let patches = api
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .count();
    assert_eq!(patches, 3, "two 409s, then the write");
    // Every write carried the resourceVersion it was based on.
    for r in api.requests().into_iter().filter(|r| r.method == "PATCH") {
        assert!(r.body.contains("resourceVersion"), "{}", r.body);
    }
    api.state.lock().unwrap().conflicts = 1;
    f.revert(&journal, &applied).unwrap();
    assert_eq!(api.replicas("deployments", "shop", "web"), 3);
}

fn scale_assignment(run_id: &str, probe_url: &str) -> pb::AssignRun {
    let yaml = format!(
        r#"
apiVersion: faultline.dev/v1
kind: Experiment
metadata: {{name: k8s-scale}}
hypothesis:
  probes:
    - name: web-ok
      http: {{url: "{probe_url}"}}
      interval: 200ms
      timeout: 500ms
  recoverWithin: 2s
steps:
  - fault: deployment-scale
    target: {{namespace: shop, name: web}}
    params: {{replicas: 0}}
    duration: 5m
"#
    );
    let spec = faultline_experiment::parse_template(&yaml).unwrap();
    pb::AssignRun {
        project: String::new(),
        run_id: run_id.into(),
        spec_json: serde_json::to_string(&spec).unwrap(),
        template_name: "k8s-scale".into(),
        template_version: 1,
        dry_run: false,
    }
}

/// The real delegate, told of the cluster by `--kubeconfig`, or by `KUBECONFIG` when `via_env`.
fn delegate(hub: &FakeHub, state: &Path, kubeconfig: &Path, via_env: bool) -> std::process::Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_faultline-delegate"));
    cmd.args(["--hub", &hub.url(), "--name", "it-k8s", "--state-dir"])
        .arg(state);
    if via_env {
        cmd.env("KUBECONFIG", kubeconfig);
    } else {
        cmd.arg("--kubeconfig")
            .arg(kubeconfig)
            .env_remove("KUBECONFIG");
    }
    cmd.args([
        "--allow",
        "namespace=shop",
        "--allow",
        "k8s-kind=Deployment",
    ])
    .env("FAULTLINE_DELEGATE_TOKEN", TOKEN)
    .env("FAULTLINE_LOG", "warn")
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delegate_killed_mid_scale_restores_the_replicas_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    let api = Arc::new(FakeKubeApi::start());
    api.add_workload("deployments", "shop", "web", 3);
    let kubeconfig = api.kubeconfig(dir.path());
    let probe = HttpServer::start(200).await;
    let hub = FakeHub::start(Mode::Normal, Some(scale_assignment("run-kill", &probe.url))).await;
    let state = dir.path().join("state");

    let mut child = delegate(&hub, &state, &kubeconfig, false);
    let a = api.clone();
    tokio::task::spawn_blocking(move || {
        wait_until(Duration::from_secs(20), || {
            a.replicas("deployments", "shop", "web") == 0
        })
    })
    .await
    .unwrap();
    {
        let seen = hub.seen.lock().unwrap();
        let reg = &seen.registrations[0];
        let caps = reg.capabilities.clone().unwrap();
        assert!(
            caps.faults.contains(&"deployment-scale".to_string()),
            "{caps:?}"
        );
        assert_eq!(
            reg.labels.get("kubernetes.cluster").map(String::as_str),
            Some("fake")
        );
        assert_eq!(
            reg.labels.get("kubernetes.version").map(String::as_str),
            Some("v1.33.0-fake")
        );
    }
    // The delegate dies without reverting anything.
    child.kill().unwrap();
    child.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(api.replicas("deployments", "shop", "web"), 0);
    assert_eq!(std::fs::read_dir(state.join("journal")).unwrap().count(), 1);

    // The next start reverts what the journal holds, before it talks to the hub (this one
    // finds the cluster through KUBECONFIG).
    let mut child = delegate(&hub, &state, &kubeconfig, true);
    let a = api.clone();
    tokio::task::spawn_blocking(move || {
        wait_until(Duration::from_secs(20), || {
            a.replicas("deployments", "shop", "web") == 3
        })
    })
    .await
    .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn pod_delete_repeats_every_interval_until_reverted() {
    let dir = tempfile::tempdir().unwrap();
    let api = FakeKubeApi::start();
    for i in 0..6 {
        api.add_pod("shop", &format!("web-{i}"), &[("app", "web")]);
    }
    let f = faults(&api, dir.path(), &["namespace=shop", "k8s-kind=Pod"]);
    let journal = Journal::open(&dir.path().join("journal")).unwrap();
    let spec = FaultSpec::PodDelete {
        target: PodTarget {
            namespace: "shop".into(),
            label_selector: Some("app=web".into()),
            count: Some(1),
            ..PodTarget::default()
        },
        params: PodDeleteParams {
            grace_period: Some("5s".parse().unwrap()),
            interval: Some("1s".parse().unwrap()),
            ..PodDeleteParams::default()
        },
    };
    let applied = f.inject(&journal, &spec, ctx(0)).unwrap();
    assert!(f.get("pod-delete").unwrap().revertible(&applied));
    assert_eq!(api.pods("shop").len(), 5);
    wait_until(Duration::from_secs(10), || api.pods("shop").len() <= 4);
    let undone = f.revert(&journal, &applied).unwrap();
    assert!(
        undone.starts_with("stopped the repeated delete after"),
        "{undone}"
    );
    let left = api.pods("shop").len();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(api.pods("shop").len(), left, "a delete after the revert");
    for d in api.requests().iter().filter(|r| r.method == "DELETE") {
        let body: serde_json::Value = serde_json::from_str(&d.body).unwrap();
        assert_eq!(body["gracePeriodSeconds"], 5, "{}", d.body);
    }
    assert!(journal.entries().unwrap().is_empty());
}

fn k8s_probe(k8s: serde_json::Value) -> faultline_experiment::probes::Probe {
    serde_json::from_value(serde_json::json!({"name": "k", "k8s": k8s, "timeout": "5s"})).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_k8s_probe_checks_existence_fields_and_ready_pods() {
    let dir = tempfile::tempdir().unwrap();
    let api = FakeKubeApi::start();
    api.add_workload("deployments", "shop", "web", 3);
    for i in 0..3 {
        api.add_pod("shop", &format!("web-{i}"), &[("app", "web")]);
    }
    let kube = connect(&api.kubeconfig(dir.path()));
    let probes =
        faultline_delegate::probes::Probes::new(faultline_delegate::sandbox::Sandbox::allowing(&[
            "namespace=shop",
        ]))
        .unwrap()
        .with_kube(Some(kube));
    assert!(probes.capabilities().contains(&"k8s".to_string()));
    assert!(!crate::helpers::probes(&[])
        .capabilities()
        .contains(&"k8s".to_string()));

    let ready = k8s_probe(
        serde_json::json!({"namespace": "shop", "resource": "Deployment",
        "name": "web", "field": "/status/readyReplicas", "expect": {"op": ">=", "value": 3}}),
    );
    let c = probes.check(&ready).await;
    assert!(c.ok, "{c:?}");
    api.set_replicas("deployments", "shop", "web", 1);
    let c = probes.check(&ready).await;
    assert!(!c.ok && c.detail.contains("value 1"), "{c:?}");

    let exists = k8s_probe(
        serde_json::json!({"namespace": "shop", "resource": "Deployment", "name": "web"}),
    );
    assert!(probes.check(&exists).await.ok);
    let absent = k8s_probe(
        serde_json::json!({"namespace": "shop", "resource": "Deployment",
        "name": "gone", "absent": true}),
    );
    let c = probes.check(&absent).await;
    assert!(c.ok, "{c:?}");
    let c = probes
        .check(&k8s_probe(serde_json::json!({"namespace": "shop",
        "resource": "Deployment", "name": "gone"})))
        .await;
    assert!(!c.ok && c.detail.contains("not found"), "{c:?}");

    let pods = k8s_probe(serde_json::json!({"namespace": "shop",
        "podsReady": {"labelSelector": "app=web", "min": 3}}));
    let c = probes.check(&pods).await;
    assert!(c.ok, "{c:?}");
    assert_eq!(c.detail, "3 of 3 pods matching app=web ready");
    api.set_phase("shop", "web-1", "Pending");
    let c = probes.check(&pods).await;
    assert!(!c.ok && c.detail.starts_with("2 of 3 pods"), "{c:?}");

    // A namespace the allow-list does not name is never read.
    let before = api.object_requests().len();
    let c = probes
        .check(&k8s_probe(serde_json::json!({"namespace": "kube-system",
            "resource": "Deployment", "name": "coredns"})))
        .await;
    assert!(
        !c.ok && c.detail.contains("--allow namespace=kube-system"),
        "{c:?}"
    );
    assert_eq!(api.object_requests().len(), before);
}

fn node_drain(names: &[&str], params: NodeDrainParams) -> FaultSpec {
    FaultSpec::NodeDrain {
        target: NodeTarget {
            names: names.iter().map(|n| n.to_string()).collect(),
            ..NodeTarget::default()
        },
        params,
    }
}

fn evictions(api: &FakeKubeApi, pod: &str) -> usize {
    api.requests()
        .iter()
        .filter(|r| r.method == "POST" && r.uri.contains(&format!("/pods/{pod}/eviction")))
        .count()
}

#[test]
fn node_drain_evicts_retries_a_budgets_429_and_uncordons() {
    let dir = tempfile::tempdir().unwrap();
    let api = FakeKubeApi::start();
    api.add_node("n1", &[], false);
    api.add_node("n2", &[], false);
    api.put_pod("shop", "web-1", FakePod::new(&[("app", "web")]).on("n1"));
    api.put_pod("shop", "web-2", FakePod::new(&[("app", "web")]).on("n1"));
    api.put_pod(
        "shop",
        "db-0",
        FakePod::new(&[("app", "db")])
            .on("n1")
            .owned_by(Some("StatefulSet")),
    );
    api.put_pod(
        "kube-system",
        "proxy-x",
        FakePod::new(&[]).on("n1").owned_by(Some("DaemonSet")),
    );
    api.put_pod("shop", "web-3", FakePod::new(&[("app", "web")]).on("n2"));
    // db-0 may not be disrupted until the test relieves its budget.
    api.add_pdb("shop", "db-pdb", "app=db", 0);
    api.set_eviction_delay(Duration::from_millis(300));
    let f = faults(&api, dir.path(), &["k8s-kind=Node", "k8s-kind=Pod"]);
    let journal = Journal::open(&dir.path().join("journal")).unwrap();

    let spec = node_drain(
        &["n1"],
        NodeDrainParams {
            retry_interval: Some(faultline_experiment::Dur(Duration::from_secs(1))),
            ..NodeDrainParams::default()
        },
    );
    let applied = f.inject(&journal, &spec, ctx(0)).unwrap();
    assert_eq!(
        applied.detail,
        "drain 1 of 1 nodes named n1 (n1): evict 3 pods (shop/db-0, shop/web-1, shop/web-2), \
         leave 1 (DaemonSet, mirror, finished or terminating)"
    );
    assert_eq!(api.cordoned(), ["n1"]);
    assert_eq!(
        journal.entries().unwrap()[0].data["nodes"],
        serde_json::json!(["n1"])
    );

    // The web pods go (after terminating for a while); the budget keeps db-0, and its eviction
    // is tried again every second.
    wait_until(Duration::from_secs(10), || {
        let pods = api.all_pods();
        !pods.contains(&"shop/web-1".to_string()) && !pods.contains(&"shop/web-2".to_string())
    });
    wait_until(Duration::from_secs(10), || evictions(&api, "db-0") >= 3);
    assert!(api.all_pods().contains(&"shop/db-0".to_string()));
    // The DaemonSet's pod and the other node's are never evicted.
    assert_eq!(evictions(&api, "proxy-x") + evictions(&api, "web-3"), 0);
    // The budget allows one disruption now: the next try takes db-0, and the watch sees it go.
    api.set_pdb_allowed("db-pdb", 1);
    wait_until(Duration::from_secs(10), || {
        !api.all_pods().contains(&"shop/db-0".to_string())
    });
    assert!(
        api.requests()
            .iter()
            .any(|r| r.uri.starts_with("/api/v1/pods?") && r.uri.contains("watch=true")),
        "the evicted pods are followed by a watch"
    );
    // Let the watch report the last pod gone.
    std::thread::sleep(Duration::from_millis(300));
    let undone = f.revert(&journal, &applied).unwrap();
    assert!(
        undone.starts_with("uncordoned n1; evicted 3 pods (3 gone)"),
        "{undone}"
    );
    assert!(api.cordoned().is_empty());
    assert!(journal.entries().unwrap().is_empty());
    assert_eq!(
        api.all_pods(),
        ["kube-system/proxy-x", "shop/web-3"],
        "only the DaemonSet pod and the other node's pod are left"
    );
}

#[test]
fn node_drain_reports_pods_a_budget_kept_until_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let api = FakeKubeApi::start();
    api.add_node("n1", &[], true);
    api.put_pod(
        "shop",
        "db-0",
        FakePod::new(&[("app", "db")])
            .on("n1")
            .owned_by(Some("StatefulSet")),
    );
    api.add_pdb("shop", "db-pdb", "app=db", 0);
    let f = faults(&api, dir.path(), &["k8s-kind=Node", "k8s-kind=Pod"]);
    let journal = Journal::open(&dir.path().join("journal")).unwrap();
    let spec = node_drain(
        &["n1"],
        NodeDrainParams {
            retry_interval: Some(faultline_experiment::Dur(Duration::from_secs(1))),
            ..NodeDrainParams::default()
        },
    );
    let applied = f.inject(&journal, &spec, ctx(0)).unwrap();
    assert!(
        applied.detail.ends_with("; cordoned already: n1"),
        "{}",
        applied.detail
    );
    wait_until(Duration::from_secs(10), || evictions(&api, "db-0") >= 2);
    let undone = f.revert(&journal, &applied).unwrap();
    assert!(
        undone.starts_with("no node left to uncordon; evicted 0 pods (0 gone); kept by a PodDisruptionBudget until the end: shop/db-0 ("),
        "{undone}"
    );
    // n1 was cordoned before the drain: it stays cordoned; the pod stays.
    assert_eq!(api.cordoned(), ["n1"]);
    assert_eq!(api.all_pods(), ["shop/db-0"]);
    // No more tries once reverted.
    let tries = evictions(&api, "db-0");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(evictions(&api, "db-0"), tries);
}

#[test]
fn node_drain_refuses_pods_that_would_be_lost_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let api = FakeKubeApi::start();
    api.add_node("n1", &[], false);
    api.put_pod("shop", "bare", FakePod::new(&[]).on("n1").owned_by(None));
    let mut scratch = FakePod::new(&[]).on("n1");
    scratch.empty_dir = true;
    api.put_pod("shop", "cache-0", scratch);
    let journal = Journal::open(&dir.path().join("journal")).unwrap();

    // Without k8s-kind=Pod a drain is refused before anything is read.
    let f = faults(&api, dir.path(), &["k8s-kind=Node"]);
    let err = f
        .inject(
            &journal,
            &node_drain(&["n1"], NodeDrainParams::default()),
            ctx(0),
        )
        .unwrap_err();
    assert!(err.to_string().contains("--allow k8s-kind=Pod"), "{err}");
    assert!(api.object_requests().is_empty());

    let f = faults(&api, dir.path(), &["k8s-kind=Node", "k8s-kind=Pod"]);
    let err = f
        .inject(
            &journal,
            &node_drain(&["n1"], NodeDrainParams::default()),
            ctx(0),
        )
        .unwrap_err();
    let e = err.to_string();
    assert!(matches!(err, FaultError::Refused(_)), "{e}");
    assert!(
        e.contains("shop/bare on n1") && e.contains("params.force"),
        "{e}"
    );
    assert!(
        e.contains("shop/cache-0 on n1") && e.contains("params.deleteEmptyDirData"),
        "{e}"
    );
    // Nothing journalled, nothing cordoned, nothing evicted.
    assert!(journal.entries().unwrap().is_empty());
    assert!(api.cordoned().is_empty());
    assert!(!api.requests().iter().any(|r| r.method != "GET"));

    // With both, the drain takes them.
    let spec = node_drain(
        &["n1"],
        NodeDrainParams {
            force: true,
            delete_empty_dir_data: true,
            grace_period: Some(faultline_experiment::Dur(Duration::from_secs(7))),
            ..NodeDrainParams::default()
        },
    );
    let applied = f.inject(&journal, &spec, ctx(1)).unwrap();
    wait_until(Duration::from_secs(10), || api.all_pods().is_empty());
    // A policy/v1 Eviction carrying the grace period, for each pod.
    let bodies: Vec<serde_json::Value> = api
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    assert_eq!(bodies.len(), 2);
    for b in bodies {
        assert_eq!(b["apiVersion"], "policy/v1");
        assert_eq!(b["kind"], "Eviction");
        assert_eq!(b["deleteOptions"]["gracePeriodSeconds"], 7);
    }
    let undone = f.revert(&journal, &applied).unwrap();
    assert!(
        undone.starts_with("uncordoned n1; evicted 2 pods"),
        "{undone}"
    );
}

#[test]
fn a_restarted_delegate_uncordons_what_a_drain_cordoned() {
    let dir = tempfile::tempdir().unwrap();
    let api = FakeKubeApi::start();
    api.add_node("n1", &[], false);
    api.add_node("n2", &[], true);
    api.put_pod("shop", "db-0", FakePod::new(&[("app", "db")]).on("n1"));
    api.add_pdb("shop", "db-pdb", "app=db", 0);
    let path = dir.path().join("journal");
    {
        let f = faults(&api, dir.path(), &["k8s-kind=Node", "k8s-kind=Pod"]);
        let journal = Journal::open(&path).unwrap();
        f.inject(
            &journal,
            &node_drain(&["n1", "n2"], NodeDrainParams::default()),
            ctx(0),
        )
        .unwrap();
        assert_eq!(api.cordoned(), ["n1", "n2"]);
        // The delegate dies here without reverting.
    }
    let journal = Journal::open(&path).unwrap();
    let f = faults(&api, dir.path(), &["k8s-kind=Node", "k8s-kind=Pod"]);
    assert_eq!(journal.recover(&f).unwrap(), 1);
    // n1 is uncordoned; n2 was cordoned before the drain and stays so.
    assert_eq!(api.cordoned(), ["n2"]);
    assert!(journal.entries().unwrap().is_empty());
}

fn container_kill(names: &[&str], params: ContainerKillParams) -> FaultSpec {
    FaultSpec::ContainerKill {
        target: PodTarget {
            namespace: "shop".into(),
            names: names.iter().map(|n| n.to_string()).collect(),
            ..PodTarget::default()
        },
        params,
    }
}

#[test]
fn container_kill_signals_init_through_exec_by_shell_or_kill() {
    let dir = tempfile::tempdir().unwrap();
    let api = FakeKubeApi::start();
    let mut two = FakePod::new(&[("app", "web")]);
    two.containers = vec![("app".into(), 0), ("sidecar".into(), 2)];
    api.put_pod("shop", "web-1", two);
    let mut slim = FakePod::new(&[("app", "web")]);
    slim.image = Image::KillOnly;
    api.put_pod("shop", "web-2", slim);
    let f = faults(&api, dir.path(), &["namespace=shop", "k8s-kind=Pod"]);
    let journal = Journal::open(&dir.path().join("journal")).unwrap();

    // The named container of a pod with a shell: one exec of the shell's kill.
    let spec = container_kill(
        &["web-1"],
        ContainerKillParams {
            container: Some("sidecar".into()),
            ..ContainerKillParams::default()
        },
    );
    let applied = f.inject(&journal, &spec, ctx(0)).unwrap();
    assert!(
        applied.detail.starts_with("restart 1 of 1 pods' containers in namespace shop matching names web-1 (web-1/sidecar): kill -TERM 1"),
        "{}",
        applied.detail
    );
    assert_eq!(
        api.execs(),
        [(
            "shop/web-1".to_string(),
            "sidecar".to_string(),
            vec!["/bin/sh".to_string(), "-c".into(), "kill -TERM 1".into()]
        )]
    );
    assert_eq!(api.restarts("shop", "web-1", "sidecar"), 3);
    assert_eq!(api.restarts("shop", "web-1", "app"), 0);
    let fault = f.get("container-kill").unwrap();
    assert!(!fault.revertible(&applied));
    assert_eq!(
        fault.outcome(&applied).unwrap(),
        "restarted 1 of 1 containers: web-1/sidecar (2 → 3)"
    );
    f.revert(&journal, &applied).unwrap();

    // No shell in the image: its own kill, with the signal asked; the first container.
    let spec = container_kill(
        &["web-2"],
        ContainerKillParams {
            signal: Some(faultline_experiment::faults::Signal::Int),
            ..ContainerKillParams::default()
        },
    );
    let applied = f.inject(&journal, &spec, ctx(1)).unwrap();
    let execs = api.execs();
    assert_eq!(execs.len(), 3, "{execs:?}");
    assert_eq!(execs[1].2, ["/bin/sh", "-c", "kill -INT 1"]);
    assert_eq!(execs[2].2, ["kill", "-INT", "1"]);
    assert_eq!(api.restarts("shop", "web-2", "app"), 1);
    assert!(journal.entries().unwrap().len() == 1);
    f.revert(&journal, &applied).unwrap();

    // A container the pod does not have: refused at plan, naming those it has.
    let err = f
        .inject(
            &journal,
            &container_kill(
                &["web-1"],
                ContainerKillParams {
                    container: Some("db".into()),
                    ..ContainerKillParams::default()
                },
            ),
            ctx(2),
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("pod web-1 has no container named db (it has: app, sidecar)"),
        "{err}"
    );
    assert_eq!(api.execs().len(), 3);
}

#[test]
fn container_kill_is_refused_for_an_image_without_shell_or_kill() {
    let dir = tempfile::tempdir().unwrap();
    let api = FakeKubeApi::start();
    let mut bare = FakePod::new(&[("app", "api")]);
    bare.image = Image::Bare;
    api.put_pod("shop", "api-1", bare);
    let journal = Journal::open(&dir.path().join("journal")).unwrap();

    // Without namespace= nothing is read.
    let f = faults(&api, dir.path(), &["k8s-kind=Pod"]);
    let err = f
        .inject(
            &journal,
            &container_kill(&["api-1"], ContainerKillParams::default()),
            ctx(0),
        )
        .unwrap_err();
    assert!(err.to_string().contains("--allow namespace=shop"), "{err}");
    assert!(api.object_requests().is_empty());

    let f = faults(&api, dir.path(), &["namespace=shop", "k8s-kind=Pod"]);
    let err = f
        .inject(
            &journal,
            &container_kill(&["api-1"], ContainerKillParams::default()),
            ctx(0),
        )
        .unwrap_err();
    let e = err.to_string();
    assert!(matches!(err, FaultError::Refused(_)), "{e}");
    assert!(
        e.contains("container app of pod api-1 has neither /bin/sh nor kill in its image")
            && e.contains("executable file not found"),
        "{e}"
    );
    // Both mechanisms were tried; nothing restarted, nothing left in the journal.
    assert_eq!(api.execs().len(), 2);
    assert_eq!(api.restarts("shop", "api-1", "app"), 0);
    assert!(journal.entries().unwrap().is_empty());
}
