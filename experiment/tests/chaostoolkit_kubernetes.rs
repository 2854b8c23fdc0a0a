//! Chaos Toolkit experiments of the chaosk8s extension (`fixtures/chaostoolkit/kubernetes/`):
//! each is first checked valid by the real `chaos validate` with chaostoolkit-kubernetes 0.39
//! installed (it imports every activity's module and binds its arguments to the function's
//! signature, offline: no cluster is needed, so the test points KUBECONFIG at a file that does
//! not exist), then imported, and the mapped kinds and fields, or the refusals, are asserted.
mod chaos_cli;

use faultline_experiment::{
    import::{from_chaostoolkit, Imported},
    parse_template,
    probes::{CmpOp, Mode},
    Dur,
};
use serde_json::json;
use std::path::PathBuf;

const FIXTURES: &[&str] = &[
    "shop-web-pods.yaml",
    "batch-nodes.json",
    "bad-unmappable.yaml",
];

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/chaostoolkit/kubernetes")
        .join(name)
}

fn convert(name: &str) -> Imported {
    let source = std::fs::read_to_string(path(name)).unwrap();
    let i = from_chaostoolkit(&source).unwrap_or_else(|e| panic!("{name}:\n{e}"));
    assert_eq!(parse_template(&i.yaml).unwrap(), i.experiment, "{name}");
    i
}

fn has_note(i: &Imported, start: &str) {
    assert!(
        i.notes.iter().any(|n| n.starts_with(start)),
        "no note starting {start:?} in {:#?}",
        i.notes
    );
}

#[test]
fn every_kubernetes_fixture_is_valid_for_chaos_toolkit_with_chaosk8s() {
    let mut on_disk: Vec<String> = std::fs::read_dir(path(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    on_disk.sort();
    let mut listed = FIXTURES.to_vec();
    listed.sort();
    assert_eq!(on_disk, listed, "every fixture is listed here");
    let Some(chaos) = chaos_cli::chaos() else {
        return;
    };
    let no_cluster = std::env::temp_dir().join("faultline-no-such-kubeconfig");
    let files: Vec<PathBuf> = FIXTURES.iter().map(|f| path(f)).collect();
    chaos_cli::validate_all(&chaos, &files, &[("KUBECONFIG", &no_cluster)]);
}

#[test]
fn pods_and_workloads_become_pod_delete_scales_and_k8s_probes() {
    let i = convert("shop-web-pods.yaml");
    let e = &i.experiment;

    let [pods, service, deployment, ready] = e.hypothesis.probes.as_slice() else {
        panic!("{:#?}", e.hypothesis.probes)
    };
    assert_eq!(pods.mode, Mode::Edge);
    let k = pods.k8s.as_ref().unwrap();
    assert_eq!(k.namespace, "shop");
    assert_eq!(k.pods_ready.as_ref().unwrap().label_selector, "app=web");
    let k = service.k8s.as_ref().unwrap();
    assert_eq!(
        (k.resource.as_deref(), k.name.as_deref(), k.absent),
        (Some("Service"), Some("web"), false)
    );
    let k = deployment.k8s.as_ref().unwrap();
    assert_eq!(k.resource.as_deref(), Some("Deployment"));
    assert_eq!(k.field.as_deref(), Some("/status/availableReplicas"));
    assert_eq!(k.expect.op, Some(CmpOp::Ge));
    assert_eq!(k.expect.value, Some(json!(1)));
    // The method's probe checks all through the run.
    assert_eq!(ready.name, "web-pods-ready-again");
    assert_eq!(ready.mode, Mode::Continuous);
    assert!(ready.k8s.as_ref().unwrap().pods_ready.is_some());

    let faults = e.faults();
    let kinds: Vec<&str> = faults.iter().map(|f| f.spec.kind()).collect();
    assert_eq!(
        kinds,
        ["pod-delete", "deployment-scale", "statefulset-scale"]
    );
    let kill = &e.steps[0];
    assert_eq!(kill.name.as_deref(), Some("kill-two-web-pods"));
    assert_eq!(
        kill.target,
        json!({"namespace": "shop", "labelSelector": "app=web", "count": 2})
    );
    assert_eq!(kill.params, json!({"force": true}));
    assert_eq!(kill.duration, None);
    assert_eq!(e.steps[1].pause, Some(Dur::secs(10)));
    let web = &e.steps[2];
    assert_eq!(web.target, json!({"namespace": "shop", "name": "web"}));
    assert_eq!(web.params, json!({"replicas": 1}));
    assert_eq!(web.duration, Some(Dur::secs(30)));
    // The scale back to two ends the cache's step rather than being one.
    let cache = &e.steps[3];
    assert_eq!(cache.fault.as_deref(), Some("statefulset-scale"));
    assert_eq!(cache.target, json!({"namespace": "shop", "name": "cache"}));
    assert_eq!(cache.params, json!({"replicas": 0}));
    assert_eq!(cache.duration, Some(Dur::secs(15)));
    assert_eq!(e.steps.len(), 4);
    // The revert of the web step restores its replicas: the rollback is left out.
    assert!(e.rollbacks.is_empty());
    assert!(i.yaml.contains("fault: deployment-scale"), "{}", i.yaml);

    has_note(
        &i,
        "method[3]: scale_statefulset to 0 replicas became statefulset-scale for 15s until \
         method[4]",
    );
    has_note(&i, "rollbacks[0]: left out: the deployment-scale step");
    has_note(
        &i,
        "steady-state-hypothesis.probes[0].provider: chaosk8s activities act on the cluster",
    );
}

#[test]
fn nodes_become_a_cordon_and_a_drain_whose_uncordons_are_left_out() {
    let i = convert("batch-nodes.json");
    let e = &i.experiment;
    let k = e.hypothesis.probes[0].k8s.as_ref().unwrap();
    assert_eq!(
        (k.resource.as_deref(), k.field.as_deref()),
        (Some("DaemonSet"), Some("/status/numberReady"))
    );
    let kinds: Vec<&str> = e.faults().iter().map(|f| f.spec.kind()).collect();
    assert_eq!(kinds, ["node-cordon", "node-drain"]);
    let [cordon, drain] = e.steps.as_slice() else {
        panic!("{:#?}", e.steps)
    };
    assert_eq!(cordon.target, json!({"names": ["batch-a"]}));
    assert_eq!(cordon.duration, Some(Dur::secs(60)));
    assert_eq!(
        drain.target,
        json!({"labelSelector": "pool=batch", "count": 1})
    );
    assert_eq!(drain.params, json!({"deleteEmptyDirData": true}));
    assert_eq!(drain.duration, Some(Dur::secs(120)));
    assert!(e.rollbacks.is_empty());
    has_note(
        &i,
        "method[0]: cordon_node became node-cordon for 1m until method[1]",
    );
    has_note(&i, "method[2].provider.arguments.timeout: ignored");
    has_note(
        &i,
        "rollbacks[0]: left out: the node-cordon and node-drain steps",
    );
}

#[test]
fn what_faultline_cannot_express_is_refused_at_its_path() {
    let source = std::fs::read_to_string(path("bad-unmappable.yaml")).unwrap();
    let errs = from_chaostoolkit(&source).unwrap_err().0;
    let got: Vec<(&str, &str)> = errs
        .iter()
        .map(|e| (e.path.as_str(), e.message.split(':').next().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "steady-state-hypothesis.probes[0].provider.func",
                "chaosk8s.pod.probes.count_pods cannot be mapped"
            ),
            (
                "steady-state-hypothesis.probes[1].provider.func",
                "chaosk8s.deployment.probes.deployment_fully_available cannot be mapped"
            ),
            (
                "method[0].provider.arguments.name_pattern",
                "\"^web-[a-z0-9]+-\" is a regular expression over pod names, which Kubernetes \
                 selectors cannot express"
            ),
            (
                "method[1].provider.arguments.pod_label_selector",
                "picks the nodes that run the pods it matches, which Faultline cannot express"
            ),
            (
                "method[2].provider.func",
                "chaosk8s.pod.actions.exec_in_pods cannot be mapped"
            ),
        ],
        "{errs:#?}"
    );
}
