//! Each chaosk8s mapping, refusal and note, through the whole import: a small experiment in,
//! the template's steps, probes and rollbacks (and its YAML) checked field by field.
use super::literal_name;
use crate::{
    import::{from_chaostoolkit, Imported},
    probes::{CmpOp, K8sProbe, Mode, PodsReady, ValueExpect},
    template::Step,
    Dur,
};
use serde_json::{json, Value};

/// A chaosk8s activity: `func` is `pod.actions.terminate_pods` for
/// `chaosk8s.pod.actions.terminate_pods`.
fn activity(kind: &str, name: &str, func: &str, args: Value) -> Value {
    let (module, f) = func.rsplit_once('.').unwrap();
    json!({
        "type": kind,
        "name": name,
        "provider": {
            "type": "python",
            "module": format!("chaosk8s.{module}"),
            "func": f,
            "arguments": args,
        },
    })
}

fn action(func: &str, args: Value) -> Value {
    let name = func.rsplit('.').next().unwrap().replace('_', "-");
    activity("action", &name, func, args)
}

fn probe(func: &str, args: Value) -> Value {
    let mut p = activity("probe", "k8s-check", func, args);
    p["tolerance"] = json!(true);
    p
}

fn paused(mut a: Value, after: u64) -> Value {
    a["pauses"] = json!({ "after": after });
    a
}

/// An experiment; without hypothesis probes of its own it gets an http one.
fn source(probes: &[Value], method: &[Value], rollbacks: &[Value]) -> String {
    let up = json!({
        "type": "probe", "name": "up", "tolerance": 200,
        "provider": {"type": "http", "url": "http://127.0.0.1:8080/"},
    });
    let probes = if probes.is_empty() {
        vec![up]
    } else {
        probes.to_vec()
    };
    json!({
        "title": "k8s",
        "steady-state-hypothesis": {"title": "ok", "probes": probes},
        "method": method,
        "rollbacks": rollbacks,
    })
    .to_string()
}

fn ok(src: &str) -> Imported {
    from_chaostoolkit(src).unwrap_or_else(|e| panic!("{e}\n{src}"))
}

/// The problems, as `path: message`.
fn errors(src: &str) -> Vec<String> {
    match from_chaostoolkit(src) {
        Ok(i) => panic!("converted:\n{}", i.yaml),
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

fn has_error(errs: &[String], start: &str) {
    assert!(
        errs.iter().any(|e| e.starts_with(start)),
        "no error starting {start:?} in {errs:#?}"
    );
}

fn has_note(i: &Imported, start: &str) {
    assert!(
        i.notes.iter().any(|n| n.starts_with(start)),
        "no note starting {start:?} in {:#?}",
        i.notes
    );
}

fn no_note(i: &Imported, part: &str) {
    assert!(
        !i.notes.iter().any(|n| n.contains(part)),
        "a note has {part:?}: {:#?}",
        i.notes
    );
}

fn step(name: &str, fault: &str, target: Value, params: Value, duration: Option<u64>) -> Step {
    Step {
        name: Some(name.into()),
        fault: Some(fault.into()),
        target,
        params,
        duration: duration.map(Dur::secs),
        ..Step::default()
    }
}

fn terminate(args: Value) -> Imported {
    ok(&source(
        &[],
        &[action("pod.actions.terminate_pods", args)],
        &[],
    ))
}

#[test]
fn terminate_pods_becomes_a_pod_delete_of_random_pods() {
    let i = terminate(json!({
        "label_selector": "app=web", "ns": "shop", "qty": 2, "rand": true, "grace_period": 0,
    }));
    assert_eq!(
        i.experiment.steps,
        [step(
            "terminate-pods",
            "pod-delete",
            json!({"namespace": "shop", "labelSelector": "app=web", "count": 2}),
            json!({"force": true}),
            None,
        )]
    );
    assert!(
        i.yaml.contains(
            "- name: terminate-pods\n  fault: pod-delete\n  target:\n    count: 2\n    \
             labelSelector: app=web\n    namespace: shop\n  params:\n    force: true\n"
        ),
        "{}",
        i.yaml
    );
    // rand: true is what Faultline does anyway.
    no_note(&i, "rand is false");
    has_note(
        &i,
        "method[0].provider: chaosk8s activities act on the cluster of the delegate",
    );
    assert_eq!(i.experiment.faults()[0].spec.kind(), "pod-delete");
}

#[test]
fn terminate_pods_maps_percentage_all_and_grace_period() {
    let t = |args: Value| terminate(args).experiment.steps[0].clone();
    let s = t(json!({"label_selector": "app=web", "mode": "percentage", "qty": 50, "rand": true}));
    assert_eq!(
        s.target,
        json!({"namespace": "default", "labelSelector": "app=web", "percentage": 50})
    );
    assert_eq!(s.params, Value::Null);
    // 100% or more is every matching pod; so is all: true, whatever qty says.
    let s = t(json!({"label_selector": "app=web", "mode": "percentage", "qty": 150}));
    assert_eq!(
        s.target,
        json!({"namespace": "default", "labelSelector": "app=web"})
    );
    let s = t(json!({"label_selector": "app=web", "all": true, "qty": 3, "grace_period": 5}));
    assert_eq!(
        s.target,
        json!({"namespace": "default", "labelSelector": "app=web"})
    );
    assert_eq!(s.params, json!({"gracePeriod": "5s"}));
    // A negative grace period is the pods' own, as in chaosk8s.
    let s = t(json!({"label_selector": "app=web", "grace_period": -1}));
    assert_eq!(s.params, Value::Null);
    assert_eq!(s.target["count"], 1, "qty defaults to 1");
}

#[test]
fn terminate_pods_notes_that_the_first_n_became_random() {
    let i = terminate(json!({"label_selector": "app=web"}));
    has_note(
        &i,
        "method[0].provider.arguments: rand is false: Chaos Toolkit deletes the first by name of \
         the matching pods; Faultline picks them at random",
    );
    let i = terminate(json!({"label_selector": "app=web", "order": "oldest"}));
    has_note(
        &i,
        "method[0].provider.arguments: rand is false: Chaos Toolkit deletes the oldest",
    );
    let i = terminate(json!({"label_selector": "app=web", "all": true}));
    no_note(&i, "rand is false");
}

#[test]
fn name_patterns_narrow_to_one_pod_or_are_refused() {
    let i = terminate(json!({"name_pattern": "^web-0$", "ns": "db"}));
    assert_eq!(
        i.experiment.steps[0].target,
        json!({"namespace": "db", "names": ["web-0"], "count": 1})
    );
    no_note(&i, "narrowed");
    no_note(&i, "rand is false");

    let i = terminate(json!({"name_pattern": "web-0", "ns": "db"}));
    assert_eq!(i.experiment.steps[0].target["names"], json!(["web-0"]));
    has_note(
        &i,
        "method[0].provider.arguments.name_pattern: \"web-0\" matches every pod whose name \
         contains it; narrowed to the pod named \"web-0\"",
    );

    // With a label selector both must match: the name becomes a field selector.
    let i = terminate(
        json!({"name_pattern": "^db\\.primary$", "label_selector": "app=pg", "all": true}),
    );
    assert_eq!(
        i.experiment.steps[0].target,
        json!({"namespace": "default", "labelSelector": "app=pg",
               "fieldSelector": "metadata.name=db.primary"})
    );

    for pattern in ["^web-.*", "web-[0-9]+", "a|b", "web.v2", "^$"] {
        let errs = errors(&source(
            &[],
            &[action(
                "pod.actions.terminate_pods",
                json!({"name_pattern": pattern}),
            )],
            &[],
        ));
        assert_eq!(errs.len(), 1, "{errs:?}");
        has_error(
            &errs,
            &format!(
                "method[0].provider.arguments.name_pattern: {pattern:?} is a regular expression \
                 over pod names, which Kubernetes selectors cannot express"
            ),
        );
    }
}

#[test]
fn terminate_pods_without_a_selector_picks_from_the_whole_namespace() {
    let i = terminate(json!({"ns": "shop", "rand": true}));
    assert_eq!(
        i.experiment.steps[0].target,
        json!({"namespace": "shop", "fieldSelector": "metadata.namespace=shop", "count": 1})
    );
    has_note(
        &i,
        "method[0].provider.arguments: no label_selector nor name_pattern: every pod of \
         namespace shop is a candidate, as in Chaos Toolkit",
    );
}

#[test]
fn delete_pods_reads_its_name_as_a_pattern() {
    let i = ok(&source(
        &[],
        &[action(
            "pod.actions.delete_pods",
            json!({"name": "^cache-1$", "ns": "shop"}),
        )],
        &[],
    ));
    assert_eq!(
        i.experiment.steps,
        [step(
            "delete-pods",
            "pod-delete",
            json!({"namespace": "shop", "names": ["cache-1"], "count": 1}),
            Value::Null,
            None,
        )]
    );
    // delete_pods takes only name, ns and label_selector.
    let errs = errors(&source(
        &[],
        &[action(
            "pod.actions.delete_pods",
            json!({"name": "a", "qty": 2}),
        )],
        &[],
    ));
    has_error(
        &errs,
        "method[0].provider.arguments.qty: is not an argument of delete_pods; it takes name, ns, \
         label_selector",
    );
}

#[test]
fn terminate_pods_refusals_name_the_argument() {
    let bad = |args: Value| {
        errors(&source(
            &[],
            &[action("pod.actions.terminate_pods", args)],
            &[],
        ))
    };
    let at = "method[0].provider.arguments";
    has_error(
        &bad(json!({"label_selector": "a=b", "qty": 0})),
        &format!("{at}.qty: 0 deletes no pod"),
    );
    has_error(
        &bad(json!({"label_selector": "a=b", "qty": -2})),
        &format!("{at}.qty: must not be negative"),
    );
    has_error(
        &bad(json!({"label_selector": "a=b", "mode": "random"})),
        &format!("{at}.mode: \"random\" is not a mode: fixed or percentage"),
    );
    has_error(
        &bad(json!({"label_selector": "a=b", "order": "newest"})),
        &format!("{at}.order: \"newest\" is not an order"),
    );
    has_error(
        &bad(json!({"label_selector": "a=b", "qty": "2"})),
        &format!("{at}.qty: must be a whole number"),
    );
    has_error(
        &bad(json!({"label_selector": "a=b", "rand": "yes"})),
        &format!("{at}.rand: must be true or false"),
    );
    has_error(
        &bad(json!({"label_selector": "a=b", "qyt": 2})),
        &format!("{at}.qyt: is not an argument of terminate_pods (did you mean \"qty\"?)"),
    );
    // Checked as the template parser checks the step, reported at the argument.
    has_error(
        &bad(json!({"label_selector": "a=b", "ns": "Shop"})),
        &format!("{at}.ns: \"Shop\" is not a namespace name"),
    );
    has_error(
        &bad(json!({"name_pattern": "^Web$"})),
        &format!("{at}.name_pattern: \"Web\" is not an object name"),
    );
    // Every problem is reported.
    assert_eq!(
        bad(json!({"label_selector": "a=b", "qty": 0, "order": "x", "mode": 3})).len(),
        3
    );
}

#[test]
fn a_scale_is_held_for_the_pauses_after_it_and_its_rollback_left_out() {
    let i = ok(&source(
        &[],
        &[paused(
            action(
                "deployment.actions.scale_deployment",
                json!({"name": "web", "replicas": 1, "ns": "shop"}),
            ),
            30,
        )],
        &[action(
            "deployment.actions.scale_deployment",
            json!({"name": "web", "replicas": 3, "ns": "shop"}),
        )],
    ));
    assert_eq!(
        i.experiment.steps,
        [step(
            "scale-deployment",
            "deployment-scale",
            json!({"namespace": "shop", "name": "web"}),
            json!({"replicas": 1}),
            Some(30),
        )]
    );
    assert!(i.experiment.rollbacks.is_empty());
    assert!(
        i.yaml.contains(
            "  fault: deployment-scale\n  target:\n    name: web\n    namespace: shop\n  params:\n    \
             replicas: 1\n  duration: 30s\n"
        ),
        "{}",
        i.yaml
    );
    has_note(
        &i,
        "method[0]: scale_deployment to 1 replicas became deployment-scale for 30s then the \
         revert restores the replica count it found (Chaos Toolkit leaves it so",
    );
    has_note(
        &i,
        "rollbacks[0]: left out: the deployment-scale step restores the replica count it found \
         when it ends (this rollback runs scale_deployment to 3 replicas)",
    );
}

#[test]
fn a_scale_back_in_the_method_ends_the_held_step() {
    let sts = |replicas: u32| {
        action(
            "statefulset.actions.scale_statefulset",
            json!({"name": "pg", "replicas": replicas, "ns": "db"}),
        )
    };
    let pause = json!({
        "type": "action", "name": "wait", "pauses": {"after": 15},
        "provider": {"type": "process", "path": "true"},
    });
    // Pauses between them add up; the scale back is the step's end, not a step of its own.
    let mut first = paused(sts(0), 20);
    first["pauses"]["before"] = json!(5);
    let i = ok(&source(&[], &[first, paused(sts(2), 10)], &[]));
    assert_eq!(
        i.experiment.steps,
        [
            Step {
                pause: Some(Dur::secs(5)),
                ..Step::default()
            },
            step(
                "scale-statefulset",
                "statefulset-scale",
                json!({"namespace": "db", "name": "pg"}),
                json!({"replicas": 0}),
                Some(20),
            ),
            Step {
                pause: Some(Dur::secs(10)),
                ..Step::default()
            },
        ],
        "the scale back's own pause stays: {:#?}",
        i.notes
    );
    has_note(
        &i,
        "method[0]: scale_statefulset to 0 replicas became statefulset-scale for 20s until \
         method[1] (scale_statefulset to 2 replicas), which became the step's end",
    );
    // With an action in between, the scale is held for the pauses right after it; the scale
    // back after that action is what the step's revert did already.
    let i = ok(&source(&[], &[paused(sts(0), 20), pause, sts(3)], &[]));
    assert_eq!(i.experiment.steps[0].duration, Some(Dur::secs(20)));
    assert!(i.experiment.steps[1].action.is_some());
    assert_eq!(
        i.experiment.steps.len(),
        3,
        "the action's pause: {:?}",
        i.experiment.steps
    );
    has_note(
        &i,
        "method[2]: left out: scale_statefulset to 3 replicas undoes the statefulset-scale step \
         before it, whose revert restored the replica count it found",
    );
}

#[test]
fn scales_need_a_pause_and_rollbacks_that_undo_a_step() {
    let scale = |args: Value| action("deployment.actions.scale_deployment", args);
    let errs = errors(&source(
        &[],
        &[scale(json!({"name": "web", "replicas": 0}))],
        &[],
    ));
    assert_eq!(
        errs,
        ["method[0].pauses.after: scale_deployment to 0 replicas maps to a deployment-scale step \
          held for the pauses after it (until an action that undoes it); give pauses.after, how \
          long it lasts"]
    );
    let errs = errors(&source(
        &[],
        &[paused(scale(json!({"name": "web", "replicas": 0})), 5)],
        &[scale(json!({"name": "api", "replicas": 2}))],
    ));
    assert_eq!(
        errs,
        ["rollbacks[0].provider.func: scale_deployment as a rollback maps only when it undoes a \
          step, and no step of the method scales default/api (a Faultline rollback runs a \
          command or sends an HTTP request)"]
    );
    let at = "method[0].provider.arguments";
    let bad = |args: Value| errors(&source(&[], &[paused(scale(args), 5)], &[]));
    has_error(
        &bad(json!({"name": "web"})),
        &format!("{at}.replicas: is required by scale_deployment"),
    );
    has_error(
        &bad(json!({"name": "web", "replicas": 5000})),
        &format!("{at}.replicas: must be at most 1000"),
    );
    has_error(
        &bad(json!({"name": "web", "replicas": -1})),
        &format!("{at}.replicas: must be 0 or more"),
    );
    has_error(
        &bad(json!({"name": "Web", "replicas": 1})),
        &format!("{at}.name: \"Web\" is not an object name"),
    );
    // The older name of scale_deployment maps the same.
    let i = ok(&source(
        &[],
        &[paused(
            action(
                "actions.scale_microservice",
                json!({"name": "web", "replicas": 0}),
            ),
            5,
        )],
        &[],
    ));
    assert_eq!(
        i.experiment.steps[0].fault.as_deref(),
        Some("deployment-scale")
    );
}

#[test]
fn a_cordon_is_held_and_its_uncordon_absorbed() {
    let cordon = paused(
        action(
            "node.actions.cordon_node",
            json!({"label_selector": "pool=batch"}),
        ),
        60,
    );
    let uncordon = action(
        "node.actions.uncordon_node",
        json!({"label_selector": "pool=batch"}),
    );
    let i = ok(&source(
        &[],
        std::slice::from_ref(&cordon),
        std::slice::from_ref(&uncordon),
    ));
    assert_eq!(
        i.experiment.steps,
        [step(
            "cordon-node",
            "node-cordon",
            json!({"labelSelector": "pool=batch"}),
            Value::Null,
            Some(60),
        )]
    );
    assert!(i.experiment.rollbacks.is_empty());
    has_note(
        &i,
        "rollbacks[0]: left out: the node-cordon and node-drain steps uncordon the nodes they \
         cordoned when they end",
    );
    // In the method, the uncordon right after is the step's end.
    let i = ok(&source(&[], &[cordon.clone(), uncordon.clone()], &[]));
    assert_eq!(i.experiment.steps.len(), 1);
    has_note(
        &i,
        "method[0]: cordon_node became node-cordon for 1m until method[1] (uncordon_node), which \
         became the step's end: the revert uncordons the nodes it cordoned",
    );
    // An uncordon of every node undoes it too; one of other nodes does not.
    let all = action("node.actions.uncordon_node", json!({}));
    assert!(ok(&source(&[], std::slice::from_ref(&cordon), &[all]))
        .experiment
        .rollbacks
        .is_empty());
    let other = action("node.actions.uncordon_node", json!({"name": "n9"}));
    has_error(
        &errors(&source(&[], std::slice::from_ref(&cordon), &[other])),
        "rollbacks[0].provider.func: uncordon_node as a rollback maps only when it undoes a step",
    );
    // After the cordon and something else, the uncordon is what the revert did already.
    let wait =
        json!({"type": "action", "name": "wait", "provider": {"type": "process", "path": "true"}});
    let i = ok(&source(&[], &[cordon, wait, uncordon.clone()], &[]));
    assert_eq!(i.experiment.steps.len(), 2);
    has_note(
        &i,
        "method[2]: left out: the node-cordon or node-drain step before it uncordoned the nodes",
    );
    // Alone in the method, an uncordon has nothing to end.
    has_error(
        &errors(&source(&[], &[uncordon], &[])),
        "method[0].provider.func: uncordon_node maps only as the end of a cordon_node or \
         drain_nodes",
    );
}

#[test]
fn a_cordon_refuses_every_node_and_both_selectors() {
    let bad = |args: Value| {
        errors(&source(
            &[],
            &[paused(action("node.actions.cordon_node", args), 5)],
            &[],
        ))
    };
    assert_eq!(
        bad(json!({})),
        ["method[0].provider.arguments: cordon_node with neither name nor label_selector acts on \
          every node of the cluster: give one (every node has the label kubernetes.io/hostname, \
          if that is meant)"]
    );
    has_error(
        &bad(json!({"name": "n1", "label_selector": "a=b"})),
        "method[0].provider.arguments: give name or label_selector, not both",
    );
    has_error(
        &bad(json!({"name": "N1"})),
        "method[0].provider.arguments.name: \"N1\" is not an object name",
    );
    let i = ok(&source(
        &[],
        &[paused(
            action("node.actions.cordon_node", json!({"name": "n1"})),
            5,
        )],
        &[],
    ));
    assert_eq!(i.experiment.steps[0].target, json!({"names": ["n1"]}));
}

#[test]
fn a_drain_maps_count_and_local_storage_and_notes_what_differs() {
    let drain = |args: Value| {
        ok(&source(
            &[],
            &[paused(action("node.actions.drain_nodes", args), 120)],
            &[action("node.actions.uncordon_node", json!({}))],
        ))
    };
    let i = drain(json!({
        "label_selector": "pool=batch", "count": 2, "delete_pods_with_local_storage": true,
        "timeout": 300,
    }));
    assert_eq!(
        i.experiment.steps,
        [step(
            "drain-nodes",
            "node-drain",
            json!({"labelSelector": "pool=batch", "count": 2}),
            json!({"deleteEmptyDirData": true}),
            Some(120),
        )]
    );
    assert!(i.experiment.rollbacks.is_empty());
    has_note(
        &i,
        "method[0].provider.arguments.timeout: ignored: the drain retries evictions",
    );
    has_note(
        &i,
        "method[0].provider.arguments.count: Faultline drains that many different nodes",
    );
    has_note(
        &i,
        "rollbacks[0]: left out: the node-cordon and node-drain steps",
    );
    no_note(&i, "emptyDir");

    let i = drain(json!({"name": "n1", "pod_namespace": "shop"}));
    assert_eq!(i.experiment.steps[0].target, json!({"names": ["n1"]}));
    assert_eq!(i.experiment.steps[0].params, Value::Null);
    has_note(
        &i,
        "method[0].provider.arguments: delete_pods_with_local_storage is false: Chaos Toolkit \
         leaves pods with emptyDir volumes on the node, Faultline's drain refuses",
    );
    has_note(
        &i,
        "method[0].provider.arguments.pod_namespace: ignored, as Chaos Toolkit ignores it \
         without pod_label_selector",
    );
    no_note(&i, "different nodes");
}

#[test]
fn a_drain_refuses_nodes_picked_by_their_pods_and_count_0() {
    let bad = |args: Value| {
        errors(&source(
            &[],
            &[paused(action("node.actions.drain_nodes", args), 5)],
            &[],
        ))
    };
    assert_eq!(
        bad(json!({"label_selector": "a=b", "pod_label_selector": "app=web", "pod_namespace": "shop"})),
        ["method[0].provider.arguments.pod_label_selector: picks the nodes that run the pods it \
          matches, which Faultline cannot express: its drain selects nodes by name or label; \
          select the same nodes with label_selector"]
    );
    has_error(
        &bad(json!({"label_selector": "a=b", "count": 0})),
        "method[0].provider.arguments.count: drains no node",
    );
    has_error(
        &bad(json!({"count": 1})),
        "method[0].provider.arguments: drain_nodes with neither name nor label_selector",
    );
    has_error(
        &errors(&source(
            &[],
            &[action("node.actions.drain_nodes", json!({"name": "n1"}))],
            &[],
        )),
        "method[0].pauses.after: drain_nodes maps to a node-drain step held for the pauses after it",
    );
}

fn probe_of(func: &str, args: Value) -> K8sProbe {
    let i = ok(&source(&[probe(func, args)], &[], &[]));
    let p = &i.experiment.hypothesis.probes[0];
    assert_eq!(p.name, "k8s-check");
    assert_eq!(p.mode, Mode::Edge);
    p.k8s.clone().unwrap()
}

#[test]
fn pods_in_phase_and_in_conditions_become_pods_ready() {
    let want = K8sProbe {
        namespace: "shop".into(),
        pods_ready: Some(PodsReady {
            label_selector: "app=web".into(),
            min: None,
        }),
        ..K8sProbe::default()
    };
    assert_eq!(
        probe_of(
            "pod.probes.pods_in_phase",
            json!({"label_selector": "app=web", "ns": "shop", "phase": "Running"}),
        ),
        want
    );
    let i = ok(&source(
        &[probe(
            "pod.probes.pods_in_phase",
            json!({"label_selector": "app=web", "ns": "shop"}),
        )],
        &[],
        &[],
    ));
    assert!(
        i.yaml.contains(
            "    k8s:\n      namespace: shop\n      absent: false\n      expect: {}\n      \
             podsReady:\n        labelSelector: app=web\n"
        ),
        "{}",
        i.yaml
    );
    has_note(
        &i,
        "steady-state-hypothesis.probes[0].provider.arguments: pods in phase Running became \
         podsReady",
    );
    let conditions = json!({"label_selector": "app=web", "ns": "shop",
                            "conditions": [{"type": "Ready", "status": "True"}]});
    assert_eq!(probe_of("pod.probes.pods_in_conditions", conditions), want);

    let bad = |func: &str, args: Value| errors(&source(&[probe(func, args)], &[], &[]));
    let at = "steady-state-hypothesis.probes[0].provider.arguments";
    has_error(
        &bad(
            "pod.probes.pods_in_phase",
            json!({"label_selector": "app=web", "phase": "Pending"}),
        ),
        &format!("{at}.phase: pods in phase \"Pending\" cannot be checked"),
    );
    has_error(
        &bad("pod.probes.pods_in_phase", json!({"label_selector": ""})),
        &format!("{at}.label_selector: must not be empty"),
    );
    has_error(
        &bad("pod.probes.pods_in_phase", json!({"ns": "shop"})),
        &format!("{at}.label_selector: is required by pods_in_phase"),
    );
    has_error(
        &bad(
            "pod.probes.pods_in_conditions",
            json!({"label_selector": "a=b", "conditions": [{"type": "PodScheduled", "status": "True"}]}),
        ),
        &format!("{at}.conditions: only [{{type: Ready, status: \"True\"}}] maps"),
    );
}

#[test]
fn service_deployment_and_daemonset_probes_read_one_object() {
    assert_eq!(
        probe_of(
            "service.probes.service_is_initialized",
            json!({"name": "web", "ns": "shop"}),
        ),
        K8sProbe {
            namespace: "shop".into(),
            resource: Some("Service".into()),
            name: Some("web".into()),
            ..K8sProbe::default()
        }
    );
    let at_least_one = |resource: &str, name: &str, field: &str| K8sProbe {
        namespace: "default".into(),
        resource: Some(resource.into()),
        name: Some(name.into()),
        field: Some(field.into()),
        expect: ValueExpect {
            op: Some(CmpOp::Ge),
            value: Some(json!(1)),
            between: None,
        },
        ..K8sProbe::default()
    };
    assert_eq!(
        probe_of(
            "deployment.probes.deployment_partially_available",
            json!({"name": "web"}),
        ),
        at_least_one("Deployment", "web", "/status/availableReplicas")
    );
    assert_eq!(
        probe_of(
            "daemonset.probes.daemon_set_partially_available",
            json!({"name": "agent"}),
        ),
        at_least_one("DaemonSet", "agent", "/status/numberReady")
    );
    let i = ok(&source(
        &[probe(
            "deployment.probes.deployment_partially_available",
            json!({"name": "web", "label_selector": "tier=front"}),
        )],
        &[],
        &[],
    ));
    assert!(
        i.yaml
            .contains("      field: /status/availableReplicas\n      expect:\n        op: '>='\n        value: 1\n"),
        "{}",
        i.yaml
    );
    has_note(
        &i,
        "steady-state-hypothesis.probes[0].provider.arguments.label_selector: ignored: the k8s \
         probe reads the Deployment by name",
    );
    has_error(
        &errors(&source(
            &[probe("service.probes.service_is_initialized", json!({}))],
            &[],
            &[],
        )),
        "steady-state-hypothesis.probes[0].provider.arguments.name: is required to map \
         service_is_initialized: a k8s probe reads one Service by name",
    );
}

#[test]
fn tolerances_are_true_or_an_exact_negation() {
    let with = |func: &str, args: Value, tolerance: Value| {
        let mut p = probe(func, args);
        p["tolerance"] = tolerance;
        source(&[p], &[], &[])
    };
    // The Service must be gone: false, with the probe told to return it rather than raise.
    let i = ok(&with(
        "service.probes.service_is_initialized",
        json!({"name": "web", "raise_if_service_not_initialized": false}),
        json!(false),
    ));
    let k = i.experiment.hypothesis.probes[0].k8s.as_ref().unwrap();
    assert!(k.absent);
    assert_eq!(k.resource.as_deref(), Some("Service"));

    let at = "steady-state-hypothesis.probes[0].tolerance";
    assert_eq!(
        errors(&with(
            "service.probes.service_is_initialized",
            json!({"name": "web"}),
            json!(false),
        )),
        [format!(
            "{at}: false is never met: unless raise_if_service_not_initialized is false, \
             service_is_initialized raises instead of returning false"
        )]
    );
    has_error(
        &errors(&with(
            "pod.probes.pods_in_phase",
            json!({"label_selector": "a=b", "raise_on_invalid_phase": false}),
            json!(false),
        )),
        &format!("{at}: false (the check failing) cannot be mapped"),
    );
    has_error(
        &errors(&with(
            "deployment.probes.deployment_partially_available",
            json!({"name": "web"}),
            json!(false),
        )),
        &format!("{at}: false (the check failing) cannot be mapped"),
    );
    has_error(
        &errors(&with(
            "pod.probes.pods_in_phase",
            json!({"label_selector": "a=b"}),
            json!(3),
        )),
        &format!("{at}: pods_in_phase returns true or false: give tolerance: true"),
    );
}

#[test]
fn activities_that_do_not_map_are_errors_naming_the_function_and_why() {
    let cases = [
        (
            probe("pod.probes.count_pods", json!({"label_selector": "a=b"})),
            "chaosk8s.pod.probes.count_pods cannot be mapped: it counts pods in a phase",
        ),
        (
            probe(
                "pod.probes.pods_not_in_phase",
                json!({"label_selector": "a=b"}),
            ),
            "chaosk8s.pod.probes.pods_not_in_phase cannot be mapped: it checks that no matching \
             pod is in a phase",
        ),
        (
            probe("pod.probes.all_pods_healthy", json!({"ns": "shop"})),
            "chaosk8s.pod.probes.all_pods_healthy cannot be mapped: it checks that every pod of \
             the namespace is Running or Succeeded",
        ),
        (
            probe("pod.probes.pod_is_not_available", json!({"name": "web"})),
            "chaosk8s.pod.probes.pod_is_not_available cannot be mapped: it checks that no pod \
             labelled name=NAME is Running",
        ),
        (
            probe(
                "deployment.probes.deployment_available_and_healthy",
                json!({"name": "web"}),
            ),
            "chaosk8s.deployment.probes.deployment_available_and_healthy cannot be mapped: it \
             compares the Deployment's availableReplicas with the desired count, two fields; a \
             k8s probe compares one field with a fixed value: write a k8s probe {resource: \
             Deployment, name: NAME, field: /status/availableReplicas, expect: {value: N}}",
        ),
        (
            probe(
                "deployment.probes.deployment_fully_available",
                json!({"name": "web"}),
            ),
            "chaosk8s.deployment.probes.deployment_fully_available cannot be mapped: it compares",
        ),
        (
            probe(
                "statefulset.probes.statefulset_fully_available",
                json!({"name": "pg"}),
            ),
            "chaosk8s.statefulset.probes.statefulset_fully_available cannot be mapped: it \
             compares the StatefulSet's readyReplicas",
        ),
        (
            probe("pod.actions.terminate_pods", json!({})),
            "chaosk8s.pod.actions.terminate_pods cannot be mapped: it changes the cluster: make \
             the activity type: action",
        ),
    ];
    for (p, want) in cases {
        let errs = errors(&source(&[p], &[], &[]));
        assert_eq!(errs.len(), 1, "{errs:?}");
        has_error(
            &errs,
            &format!("steady-state-hypothesis.probes[0].provider.func: {want}"),
        );
    }
    let actions = [
        (
            action(
                "pod.actions.exec_in_pods",
                json!({"cmd": "ls", "label_selector": "a=b"}),
            ),
            "chaosk8s.pod.actions.exec_in_pods cannot be mapped: it runs a command in pods",
        ),
        (
            action("crd.actions.apply_from_json", json!({"ns": "x"})),
            "chaosk8s.crd.actions.apply_from_json cannot be mapped: Faultline maps the actions \
             terminate_pods, delete_pods, scale_deployment",
        ),
        (
            action("node.actions.delete_nodes", json!({})),
            "chaosk8s.node.actions.delete_nodes cannot be mapped: Faultline does not delete nodes",
        ),
        (
            action("pod.probes.pods_in_phase", json!({"label_selector": "a=b"})),
            "chaosk8s.pod.probes.pods_in_phase cannot be mapped: it is a probe: make the \
             activity type: probe",
        ),
    ];
    for (a, want) in actions {
        let errs = errors(&source(&[], &[a], &[]));
        assert_eq!(errs.len(), 1, "{errs:?}");
        has_error(&errs, &format!("method[0].provider.func: {want}"));
    }
    has_error(
        &errors(&source(
            &[],
            &[],
            &[action(
                "deployment.actions.create_deployment",
                json!({"spec_path": "d.json"}),
            )],
        )),
        "rollbacks[0].provider.func: chaosk8s.deployment.actions.create_deployment cannot be \
         mapped as a rollback",
    );
    // Other Python modules stay refused as before.
    let mut other = action("pod.actions.terminate_pods", json!({}));
    other["provider"]["module"] = json!("chaosaws.ec2.actions");
    has_error(
        &errors(&source(&[], &[other], &[])),
        "method[0].provider.type: provider type \"python\" cannot be mapped",
    );
}

#[test]
fn a_method_probe_is_continuous_and_the_cluster_is_noted_once() {
    let mut p = activity(
        "probe",
        "web-ready",
        "pod.probes.pods_in_phase",
        json!({"label_selector": "app=web"}),
    );
    p["provider"]["secrets"] = json!(["k8s"]);
    let i = ok(&source(
        &[],
        &[
            p,
            action(
                "pod.actions.terminate_pods",
                json!({"label_selector": "app=web", "rand": true}),
            ),
        ],
        &[],
    ));
    let probe = &i.experiment.hypothesis.probes[1];
    assert_eq!(probe.mode, Mode::Continuous);
    assert!(probe.k8s.as_ref().unwrap().pods_ready.is_some());
    has_note(
        &i,
        "method[0]: probe \"web-ready\" became a continuous hypothesis probe checked with no \
         tolerance, so it passes when its check holds",
    );
    has_note(
        &i,
        "method[0].provider.secrets: ignored: the delegate uses its own cluster credentials",
    );
    let cluster: Vec<&String> = i
        .notes
        .iter()
        .filter(|n| n.contains("act on the cluster of the delegate"))
        .collect();
    assert_eq!(cluster.len(), 1, "{:#?}", i.notes);
    // The background flag of a Kubernetes action is dropped with a note.
    let mut bg = action(
        "pod.actions.terminate_pods",
        json!({"label_selector": "app=web", "rand": true}),
    );
    bg["background"] = json!(true);
    let i = ok(&source(&[], &[bg], &[]));
    assert!(!i.experiment.steps[0].background);
    has_note(&i, "method[0]: background is ignored");
}

#[test]
fn literal_names_are_names_and_the_rest_is_refused() {
    assert_eq!(literal_name("^web-0$"), Ok(("web-0".into(), true)));
    assert_eq!(literal_name("web-0"), Ok(("web-0".into(), false)));
    assert_eq!(literal_name("^web-0"), Ok(("web-0".into(), false)));
    assert_eq!(literal_name(r"^db\.main$"), Ok(("db.main".into(), true)));
    assert_eq!(literal_name(r"a\-b"), Ok(("a-b".into(), false)));
    for re in [
        "", "^", "^$", ".", "web.*", "web-\\d", "(a)", "[ab]", "a{2}", "a|b", "a?", r"web\$", "\\",
    ] {
        assert!(literal_name(re).is_err(), "{re:?}");
    }
}
