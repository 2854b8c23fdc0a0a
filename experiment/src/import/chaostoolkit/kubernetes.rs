//! The Kubernetes activities of the chaosk8s extension (PyPI chaostoolkit-kubernetes 0.39):
//! Python providers whose module is `chaosk8s` or under it, read by function and arguments as
//! the extension defines them.
//!
//! - `terminate_pods` (and the older `delete_pods`) become a one-shot `pod-delete`.
//! - `scale_deployment` (and the older `scale_microservice`), `scale_statefulset`, `cordon_node`
//!   and `drain_nodes` last until something undoes them, so, as a toxic does, each becomes a
//!   step held for the pauses after it, ended early by an action that undoes it (a scale of the
//!   same workload, `uncordon_node` of the same nodes), which the step absorbs. A rollback that
//!   undoes such a step is left out: the step's revert does that.
//! - `pods_in_phase` (Running) and `pods_in_conditions` (Ready) become `k8s` probes with
//!   `podsReady`; `service_is_initialized` one that the Service exists (or is `absent`);
//!   `deployment_partially_available` and `daemon_set_partially_available` one comparing a
//!   status field with 1.
//!
//! Everything else in chaosk8s is an error naming the function and why, and so are arguments the
//! faults cannot express (a regular expression over pod names, every node of the cluster, nodes
//! picked by the pods they run); what maps approximately (a random pick for "the first N",
//! Ready for Running) is a note. This module reads activities; `actions` lays out the method's
//! steps and calls [`Cx::k8s_step`] for these.
use super::{actions::Planned, Cx};
use crate::{
    faults::FaultSpec,
    hints::did_you_mean,
    probes::{CmpOp, K8sProbe, PodsReady, ValueExpect},
    template::{default_weight, FaultStep, Step},
    Dur,
};
use serde_json::{json, Map, Value};
use std::time::Duration;

/// A Python provider of chaosk8s, as written.
pub(super) struct K8sCall {
    /// Path of the provider, e.g. `method[0].provider`.
    at: String,
    module: String,
    func: String,
    args: Map<String, Value>,
}

/// A chaosk8s action of the method once read.
pub(super) struct K8sPlanned {
    /// Path of the activity, for notes and errors.
    path: String,
    act: K8sAct,
}

enum K8sAct {
    /// A fault done once: `pod-delete`.
    Once(Step),
    /// A fault that lasts until undone, held for the pauses after it; `what` is the call, for
    /// notes (`scale_deployment to 0 replicas`).
    Held { step: Step, key: Held, what: String },
    /// `uncordon_node`: the end of a cordon or drain of the same nodes.
    Uncordon(Nodes),
}

/// What a held step changed, so that an action or rollback undoing it can be recognised.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Held {
    /// A Deployment or StatefulSet scaled (the fault kind tells which).
    Workload {
        kind: &'static str,
        namespace: String,
        name: String,
    },
    /// Nodes cordoned or drained, as the activity selected them.
    Nodes(Nodes),
}

/// Nodes as chaosk8s selects them: by name and/or label selector (neither is every node).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Nodes {
    name: Option<String>,
    label_selector: Option<String>,
}

impl K8sAct {
    /// This action undoes `held`: a scale of the same workload, or an uncordon of the same
    /// nodes (or of every node).
    fn undoes(&self, held: &Held) -> bool {
        match (self, held) {
            (K8sAct::Held { key, .. }, Held::Workload { .. }) => key == held,
            (K8sAct::Uncordon(n), Held::Nodes(h)) => n.undoes(h),
            _ => false,
        }
    }

    fn what(&self) -> &str {
        match self {
            K8sAct::Held { what, .. } => what,
            K8sAct::Uncordon(_) => "uncordon_node",
            K8sAct::Once(_) => "pod-delete",
        }
    }
}

impl Nodes {
    fn undoes(&self, held: &Nodes) -> bool {
        (self.name.is_none() && self.label_selector.is_none()) || self == held
    }
}

/// The arguments of a call, with their path for errors.
struct Arguments<'a> {
    /// `...provider.arguments`.
    at: String,
    map: &'a Map<String, Value>,
    func: &'a str,
}

impl Arguments<'_> {
    fn of(&self, key: &str) -> String {
        format!("{}.{key}", self.at)
    }
}

impl K8sCall {
    fn arguments(&self) -> Arguments<'_> {
        Arguments {
            at: format!("{}.arguments", self.at),
            map: &self.args,
            func: &self.func,
        }
    }
}

/// The arguments of `terminate_pods` in chaosk8s 0.39 (`secrets` comes out of band).
const TERMINATE_PODS: &[&str] = &[
    "label_selector",
    "name_pattern",
    "all",
    "rand",
    "mode",
    "qty",
    "grace_period",
    "ns",
    "order",
];
const DRAIN_NODES: &[&str] = &[
    "name",
    "label_selector",
    "delete_pods_with_local_storage",
    "timeout",
    "count",
    "pod_label_selector",
    "pod_namespace",
];

/// What the import maps, for the error on everything else.
const MAPPED: &str = "Faultline maps the actions terminate_pods, delete_pods, scale_deployment, \
                      scale_statefulset, cordon_node, uncordon_node and drain_nodes, and the \
                      probes pods_in_phase, pods_in_conditions, service_is_initialized, \
                      deployment_partially_available and daemon_set_partially_available \
                      (docs/chaostoolkit-import.md)";

impl Cx {
    /// A `python` provider whose module is chaosk8s's, at `at`.
    pub(super) fn k8s_call(&mut self, at: &str, p: &Map<String, Value>) -> Option<K8sCall> {
        if !self.k8s_noted {
            self.k8s_noted = true;
            self.note(
                at,
                "chaosk8s activities act on the cluster of the delegate that runs the template \
                 (its --kubeconfig, KUBECONFIG or in-cluster service account), not the one Chaos \
                 Toolkit's environment or secrets name; its operator must allow each namespace \
                 (namespace=NS) and kind (k8s-kind=Pod, ...) the template touches",
            );
        }
        if p.contains_key("secrets") {
            self.note(
                &format!("{at}.secrets"),
                "ignored: the delegate uses its own cluster credentials",
            );
        }
        let module = p
            .get("module")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let func = match p.get("func").and_then(Value::as_str) {
            Some(f) if !f.trim().is_empty() => f.trim().to_string(),
            _ => {
                self.err(
                    format!("{at}.func"),
                    "is required: the chaosk8s function to call",
                );
                return None;
            }
        };
        let args = match p.get("arguments") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => {
                self.err(
                    format!("{at}.arguments"),
                    "must be a mapping of argument names to values",
                );
                return None;
            }
        };
        Some(K8sCall {
            at: at.to_string(),
            module,
            func,
            args,
        })
    }

    /// What the chaosk8s action at `def` does.
    pub(super) fn k8s_action(
        &mut self,
        def: &str,
        name: String,
        k: &K8sCall,
        background: bool,
    ) -> Option<K8sPlanned> {
        let a = k.arguments();
        let act = match (k.module.as_str(), k.func.as_str()) {
            ("chaosk8s.pod.actions", "terminate_pods") => self.pod_delete(name, &a, "name_pattern"),
            // Deprecated: terminate_pods(name_pattern=name, label_selector, ns).
            ("chaosk8s.pod.actions", "delete_pods") => self.pod_delete(name, &a, "name"),
            ("chaosk8s.deployment.actions", "scale_deployment")
            | ("chaosk8s.actions", "scale_microservice") => {
                self.scale(name, &a, "deployment-scale")
            }
            ("chaosk8s.statefulset.actions", "scale_statefulset") => {
                self.scale(name, &a, "statefulset-scale")
            }
            ("chaosk8s.node.actions", "cordon_node") => self.cordon(name, &a),
            ("chaosk8s.node.actions", "drain_nodes") => self.drain(name, &a),
            ("chaosk8s.node.actions", "uncordon_node") => {
                self.known(&a, &["name", "label_selector"], &[]);
                Some(K8sAct::Uncordon(self.nodes(&a, false)?))
            }
            _ => {
                self.unsupported(k, false);
                None
            }
        }?;
        if background {
            self.note(
                def,
                "background is ignored: the Kubernetes fault is a step of its own",
            );
        }
        Some(K8sPlanned {
            path: def.to_string(),
            act,
        })
    }

    /// The step of a chaosk8s action at `planned[*i - 1]`: a held fault takes the pauses after
    /// it and the action that undoes it, if that comes next.
    pub(super) fn k8s_step(
        &mut self,
        k: &K8sPlanned,
        planned: &[Planned],
        i: &mut usize,
        steps: &mut Vec<Step>,
    ) {
        let (step, key, what) = match &k.act {
            K8sAct::Once(s) => {
                steps.push(s.clone());
                return;
            }
            K8sAct::Uncordon(_) if self.k8s_held.iter().any(|h| k.act.undoes(h)) => {
                self.note(
                    &k.path,
                    "left out: the node-cordon or node-drain step before it uncordoned the nodes \
                     it cordoned when it ended",
                );
                return;
            }
            K8sAct::Uncordon(_) => {
                self.err(
                    format!("{}.provider.func", k.path),
                    "uncordon_node maps only as the end of a cordon_node or drain_nodes of the \
                     same nodes before it, or as a rollback: the revert of those steps \
                     uncordons the nodes",
                );
                return;
            }
            K8sAct::Held { step, key, what } => (step, key, what),
        };
        let mut held = Duration::ZERO;
        while let Some(Planned::Pause(d)) = planned.get(*i) {
            held += d.0;
            *i += 1;
        }
        // A scale with no pause after it, of a workload an earlier step scaled, is that step's
        // undo, which its revert did already.
        if held.is_zero() && self.k8s_held.contains(key) {
            self.note(
                &k.path,
                format!(
                    "left out: {what} undoes the {} step before it, whose revert restored the \
                     replica count it found",
                    step.fault.as_deref().unwrap_or_default()
                ),
            );
            return;
        }
        let end = match planned.get(*i) {
            Some(Planned::K8s(next)) if next.act.undoes(key) => {
                *i += 1;
                Some(next)
            }
            _ => None,
        };
        let fault = step.fault.as_deref().unwrap_or_default();
        if held.is_zero() {
            self.err(
                format!("{}.pauses.after", k.path),
                format!(
                    "{what} maps to a {fault} step held for the pauses after it (until an \
                     action that undoes it); give pauses.after, how long it lasts"
                ),
            );
            return;
        }
        let revert = match key {
            Held::Workload { .. } => "restores the replica count it found",
            Held::Nodes(_) => "uncordons the nodes it cordoned",
        };
        let until = match end {
            Some(e) => format!(
                "until {} ({}), which became the step's end: the revert {revert}",
                e.path,
                e.act.what()
            ),
            None => format!(
                "then the revert {revert} (Chaos Toolkit leaves it so until a later action or a \
                 rollback undoes it)"
            ),
        };
        self.note(
            &k.path,
            format!("{what} became {fault} for {} {until}", Dur(held)),
        );
        self.k8s_held.insert(key.clone());
        steps.push(Step {
            duration: Some(Dur(held)),
            ..step.clone()
        });
    }

    /// A chaosk8s rollback: left out when it undoes a held step of the method, else an error
    /// (a Faultline rollback runs a command or sends a request).
    pub(super) fn k8s_rollback(&mut self, def: &str, k: &K8sCall) {
        let a = k.arguments();
        let errors = self.errors.len();
        // What the rollback does, read as the method's action would be.
        let undo = match (k.module.as_str(), k.func.as_str()) {
            ("chaosk8s.deployment.actions", "scale_deployment")
            | ("chaosk8s.actions", "scale_microservice") => {
                self.scale(String::new(), &a, "deployment-scale")
            }
            ("chaosk8s.statefulset.actions", "scale_statefulset") => {
                self.scale(String::new(), &a, "statefulset-scale")
            }
            ("chaosk8s.node.actions", "uncordon_node") => {
                self.known(&a, &["name", "label_selector"], &[]);
                self.nodes(&a, false).map(K8sAct::Uncordon)
            }
            _ => {
                self.err(
                    format!("{}.func", k.at),
                    format!(
                        "{}.{} cannot be mapped as a rollback: a Faultline rollback runs a \
                         command or sends an HTTP request; a chaosk8s rollback is left out only \
                         when it undoes a step of the method (scale_deployment or \
                         scale_statefulset of a scaled workload, uncordon_node of cordoned or \
                         drained nodes)",
                        k.module, k.func
                    ),
                );
                return;
            }
        };
        let Some(act) = undo.filter(|_| self.errors.len() == errors) else {
            return;
        };
        let undone = self.k8s_held.iter().find(|h| act.undoes(h)).cloned();
        match (undone, &act) {
            (Some(Held::Workload { kind, .. }), _) => self.note(
                def,
                format!(
                    "left out: the {kind} step restores the replica count it found when it ends \
                     (this rollback runs {})",
                    act.what()
                ),
            ),
            (Some(Held::Nodes(_)), _) => self.note(
                def,
                "left out: the node-cordon and node-drain steps uncordon the nodes they cordoned \
                 when they end",
            ),
            (
                None,
                K8sAct::Held {
                    key:
                        Held::Workload {
                            namespace, name, ..
                        },
                    ..
                },
            ) => self.err(
                format!("{}.func", k.at),
                format!(
                    "{} as a rollback maps only when it undoes a step, and no step of the method \
                     scales {namespace}/{name} (a Faultline rollback runs a command or sends an \
                     HTTP request)",
                    k.func
                ),
            ),
            (None, _) => self.err(
                format!("{}.func", k.at),
                "uncordon_node as a rollback maps only when it undoes a step, and no cordon_node \
                 or drain_nodes of the method selects these nodes (a Faultline rollback runs a \
                 command or sends an HTTP request)",
            ),
        }
    }

    /// The `k8s` probe a chaosk8s probe maps to; `tolerance` is what it is compared with (they
    /// all return true or false).
    pub(super) fn k8s_probe(
        &mut self,
        def: &str,
        k: &K8sCall,
        tolerance: Option<&Value>,
    ) -> Option<K8sProbe> {
        let a = k.arguments();
        let errors = self.errors.len();
        // The probe, and the argument that makes the function return false instead of raising.
        let (mut probe, returns_false) = match (k.module.as_str(), k.func.as_str()) {
            ("chaosk8s.pod.probes", "pods_in_phase") => {
                let takes = ["label_selector", "phase", "ns", "raise_on_invalid_phase"];
                self.known(&a, &takes, &["label_selector"]);
                let phase = self.text(&a, "phase");
                if let Some(p) = phase.as_deref().filter(|p| *p != "Running") {
                    self.err(
                        a.of("phase"),
                        format!(
                            "pods in phase {p:?} cannot be checked: a k8s probe checks that pods \
                             are Ready (podsReady), which maps phase Running only"
                        ),
                    );
                }
                let probe = self.pods_ready(&a)?;
                self.note(
                    &a.at,
                    "pods in phase Running became podsReady: every matching pod Ready (its Ready \
                     condition True), which is stricter than Running (a running pod may not be \
                     ready yet), and at least one, as in Chaos Toolkit",
                );
                (probe, Some("raise_on_invalid_phase"))
            }
            ("chaosk8s.pod.probes", "pods_in_conditions") => {
                let takes = [
                    "label_selector",
                    "conditions",
                    "ns",
                    "raise_on_invalid_conditions",
                ];
                self.known(&a, &takes, &["label_selector", "conditions"]);
                let ready = json!([{"type": "Ready", "status": "True"}]);
                if a.map.get("conditions").is_some_and(|c| *c != ready) {
                    self.err(
                        a.of("conditions"),
                        "only [{type: Ready, status: \"True\"}] maps (to podsReady); a k8s probe \
                         checks no other pod condition",
                    );
                }
                (self.pods_ready(&a)?, Some("raise_on_invalid_conditions"))
            }
            ("chaosk8s.service.probes", "service_is_initialized") => {
                let takes = [
                    "name",
                    "ns",
                    "label_selector",
                    "raise_if_service_not_initialized",
                ];
                self.known(&a, &takes, &[]);
                let p = self.named_object(&a, "Service")?;
                (p, Some("raise_if_service_not_initialized"))
            }
            ("chaosk8s.deployment.probes", "deployment_partially_available") => {
                let takes = [
                    "name",
                    "ns",
                    "label_selector",
                    "raise_on_not_partially_available",
                ];
                self.known(&a, &takes, &["name"]);
                let p = self.named_object(&a, "Deployment")?;
                (at_least_one(p, "/status/availableReplicas"), None)
            }
            ("chaosk8s.daemonset.probes", "daemon_set_partially_available") => {
                self.known(&a, &["name", "ns", "label_selector"], &["name"]);
                let p = self.named_object(&a, "DaemonSet")?;
                (at_least_one(p, "/status/numberReady"), None)
            }
            _ => {
                self.unsupported(k, true);
                return None;
            }
        };
        let at = format!("{def}.tolerance");
        match tolerance {
            None | Some(Value::Bool(true)) => {}
            Some(Value::Bool(false)) => match returns_false {
                Some(flag) if a.map.get(flag) == Some(&Value::Bool(false)) => {
                    if probe.resource.is_some() && probe.field.is_none() {
                        probe.absent = true;
                    } else {
                        self.err(
                            at,
                            format!(
                                "false (the check failing) cannot be mapped: a k8s probe passes \
                                 when its check holds, and {} cannot be turned around",
                                k.func
                            ),
                        );
                    }
                }
                Some(flag) => self.err(
                    at,
                    format!(
                        "false is never met: unless {flag} is false, {} raises instead of \
                         returning false",
                        k.func
                    ),
                ),
                None => self.err(
                    at,
                    format!(
                        "false (the check failing) cannot be mapped: a k8s probe passes when \
                         its check holds, and {} cannot be turned around",
                        k.func
                    ),
                ),
            },
            Some(_) => self.err(
                at,
                format!("{} returns true or false: give tolerance: true", k.func),
            ),
        }
        (self.errors.len() == errors).then_some(probe)
    }

    /// `podsReady` of the pods `label_selector` matches in `ns`.
    fn pods_ready(&mut self, a: &Arguments<'_>) -> Option<K8sProbe> {
        let ns = self.namespace(a);
        let selector = match self.text(a, "label_selector") {
            Some(s) if !s.trim().is_empty() => s,
            Some(_) => {
                self.err(
                    a.of("label_selector"),
                    "must not be empty: podsReady reads the pods a label selector matches \
                     (Chaos Toolkit would read every pod of the namespace)",
                );
                return None;
            }
            None => return None,
        };
        Some(K8sProbe {
            namespace: ns,
            pods_ready: Some(PodsReady {
                label_selector: selector,
                min: None,
            }),
            ..K8sProbe::default()
        })
    }

    /// A probe that the object `name` of `resource` exists in `ns`.
    fn named_object(&mut self, a: &Arguments<'_>, resource: &str) -> Option<K8sProbe> {
        let ns = self.namespace(a);
        let Some(name) = self.text(a, "name").filter(|n| !n.is_empty()) else {
            self.err(
                a.of("name"),
                format!(
                    "is required to map {}: a k8s probe reads one {resource} by name",
                    a.func
                ),
            );
            return None;
        };
        if a.map.get("label_selector").is_some_and(|l| !l.is_null()) {
            self.note(
                &a.of("label_selector"),
                format!(
                    "ignored: the k8s probe reads the {resource} by name (Chaos Toolkit also \
                     requires its labels to match)"
                ),
            );
        }
        Some(K8sProbe {
            namespace: ns,
            resource: Some(resource.into()),
            name: Some(name),
            ..K8sProbe::default()
        })
    }

    /// `pod-delete` from `terminate_pods`, or from `delete_pods`, whose `name` is a pattern.
    fn pod_delete(&mut self, name: String, a: &Arguments<'_>, pattern_key: &str) -> Option<K8sAct> {
        let errors = self.errors.len();
        let takes: &[&str] = if pattern_key == "name" {
            &["name", "ns", "label_selector"]
        } else {
            TERMINATE_PODS
        };
        self.known(a, takes, &[]);
        let ns = self.namespace(a);
        let selector = self.text(a, "label_selector").filter(|s| !s.is_empty());
        let pattern = self.text(a, pattern_key).filter(|s| !s.is_empty());
        let all = self.flag(a, "all").unwrap_or(false);
        let rand = self.flag(a, "rand").unwrap_or(false);
        let mode = self.text(a, "mode").unwrap_or_else(|| "fixed".into());
        let qty = self.whole(a, "qty").unwrap_or(1);
        let grace = self.whole(a, "grace_period").unwrap_or(-1);
        let order = self.text(a, "order").unwrap_or_else(|| "alphabetic".into());

        let mut target = Map::new();
        target.insert("namespace".into(), json!(ns));
        let mut one_pod = false;
        match (selector, &pattern) {
            (selector, Some(p)) => match literal_name(p) {
                Ok((pod, exact)) => {
                    if !exact {
                        self.note(
                            &a.of(pattern_key),
                            format!(
                                "{p:?} matches every pod whose name contains it; narrowed to the \
                                 pod named {pod:?} (a selector matches names exactly; write \
                                 ^{pod}$ to say so)"
                            ),
                        );
                    }
                    match selector {
                        Some(s) => {
                            target.insert("labelSelector".into(), json!(s));
                            target.insert(
                                "fieldSelector".into(),
                                json!(format!("metadata.name={pod}")),
                            );
                        }
                        None => {
                            target.insert("names".into(), json!([pod]));
                        }
                    }
                    one_pod = true;
                }
                Err(e) => self.err(a.of(pattern_key), e),
            },
            (Some(s), None) => {
                target.insert("labelSelector".into(), json!(s));
            }
            (None, None) => {
                target.insert(
                    "fieldSelector".into(),
                    json!(format!("metadata.namespace={ns}")),
                );
                self.note(
                    &a.at,
                    format!(
                        "no label_selector nor {pattern_key}: every pod of namespace {ns} is a \
                         candidate, as in Chaos Toolkit (fieldSelector metadata.namespace={ns})"
                    ),
                );
            }
        }
        if qty < 0 {
            self.err(a.of("qty"), "must not be negative");
        }
        if !["fixed", "percentage"].contains(&mode.as_str()) {
            self.err(
                a.of("mode"),
                format!("{mode:?} is not a mode: fixed or percentage"),
            );
        } else if !all {
            match (mode.as_str(), qty) {
                (_, 0) => self.err(
                    a.of("qty"),
                    "0 deletes no pod: give 1 or more, or all: true",
                ),
                (_, q) if q < 0 => {}
                ("fixed", q) => {
                    target.insert("count".into(), json!(q));
                }
                // ceil(qty% of the pods), capped at all of them.
                (_, q) if q >= 100 => {}
                (_, q) => {
                    target.insert("percentage".into(), json!(q));
                }
            }
        }
        if !["alphabetic", "oldest"].contains(&order.as_str()) {
            self.err(
                a.of("order"),
                format!("{order:?} is not an order: alphabetic or oldest"),
            );
        } else if !all && !rand && !one_pod {
            let which = if order == "oldest" {
                "the oldest"
            } else {
                "the first by name"
            };
            self.note(
                &a.at,
                format!(
                    "rand is false: Chaos Toolkit deletes {which} of the matching pods; Faultline \
                     picks them at random"
                ),
            );
        }
        let params = match grace {
            g if g < 0 => Value::Null,
            0 => json!({"force": true}),
            g => json!({"gracePeriod": Dur::secs(g as u64)}),
        };
        let step = Step {
            name: Some(name),
            fault: Some("pod-delete".into()),
            target: Value::Object(target),
            params,
            ..Step::default()
        };
        if self.errors.len() == errors {
            self.check_fault(
                a,
                &step,
                &[
                    ("target.namespace", "ns"),
                    ("target.labelSelector", "label_selector"),
                    ("target.names", pattern_key),
                    ("target.fieldSelector", pattern_key),
                    ("target.count", "qty"),
                    ("target.percentage", "qty"),
                    ("params", "grace_period"),
                ],
            );
        }
        (self.errors.len() == errors).then_some(K8sAct::Once(step))
    }

    /// `deployment-scale` or `statefulset-scale` (`kind`) from `scale_*(name, replicas, ns)`.
    fn scale(&mut self, name: String, a: &Arguments<'_>, kind: &'static str) -> Option<K8sAct> {
        let errors = self.errors.len();
        self.known(a, &["name", "replicas", "ns"], &["name", "replicas"]);
        let ns = self.namespace(a);
        let workload = self.text(a, "name");
        let replicas = self.whole(a, "replicas");
        if replicas.is_some_and(|r| r < 0) {
            self.err(a.of("replicas"), "must be 0 or more");
        }
        let (Some(workload), Some(replicas)) = (workload, replicas) else {
            return None;
        };
        let step = Step {
            name: Some(name),
            fault: Some(kind.into()),
            target: json!({"namespace": ns, "name": workload}),
            params: json!({ "replicas": replicas }),
            ..Step::default()
        };
        if self.errors.len() == errors {
            self.check_fault(
                a,
                &step,
                &[
                    ("target.namespace", "ns"),
                    ("target.name", "name"),
                    ("params", "replicas"),
                ],
            );
        }
        (self.errors.len() == errors).then(|| K8sAct::Held {
            step,
            key: Held::Workload {
                kind,
                namespace: ns,
                name: workload,
            },
            what: format!("{} to {replicas} replicas", a.func),
        })
    }

    /// `node-cordon` from `cordon_node(name, label_selector)`.
    fn cordon(&mut self, name: String, a: &Arguments<'_>) -> Option<K8sAct> {
        let errors = self.errors.len();
        self.known(a, &["name", "label_selector"], &[]);
        let nodes = self.nodes(a, true)?;
        let step = Step {
            name: Some(name),
            fault: Some("node-cordon".into()),
            target: node_target(&nodes),
            ..Step::default()
        };
        if self.errors.len() == errors {
            self.check_fault(
                a,
                &step,
                &[
                    ("target.names", "name"),
                    ("target.labelSelector", "label_selector"),
                ],
            );
        }
        (self.errors.len() == errors).then(|| K8sAct::Held {
            step,
            key: Held::Nodes(nodes),
            what: "cordon_node".into(),
        })
    }

    /// `node-drain` from `drain_nodes(...)`.
    fn drain(&mut self, name: String, a: &Arguments<'_>) -> Option<K8sAct> {
        let errors = self.errors.len();
        self.known(a, DRAIN_NODES, &[]);
        let nodes = self.nodes(a, true);
        let local = self
            .flag(a, "delete_pods_with_local_storage")
            .unwrap_or(false);
        let count = self.whole(a, "count");
        if a.map.get("timeout").is_some_and(|t| !t.is_null()) {
            self.note(
                &a.of("timeout"),
                "ignored: the drain retries evictions (refused by a PodDisruptionBudget) until \
                 the step ends",
            );
        }
        let pods = (
            self.text(a, "pod_label_selector"),
            self.text(a, "pod_namespace"),
        );
        match pods {
            (Some(_), Some(_)) => self.err(
                a.of("pod_label_selector"),
                "picks the nodes that run the pods it matches, which Faultline cannot express: \
                 its drain selects nodes by name or label; select the same nodes with \
                 label_selector",
            ),
            (Some(_), None) => self.note(
                &a.of("pod_label_selector"),
                "ignored, as Chaos Toolkit ignores it without pod_namespace",
            ),
            (None, Some(_)) => self.note(
                &a.of("pod_namespace"),
                "ignored, as Chaos Toolkit ignores it without pod_label_selector",
            ),
            (None, None) => {}
        }
        let nodes = nodes?;
        let mut target = node_target(&nodes);
        match count {
            Some(c) if c < 1 => self.err(a.of("count"), "drains no node: give 1 or more"),
            Some(c) => {
                target["count"] = json!(c);
                if c > 1 {
                    self.note(
                        &a.of("count"),
                        "Faultline drains that many different nodes (Chaos Toolkit picks with \
                         replacement, so maybe fewer)",
                    );
                }
            }
            None => {}
        }
        if !local {
            self.note(
                &a.at,
                "delete_pods_with_local_storage is false: Chaos Toolkit leaves pods with emptyDir \
                 volumes on the node, Faultline's drain refuses, naming such a pod (set it true \
                 to evict them: deleteEmptyDirData)",
            );
        }
        let step = Step {
            name: Some(name),
            fault: Some("node-drain".into()),
            target,
            params: if local {
                json!({"deleteEmptyDirData": true})
            } else {
                Value::Null
            },
            ..Step::default()
        };
        if self.errors.len() == errors {
            self.check_fault(
                a,
                &step,
                &[
                    ("target.names", "name"),
                    ("target.labelSelector", "label_selector"),
                    ("target.count", "count"),
                ],
            );
        }
        (self.errors.len() == errors).then(|| K8sAct::Held {
            step,
            key: Held::Nodes(nodes),
            what: "drain_nodes".into(),
        })
    }

    /// The nodes `name` and `label_selector` select; `narrow`: they must select by one of them
    /// (a cordon or drain of every node is refused).
    fn nodes(&mut self, a: &Arguments<'_>, narrow: bool) -> Option<Nodes> {
        let errors = self.errors.len();
        let nodes = Nodes {
            name: self.text(a, "name").filter(|s| !s.is_empty()),
            label_selector: self.text(a, "label_selector").filter(|s| !s.is_empty()),
        };
        if self.errors.len() != errors {
            return None;
        }
        if narrow {
            match (&nodes.name, &nodes.label_selector) {
                (Some(_), Some(_)) => {
                    self.err(
                        &a.at,
                        "give name or label_selector, not both: Chaos Toolkit picks the nodes \
                         that have both, Faultline selects nodes by one of them",
                    );
                    return None;
                }
                (None, None) => {
                    self.err(
                        &a.at,
                        format!(
                            "{} with neither name nor label_selector acts on every node of the \
                             cluster: give one (every node has the label kubernetes.io/hostname, \
                             if that is meant)",
                            a.func
                        ),
                    );
                    return None;
                }
                _ => {}
            }
        }
        Some(nodes)
    }

    /// The error for a chaosk8s function that does not map, saying why.
    fn unsupported(&mut self, k: &K8sCall, as_probe: bool) {
        let why: String = match k.func.as_str() {
            "terminate_pods" | "delete_pods" | "scale_deployment" | "scale_microservice"
            | "scale_statefulset" | "cordon_node" | "uncordon_node" | "drain_nodes"
                if as_probe =>
            {
                "it changes the cluster: make the activity type: action".into()
            }
            "pods_in_phase"
            | "pods_in_conditions"
            | "service_is_initialized"
            | "deployment_partially_available"
            | "daemon_set_partially_available"
                if !as_probe =>
            {
                "it is a probe: make the activity type: probe".into()
            }
            "pods_not_in_phase" => "it checks that no matching pod is in a phase; a k8s probe \
                                    checks that pods are Ready (podsReady) or reads one object"
                .into(),
            "count_pods" | "count_min_pods" => "it counts pods in a phase; a k8s probe does not \
                                                count pods (podsReady checks that every \
                                                matching pod is Ready, and at least min)"
                .into(),
            "all_pods_healthy" | "all_microservices_healthy" => {
                "it checks that every pod of the namespace is Running or Succeeded; podsReady \
                 needs Ready pods, which completed pods never are"
                    .into()
            }
            "pod_is_not_available" | "microservice_is_not_available" => {
                "it checks that no pod labelled name=NAME is Running; a k8s probe cannot check \
                 that pods are not running"
                    .into()
            }
            "deployment_available_and_healthy"
            | "microservice_available_and_healthy"
            | "deployment_fully_available"
            | "deployment_is_fully_available" => two_fields("Deployment", "availableReplicas"),
            "statefulset_fully_available" => two_fields("StatefulSet", "readyReplicas"),
            "daemon_set_available_and_healthy" | "daemon_set_fully_available" => {
                two_fields("DaemonSet", "numberReady")
            }
            "deployment_not_fully_available"
            | "deployment_is_not_fully_available"
            | "statefulset_not_fully_available"
            | "daemon_set_not_fully_available" => {
                "it waits until the ready replicas differ from the desired count, two fields; a \
                 k8s probe compares one field with a fixed value (e.g. field: \
                 /status/readyReplicas, expect: {op: \"<\", value: N})"
                    .into()
            }
            "exec_in_pods" => "it runs a command in pods; no Faultline fault does".into(),
            "read_pod_logs" | "read_microservices_logs" | "should_be_found_in_logs" => {
                "it reads pod logs; a k8s probe does not".into()
            }
            "secret_exists" => "a k8s probe never reads Secrets".into(),
            "delete_nodes" => "Faultline does not delete nodes (node-cordon and node-drain \
                               take them out of service and undo it)"
                .into(),
            _ => MAPPED.into(),
        };
        self.err(
            format!("{}.func", k.at),
            format!("{}.{} cannot be mapped: {why}", k.module, k.func),
        );
    }

    /// Reports arguments the function does not take, and required ones missing.
    fn known(&mut self, a: &Arguments<'_>, takes: &[&str], required: &[&str]) {
        for key in a.map.keys() {
            if !takes.contains(&key.as_str()) {
                let hint = did_you_mean(key, takes)
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default();
                self.err(
                    a.of(key),
                    format!(
                        "is not an argument of {}{hint}; it takes {}",
                        a.func,
                        takes.join(", ")
                    ),
                );
            }
        }
        for key in required {
            if a.map.get(*key).is_none_or(Value::is_null) {
                self.err(a.of(key), format!("is required by {}", a.func));
            }
        }
    }

    /// `ns`, `default` when not given (as chaosk8s).
    fn namespace(&mut self, a: &Arguments<'_>) -> String {
        self.text(a, "ns").unwrap_or_else(|| "default".into())
    }

    fn text(&mut self, a: &Arguments<'_>, key: &str) -> Option<String> {
        match a.map.get(key)? {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            _ => {
                self.err(a.of(key), "must be text");
                None
            }
        }
    }

    fn whole(&mut self, a: &Arguments<'_>, key: &str) -> Option<i64> {
        match a.map.get(key)? {
            Value::Null => None,
            v => v.as_i64().or_else(|| {
                self.err(a.of(key), "must be a whole number");
                None
            }),
        }
    }

    fn flag(&mut self, a: &Arguments<'_>, key: &str) -> Option<bool> {
        match a.map.get(key)? {
            Value::Null => None,
            v => v.as_bool().or_else(|| {
                self.err(a.of(key), "must be true or false");
                None
            }),
        }
    }

    /// Checks `step` as the template parser will, reporting a problem at the argument its
    /// field came from (`fields`: Faultline field prefix, argument).
    fn check_fault(&mut self, a: &Arguments<'_>, step: &Step, fields: &[(&str, &str)]) {
        let fault = FaultStep {
            name: step.name.clone(),
            fault: step.fault.clone().unwrap_or_default(),
            weight: default_weight(),
            target: step.target.clone(),
            params: step.params.clone(),
            // The held ones get theirs from the pauses after them.
            duration: Some(step.duration.unwrap_or(Dur::secs(1))),
        };
        if let Err(e) = FaultSpec::parse("step", &fault) {
            let field = e.field.strip_prefix("step.").unwrap_or(&e.field);
            let path = fields
                .iter()
                .find(|(f, _)| field.starts_with(f))
                .map(|(_, arg)| a.of(arg))
                .unwrap_or_else(|| a.at.clone());
            self.err(path, e.message);
        }
    }
}

/// The `target` of a node fault.
fn node_target(n: &Nodes) -> Value {
    match (&n.name, &n.label_selector) {
        (Some(name), _) => json!({ "names": [name] }),
        (None, Some(s)) => json!({ "labelSelector": s }),
        (None, None) => json!({}),
    }
}

/// `probe` with `field` compared `>= 1`.
fn at_least_one(probe: K8sProbe, field: &str) -> K8sProbe {
    K8sProbe {
        field: Some(field.into()),
        expect: ValueExpect {
            op: Some(CmpOp::Ge),
            value: Some(json!(1)),
            between: None,
        },
        ..probe
    }
}

/// Why a probe comparing `status.FIELD` with the desired count does not map, with what to write.
fn two_fields(resource: &str, field: &str) -> String {
    format!(
        "it compares the {resource}'s {field} with the desired count, two fields; a k8s probe \
         compares one field with a fixed value: write a k8s probe {{resource: {resource}, name: \
         NAME, field: /status/{field}, expect: {{value: N}}}} with the count you expect"
    )
}

/// A `name_pattern` (a Python regular expression searched in pod names) that is a pod's name:
/// `(name, exact)`, exact when anchored at both ends; any other regular expression is refused.
fn literal_name(pattern: &str) -> Result<(String, bool), String> {
    let refuse = || {
        format!(
            "{pattern:?} is a regular expression over pod names, which Kubernetes selectors \
             cannot express: give a label_selector that selects the same pods, or one pod's name \
             (^NAME$)"
        )
    };
    let start = pattern.strip_prefix('^');
    let rest = start.unwrap_or(pattern);
    let end = rest.strip_suffix('$').filter(|r| !r.ends_with('\\'));
    let rest = end.unwrap_or(rest);
    let mut name = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('.' | '-')) => name.push(e),
                _ => return Err(refuse()),
            },
            '.' | '^' | '$' | '*' | '+' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '|' => {
                return Err(refuse())
            }
            c => name.push(c),
        }
    }
    if name.is_empty() {
        return Err(refuse());
    }
    Ok((name, start.is_some() && end.is_some()))
}

#[cfg(test)]
mod tests;
