//! Parameters of the Kubernetes faults: `pod-delete`, `container-kill`, `deployment-scale`,
//! `statefulset-scale`, `node-cordon` and `node-drain`. Each namespaced one names its namespace,
//! which the delegate operator's allow-list must list (`namespace=NS`) together with the
//! resource kind touched (`k8s-kind=Pod`, ...); `node-cordon` acts on cluster-scoped nodes and
//! needs only `k8s-kind=Node`; `node-drain` also evicts the nodes' pods, of any namespace, so it
//! needs `k8s-kind=Node` and `k8s-kind=Pod`. The delegate resolves the objects when it plans
//! the fault.
use super::{need_duration, typed, FaultSpec, Field, Signal};
use crate::{template::FaultStep, template::SpecError, Dur};
use serde::{Deserialize, Serialize};

/// Fault kinds acting on a Kubernetes cluster through its API.
pub const K8S_KINDS: &[&str] = &[
    "pod-delete",
    "container-kill",
    "deployment-scale",
    "statefulset-scale",
    "node-cordon",
    "node-drain",
];

/// Highest replica count a scale fault may ask for: a typo must not start a thousand pods.
pub const MAX_REPLICAS: u32 = 1000;

/// Which pods `pod-delete` acts on: those of `namespace` matching the selectors, or the ones
/// named; all of them, or `count` / `percentage` picked at random.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(extend("required" = ["namespace"])))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PodTarget {
    /// The namespace of the pods (the allow-list must list it: `namespace=NS`).
    pub namespace: String,
    /// A label selector, as `kubectl -l` takes it, e.g. `app=web,tier!=db`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
    /// A field selector, e.g. `status.phase=Running`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_selector: Option<String>,
    /// These pods by name (not with the selectors).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// Act on this many of the matching pods, picked at random (not with `percentage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub count: Option<u32>,
    /// Act on this share of the matching pods (1-100, rounded up), picked at random.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 100)))]
    pub percentage: Option<u32>,
}

impl PodTarget {
    /// How many of `found` matching pods to act on.
    pub fn pick(&self, found: usize) -> usize {
        pick(self.count, self.percentage, found)
    }
}

/// Which nodes `node-cordon` acts on: those matching the label selector, or the ones named;
/// all of them, or `count` / `percentage` picked at random. Nodes are cluster-scoped: no
/// namespace.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeTarget {
    /// A label selector, as `kubectl -l` takes it, e.g. `node-role.kubernetes.io/worker`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
    /// These nodes by name (not with `labelSelector`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// Act on this many of the matching schedulable nodes, picked at random (not with
    /// `percentage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub count: Option<u32>,
    /// Act on this share of the matching schedulable nodes (1-100, rounded up), picked at random.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 100)))]
    pub percentage: Option<u32>,
}

impl NodeTarget {
    /// How many of `found` matching nodes to act on.
    pub fn pick(&self, found: usize) -> usize {
        pick(self.count, self.percentage, found)
    }
}

fn pick(count: Option<u32>, percentage: Option<u32>, found: usize) -> usize {
    match (count, percentage) {
        (Some(c), _) => (c as usize).min(found),
        (_, Some(p)) => (found * p as usize).div_ceil(100).min(found),
        _ => found,
    }
}

/// `params` of `pod-delete`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PodDeleteParams {
    /// The pods' grace period (default: each pod's own `terminationGracePeriodSeconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period: Option<Dur>,
    /// Delete at once (grace period 0), as `kubectl delete --force --grace-period=0`.
    #[serde(default)]
    pub force: bool,
    /// Delete again every `interval` for the step's `duration` (needs `duration`); the pods are
    /// selected anew each time, so the ones their controller made replace them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Dur>,
}

/// The workload a scale fault acts on: one Deployment or StatefulSet by name.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(extend("required" = ["namespace", "name"])))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkloadTarget {
    /// The namespace of the workload (the allow-list must list it: `namespace=NS`).
    pub namespace: String,
    /// The Deployment's or StatefulSet's name.
    pub name: String,
}

/// `params` of `deployment-scale` and `statefulset-scale`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(extend("required" = ["replicas"])))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScaleParams {
    /// Replicas for the step's `duration` (0 to 1000); the original count is journalled first
    /// and restored on revert.
    #[cfg_attr(feature = "schema", schemars(range(min = 0, max = 1000)))]
    pub replicas: u32,
}

/// `params` of `node-drain`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeDrainParams {
    /// The evicted pods' grace period (default: each pod's own
    /// `terminationGracePeriodSeconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period: Option<Dur>,
    /// Also evict pods no controller manages (they are not recreated anywhere), as
    /// `kubectl drain --force`; without it such a pod makes the drain refuse, naming it.
    #[serde(default)]
    pub force: bool,
    /// Also evict pods with `emptyDir` volumes (their data is lost), as `kubectl drain
    /// --delete-emptydir-data`; without it such a pod makes the drain refuse, naming it.
    #[serde(default)]
    pub delete_empty_dir_data: bool,
    /// How often an eviction a PodDisruptionBudget refused (429) is tried again (default 5s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_interval: Option<Dur>,
}

/// `params` of `container-kill`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerKillParams {
    /// The container to restart (default: the pod's first container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The signal sent to the container's main process (default TERM). Not KILL: the kernel
    /// ignores a SIGKILL sent to a container's init from inside its container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<Signal>,
    /// Extra time to watch for the container to come back after the signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_wait: Option<Dur>,
}

impl ContainerKillParams {
    /// The signal to send, as `kill` names it (`TERM`, ...).
    pub fn signal_name(&self) -> &'static str {
        match self.signal.unwrap_or(Signal::Term) {
            Signal::Kill => "KILL",
            Signal::Term => "TERM",
            Signal::Int => "INT",
            Signal::Hup => "HUP",
            Signal::Quit => "QUIT",
            Signal::Usr1 => "USR1",
            Signal::Usr2 => "USR2",
        }
    }
}

/// The cluster scope of a Kubernetes fault, for the allow-list: its namespace (`None` for
/// cluster-scoped objects: nodes, and the pods of any namespace a drain evicts) and the kinds
/// of object it changes (`Pod`, `Deployment`, `StatefulSet`, `Node`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct K8sScope<'a> {
    pub namespace: Option<&'a str>,
    pub kinds: &'static [&'static str],
}

pub(super) fn scope(spec: &FaultSpec) -> Option<K8sScope<'_>> {
    match spec {
        FaultSpec::PodDelete { target, .. } | FaultSpec::ContainerKill { target, .. } => {
            Some(K8sScope {
                namespace: Some(&target.namespace),
                kinds: &["Pod"],
            })
        }
        s if s.pod_scope().is_some() => s.pod_scope().map(|t| K8sScope {
            namespace: Some(&t.namespace),
            kinds: &["Pod"],
        }),
        FaultSpec::DeploymentScale { target, .. } => Some(K8sScope {
            namespace: Some(&target.namespace),
            kinds: &["Deployment"],
        }),
        FaultSpec::StatefulsetScale { target, .. } => Some(K8sScope {
            namespace: Some(&target.namespace),
            kinds: &["StatefulSet"],
        }),
        FaultSpec::NodeCordon { .. } => Some(K8sScope {
            namespace: None,
            kinds: &["Node"],
        }),
        FaultSpec::NodeDrain { .. } => Some(K8sScope {
            namespace: None,
            kinds: &["Node", "Pod"],
        }),
        _ => None,
    }
}

/// A DNS-1123 label (namespaces) or subdomain (object names).
fn dns_name(s: &str, max: usize, dots: bool) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (dots && c == '.'))
}

fn namespace(at: &Field<'_>, ns: &str) -> Result<(), SpecError> {
    if dns_name(ns, 63, false) {
        return Ok(());
    }
    Err(SpecError::field(
        at.of("target.namespace"),
        format!("{ns:?} is not a namespace name (lowercase letters, digits and '-')"),
    )
    .hint("e.g. target: {namespace: shop}"))
}

fn object_name(field: String, name: &str) -> Result<(), SpecError> {
    if dns_name(name, 253, true) {
        return Ok(());
    }
    Err(SpecError::field(
        field,
        format!("{name:?} is not an object name (lowercase letters, digits, '-' and '.')"),
    ))
}

fn count_or_percentage(
    at: &Field<'_>,
    count: Option<u32>,
    percentage: Option<u32>,
) -> Result<(), SpecError> {
    match (count, percentage) {
        (Some(_), Some(_)) => Err(SpecError::field(
            at.of("target"),
            "give count or percentage, not both",
        )),
        (Some(0), _) => Err(SpecError::field(
            at.of("target.count"),
            "must be at least 1",
        )),
        (_, Some(p)) if !(1..=100).contains(&p) => Err(SpecError::field(
            at.of("target.percentage"),
            "must be between 1 and 100",
        )),
        _ => Ok(()),
    }
}

/// Checks a pod target: its namespace, selectors or names, count or percentage.
pub(super) fn check_pods(at: &Field<'_>, target: &PodTarget) -> Result<(), SpecError> {
    namespace(at, &target.namespace)?;
    let selects = target.label_selector.is_some() || target.field_selector.is_some();
    if selects != target.names.is_empty() {
        return Err(SpecError::field(
            at.of("target"),
            "give labelSelector and/or fieldSelector, or names",
        )
        .hint("e.g. target: {namespace: shop, labelSelector: app=web, count: 1}"));
    }
    for (i, n) in target.names.iter().enumerate() {
        object_name(at.of(&format!("target.names[{i}]")), n)?;
    }
    count_or_percentage(at, target.count, target.percentage)
}

pub(super) fn parse(at: &Field<'_>, step: &FaultStep) -> Result<FaultSpec, SpecError> {
    let params = at.of("params");
    match step.fault.as_str() {
        "node-cordon" | "node-drain" => {
            need_duration(at, step)?;
            let target: NodeTarget = typed(&step.target, &at.of("target"))?;
            if target.label_selector.is_some() != target.names.is_empty() {
                return Err(
                    SpecError::field(at.of("target"), "give labelSelector or names")
                        .hint("e.g. target: {labelSelector: pool=batch, count: 1}"),
                );
            }
            for (i, n) in target.names.iter().enumerate() {
                object_name(at.of(&format!("target.names[{i}]")), n)?;
            }
            count_or_percentage(at, target.count, target.percentage)?;
            if step.fault == "node-drain" {
                let p: NodeDrainParams = typed(&step.params, &params)?;
                if p.retry_interval
                    .is_some_and(|i| i.0 < std::time::Duration::from_secs(1))
                {
                    return Err(SpecError::field(
                        at.of("params.retryInterval"),
                        "must be at least 1s",
                    ));
                }
                return Ok(FaultSpec::NodeDrain { target, params: p });
            }
            if !step.params.is_null() && step.params.as_object().is_none_or(|m| !m.is_empty()) {
                return Err(SpecError::field(params, "node-cordon takes no params"));
            }
            Ok(FaultSpec::NodeCordon { target })
        }
        "pod-delete" | "container-kill" => {
            let target: PodTarget = typed(&step.target, &at.of("target"))?;
            check_pods(at, &target)?;
            if step.fault == "container-kill" {
                let p: ContainerKillParams = typed(&step.params, &params)?;
                if let Some(c) = &p.container {
                    if !dns_name(c, 63, false) {
                        return Err(SpecError::field(
                            at.of("params.container"),
                            format!(
                                "{c:?} is not a container name (lowercase letters, digits and '-')"
                            ),
                        ));
                    }
                }
                if p.signal == Some(Signal::Kill) {
                    return Err(SpecError::field(
                        at.of("params.signal"),
                        "the kernel ignores a SIGKILL sent to a container's init from inside its container",
                    )
                    .hint("use TERM (the default), INT or QUIT"));
                }
                return Ok(FaultSpec::ContainerKill { target, params: p });
            }
            let p: PodDeleteParams = typed(&step.params, &params)?;
            if p.force && p.grace_period.is_some() {
                return Err(SpecError::field(
                    at.of("params.force"),
                    "force deletes with a grace period of 0: give force or gracePeriod, not both",
                ));
            }
            if let Some(i) = p.interval {
                need_duration(at, step)?;
                if i.0 < std::time::Duration::from_secs(1) {
                    return Err(SpecError::field(
                        at.of("params.interval"),
                        "must be at least 1s",
                    ));
                }
            }
            Ok(FaultSpec::PodDelete { target, params: p })
        }
        kind => {
            need_duration(at, step)?;
            let target: WorkloadTarget = typed(&step.target, &at.of("target"))?;
            namespace(at, &target.namespace)?;
            object_name(at.of("target.name"), &target.name)?;
            let p: ScaleParams = typed(&step.params, &params)?;
            if p.replicas > MAX_REPLICAS {
                return Err(SpecError::field(
                    at.of("params.replicas"),
                    format!("must be at most {MAX_REPLICAS}"),
                ));
            }
            Ok(if kind == "deployment-scale" {
                FaultSpec::DeploymentScale { target, params: p }
            } else {
                FaultSpec::StatefulsetScale { target, params: p }
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_count_or_percentage_of_what_matched() {
        let t = |count, percentage| PodTarget {
            count,
            percentage,
            ..PodTarget::default()
        };
        assert_eq!(t(None, None).pick(5), 5);
        assert_eq!(t(Some(2), None).pick(5), 2);
        assert_eq!(t(Some(9), None).pick(5), 5);
        assert_eq!(t(None, Some(50)).pick(5), 3);
        assert_eq!(t(None, Some(1)).pick(0), 0);
    }

    fn parse(step: &str) -> Result<FaultSpec, String> {
        let yaml = format!(
            "apiVersion: faultline.dev/v1\nkind: Experiment\nmetadata: {{name: x}}\n\
             hypothesis:\n  probes:\n    - {{name: a, tcp: {{address: \"127.0.0.1:1\"}}}}\n\
             steps:\n  - {step}\n"
        );
        crate::parse_template(&yaml)
            .map(|e| e.faults().into_iter().next().unwrap().spec)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn templates_name_the_field_at_fault() {
        let ok = parse("{fault: pod-delete, target: {namespace: shop, labelSelector: app=web, percentage: 50}, params: {force: true}}").unwrap();
        assert_eq!(
            ok.k8s(),
            Some(K8sScope {
                namespace: Some("shop"),
                kinds: &["Pod"]
            })
        );
        let ok = parse("{fault: statefulset-scale, target: {namespace: db, name: pg}, params: {replicas: 1}, duration: 1m}").unwrap();
        assert_eq!(ok.k8s().unwrap().kinds, ["StatefulSet"]);
        let ok = parse(
            "{fault: node-cordon, target: {labelSelector: pool=batch, count: 1}, duration: 1m}",
        )
        .unwrap();
        assert_eq!(
            ok.k8s(),
            Some(K8sScope {
                namespace: None,
                kinds: &["Node"]
            })
        );
        let ok = parse("{fault: node-drain, target: {names: [n1]}, params: {gracePeriod: 5s, force: true}, duration: 1m}").unwrap();
        assert_eq!(ok.k8s().unwrap().kinds, ["Node", "Pod"]);
        let ok = parse("{fault: container-kill, target: {namespace: shop, names: [web-1]}, params: {container: app, signal: INT}}").unwrap();
        assert!(
            matches!(ok, FaultSpec::ContainerKill { ref params, .. } if params.signal_name() == "INT")
        );
        for (step, want) in [
            ("{fault: pod-delete, target: {labelSelector: app=web}}", "missing field `namespace`"),
            ("{fault: pod-delete, target: {namespace: Shop, labelSelector: a=b}}", "steps[0].target.namespace"),
            ("{fault: pod-delete, target: {namespace: shop}}", "give labelSelector and/or fieldSelector, or names"),
            ("{fault: pod-delete, target: {namespace: shop, names: [a], labelSelector: a=b}}", "or names"),
            ("{fault: pod-delete, target: {namespace: shop, names: [a], count: 1, percentage: 5}}", "not both"),
            ("{fault: pod-delete, target: {namespace: shop, names: [a]}, params: {force: true, gracePeriod: 3s}}", "steps[0].params.force"),
            ("{fault: pod-delete, target: {namespace: shop, names: [a]}, params: {interval: 5s}}", "needs a duration"),
            ("{fault: deployment-scale, target: {namespace: shop, name: web}, params: {replicas: 1}}", "needs a duration"),
            ("{fault: deployment-scale, target: {namespace: shop, name: web}, params: {replicas: 5000}, duration: 1s}", "steps[0].params.replicas"),
            ("{fault: deployment-scale, target: {namespace: shop, name: web}, duration: 1s}", "replicas"),
            ("{fault: node-cordon, target: {names: [n1]}}", "needs a duration"),
            ("{fault: node-cordon, target: {}, duration: 1s}", "give labelSelector or names"),
            ("{fault: node-cordon, target: {names: [N1]}, duration: 1s}", "steps[0].target.names[0]"),
            ("{fault: node-cordon, target: {names: [n1], namespace: x}, duration: 1s}", "unknown field"),
            ("{fault: node-cordon, target: {names: [n1], count: 0}, duration: 1s}", "steps[0].target.count"),
            ("{fault: node-drain, target: {names: [n1]}}", "needs a duration"),
            ("{fault: node-drain, target: {names: [n1]}, params: {retryInterval: 10ms}, duration: 1s}", "steps[0].params.retryInterval"),
            ("{fault: node-drain, target: {names: [n1]}, params: {evict: true}, duration: 1s}", "unknown field"),
            ("{fault: container-kill, target: {namespace: shop, names: [a]}, params: {signal: KILL}}", "steps[0].params.signal"),
            ("{fault: container-kill, target: {namespace: shop, names: [a]}, params: {container: App}}", "steps[0].params.container"),
            ("{fault: container-kill, target: {namespace: shop}}", "or names"),
        ] {
            let e = parse(step).unwrap_err();
            assert!(e.contains(want), "{step}: {e}");
        }
    }

    #[test]
    fn names_follow_dns_rules() {
        assert!(dns_name("shop-1", 63, false));
        assert!(!dns_name("Shop", 63, false));
        assert!(!dns_name("-a", 63, false));
        assert!(dns_name("web.v2", 253, true));
        assert!(!dns_name("web.v2", 63, false));
    }
}
