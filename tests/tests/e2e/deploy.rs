//! The deployment files in `deploy/`: both Helm charts rendered and linted by the real `helm`
//! with their default values and every `ci/*-values.yaml`, each rendered manifest validated
//! against the Kubernetes API's schemas with unknown fields refused (kubernetes-validate
//! `--strict`), and what the charts promise checked on the rendered objects: probes, the
//! non-root read-only pod, the shared TLS certificate, exactly the RBAC each fault toggle needs,
//! refusals of values that would deploy but not work, and every flag and variable accepted by the
//! real binaries. Then the systemd units, through `systemd-analyze verify`.
//!
//! helm and kubernetes-validate come from `tests/deploy-tools/install.sh` (.ci/run runs it);
//! without them the chart tests fail unless `FAULTLINE_SKIP_HELM=1`.
use serde_json::Value;
use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::Command,
};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn chart(name: &str) -> PathBuf {
    repo().join("deploy/helm").join(name)
}

/// The oldest and newest Kubernetes minor versions the charts are validated against (the charts'
/// `kubeVersion` floor, and the newest the validator ships that clusters run).
const KUBE_VERSIONS: [&str; 2] = ["1.27.0", "1.35.0"];
const NAMESPACE: &str = "chaos";

struct Tools {
    helm: PathBuf,
    validate: PathBuf,
}

/// The pinned tools, or `None` (with a note) when they are missing and FAULTLINE_SKIP_HELM=1.
fn tools() -> Option<Tools> {
    let dir = repo().join("tests/deploy-tools");
    let helm = std::env::var_os("FAULTLINE_HELM")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join("bin/helm"));
    let validate = dir.join(".venv/bin/kubernetes-validate");
    if helm.is_file() && validate.is_file() {
        return Some(Tools { helm, validate });
    }
    if std::env::var("FAULTLINE_SKIP_HELM").as_deref() == Ok("1") {
        eprintln!("skipping the Helm chart checks: helm or kubernetes-validate is missing and FAULTLINE_SKIP_HELM=1");
        return None;
    }
    panic!(
        "{} or {} is missing: run tests/deploy-tools/install.sh (or set FAULTLINE_SKIP_HELM=1)",
        helm.display(),
        validate.display()
    );
}

impl Tools {
    fn helm(&self, args: &[&str]) -> std::process::Output {
        Command::new(&self.helm)
            .args(args)
            // No user or machine configuration, no repository index, no network.
            .env(
                "HELM_CACHE_HOME",
                std::env::temp_dir().join("faultline-helm-cache"),
            )
            .env(
                "HELM_CONFIG_HOME",
                std::env::temp_dir().join("faultline-helm-config"),
            )
            .env(
                "HELM_DATA_HOME",
                std::env::temp_dir().join("faultline-helm-data"),
            )
            .output()
            .expect("run helm")
    }

    /// `helm template` of `chart` with a values file and `--set` pairs: the manifests' text, or
    /// helm's error.
    fn template(&self, chart: &str, values: Option<&Path>, set: &[&str]) -> Result<String, String> {
        let dir = self::chart(chart);
        let mut args = vec![
            "template",
            "t",
            dir.to_str().unwrap(),
            "--namespace",
            NAMESPACE,
        ];
        let vals;
        if let Some(v) = values {
            vals = v.to_str().unwrap().to_string();
            args.extend(["-f", &vals]);
        }
        for s in set {
            args.extend(["--set", s]);
        }
        let out = self.helm(&args);
        if out.status.success() {
            Ok(String::from_utf8(out.stdout).unwrap())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    fn render(&self, chart: &str, values: Option<&Path>, set: &[&str]) -> Vec<Value> {
        let text = self
            .template(chart, values, set)
            .unwrap_or_else(|e| panic!("helm template {chart} {values:?} {set:?}: {e}"));
        docs(&text)
    }

    /// `helm lint --strict`: warnings fail too.
    fn lint(&self, chart: &str, values: Option<&Path>) {
        let dir = self::chart(chart);
        let mut args = vec![
            "lint",
            "--strict",
            dir.to_str().unwrap(),
            "--namespace",
            NAMESPACE,
        ];
        let vals;
        if let Some(v) = values {
            vals = v.to_str().unwrap().to_string();
            args.extend(["-f", &vals]);
        }
        let out = self.helm(&args);
        assert!(
            out.status.success(),
            "helm lint {chart} {values:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// kubernetes-validate --strict against each of KUBE_VERSIONS: Err(its report) on any
    /// unknown field, missing required field or wrong type.
    fn validate(&self, manifests: &str) -> Result<(), String> {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), manifests).unwrap();
        for v in KUBE_VERSIONS {
            let out = Command::new(&self.validate)
                .args(["--strict", "--quiet", "-k", v])
                .arg(file.path())
                .output()
                .expect("run kubernetes-validate");
            let report = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            if !out.status.success() || report.contains("ERROR") {
                return Err(format!("kubernetes {v}: {report}"));
            }
        }
        Ok(())
    }
}

/// The documents of a multi-document YAML stream, as JSON values (empty ones dropped).
fn docs(text: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_norway::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).expect("rendered YAML parses"))
        .filter(|v| !v.is_null())
        .collect()
}

/// The chart's values files: the defaults (`None`) and every `ci/*-values.yaml`.
fn value_sets(chart: &str) -> Vec<Option<PathBuf>> {
    let mut sets: Vec<Option<PathBuf>> = vec![None];
    let mut files: Vec<PathBuf> = std::fs::read_dir(self::chart(chart).join("ci"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with("-values.yaml"))
        .collect();
    files.sort();
    assert!(
        files.iter().any(|f| f.ends_with("full-values.yaml")),
        "{chart} has no ci/full-values.yaml"
    );
    sets.extend(files.into_iter().map(Some));
    sets
}

fn find<'a>(objs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objs.iter().filter(|o| o["kind"] == kind).collect()
}

fn one<'a>(objs: &'a [Value], kind: &str) -> &'a Value {
    let found = find(objs, kind);
    assert_eq!(found.len(), 1, "one {kind} expected: {objs:#?}");
    found[0]
}

fn workload(objs: &[Value]) -> &Value {
    let w: Vec<_> = objs
        .iter()
        .filter(|o| {
            matches!(
                o["kind"].as_str(),
                Some("Deployment" | "StatefulSet" | "DaemonSet")
            )
        })
        .collect();
    assert_eq!(w.len(), 1, "one workload expected");
    w[0]
}

fn container(objs: &[Value]) -> &Value {
    &workload(objs)["spec"]["template"]["spec"]["containers"][0]
}

/// The container's environment: name → value (`valueFrom` ones as "<from>").
fn env(objs: &[Value]) -> BTreeMap<String, String> {
    container(objs)["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let v = e["value"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| "<from>".into());
            (e["name"].as_str().unwrap().to_string(), v)
        })
        .collect()
}

/// The variables and long flags a binary's `--help` names.
fn help_names(bin: &str, sub: &[&str]) -> (BTreeSet<String>, BTreeSet<String>) {
    let out = Command::new(faultline_e2e::bin(bin))
        .args(sub)
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let vars = text
        .split("[env: ")
        .skip(1)
        .map(|s| s.split(['=', ']']).next().unwrap().to_string())
        .collect();
    let flags = text
        .split_whitespace()
        .filter(|w| w.starts_with("--"))
        .map(|w| {
            w.trim_end_matches([',', '.'])
                .split(['=', '['])
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    (vars, flags)
}

/// Every variable the container sets that belongs to the program (not the ones the chart sets
/// for Kubernetes' own `$(VAR)` expansion, nor extraEnv's free choices), and every flag, is one
/// the binary knows: a renamed flag breaks this test, not an install.
fn check_against_help(objs: &[Value], bin: &str, sub: &[&str], own: &[&str]) {
    let (vars, flags) = help_names(bin, sub);
    assert!(
        vars.len() > 5 && flags.len() > 5,
        "{bin} --help lists its flags"
    );
    for name in env(objs).keys() {
        if own.contains(&name.as_str())
            || !(name.starts_with("FAULTLINE_") || name == "DATABASE_URL")
        {
            continue;
        }
        assert!(
            vars.contains(name),
            "{bin} {sub:?} has no variable {name} (it has {vars:?})"
        );
    }
    for arg in container(objs)["args"].as_array().into_iter().flatten() {
        let arg = arg.as_str().unwrap();
        if let Some(flag) = arg.strip_prefix("--") {
            let flag = format!("--{}", flag.split('=').next().unwrap());
            assert!(flags.contains(&flag), "{bin} {sub:?} has no flag {flag}");
        }
    }
}

#[test]
fn helm_charts_lint_render_and_validate_with_every_values_file() {
    let Some(t) = tools() else { return };
    for chart in ["faultline-hub", "faultline-delegate"] {
        for values in value_sets(chart) {
            t.lint(chart, values.as_deref());
            let text = t
                .template(chart, values.as_deref(), &[])
                .unwrap_or_else(|e| panic!("helm template {chart} {values:?}: {e}"));
            t.validate(&text)
                .unwrap_or_else(|e| panic!("{chart} with {values:?} does not validate: {e}"));
            let objs = docs(&text);
            assert!(
                objs.len() >= 3,
                "{chart} {values:?} renders {} objects",
                objs.len()
            );
            for o in &objs {
                assert_eq!(
                    o["metadata"]["labels"]["app.kubernetes.io/instance"], "t",
                    "{o:#}"
                );
            }
        }
    }
}

#[test]
fn the_validator_refuses_an_unknown_field_and_a_missing_one() {
    let Some(t) = tools() else { return };
    // A misspelt field inside an EnvVar, through the chart's own extraEnv.
    let text = t
        .template(
            "faultline-hub",
            None,
            &["extraEnv[0].name=X", "extraEnv[0].valu=y"],
        )
        .unwrap();
    let e = t.validate(&text).unwrap_err();
    assert!(e.contains("'valu' was unexpected"), "{e}");
    // A container without its required name.
    let bad = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{image: x}]\n";
    let e = t.validate(bad).unwrap_err();
    assert!(e.contains("'name' is a required property"), "{e}");
}

#[test]
fn hub_chart_runs_replicas_non_root_read_only_with_probes_and_a_shared_certificate() {
    let Some(t) = tools() else { return };
    let objs = t.render("faultline-hub", None, &[]);
    let d = one(&objs, "Deployment");
    assert_eq!(d["spec"]["replicas"], 2);
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["automountServiceAccountToken"], false);
    let c = container(&objs);
    assert_eq!(c["args"][0], "serve");
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["readinessProbe"]["httpGet"]["scheme"], "HTTPS");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    let mounts: BTreeSet<&str> = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    for m in ["/tmp", "/var/lib/faultline", "/etc/faultline/tls"] {
        assert!(mounts.contains(m), "{m} not mounted: {mounts:?}");
    }
    let e = env(&objs);
    assert_eq!(e["DATABASE_URL"], "<from>");
    assert_eq!(e["FAULTLINE_TLS_CERT"], "/etc/faultline/tls/tls.crt");
    assert!(!e.contains_key("FAULTLINE_INSECURE_HTTP"));
    assert_eq!(
        one(&objs, "PodDisruptionBudget")["spec"]["maxUnavailable"],
        1
    );
    check_against_help(&objs, "faultline", &["serve"], &[]);

    // The chart-made certificate: one for every replica, valid for the Service's names under
    // its CA, and a key rustls serves with (the hub's own TLS stack).
    let secret = one(&objs, "Secret");
    assert_eq!(secret["type"], "kubernetes.io/tls");
    let pem = |k: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(secret["data"][k].as_str().unwrap())
            .unwrap()
    };
    check_certificate(
        &pem("ca.crt"),
        &pem("tls.crt"),
        &pem("tls.key"),
        "t-faultline-hub.chaos.svc",
    );

    // Every option on: the given certificate instead, SSO config and its secrets mounted.
    let full = chart("faultline-hub").join("ci/full-values.yaml");
    let objs = t.render("faultline-hub", Some(&full), &[]);
    assert!(
        find(&objs, "Secret").is_empty(),
        "a given tls.secretName makes no Secret"
    );
    assert_eq!(find(&objs, "Ingress").len(), 2);
    assert_eq!(find(&objs, "Service").len(), 2);
    let e = env(&objs);
    assert_eq!(e["FAULTLINE_CONFIG"], "/etc/faultline/config/hub.toml");
    assert_eq!(e["FAULTLINE_PUBLIC_URL"], "https://chaos.example.com");
    for secret_var in [
        "FAULTLINE_SESSION_KEYS",
        "FAULTLINE_SECRET_KEY",
        "FAULTLINE_ADMIN_PASSWORD",
    ] {
        assert_eq!(e[secret_var], "<from>", "{secret_var}");
    }
    let toml = one(&objs, "ConfigMap")["data"]["hub.toml"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        toml.contains("client_secret_file = \"/etc/faultline/oidc/entra\""),
        "{toml}"
    );
    check_against_help(&objs, "faultline", &["serve"], &["FAULTLINE_SESSION_TTL"]);
}

/// `tls.crt` chains to `ca.crt` for `name` as a client (the delegate) checks it, and rustls
/// takes `tls.crt` + `tls.key` as a server.
fn check_certificate(ca: &[u8], cert: &[u8], key: &[u8], name: &str) {
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer, ServerName, UnixTime};
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca) {
        roots.add(c.unwrap()).unwrap();
    }
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(roots.into(), provider.clone())
            .build()
            .unwrap();
    let chain: Vec<CertificateDer> = CertificateDer::pem_slice_iter(cert)
        .map(Result::unwrap)
        .collect();
    verifier
        .verify_server_cert(
            &chain[0],
            &chain[1..],
            &ServerName::try_from(name.to_string()).unwrap(),
            &[],
            UnixTime::now(),
        )
        .unwrap_or_else(|e| panic!("the chart-made certificate for {name}: {e}"));
    let key = PrivateKeyDer::from_pem_slice(key).unwrap();
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("rustls serves the chart-made certificate");
}

#[test]
fn hub_chart_trial_mode_and_tls_at_the_ingress() {
    let Some(t) = tools() else { return };
    let embedded = chart("faultline-hub").join("ci/embedded-values.yaml");
    let objs = t.render("faultline-hub", Some(&embedded), &[]);
    let s = one(&objs, "StatefulSet");
    assert_eq!(s["spec"]["replicas"], 1);
    assert_eq!(
        s["spec"]["volumeClaimTemplates"][0]["metadata"]["name"],
        "data"
    );
    assert!(container(&objs)["image"].as_str().unwrap().ends_with("-pg"));
    assert!(
        !env(&objs).contains_key("DATABASE_URL"),
        "embedded mode runs its own PostgreSQL"
    );
    assert!(find(&objs, "PodDisruptionBudget").is_empty());

    let ingress = chart("faultline-hub").join("ci/ingress-tls-values.yaml");
    let objs = t.render("faultline-hub", Some(&ingress), &[]);
    assert_eq!(env(&objs)["FAULTLINE_INSECURE_HTTP"], "true");
    assert!(!env(&objs).contains_key("FAULTLINE_TLS_CERT"));
    assert!(find(&objs, "Secret").is_empty());
    assert_eq!(
        container(&objs)["readinessProbe"]["httpGet"]["scheme"],
        "HTTP"
    );
    let paths: Vec<&str> = find(&objs, "Ingress")
        .iter()
        .map(|i| {
            i["spec"]["rules"][0]["http"]["paths"][0]["path"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(paths, ["/", "/faultline.v1.DelegateService/"]);
    check_against_help(&objs, "faultline", &["serve"], &[]);
}

#[test]
fn charts_refuse_values_that_would_deploy_but_not_work() {
    let Some(t) = tools() else { return };
    let refused = [
        (
            "faultline-hub",
            &["tls.mode=ingress"][..],
            "enable the Ingress",
        ),
        (
            "faultline-hub",
            &["tls.mode=off"],
            "tls.mode must be hub or ingress",
        ),
        (
            "faultline-hub",
            &["database.embedded.enabled=true", "replicaCount=3"],
            "set replicaCount=1",
        ),
        (
            "faultline-hub",
            &["database.url.secretName="],
            "database.url.secretName is required",
        ),
        (
            "faultline-delegate",
            &["kubernetes.faults.podFaults=true"],
            "set mode=daemonset",
        ),
        (
            "faultline-delegate",
            &["mode=statefulset"],
            "mode must be deployment or daemonset",
        ),
        (
            "faultline-delegate",
            &["allow={process}"],
            "is not KIND=VALUE",
        ),
        (
            "faultline-delegate",
            &["persistence.type=hostPath"],
            "persistence.type must be pvc or emptyDir",
        ),
        (
            "faultline-delegate",
            &["registration.secretName="],
            "registration.secretName is required",
        ),
        // values.schema.json: a misspelt key is refused, not ignored.
        (
            "faultline-hub",
            &["replicaCont=3"],
            "additional properties 'replicaCont' not allowed",
        ),
        (
            "faultline-delegate",
            &["kubernetes.faults.podDelet=true"],
            "additional properties 'podDelet' not allowed",
        ),
    ];
    for (chart, set, why) in refused {
        match t.template(chart, None, set) {
            Ok(_) => panic!("{chart} {set:?} rendered"),
            Err(e) => assert!(e.contains(why), "{chart} {set:?}: {e}"),
        }
    }
}

/// One RBAC rule, comparable: (API group, resource, sorted verbs).
type Rule = (String, String, Vec<String>);

fn rules(obj: &Value) -> BTreeSet<Rule> {
    let mut out = BTreeSet::new();
    for r in obj["rules"].as_array().unwrap() {
        let mut verbs: Vec<String> = r["verbs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        verbs.sort();
        for g in r["apiGroups"].as_array().unwrap() {
            for res in r["resources"].as_array().unwrap() {
                out.insert((
                    g.as_str().unwrap().into(),
                    res.as_str().unwrap().into(),
                    verbs.clone(),
                ));
            }
        }
    }
    out
}

fn rule(group: &str, resource: &str, verbs: &[&str]) -> Rule {
    let mut v: Vec<String> = verbs.iter().map(|s| s.to_string()).collect();
    v.sort();
    (group.into(), resource.into(), v)
}

#[test]
fn delegate_rbac_grants_exactly_what_each_enabled_fault_uses() {
    let Some(t) = tools() else { return };
    // Nothing enabled: no Role, no ClusterRole, no API token in the pod.
    let objs = t.render("faultline-delegate", None, &[]);
    assert!(find(&objs, "Role").is_empty() && find(&objs, "ClusterRole").is_empty());
    assert_eq!(
        workload(&objs)["spec"]["template"]["spec"]["automountServiceAccountToken"],
        false
    );
    assert_eq!(one(&objs, "Deployment")["spec"]["replicas"], 1);

    // The table of docs/kubernetes.md: toggle → namespaced rules, cluster rules.
    let ds = "mode=daemonset";
    #[allow(clippy::type_complexity)]
    let table: [(&str, Vec<Rule>, Vec<Rule>); 8] = [
        (
            "kubernetes.faults.podDelete",
            vec![rule("", "pods", &["get", "list", "watch", "delete"])],
            vec![],
        ),
        (
            "kubernetes.faults.containerKill",
            vec![
                rule("", "pods", &["get", "list"]),
                rule("", "pods/exec", &["get", "create"]),
            ],
            vec![],
        ),
        (
            "kubernetes.faults.deploymentScale",
            vec![
                rule("apps", "deployments", &["get", "list", "watch"]),
                rule("apps", "deployments/scale", &["get", "patch", "update"]),
            ],
            vec![],
        ),
        (
            "kubernetes.faults.statefulsetScale",
            vec![
                rule("apps", "statefulsets", &["get", "list", "watch"]),
                rule("apps", "statefulsets/scale", &["get", "patch", "update"]),
            ],
            vec![],
        ),
        (
            "kubernetes.faults.nodeCordon",
            vec![],
            vec![rule("", "nodes", &["get", "list", "watch", "patch"])],
        ),
        (
            "kubernetes.faults.nodeDrain",
            vec![],
            vec![
                rule("", "nodes", &["get", "list", "watch", "patch"]),
                rule("", "pods", &["get", "list", "watch"]),
                rule("", "pods/eviction", &["create"]),
            ],
        ),
        (
            "kubernetes.faults.podFaults",
            vec![rule("", "pods", &["get", "list", "watch"])],
            vec![],
        ),
        (
            "kubernetes.probe.enabled",
            vec![
                rule("", "pods", &["get", "list", "watch"]),
                rule("apps", "deployments", &["get", "list", "watch"]),
                rule("apps", "statefulsets", &["get", "list", "watch"]),
            ],
            vec![],
        ),
    ];
    for (toggle, namespaced, cluster) in table {
        let on = format!("{toggle}=true");
        let mut set = vec![on.as_str(), "kubernetes.namespaces={shop,payments}"];
        if toggle.ends_with("podFaults") {
            set.push(ds);
        }
        let objs = t.render("faultline-delegate", None, &set);
        let roles = find(&objs, "Role");
        if namespaced.is_empty() {
            assert!(roles.is_empty(), "{toggle} makes no Role");
        } else {
            let ns: Vec<_> = roles
                .iter()
                .map(|r| r["metadata"]["namespace"].as_str().unwrap())
                .collect();
            assert_eq!(ns, ["shop", "payments"], "{toggle}");
            for r in &roles {
                assert_eq!(rules(r), namespaced.iter().cloned().collect(), "{toggle}");
            }
            let bindings = find(&objs, "RoleBinding");
            assert_eq!(bindings.len(), 2);
            for b in bindings {
                assert_eq!(b["subjects"][0]["namespace"], NAMESPACE);
                assert_eq!(b["subjects"][0]["name"], "t-faultline-delegate");
            }
        }
        let cluster_roles = find(&objs, "ClusterRole");
        if cluster.is_empty() {
            assert!(cluster_roles.is_empty(), "{toggle} makes no ClusterRole");
        } else {
            assert_eq!(cluster_roles.len(), 1, "{toggle}");
            assert_eq!(
                rules(cluster_roles[0]),
                cluster.iter().cloned().collect(),
                "{toggle}"
            );
            assert_eq!(find(&objs, "ClusterRoleBinding").len(), 1);
        }
        assert_eq!(
            workload(&objs)["spec"]["template"]["spec"]["automountServiceAccountToken"],
            true,
            "{toggle}"
        );
        let args: Vec<&str> = container(&objs)["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert!(
            args.contains(&"--allow=namespace=shop")
                && args.contains(&"--allow=namespace=payments"),
            "{args:?}"
        );
        // The object kinds the fault changes, as the delegate's allow-list names them
        // (experiment/src/policy.rs: nothing Kubernetes is allowed without `k8s-kind=`).
        // A drain changes nodes and evicts pods: both.
        let want: &[&str] = match toggle.rsplit('.').next().unwrap() {
            "podDelete" | "containerKill" | "podFaults" => &["Pod"],
            "nodeDrain" => &["Pod", "Node"],
            "deploymentScale" => &["Deployment"],
            "statefulsetScale" => &["StatefulSet"],
            "nodeCordon" => &["Node"],
            _ => &[],
        };
        let kinds: Vec<&str> = args
            .iter()
            .filter_map(|a| a.strip_prefix("--allow=k8s-kind="))
            .collect();
        assert_eq!(kinds, want, "{toggle}: {args:?}");
    }
}

#[test]
fn delegate_chart_modes_state_and_flags() {
    let Some(t) = tools() else { return };
    // A cluster delegate: unprivileged, state on a PVC, one replica replaced (never two at once).
    let objs = t.render(
        "faultline-delegate",
        None,
        &[
            "allow={process=redis-server,cidr=10.0.0.0/8,port=6379}",
            "labels.env=prod",
        ],
    );
    let d = one(&objs, "Deployment");
    assert_eq!(d["spec"]["strategy"]["type"], "Recreate");
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        container(&objs)["securityContext"]["readOnlyRootFilesystem"],
        true
    );
    assert_eq!(
        pod["volumes"][0]["persistentVolumeClaim"]["claimName"],
        "t-faultline-delegate-state"
    );
    assert_eq!(
        one(&objs, "PersistentVolumeClaim")["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
    let e = env(&objs);
    assert_eq!(e["FAULTLINE_DELEGATE_TOKEN"], "<from>");
    assert_eq!(e["FAULTLINE_DELEGATE_LABEL"], "env=prod");
    check_against_help(&objs, "faultline-delegate", &[], &[]);
    // The rendered flags and variables start the real delegate: it gets as far as wanting a
    // registration token (so every --allow entry and value parsed).
    let state = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(faultline_e2e::bin("faultline-delegate"));
    cmd.env_clear();
    for (k, v) in e.iter().filter(|(_, v)| *v != "<from>") {
        cmd.env(k, v);
    }
    cmd.env("FAULTLINE_DELEGATE_STATE_DIR", state.path())
        .env("FAULTLINE_DELEGATE_HUB", "http://127.0.0.1:9")
        .args(
            container(&objs)["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap()),
        );
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(
        !out.status.success() && err.contains("token"),
        "the delegate with the chart's flags: {err}"
    );

    // One per node: privileged in the host's PID namespace, state on the node, named after it.
    let objs = t.render(
        "faultline-delegate",
        Some(&chart("faultline-delegate").join("ci/daemonset-values.yaml")),
        &[],
    );
    let ds = one(&objs, "DaemonSet");
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["hostPID"], true);
    assert_eq!(pod["tolerations"][0]["operator"], "Exists");
    assert_eq!(container(&objs)["securityContext"]["privileged"], true);
    assert_eq!(
        pod["volumes"][0]["hostPath"]["path"],
        "/var/lib/faultline-delegate/chaos-t"
    );
    // Pod faults: the host's /run/netns (Bidirectional, so attached names outlive a restart of
    // the delegate) and cgroups; the node's name for the delegate.
    let mounts = &container(&objs)["volumeMounts"];
    let netns = mounts
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == "/run/netns")
        .expect("/run/netns is mounted");
    assert_eq!(netns["mountPropagation"], "Bidirectional");
    let vols = pod["volumes"].as_array().unwrap();
    for (name, path) in [("netns", "/run/netns"), ("cgroup", "/sys/fs/cgroup")] {
        let v = vols.iter().find(|v| v["name"] == name).unwrap();
        assert_eq!(v["hostPath"]["path"], path);
    }
    let e = env(&objs);
    assert_eq!(e["FAULTLINE_DELEGATE_NODE_NAME"], "$(NODE_NAME)");
    assert_eq!(e["FAULTLINE_DELEGATE_NAME"], "aks-prod-$(NODE_NAME)");
    assert!(e["FAULTLINE_DELEGATE_LABEL"].ends_with("node=$(NODE_NAME)"));
    assert_eq!(
        e["FAULTLINE_DELEGATE_HUB_CA"],
        "/etc/faultline-delegate/hub-ca/ca.crt"
    );
    check_against_help(&objs, "faultline-delegate", &[], &["NODE_NAME"]);

    // Capabilities instead of privileged: exactly those of the host faults.
    let objs = t.render(
        "faultline-delegate",
        Some(&chart("faultline-delegate").join("ci/daemonset-caps-values.yaml")),
        &[],
    );
    let sc = &container(&objs)["securityContext"];
    assert!(sc["privileged"].is_null());
    assert_eq!(
        sc["capabilities"]["add"],
        serde_json::json!([
            "KILL",
            "NET_ADMIN",
            "SYS_ADMIN",
            "SYS_PTRACE",
            "DAC_READ_SEARCH"
        ])
    );

    // emptyDir: survives a container restart only (values.yaml says what that costs).
    let objs = t.render(
        "faultline-delegate",
        Some(&chart("faultline-delegate").join("ci/emptydir-values.yaml")),
        &[],
    );
    assert!(find(&objs, "PersistentVolumeClaim").is_empty());
    assert!(workload(&objs)["spec"]["template"]["spec"]["volumes"][0]["emptyDir"].is_object());
}

/// The units of `deploy/systemd/` (and the delegate's example drop-ins) copied beside each other
/// with ExecStart= pointing at the built binaries, since verify checks that they exist.
fn units_in(dir: &Path, drop_ins: bool) {
    let src = repo().join("deploy/systemd");
    for (unit, bin) in [
        ("faultline.service", "faultline"),
        ("faultline-delegate.service", "faultline-delegate"),
    ] {
        let text = std::fs::read_to_string(src.join(unit)).unwrap();
        let exec = format!("/usr/local/bin/{bin}");
        assert!(
            text.contains(&format!("ExecStart={exec}")),
            "{unit} starts {exec}"
        );
        let built = faultline_e2e::bin(bin);
        std::fs::write(dir.join(unit), text.replace(&exec, built.to_str().unwrap())).unwrap();
    }
    if drop_ins {
        let d = dir.join("faultline-delegate.service.d");
        std::fs::create_dir(&d).unwrap();
        for e in std::fs::read_dir(src.join("faultline-delegate.service.d")).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, d.join(p.file_name().unwrap())).unwrap();
        }
    }
}

/// `systemd-analyze verify`: Err with what it said about these units (it exits 0 on unknown keys
/// and bad values, so its words count, not only its status).
fn verify(dir: &Path, units: &[&str]) -> Result<(), String> {
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(units.iter().map(|u| dir.join(u)))
        .output()
        .unwrap();
    let said: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .chain(String::from_utf8_lossy(&out.stdout).lines())
        .filter(|l| l.contains("faultline"))
        .map(str::to_string)
        .collect();
    if out.status.success() && said.is_empty() {
        Ok(())
    } else {
        Err(said.join("\n") + &String::from_utf8_lossy(&out.stderr))
    }
}

/// `systemd-analyze security --offline`'s overall exposure (0 = locked down, 10 = none).
fn exposure(unit: &Path) -> f64 {
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(unit)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("{text}"));
    line.rsplit(": ")
        .next()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn systemd_units_verify_and_stay_hardened() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipping the systemd unit checks: systemd-analyze is not installed (apt-get install systemd)");
        return;
    }
    let plain = tempfile::tempdir().unwrap();
    units_in(plain.path(), false);
    verify(
        plain.path(),
        &["faultline.service", "faultline-delegate.service"],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let with_drop_ins = tempfile::tempdir().unwrap();
    units_in(with_drop_ins.path(), true);
    verify(with_drop_ins.path(), &["faultline-delegate.service"]).unwrap_or_else(|e| panic!("{e}"));

    // The hub needs nothing; the delegate keeps what its faults need; the process-only drop-in
    // takes away the rest. A loosened unit fails here.
    let hub = exposure(&plain.path().join("faultline.service"));
    let delegate = exposure(&plain.path().join("faultline-delegate.service"));
    let process_only = exposure(&with_drop_ins.path().join("faultline-delegate.service"));
    assert!(hub <= 2.0, "hub exposure {hub}");
    assert!(delegate <= 5.5, "delegate exposure {delegate}");
    assert!(
        process_only <= 3.5 && process_only < delegate,
        "process-only exposure {process_only}"
    );

    // The check can fail: a misspelt key is reported.
    let unit = plain.path().join("faultline.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    std::fs::write(
        &unit,
        text.replace("ProtectSystem=strict", "ProtectSytem=strict"),
    )
    .unwrap();
    let e = verify(plain.path(), &["faultline.service"]).unwrap_err();
    assert!(e.contains("ProtectSytem"), "{e}");
}

/// The Dockerfiles cannot be built here (no container engine), so what can go stale is checked:
/// every file they copy from the repository exists, each builds a package and binary the
/// workspace has, and the images run as the uid the Helm charts expect, the hub's never as root.
#[test]
fn dockerfiles_copy_what_exists_and_run_as_the_charts_uid() {
    for (file, package, chart_name) in [
        ("hub.Dockerfile", "faultline", "faultline-hub"),
        (
            "delegate.Dockerfile",
            "faultline-delegate",
            "faultline-delegate",
        ),
    ] {
        let text = std::fs::read_to_string(repo().join("deploy/docker").join(file)).unwrap();
        for line in text
            .lines()
            .filter(|l| l.starts_with("COPY ") && !l.contains("--from="))
        {
            let words: Vec<&str> = line.split_whitespace().collect();
            for src in &words[1..words.len() - 1] {
                assert!(repo().join(src).exists(), "{file}: {src} does not exist");
            }
        }
        assert!(
            text.contains(&format!(
                "cargo build --release --locked -p {package} --bin {package}"
            )),
            "{file} builds {package}"
        );
        assert!(
            std::fs::read_to_string(repo().join(package_dir(package)).join("Cargo.toml"))
                .unwrap()
                .contains(&format!("name = \"{package}\"")),
            "{package} is a workspace package"
        );
        // Each final stage (each stage with an ENTRYPOINT) drops root.
        for stage in text
            .split("\nFROM ")
            .skip(1)
            .filter(|s| s.contains("ENTRYPOINT"))
        {
            assert!(
                stage.contains("\nUSER 10001:10001\n"),
                "{file}: a stage runs as root:\n{stage}"
            );
            assert!(
                stage.contains(&format!("ENTRYPOINT [\"/usr/local/bin/{package}\"]")),
                "{file}"
            );
        }
        let values = std::fs::read_to_string(chart(chart_name).join("values.yaml")).unwrap();
        assert!(
            values.contains("runAsUser: 10001"),
            "{chart_name} runs as the image's uid"
        );
    }
}

fn package_dir(package: &str) -> &'static str {
    match package {
        "faultline" => "server",
        _ => "delegate",
    }
}
